#!/usr/bin/env python3
"""llama.cpp's grammar engine on MaskBench's schemas, beside build/maskbench.

llama-cpp-python's json_schema_to_gbnf converts each schema and llama.cpp's
grammar sampler (llama_sampler_init_grammar) runs it over the model's
vocabulary.  llama.cpp takes tens of milliseconds per mask, so this runs on a
fixed, seeded sample of the schemas that have tests: --per-split N of each
split (random.Random(--seed)).  Per sampled schema:

  compile   json_schema_to_gbnf + llama_sampler_init_grammar (thread CPU
            time); a converter exception or a grammar llama.cpp cannot parse
            is a compile error.
  mask      llama_sampler_apply of the grammar sampler over a full-vocabulary
            candidate array (what llama.cpp does per sampled token), timed in
            thread CPU time, for the first --tokens tokens of each valid test
            instance, while the schema's --budget seconds of timed masks last.
  verdict   every test instance (valid and invalid) walked token by token to
            the end, each token checked by llama_sampler_apply over that one
            candidate (the same rejection code, without the cost of the other
            262k), then EOS; counted as MaskBench counts (passing, compile
            error, validation error, invalidation error, timeout 10 s).

Each split runs in a child process under a watchdog (a llama.cpp call cannot
be interrupted): a schema silent for --hang seconds counts as a timeout and the
child restarts after it.  With --maskbench BIN the sample is also run through
slim's runner on the same vocabulary (all tokens, MaskBench's method).

usage: /work/venvs/pyslim/bin/python tools/maskbench/llama_grammar.py \\
         models/gemma-3-270m-q4_k_m.gguf /tmp/mb.jsonl [--per-split 8] [--seed 0] \\
         [--tokens 16] [--budget 2] [--maskbench build/maskbench]
"""
import argparse
import json
import os
import random
import select
import subprocess
import sys
import tempfile
import time


