#!/usr/bin/env python3
"""Label scoring against llama.cpp on banking77 (issue 15).

For N banking77 test texts (every k-th row, so every intent appears), scores
the 77 intents as continuations of the same prompt with `slim classify
--logprobs` and with llama.cpp (llama-cpp-python: the prompt, then each label's
tokens, summing log-softmax), and prints:
  - per-label log-probability differences slim vs llama.cpp (mean, p99, max),
  - the same between two llama.cpp configurations (flash attention off/on) on
    the first SPREAD texts: llama.cpp's own configuration spread,
  - argmax agreement slim vs llama.cpp (and llama.cpp vs itself).

usage: /work/venvs/pyslim/bin/python tools/score/banking77_vs_llamacpp.py \
         [--model M] [--n 200] [--spread 20] [--slim build/slim] [--data DIR]
"""
import argparse, csv, json, os, subprocess, sys, tempfile
import numpy as np
from llama_cpp import Llama

TEMPLATE = "Categories: {labels}\nText: {text}\nCategory:"

ap = argparse.ArgumentParser()
ap.add_argument("--model", default="models/gemma-3-270m-q4_k_m.gguf")
ap.add_argument("--n", type=int, default=200)
ap.add_argument("--spread", type=int, default=20)
ap.add_argument("--slim", default="build/slim")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--data", default=next((d for d in ("../shared/datasets/banking77", "/work/shared/datasets/banking77") if os.path.isdir(d)), "../shared/datasets/banking77"))
args = ap.parse_args()

labels = json.load(open(os.path.join(args.data, "categories.json")))
rows = list(csv.DictReader(open(os.path.join(args.data, "test.csv"))))
step = max(1, len(rows) // args.n)
texts = [r["text"] for r in rows[::step][: args.n]]
prompts = [TEMPLATE.replace("{labels}", ", ".join(labels)).replace("{text}", t) for t in texts]

# ---- slim -------------------------------------------------------------------------------
with tempfile.TemporaryDirectory() as d:
    lp = os.path.join(d, "labels.txt")
    open(lp, "w").write("\n".join(labels) + "\n")
    inp = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    out = subprocess.run([args.slim, "classify", "-m", args.model, "--labels", lp, "--template",
                          TEMPLATE, "--logprobs", "-t", str(args.threads)], input=inp.encode(),
                         capture_output=True, check=True).stdout.decode()
slim = np.array([[json.loads(l)["logprobs"][x] for x in labels] for l in out.splitlines()])
assert slim.shape == (len(texts), len(labels)), slim.shape

# ---- llama.cpp --------------------------------------------------------------------------
def llama_scores(llm, prompts):
    res, prev = [], []
    lab_toks = [llm.tokenize((" " + x).encode(), add_bos=False, special=False) for x in labels]
    for p in prompts:
        toks = llm.tokenize(p.encode(), add_bos=True, special=False)
        keep = 0
        while keep < min(len(prev), len(toks)) and prev[keep] == toks[keep]:
            keep += 1
        keep = min(keep, len(toks) - 1)
        llm.n_tokens = keep
        llm.eval(toks[keep:])
        prev = toks
        P = len(toks)
        l0 = np.array(llm.scores[P - 1], dtype=np.float64)
        lse0 = np.logaddexp.reduce(l0)
        row = []
        for lt in lab_toks:
            s = l0[lt[0]] - lse0
            if len(lt) > 1:
                llm.n_tokens = P
                llm.eval(lt[:-1])
                for j in range(1, len(lt)):
                    l = np.array(llm.scores[P + j - 1], dtype=np.float64)
                    s += l[lt[j]] - np.logaddexp.reduce(l)
            row.append(s)
        llm.n_tokens = P
        res.append(row)
    return np.array(res)

kw = dict(n_ctx=2048, n_threads=args.threads, logits_all=True, verbose=False)
ref = llama_scores(Llama(model_path=args.model, flash_attn=False, **kw), prompts)
S = min(args.spread, len(prompts))
alt = llama_scores(Llama(model_path=args.model, flash_attn=True, n_batch=16, n_ubatch=16, **kw),
                   prompts[:S])

def stats(d):
    d = np.abs(d).ravel()
    return "mean %.4f  p99 %.4f  max %.4f" % (d.mean(), np.percentile(d, 99), d.max())

print("model %s, %d texts x %d labels, template %r" % (args.model, len(texts), len(labels), TEMPLATE))
print("per-label log-prob |slim - llama.cpp|            (all %3d texts): %s" % (len(texts), stats(slim - ref)))
print("per-label log-prob |slim - llama.cpp|            (first %2d)    : %s" % (S, stats(slim[:S] - ref[:S])))
print("per-label log-prob |llama.cpp fa+b16 - default|  (first %2d)    : %s" % (S, stats(alt - ref[:S])))
agree = (slim.argmax(1) == ref.argmax(1)).mean()
self_agree = (alt.argmax(1) == ref[:S].argmax(1)).mean()
print("argmax agreement slim vs llama.cpp: %.1f%% (%d/%d); llama.cpp fa+b16 vs default: %.1f%% (first %d)"
      % (100 * agree, (slim.argmax(1) == ref.argmax(1)).sum(), len(texts), 100 * self_agree, S))
print("accuracy vs the gold intent: slim %.1f%%, llama.cpp %.1f%%" % (
    100 * np.mean([labels[i] == r["category"] for i, r in zip(slim.argmax(1), rows[::step][: args.n])]),
    100 * np.mean([labels[i] == r["category"] for i, r in zip(ref.argmax(1), rows[::step][: args.n])])))
