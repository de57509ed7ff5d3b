#!/usr/bin/env python3
"""slim.Engine from Python vs the C engine on the same batched benchmark.

The C side is `slim bench --parallel` (examples/cli/bench_parallel.c); the
Python side (--python, run by this script in a subprocess) repeats it with
slim.Engine: the same engine parameters, the same per-stream prompt token ids
(fill_tokens), N requests submitted at once, -n tokens each without stopping
at end-of-generation, and the same figure: aggregate generation tokens/s
while all N streams decode (from the last stream's first token to the first
stream's last, over that window).  Python's token times are when the
dispatcher thread received each token, i.e. what a Python caller sees.

Each run is a fresh process under `flock /tmp/slim-bench.lock` (one timing
on the machine at a time); C and Python alternate, R rounds; the medians per
N and their ratio are printed as a Markdown table.

    python tools/bench/python_engine.py -m models/gemma-3-270m-q4_k_m.gguf \\
        -t 2 -p 128 -n 64 --streams 8,16,32 -r 5
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MASK = (1 << 64) - 1


def fill_tokens(n: int, salt: int, n_vocab: int) -> list[int]:
    """bench_parallel.c's fill_tokens: fixed ids, different per salt."""
    out = []
    span = n_vocab - 256 if n_vocab > 256 else n_vocab
    base = 128 if n_vocab > 256 else 0
    for i in range(n):
        z = ((salt + 1) * 0x9E3779B97F4A7C15 + i * 0xBF58476D1CE4E5B9) & MASK
        z ^= z >> 31
        out.append(z % span + base)
    return out


def agg_tokens_per_s(times: list[list[float]]) -> float:
    """bench_parallel.c's measure(): tokens inside the all-decoding window."""
    streams = [t for t in times if t]
    if not streams:
        return 0.0
    win0 = max(t[0] for t in streams)
    win1 = min(t[-1] for t in streams)
    inside = sum(1 for t in streams for x in t if win0 < x <= win1)
    if win1 > win0 and inside > 0:
        return inside / (win1 - win0)
    t0, t1 = min(t[0] for t in streams), max(t[-1] for t in streams)
    total = sum(len(t) for t in streams)
    return (total - 1) / (t1 - t0) if t1 > t0 else 0.0


def python_side(a: argparse.Namespace) -> None:
    """The benchmark through slim.Engine; prints bench --parallel's rows."""
    sys.path.insert(0, str(ROOT / "bindings" / "python"))
    import slim

    streams = [int(x) for x in a.streams.split(",")]
    max_n = max(streams)
    per_stream = a.p + a.n
    n_prefix = 0
    kv_tokens = max_n * per_stream + 4 * (n_prefix + 64) + 256
    need_ctx = max(per_stream, n_prefix + 64 + a.n) + 8
    model = slim.Model(a.m, n_ctx=32, n_threads=1)
    n_ctx = min(need_ctx, model.info.n_ctx_train)
    eng = slim.Engine(model, n_threads=a.t, kv_tokens=kv_tokens, max_seqs=max(64, max_n), n_ctx=n_ctx)
    V = model.n_vocab

    def run(prompts: list[list[int]]) -> list[slim.Request]:
        reqs = [eng.submit(p, a.n, temperature=0, stop_at_eos=False) for p in prompts]
        for r in reqs:
            r.result()
        return reqs

    run([fill_tokens(a.p, 999, V)])  # warm-up: page in the weights
    salt = 1
    for n in streams:
        prompts = []
        for _ in range(n):
            prompts.append(fill_tokens(a.p, salt, V))
            salt += 1
        reqs = run(prompts)
        ts = agg_tokens_per_s([r.token_times for r in reqs])
        print(f"| {n} | {a.p} | {a.n} | {ts:.2f} |", flush=True)
    eng.close()


ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*([\d.]+)\s*\|")


def timed(cmd: list[str]) -> dict[int, float]:
    lock = ["flock", "/tmp/slim-bench.lock"] if not os.environ.get("SLIM_BENCH_NO_LOCK") else []
    p = subprocess.run(lock + cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    rows = {}
    for line in p.stdout.splitlines():
        m = ROW.match(line)
        if m:
            rows[int(m.group(1))] = float(m.group(4))
    if not rows:
        raise SystemExit(f"no rows from {' '.join(cmd)}:\n{p.stdout}\n{p.stderr}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", default=str(ROOT / "models" / "gemma-3-270m-q4_k_m.gguf"))
    ap.add_argument("-t", type=int, default=2, help="engine threads")
    ap.add_argument("-p", type=int, default=128, help="prompt tokens per stream")
    ap.add_argument("-n", type=int, default=64, help="generated tokens per stream")
    ap.add_argument("--streams", default="8,16,32")
    ap.add_argument("-r", type=int, default=5, help="rounds (C, Python alternating)")
    ap.add_argument("--slim", default=str(ROOT / "build" / "slim"), help="the slim CLI")
    ap.add_argument("--json", help="also write the runs here")
    ap.add_argument("--python", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.python:
        python_side(a)
        return
    common = ["-t", str(a.t), "-p", str(a.p), "-n", str(a.n), "--streams", a.streams]
    c_cmd = [a.slim, "bench", "--parallel", "-m", a.m, "--prefix", "0"] + common
    py_cmd = [sys.executable, __file__, "--python", "-m", a.m] + common
    runs: dict[str, list[dict[int, float]]] = {"c": [], "python": []}
    for r in range(a.r):
        order = [("c", c_cmd), ("python", py_cmd)] if r % 2 == 0 else [("python", py_cmd), ("c", c_cmd)]
        for name, cmd in order:
            runs[name].append(timed(cmd))
            print(f"round {r + 1} {name}: {runs[name][-1]}", file=sys.stderr, flush=True)
            time.sleep(0.5)
    streams = sorted(runs["c"][0])
    print(f"model {a.m}, -t {a.t}, -p {a.p}, -n {a.n}, {a.r} alternating rounds, medians "
          f"(load average at the end: {os.getloadavg()[0]:.1f})\n")
    print("| N | C engine gen t/s | slim.Engine (Python) gen t/s | Python / C |")
    print("|---|---|---|---|")
    for n in streams:
        c = statistics.median(x[n] for x in runs["c"])
        p = statistics.median(x[n] for x in runs["python"])
        print(f"| {n} | {c:.2f} | {p:.2f} | {100 * p / c:.1f}% |")
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