def child(args):
    import ctypes
    import numpy as np
    import llama_cpp
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    @llama_cpp.llama_log_callback
    def quiet(level, text, user_data):  # llama.cpp's grammar errors go to its log
        pass

    llama_cpp.llama_log_set(quiet, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()
    mp = llama_cpp.llama_model_default_params()
    mp.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(args.model.encode(), mp)
    vocab = llama_cpp.llama_model_get_vocab(model)
    V = llama_cpp.llama_vocab_n_tokens(vocab)
    eos = llama_cpp.llama_vocab_eos(vocab)
    full = (llama_cpp.llama_token_data * V)()
    arr = llama_cpp.llama_token_data_array(data=full, size=V, selected=-1, sorted=False)
    view = np.frombuffer(full, dtype=np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")]))
    ids = np.arange(V, dtype=np.int32)
    one = (llama_cpp.llama_token_data * 1)()
    arr1 = llama_cpp.llama_token_data_array(data=one, size=1, selected=-1, sorted=False)

    def tokenize(text):
        b = text.encode()
        buf = (llama_cpp.llama_token * (len(b) + 8))()
        n = llama_cpp.llama_tokenize(vocab, b, len(b), buf, len(buf), False, False)
        return list(buf[:n])

    def allowed(smpl, tok):
        one[0].id, one[0].logit, one[0].p = tok, 0.0, 0.0
        arr1.size, arr1.selected, arr1.sorted = 1, -1, False
        llama_cpp.llama_sampler_apply(smpl, ctypes.byref(arr1))
        return one[0].logit != float("-inf")

    for line in sys.stdin:
        d = json.loads(line)
        res = {"split": d["split"], "id": d["id"], "masks": []}
        t0 = time.thread_time()
        smpl = None
        try:
            gbnf = json_schema_to_gbnf(d["schema"])
            smpl = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode(), b"root")
        except Exception as e:  # noqa: BLE001 - counted as a compile error
            res["why"] = type(e).__name__ + ": " + str(e)[:120]
        res["compile_s"] = time.thread_time() - t0
        if not smpl:
            res["verdict"] = "compile"
            res.setdefault("why", "llama_sampler_init_grammar failed (grammar did not parse)")
            print(json.dumps(res), flush=True)
            continue
        wall0, spent, verr, ierr, timeout = time.monotonic(), 0.0, False, False, False
        for t in d["tests"]:
            s = llama_cpp.llama_sampler_clone(smpl)
            ok = True
            for k, tok in enumerate(tokenize(t["text"])):
                if t["valid"] and k < args.tokens and spent < args.budget:
                    view["id"] = ids  # fresh logits (apply sets rejected ones to -inf)
                    view["logit"] = 0.0
                    arr.size, arr.selected, arr.sorted = V, -1, False
                    m0 = time.thread_time()
                    llama_cpp.llama_sampler_apply(s, ctypes.byref(arr))
                    dt = time.thread_time() - m0
                    res["masks"].append(dt)
                    spent += dt
                    ok = bool(view["logit"][tok] != float("-inf"))
                else:
                    ok = allowed(s, tok)
                if not ok:
                    break
                llama_cpp.llama_sampler_accept(s, tok)
                if time.monotonic() - wall0 > 10.0:
                    timeout = True
                    break
            if ok and not timeout:
                ok = allowed(s, eos)
            llama_cpp.llama_sampler_free(s)
            if timeout:
                break
            verr |= t["valid"] and not ok
            ierr |= (not t["valid"]) and ok
        llama_cpp.llama_sampler_free(smpl)
        res["verdict"] = ("timeout" if timeout else "validation" if verr else
                          "invalidation" if ierr else "pass")
        print(json.dumps(res), flush=True)


def run_split(args, recs):
    """Runs recs through children; returns one result per record."""
    out, i = [], 0
    while i < len(recs):
        p = subprocess.Popen([sys.executable, __file__, "--child", args.model, "-",
                              "--tokens", str(args.tokens), "--budget", str(args.budget)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        p.stdin.write("".join(json.dumps(r) + "\n" for r in recs[i:]))
        p.stdin.close()
        while i < len(recs):
            ready, _, _ = select.select([p.stdout], [], [], args.hang)
            line = p.stdout.readline() if ready else ""
            if not line:  # hung or died: this schema is a timeout, go on after it
                p.kill()
                p.wait()
                out.append({"split": recs[i]["split"], "id": recs[i]["id"], "verdict": "timeout",
                            "masks": [], "why": "no answer in %d s" % args.hang})
                i += 1
                break
            out.append(json.loads(line))
            i += 1
        else:
            p.wait()
    return out


def pct(xs, q):
    xs = sorted(xs)
    return xs[int(q * (len(xs) - 1) + 0.5)] if xs else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("--per-split", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokens", type=int, default=16, help="timed masks per valid instance")
    ap.add_argument("--budget", type=float, default=2.0, help="seconds of timed masks per schema")
    ap.add_argument("--hang", type=int, default=120)
    ap.add_argument("--maskbench", help="slim's runner, run on the same sample")
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args()
    if args.child:
        return child(args)
    by_split = {}
    for line in open(args.data, encoding="utf-8"):
        d = json.loads(line)
        if d["tests"]:
            by_split.setdefault(d["split"], []).append(d)
    rng = random.Random(args.seed)
    sample = []
    for split in sorted(by_split):
        recs = by_split[split]
        sample += rng.sample(recs, min(args.per_split, len(recs)))
    results = []
    for split in sorted(by_split):
        results += run_split(args, [r for r in sample if r["split"] == split])
    print("llama.cpp grammar (llama-cpp-python %s), %s: %d schemas with tests, %d per split "
          "(seed %d); mask timed over the first %d tokens of each valid instance, at most "
          "%.1f s per schema" % (__import__("llama_cpp").__version__, args.model, len(sample),
                                 args.per_split, args.seed, args.tokens, args.budget))
    print("\n| split | sampled | passing | compile error | validation error | invalidation error "
          "| timeout |\n|---|---:|---:|---:|---:|---:|---:|")
    splits = sorted(by_split) + ["TOTAL"]
    for split in splits:
        rs = [r for r in results if split == "TOTAL" or r["split"] == split]
        c = {v: sum(r["verdict"] == v for r in rs)
             for v in ("pass", "compile", "validation", "invalidation", "timeout")}
        print("| %s | %d | %d (%.1f%%) | %d | %d | %d | %d |" % (
            split, len(rs), c["pass"], 100.0 * c["pass"] / max(1, len(rs)), c["compile"],
            c["validation"], c["invalidation"], c["timeout"]))
    us = [1e6 * t for r in results for t in r["masks"]]
    comp = [1e3 * r["compile_s"] for r in results if "compile_s" in r]
    if us:
        print("\nllama.cpp mask: %d masks, mean %.1f us, p50 %.1f, p99 %.1f, p99.9 %.1f, max %.0f us"
              % (len(us), sum(us) / len(us), pct(us, 0.5), pct(us, 0.99), pct(us, 0.999),
                 max(us)))
    if comp:
        print("llama.cpp compile: %d schemas, p50 %.2f ms, p99 %.2f ms, max %.2f ms" % (
            len(comp), pct(comp, 0.5), pct(comp, 0.99), max(comp)))
    for r in results:
        if r["verdict"] in ("compile", "timeout") and r.get("why"):
            print("  %s %s: %s" % (r["verdict"], r["id"], r["why"]), file=sys.stderr)
    if args.maskbench:
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False,
                                         encoding="utf-8") as f:
            for r in sample:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print("\nslim on the same sample (%s, every token):" % args.maskbench, flush=True)
        subprocess.run([args.maskbench, "-v", args.model, f.name], check=False)
        os.unlink(f.name)


if __name__ == "__main__":
    main()
