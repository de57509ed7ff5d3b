#!/usr/bin/env python3
"""Label scoring: slim_score against llama.cpp's logits (issue 15).

N banking77 test texts (the seeded sample `slim eval` draws, with n = --n),
each in tasks/banking77.json's few-shot prompt; every one of the 77 labels is
scored as the task scores it: the candidate " " + label + "\\n", tokenized
alone (no BOS) after the prompt's tokens (with BOS), its log-probability the
sum of its tokens' log-softmax.

  slim:       slim.Model.score (slim_score: the labels as one token trie)
  llama.cpp:  llama-cpp-python 0.3.36 (logits_all): the prompt, then each
              label's tokens after it, log-softmax in float64 of its rows

Both get the same token ids (slim's tokenization; llama.cpp's own is compared
and reported).  llama.cpp runs in several configurations: its own spread on
the same numbers is the yardstick.  Prints max / p99 |d log p| of slim vs
llama.cpp's default beside each configuration vs the default, argmax
agreement and the KL divergence of the distributions normalised over the
labels.

usage (the pyslim venv has llama_cpp, cffi and numpy; `make build/python/.stamp
PYTHON=/work/venvs/pyslim/bin/python` builds the binding for it):
  nice /work/venvs/pyslim/bin/python tools/structured/label_scores.py [--n 200]
      [--limit L] [--shard i/n] [--configs fa,b16,one] [--save F] [--load F1,F2] [--probe P]
      [--skip F1,F2]   (resume: run only the texts those --save files lack)
"""
import argparse, csv, json, os, sys, time

import numpy as np

# llama-cpp-python's ggml uses OpenMP, whose threads spin at each barrier: beside other
# work on few cores a spinning thread holds the core its partner needs and every one of
# the many small decodes here costs a time slice.  PASSIVE changes how threads wait, not
# what they compute (tools/golden/llama_self_agreement.py does the same).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

ap = argparse.ArgumentParser()
ap.add_argument("--task", default=os.path.join(ROOT, "tasks/banking77.json"))
ap.add_argument("--model", default=os.path.join(ROOT, "models/gemma-3-270m-q4_k_m.gguf"))
ap.add_argument("--datasets", help="the datasets folder, if the task's does not resolve")
ap.add_argument("--n", type=int, default=200)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--configs", default="fa,b16,one", help="llama.cpp alternatives to run")
ap.add_argument("--limit", type=int, default=0, help="score only the first L texts of the sample")
ap.add_argument("--shard", default="0/1", help="i/n: texts i, i+n, ... (to split the work)")
ap.add_argument("--spread-every", type=int, default=1, help="alternatives on every k-th text")
ap.add_argument("--budget", type=float, default=1e9, help="stop starting texts after S seconds")
ap.add_argument("--probe", type=int, default=0, help="instead: teacher-forced per-token log p "
                "over the first P texts' prompt + their gold label, each configuration")
ap.add_argument("--save", help="write every score array to this .npz")
ap.add_argument("--load", help="read the arrays from a --save file instead of running")
ap.add_argument("--skip", help="--save files of an earlier, stopped run: texts they hold for both "
                "slim and llama.cpp's default are not run again (then --load them all together)")
args = ap.parse_args()

M64 = (1 << 64) - 1


def splitmix(s):
    s = (s + 0x9E3779B97F4A7C15) & M64
    z = s
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return s, z ^ (z >> 31)


def sample_idx(total, n, seed):
    """examples/cli/eval_task.c's sample_idx: a partial Fisher-Yates, sorted."""
    a = list(range(total))
    for i in range(min(n, total)):
        seed, r = splitmix(seed)
        j = i + r % (total - i)
        a[i], a[j] = a[j], a[i]
    return sorted(a[:n])


def resolve(task_dir, path, vars_):
    """${VAR} from the task, relative to its folder; from a worktree the datasets
    may sit elsewhere: then --datasets, ../shared and ../../shared of the checkout."""
    tried = []
    for ds in [vars_.get("DATASETS")] + [args.datasets, os.path.join(ROOT, "../shared/datasets"),
                                         os.path.join(ROOT, "../../shared/datasets")]:
        if not ds:
            continue
        p = path
        for k, v in dict(vars_, DATASETS=ds).items():
            p = p.replace("${%s}" % k, v)
        p = os.path.normpath(os.path.join(task_dir, p))
        if os.path.exists(p):
            return p
        tried.append(p)
    sys.exit("not found: %s" % ", ".join(tried))


