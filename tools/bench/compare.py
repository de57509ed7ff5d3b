#!/usr/bin/env python3
"""slim vs llama.cpp on the same GGUF files, same threads, in one run.

For each model and thread count, alternates R rounds of `slim bench -o json`
(one repetition per round) and llama.cpp driven through llama-cpp-python (its
own build of llama.cpp, compiled from source by pip with native CPU flags),
measuring:
  pp: one prefill of P tokens into an empty context, tokens/s
  tg: G single-token decodes into an empty context, tokens/s
Each round also runs build/stream (tools/bench/stream.c, `make stream`) at the
same thread count just before slim, because this machine's bandwidth drifts by
tens of percent within minutes: a figure taken once at the start would compare
generation with a different machine. tg rows get the weight bytes read per
second (`weights_per_token` from slim bench: every tensor, the token embedding
only when it is also the output matrix, times tokens/s) and, per round, that
as a percentage of the STREAM read-only bandwidth of the same round; the table
shows the medians of those percentages.

Prints medians and slim/llama.cpp ratios as a Markdown table for
docs/PERFORMANCE.md; --json FILE also writes every sample.

usage: .venv/bin/python tools/bench/compare.py [-m MODEL ...] [-t 1,2] [-r 5] [-p 512] [-n 128]
           [--cli build/slim] [--stream build/stream | --no-stream] [--json FILE]
needs: make (build/slim), make stream (build/stream), pip install llama-cpp-python
"""
import argparse
import json
import os
import statistics
import sys
import time

from llama_cpp import Llama, __version__ as llama_cpp_version

from benchlib import cpu_name, run_stream, slim_records


def bench_tokens(p, n_vocab):
    """The prompt slim bench uses (examples/cli/bench.c)."""
    return [(1000 + (i * 7919) % 20000) % n_vocab for i in range(p)]


def slim_round(cli, model, threads, p, n):
    """One repetition of slim bench: ({test: t/s}, the first record)."""
    recs = slim_records(cli, model, threads, p, n)
    return {r["test"]: r["median_ts"] for r in recs}, recs[0]


def llama_round(llm, p, n):
    toks = bench_tokens(p, llm.n_vocab())
    res = {}
    if p > 0:
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(toks)
        res[f"pp{p}"] = p / (time.perf_counter() - t0)
    if n > 0:
        one = 1000 % llm.n_vocab()
        llm.reset()
        t0 = time.perf_counter()
        for i in range(n):
            llm.eval([(one + i) % llm.n_vocab()])
        res[f"tg{n}"] = n / (time.perf_counter() - t0)
    return res


