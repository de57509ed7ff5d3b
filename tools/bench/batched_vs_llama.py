#!/usr/bin/env python3
"""slim's batched engine vs llama.cpp's llama-batched-bench, alternating rounds.

For each file and round: `slim bench --parallel` (N concurrent streams of -p
prompt tokens generating -n each; aggregate generation tokens/s while all N
decode) and llama-batched-bench (-npp P -ntg N -npl ...; S_TG: tokens/s of
its generation phase, all sequences decoding), the order alternating by round.
Prints per N the medians over rounds, the spread (min-max), slim / llama.cpp
and slim's N / its own N=1.

usage: python3 tools/bench/batched_vs_llama.py --llama-bin DIR [-r 3] [-t 2]
           [--streams 1,2,4,8,16,32] [-p 64] [-n 32] FILE...
DIR holds llama-batched-bench, built with native flags from the llama.cpp
vendored in llama-cpp-python 0.3.36's sdist (outside this repo).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def run_slim(cli, f, t, streams, p, n):
    out = subprocess.run([cli, "bench", "--parallel", "-m", f, "-t", str(t), "-p", str(p), "-n", str(n),
                          "--streams", ",".join(map(str, streams)), "--prefix", "0"],
                         capture_output=True, text=True, check=True).stdout
    rates = {}
    for line in out.splitlines():  # | N | PP | TG | gen t/s (all N decoding) | ...
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].isdigit():
            rates[int(cells[0])] = float(cells[3])
    if set(rates) != set(streams):
        sys.exit("could not read slim bench --parallel's table:\n" + out)
    return rates


def run_llama(bin_dir, f, t, streams, p, n):
    ctx = max(streams) * (p + n) + 64
    out = subprocess.run([os.path.join(bin_dir, "llama-batched-bench"), "-m", f, "-c", str(ctx),
                          "-b", "2048", "-ub", "512", "-npp", str(p), "-ntg", str(n),
                          "-npl", ",".join(map(str, streams)), "-t", str(t), "-tb", str(t),
                          "--output-format", "jsonl"],
                         capture_output=True, text=True, check=True).stdout
    rates = {}
    for line in out.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            rates[int(r["pl"])] = float(r["speed_tg"])
    if set(rates) != set(streams):
        sys.exit("could not read llama-batched-bench's jsonl:\n" + out)
    return rates


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--llama-bin", required=True)
    ap.add_argument("--cli", default="build/slim")
    ap.add_argument("-r", "--rounds", type=int, default=3)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--streams", default="1,2,4,8,16,32")
    ap.add_argument("-p", type=int, default=64)
    ap.add_argument("-n", type=int, default=32)
    a = ap.parse_args()
    streams = [int(x) for x in a.streams.split(",")]
    for f in a.files:
        slim_r = {s: [] for s in streams}
        llama_r = {s: [] for s in streams}
        for k in range(a.rounds):
            order = ["slim", "llama"] if k % 2 == 0 else ["llama", "slim"]
            for who in order:
                if who == "slim":
                    for s, v in run_slim(a.cli, f, a.threads, streams, a.p, a.n).items():
                        slim_r[s].append(v)
                else:
                    for s, v in run_llama(a.llama_bin, f, a.threads, streams, a.p, a.n).items():
                        llama_r[s].append(v)
            print(f"# {os.path.basename(f)} round {k + 1}/{a.rounds} done", file=sys.stderr, flush=True)
        print(f"\n{os.path.basename(f)}, {a.threads} threads, -p {a.p} -n {a.n}, medians of {a.rounds} alternating rounds\n")
        print("| N | slim t/s (min-max) | llama.cpp S_TG t/s (min-max) | slim / llama.cpp | slim x its N=1 |")
        print("|---|---|---|---|---|")
        base = statistics.median(slim_r[streams[0]])
        for s in streams:
            ms, ml = statistics.median(slim_r[s]), statistics.median(llama_r[s])
            print(f"| {s} | {ms:.2f} ({min(slim_r[s]):.2f}-{max(slim_r[s]):.2f}) | {ml:.2f} "
                  f"({min(llama_r[s]):.2f}-{max(llama_r[s]):.2f}) | {ms / ml:.2f} | {ms / base:.2f} |")


if __name__ == "__main__":
    main()