def render(tpl, rec, answer):
    """eval_task.c's render for flat records: {field}, {{ }}; stop at {answer}."""
    out, i = [], 0
    while i < len(tpl):
        if tpl.startswith("{{", i) or tpl.startswith("}}", i):
            out.append(tpl[i])
            i += 2
            continue
        j = tpl.find("}", i) if tpl[i] == "{" else -1
        if j < 0:
            out.append(tpl[i])
            i += 1
            continue
        name, i = tpl[i + 1 : j], j + 1
        if name == "answer":
            if answer is None:
                return "".join(out)
            out.append(answer)
        else:
            out.append(rec.get(name, ""))
    return "".join(out)


def build_prompts():
    task = json.load(open(args.task))
    tdir, vars_ = os.path.dirname(os.path.abspath(args.task)), task.get("vars", {})
    d, fs, pr = task["data"], task["fewshot"], task["prompt"]
    labels = json.load(open(resolve(tdir, task["labels"]["path"], vars_)))
    rows = list(csv.DictReader(open(resolve(tdir, d["path"], vars_), newline="")))
    shots = list(csv.DictReader(open(resolve(tdir, fs["path"], vars_), newline="")))
    items = [rows[i] for i in sample_idx(len(rows), args.n, d.get("seed", 1))]
    shots = [shots[i] for i in sample_idx(len(shots), fs["k"], fs.get("seed", 1))]
    head = pr.get("instruction", "") + "".join(
        render(pr["template"], s, s[d["label"]]) for s in shots)
    prompts, prefixes = [], set()
    for it in items:
        p = head + render(pr["template"], it, None)
        q = p.rstrip(" ")  # trailing spaces go to the answer's first token, as eval_task.c
        prompts.append(q)
        prefixes.add(p[len(q):])
    assert len(prefixes) == 1, prefixes
    prefix = prefixes.pop()
    cands = [prefix + x + pr.get("label_suffix", "") for x in labels]
    gold = [labels.index(it[d["label"]]) for it in items]
    return labels, cands, prompts, np.array(gold)


labels, cands, prompts, gold = build_prompts()
if os.environ.get("LABEL_SCORES_SHOW"):
    print(repr(prompts[0]), cands[:3])
N, K = len(prompts), len(labels)


# ---- the scorers: each scores every label after prompt i's tokens ------------------------
def slim_scorer():
    sys.path.insert(0, os.path.join(ROOT, "bindings/python"))
    import slim
    from slim._constrain import score
    from slim._slim_cffi import ffi, lib

    m = slim.Model(args.model, n_threads=args.threads, n_ctx=1024)
    prev = []

    def run(toks):
        nonlocal prev
        keep = 0  # the shared few-shot prefix stays in the KV cache, as `slim eval` keeps it
        while keep < min(len(prev), len(toks)) and prev[keep] == toks[keep]:
            keep += 1
        keep = min(keep, len(toks) - 1)
        with m._busy() as ctx:
            if keep:
                assert lib.slim_context_truncate(ctx, keep) == 0
            else:
                lib.slim_context_reset(ctx)
            rest = ffi.new("slim_token[]", toks[keep:])
            assert lib.slim_prefill(ctx, rest, len(toks) - keep, ffi.NULL) == 0
            prev = toks
            return np.array(score(ctx, cands).logprobs)

    return m, run


def lsm(row, tok):
    r = np.asarray(row, dtype=np.float64)
    mx = r.max()
    return r[tok] - (mx + np.log(np.exp(r - mx).sum()))


def llama_scorer(n_ctx, flash_attn=False, n_batch=512, one_at_a_time=False):
    """llama.cpp through llama-cpp-python's Llama and its context: logits only
    for the rows a score needs (the prompt's last, each label token's)."""
    from llama_cpp import Llama

    llm = Llama(model_path=args.model, n_ctx=n_ctx, n_batch=n_batch, n_ubatch=n_batch,
                flash_attn=flash_attn, n_threads=args.threads, verbose=False)
    nv, ctx, batch = llm.n_vocab(), llm._ctx, llm._batch
    prev = []

    def decode(toks, n_past, logits_all):  # -> the logits rows, n_batch tokens per call
        rows = []
        for i in range(0, len(toks), n_batch):
            part = toks[i : i + n_batch]
            batch.set_batch(part, n_past + i, logits_all)
            ctx.decode(batch)
            n = len(part) if logits_all else 1
            rows.append(np.ctypeslib.as_array(ctx.get_logits(), shape=(n, nv)).copy())
        return np.concatenate(rows)

    def run(toks):
        nonlocal prev
        keep = 0
        while keep < min(len(prev), len(toks)) and prev[keep] == toks[keep]:
            keep += 1
        keep = min(keep, len(toks) - 1)
        ctx.kv_cache_seq_rm(-1, keep, -1)
        last = decode(toks[keep:], keep, False)[-1]
        prev, P, out = toks, len(toks), []
        for lt in ltoks:
            s = lsm(last, lt[0])
            if len(lt) > 1:
                ctx.kv_cache_seq_rm(-1, P, -1)
                if one_at_a_time:
                    rows = [decode([t], P + j, True)[0] for j, t in enumerate(lt[:-1])]
                else:
                    rows = decode(lt[:-1], P, True)
                for j in range(1, len(lt)):
                    s += lsm(rows[j - 1], lt[j])
            out.append(s)
        ctx.kv_cache_seq_rm(-1, P, -1)
        return np.array(out)

    return llm, run