def main():
    ap = argparse.ArgumentParser(description="slim vs llama.cpp, Markdown table")
    ap.add_argument("-m", nargs="+", action="extend", default=None,
                    help="GGUF files (several: -m A B or -m A -m B); default Gemma 3 270M Q4_K_M")
    ap.add_argument("-t", default="1,2", help="thread counts, comma-separated")
    ap.add_argument("-r", type=int, default=5, help="alternating rounds (medians of these)")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("--cli", default="build/slim")
    ap.add_argument("--stream", default="build/stream", help="tools/bench/stream.c binary")
    ap.add_argument("--no-stream", action="store_true", help="no bandwidth columns")
    ap.add_argument("--stream-mib", type=int, default=512, help="MiB per STREAM array")
    ap.add_argument("--stream-reps", type=int, default=3, help="STREAM repetitions per round (best)")
    ap.add_argument("--json", default=None, help="write every sample to this file")
    a = ap.parse_args()
    models = a.m or ["models/gemma-3-270m-q4_k_m.gguf"]
    threads_list = [int(t) for t in a.t.split(",")]
    for m in models:
        if not os.path.exists(m):
            sys.exit(f"compare.py: no such model {m}")
    if not os.path.exists(a.cli):
        sys.exit(f"compare.py: no {a.cli} (make)")

    use_stream = not a.no_stream
    if use_stream and not os.path.exists(a.stream):
        sys.exit(f"compare.py: no {a.stream} (make stream, or --no-stream)")
    stream_seen = {t: [] for t in threads_list}  # every round's read GB/s

    rows, records = [], []
    for model in models:
        for threads in threads_list:
            llm = Llama(model_path=model, n_ctx=max(a.p, a.n) + 16, n_batch=max(a.p, 1),
                        n_ubatch=max(a.p, 1), n_threads=threads, n_threads_batch=threads,
                        verbose=False)
            llama_round(llm, 16, 4)  # warm-up: page in the weights
            s_samples, l_samples, info, bw_round = {}, {}, None, []
            for _ in range(a.r):
                if use_stream:
                    st = run_stream(a.stream, [threads], a.stream_mib, a.stream_reps)
                    bw_round.append(st["results"][0]["read_gbs"])
                    stream_seen[threads].append(bw_round[-1])
                res, info = slim_round(a.cli, model, threads, a.p, a.n)
                for k, v in res.items():
                    s_samples.setdefault(k, []).append(v)
                for k, v in llama_round(llm, a.p, a.n).items():
                    l_samples.setdefault(k, []).append(v)
            del llm
            for test in s_samples:
                s, l = s_samples[test], l_samples[test]
                sm, lm = statistics.median(s), statistics.median(l)
                bw = None
                if test.startswith("tg") and bw_round:
                    wpt = info["weights_per_token"]
                    bw = (wpt * sm / 1e9, wpt * lm / 1e9,
                          statistics.median(wpt * x / 1e9 / g for x, g in zip(s, bw_round)),
                          statistics.median(wpt * x / 1e9 / g for x, g in zip(l, bw_round)))
                rows.append((os.path.basename(model), info["type"], threads, test, sm, lm,
                             sm / lm, bw))
                records.append({"model": model, "type": info["type"], "size": info["size"],
                                "params": info["params"],
                                "weights_per_token": info["weights_per_token"],
                                "threads": threads, "test": test,
                                "slim_median_ts": sm, "llama_median_ts": lm,
                                "slim_samples_ts": s, "llama_samples_ts": l,
                                "stream_read_gbs_rounds": bw_round})

    print(f"{cpu_name()}, {os.cpu_count()} CPUs; llama-cpp-python {llama_cpp_version}; "
          f"medians of {a.r} alternating rounds")
    if use_stream:
        print("STREAM (%s, %d MiB arrays, best of %d, once per round) read GB/s, "
              "median [min-max]: %s" % (a.stream, a.stream_mib, a.stream_reps, ", ".join(
                  f"{t} thread{'s' if t > 1 else ''} {statistics.median(g):.2f} "
                  f"[{min(g):.2f}-{max(g):.2f}]" for t, g in stream_seen.items() if g)))
    print()
    bw_cols = use_stream
    print("| model | type | threads | test | slim t/s | llama.cpp t/s | slim / llama.cpp |" +
          (" slim GB/s (% round's read BW) | llama.cpp GB/s (% round's read BW) |"
           if bw_cols else ""))
    print("|---|---|---|---|---|---|---|" + ("---|---|" if bw_cols else ""))
    for name, typ, threads, test, sm, lm, ratio, bw in rows:
        line = f"| {name} | {typ} | {threads} | {test} | {sm:.2f} | {lm:.2f} | {ratio:.2f} |"
        if bw_cols:
            if bw:
                line += f" {bw[0]:.2f} ({100 * bw[2]:.0f}%) |" \
                        f" {bw[1]:.2f} ({100 * bw[3]:.0f}%) |"
            else:
                line += " | |"
        print(line)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"cpu": cpu_name(), "llama_cpp_python": llama_cpp_version,
                       "rounds": a.r, "stream_read_gbs": stream_seen, "rows": records}, f,
                      indent=1)


if __name__ == "__main__":
    main()
