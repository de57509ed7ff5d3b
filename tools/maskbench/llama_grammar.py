#!/usr/bin/env python3
"""llama.cpp's grammar engine on MaskBench's schemas, beside build/maskbench.

For the schemas of prepare.py's output (optionally one split, the first
--limit), converts each with llama-cpp-python's json_schema_to_gbnf, builds
llama.cpp's grammar sampler over the model's vocabulary and walks every valid
test instance (tokenized by llama.cpp) through it: per token, the time of
llama_sampler_apply over the whole vocabulary (the mask), then accept.
Prints the mask time distribution (thread CPU time, single thread) and how
many schemas failed to convert or rejected a valid instance.

usage: /work/venvs/pyslim/bin/python tools/maskbench/llama_grammar.py \
         models/gemma-3-270m-q4_k_m.gguf /tmp/mb.jsonl [--only SPLIT] [--limit N]
"""
import argparse, ctypes, json, sys, time
import numpy as np
import llama_cpp
from llama_cpp.llama_grammar import json_schema_to_gbnf

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("data")
ap.add_argument("--only")
ap.add_argument("--limit", type=int, default=100)
args = ap.parse_args()

llama_cpp.llama_backend_init()
mp = llama_cpp.llama_model_default_params()
mp.vocab_only = True
model = llama_cpp.llama_model_load_from_file(args.model.encode(), mp)
vocab = llama_cpp.llama_model_get_vocab(model)
V = llama_cpp.llama_vocab_n_tokens(vocab)
data = (llama_cpp.llama_token_data * V)()
arr = llama_cpp.llama_token_data_array(data=data, size=V, selected=-1, sorted=False)
ids = np.arange(V, dtype=np.int32)
view = np.frombuffer(data, dtype=np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")]))


def tokenize(text):
    b = text.encode()
    buf = (llama_cpp.llama_token * (len(b) + 8))()
    n = llama_cpp.llama_tokenize(vocab, b, len(b), buf, len(buf), False, False)
    return list(buf[:n])


times, n_schema, conv_err, rejected, done = [], 0, 0, 0, 0
for line in open(args.data):
    d = json.loads(line)
    if args.only and d["split"] != args.only:
        continue
    if n_schema >= args.limit:
        break
    n_schema += 1
    try:
        gbnf = json_schema_to_gbnf(d["schema"])
    except Exception:  # noqa: BLE001 - counted
        conv_err += 1
        continue
    for t in d["tests"]:
        if not t["valid"]:
            continue
        smpl = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode(), b"root")
        if not smpl:
            conv_err += 1
            break
        ok = True
        for tok in tokenize(t["text"]):
            view["id"] = ids  # fresh logits each step (apply sets rejected ones to -inf)
            view["logit"] = 0.0
            arr.size, arr.selected, arr.sorted = V, -1, False
            t0 = time.thread_time()
            llama_cpp.llama_sampler_apply(smpl, ctypes.byref(arr))
            times.append(time.thread_time() - t0)
            if view["logit"][tok] == -np.inf:
                ok = False
                break
            llama_cpp.llama_sampler_accept(smpl, tok)
        rejected += not ok
        done += ok
        llama_cpp.llama_sampler_free(smpl)
us = np.array(times) * 1e6
print("llama.cpp grammar (%s, %d tokens): %d schemas%s, %d conversion errors, %d valid instances "
      "walked, %d rejected" % (args.model, V, n_schema, " of " + args.only if args.only else "",
                               conv_err, done, rejected))
if len(us):
    print("mask: %d masks, mean %.1f us, p50 %.1f, p99 %.1f, p99.9 %.1f, max %.0f us" % (
        len(us), us.mean(), np.percentile(us, 50), np.percentile(us, 99), np.percentile(us, 99.9),
        us.max()))