CONFIGS = {
    "default": ("llama.cpp default (fa off, n_batch 512, label tokens together)", {}),
    "fa": ("llama.cpp, flash attention on", dict(flash_attn=True)),
    "b16": ("llama.cpp, n_batch 16 (n_ubatch 16)", dict(n_batch=16)),
    "one": ("llama.cpp, label tokens one at a time", dict(one_at_a_time=True)),
}



def probe():
    """Every position of prompt + gold candidate, teacher-forced: the log p of the
    token that follows, by slim (one prefill) and by each llama.cpp configuration
    (one eval, or token by token for "one").  Cheap where the full run is not."""
    sys.path.insert(0, os.path.join(ROOT, "bindings/python"))
    import slim
    from slim._slim_cffi import ffi, lib
    from llama_cpp import Llama

    m = slim.Model(args.model, n_threads=args.threads, n_ctx=1024)
    seqs = [m.tokenize(prompts[i], add_special=True) + m.tokenize(cands[gold[i]], add_special=False)
            for i in range(args.probe)]
    out = {}

    def gather(rows, seq):
        return [lsm(rows[j], seq[j + 1]) for j in range(len(seq) - 1)]

    t0 = time.time()
    out["slim"] = []
    for seq in seqs:
        buf = np.zeros((len(seq), m.n_vocab), np.float32)
        with m._busy() as ctx:
            lib.slim_context_reset(ctx)
            assert lib.slim_prefill(ctx, ffi.new("slim_token[]", seq), len(seq),
                                    ffi.from_buffer("float[]", buf)) == 0
        out["slim"] += gather(buf, seq)
    print("probe slim %.0f s" % (time.time() - t0), flush=True)
    for c in ["default"] + [c for c in args.configs.split(",") if c]:
        kw = dict(CONFIGS[c][1])
        one = kw.pop("one_at_a_time", False)
        nb = kw.pop("n_batch", 512)
        t0 = time.time()
        llm = Llama(model_path=args.model, n_ctx=max(map(len, seqs)) + 8, n_batch=nb, n_ubatch=nb,
                    n_threads=args.threads, logits_all=True, verbose=False, **kw)
        out[c] = []
        for seq in seqs:
            llm.reset()
            for j in range(len(seq)) if one else [None]:
                llm.eval(seq[j:j + 1] if one else seq)
            out[c] += gather(np.array(llm.scores[: len(seq)]), seq)
        del llm
        print("probe %s %.0f s" % (c, time.time() - t0), flush=True)
    ref = np.array(out["default"])
    print("teacher-forced per-token log p over %d texts' prompt + gold label (%d positions), "
          "vs llama.cpp default:" % (args.probe, len(ref)))
    print("| | max abs(d log p) | p99 | median |")
    print("|---|---:|---:|---:|")
    for c in out:
        if c != "default":
            d = np.abs(np.array(out[c]) - ref)
            print("| %s | %.4f | %.4f | %.5f |" % (
                "slim" if c == "slim" else CONFIGS[c][0], d.max(), np.percentile(d, 99),
                np.median(d)))
    sys.exit(0)


if args.probe:
    probe()
if args.load:
    res, idx = {}, {}
    for f in args.load.split(","):
        z = np.load(f)
        for k in z.files:
            if k.startswith("idx_"):
                idx.setdefault(k[4:], []).append(z[k])
            elif k != "tok_mismatch":
                res.setdefault(k, []).append(z[k])
        tok_mismatch = int(z["tok_mismatch"])
    res = {k: np.concatenate(v) for k, v in res.items()}
    idx = {k: np.concatenate(v) for k, v in idx.items()}
