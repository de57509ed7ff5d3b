#!/usr/bin/env python3
"""slim vs llama.cpp on the same GGUF file, same threads, in one run.

For each thread count, alternates R rounds of `slim bench` (one repetition per
round) and llama.cpp driven through llama-cpp-python (its own build of
llama.cpp, compiled from source by pip with native CPU flags), measuring:
  pp: one prefill of P tokens into an empty context, tokens/s
  tg: G single-token decodes into an empty context, tokens/s
Prints medians and slim/llama.cpp ratios as a Markdown table.

usage: python3 tools/bench/compare.py [-m MODEL] [-t 1,2] [-r 5] [-p 512] [-n 128]
needs: make (build/slim), pip install llama-cpp-python
"""
import argparse
import re
import statistics
import subprocess
import time

from llama_cpp import Llama, __version__ as llama_cpp_version


def slim_round(cli, model, threads, p, n):
    out = subprocess.run([cli, "bench", "-m", model, "-p", str(p), "-n", str(n), "-t", str(threads),
                          "-r", "1"], check=True, capture_output=True, text=True).stdout
    pp = float(re.search(rf"\| pp{p} \| ([0-9.]+)", out).group(1))
    tg = float(re.search(rf"\| tg{n} \| ([0-9.]+)", out).group(1))
    return pp, tg


def llama_round(llm, p, n):
    toks = [1000 + (i * 7919) % 20000 for i in range(p)]
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(toks)
    pp = p / (time.perf_counter() - t0)
    llm.reset()
    t0 = time.perf_counter()
    for i in range(n):
        llm.eval([1000 + i])
    tg = n / (time.perf_counter() - t0)
    return pp, tg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", default="models/gemma-3-270m-q4_k_m.gguf")
    ap.add_argument("-t", default="1,2")
    ap.add_argument("-r", type=int, default=5)
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("--cli", default="build/slim")
    a = ap.parse_args()
    rows = []
    for threads in [int(t) for t in a.t.split(",")]:
        llm = Llama(model_path=a.m, n_ctx=max(a.p, a.n) + 16, n_batch=a.p, n_ubatch=a.p,
                    n_threads=threads, n_threads_batch=threads, verbose=False)
        llama_round(llm, 16, 4)  # warm-up: page in the weights
        s_pp, s_tg, l_pp, l_tg = [], [], [], []
        for _ in range(a.r):
            pp, tg = slim_round(a.cli, a.m, threads, a.p, a.n)
            s_pp.append(pp), s_tg.append(tg)
            pp, tg = llama_round(llm, a.p, a.n)
            l_pp.append(pp), l_tg.append(tg)
        del llm
        for test, s, l in ((f"pp{a.p}", s_pp, l_pp), (f"tg{a.n}", s_tg, l_tg)):
            sm, lm = statistics.median(s), statistics.median(l)
            rows.append((threads, test, sm, lm, sm / lm))
    print(f"model: {a.m}; llama-cpp-python {llama_cpp_version}; medians of {a.r} alternating rounds\n")
    print("| threads | test | slim t/s | llama.cpp t/s | slim / llama.cpp |")
    print("|---|---|---|---|---|")
    for threads, test, sm, lm, ratio in rows:
        print(f"| {threads} | {test} | {sm:.2f} | {lm:.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