else:
    keep_alive, run = [], {}
    m, run["slim"] = slim_scorer()
    ptoks = [m.tokenize(p, add_special=True) for p in prompts]
    ltoks = [m.tokenize(c, add_special=False) for c in cands]
    from llama_cpp import Llama

    vocab = Llama(model_path=args.model, vocab_only=True, verbose=False)
    tok_mismatch = sum(vocab.tokenize(p.encode(), add_bos=True, special=False) != t
                       for p, t in zip(prompts, ptoks))
    tok_mismatch += sum(vocab.tokenize(c.encode(), add_bos=False, special=False) != t
                        for c, t in zip(cands, ltoks))
    del vocab
    n_ctx = max(len(p) for p in ptoks) + max(len(t) for t in ltoks) + 8
    for c in ["default"] + [c for c in args.configs.split(",") if c]:
        llm, run[c] = llama_scorer(n_ctx, **CONFIGS[c][1])
        keep_alive.append(llm)
    shard, n_shards = map(int, args.shard.split("/"))
    mine = list(range(shard, min(N, args.limit or N), n_shards))
    if args.skip:
        done = None
        for f in args.skip.split(","):
            z = np.load(f)
            both = set(z["idx_slim"].tolist()) & set(z["idx_default"].tolist())
            done = both if done is None else done | both
        mine = [i for i in mine if i not in done]
    res = {k: [] for k in run}
    idx = {k: [] for k in run}
    t_end = time.time() + args.budget
    for j, i in enumerate(mine):
        if time.time() > t_end:
            break
        for k in run:  # the alternatives on every --spread-every'th text only
            if k in ("slim", "default") or j % args.spread_every == 0:
                t0 = time.time()
                res[k].append(run[k](ptoks[i]))
                idx[k].append(i)
                print("text %d %s %.0f s" % (i, k, time.time() - t0), flush=True)
                if args.save:  # after every configuration: a stopped run keeps what it did
                    np.savez(args.save, tok_mismatch=tok_mismatch,
                             **{k: np.array(v).reshape(-1, K) for k, v in res.items()},
                             **{"idx_" + k: np.array(v, dtype=int) for k, v in idx.items()})
    res = {k: np.array(v).reshape(-1, K) for k, v in res.items()}
    idx = {k: np.array(v, dtype=int) for k, v in idx.items()}


# ---- report ---------------------------------------------------------------------------------
def norm(x):
    return x - np.logaddexp.reduce(x, axis=1, keepdims=True)


def kl(p_log, q_log):  # KL(p || q) per row, natural log
    return (np.exp(p_log) * (p_log - q_log)).sum(1)


def row(name, k):
    # the texts both have, paired by index
    both = np.intersect1d(idx[k], idx["default"])
    a = res[k][[list(idx[k]).index(i) for i in both]]
    r = res["default"][[list(idx["default"]).index(i) for i in both]]
    n = len(both)
    if n == 0:
        print("| %s | 0 | (not run) | | | | | |" % name)
        return both
    d = np.abs(a - r).ravel()
    kd = kl(norm(r), norm(a))
    agree = (a.argmax(1) == r.argmax(1)).sum()
    print("| %s | %d | %.4f | %.4f | %.5f | %.2e | %.2e | %d/%d (%.1f%%) |" % (
        name, n, d.max(), np.percentile(d, 99), np.median(d), kd.mean(), kd.max(), agree, n,
        100.0 * agree / n))
    return both


print("model %s, %d of the %d-text seeded banking77 sample x %d labels, task %s" % (
    os.path.basename(args.model), len(idx["default"]), N, K, os.path.relpath(args.task, ROOT)))
print("token ids llama.cpp's tokenizer spells differently from slim's: %d of %d strings"
      % (tok_mismatch, N + K))
print("| vs llama.cpp default (fa off, n_batch 512, label tokens together) | texts | max abs(d log p) "
      "| p99 | median | KL mean | KL max | same argmax |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
row("slim (slim_score)", "slim")
for c in [c for c in CONFIGS if c in res and c != "default" and len(res[c])]:
    both = row(CONFIGS[c][0], c)
    if len(both) < len(idx["default"]):
        sub = {"slim": res["slim"], "default": res["default"]}
        keep_idx = dict(idx)
        idx["slim"] = np.array([i for i in idx["slim"] if i in both])
        res["slim"] = sub["slim"][[list(keep_idx["slim"]).index(i) for i in idx["slim"]]]
        row("slim, on those %d texts" % len(both), "slim")
        idx["slim"], res["slim"] = keep_idx["slim"], sub["slim"]
g = gold[idx["default"]]
print("accuracy against the gold intent: slim %.1f%%, llama.cpp %.1f%%" % (
    100 * (res["slim"][[list(idx["slim"]).index(i) for i in idx["default"]]].argmax(1) == g).mean(),
    100 * (res["default"].argmax(1) == g).mean()))
