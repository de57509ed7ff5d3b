#!/usr/bin/env python3
"""slim vs llama.cpp's own llama-bench (compare.py's successor for issue 20).

llama.cpp here is its native `llama-bench`, built with -DGGML_NATIVE=ON from
the llama.cpp vendored in llama-cpp-python 0.3.36's sdist, outside the
repository (--build-llama DIR builds it, target llama-bench only, nice -n 10,
-j2).  llama-bench runs in both of its load modes (`-lm none`: weights read
into its own buffers, `-lm mmap`: mmap'd), each cell compared with the better.

Per round: STREAM (build/stream, read-only kernel) once for every thread
count, then for each file and thread count the three runners one after the
other -- `slim bench -r 1`, `llama-bench -lm none -r 1`, `llama-bench -lm mmap
-r 1` -- in an order that rotates round by round, so drift of this shared
machine's speed falls on each in turn.  Each runner measures pp (one prefill
of -p tokens) and tg (-n single-token decodes), as tokens/s.

Reported per cell: medians and min-max of every runner, slim / the better
llama.cpp mode (ratio of medians, and the min-max of the per-round ratios), and
for tg the weight bytes read per second (`weights_per_token` from slim bench:
every tensor, the token embedding only when it is also the output matrix)
as a percentage of the same round's STREAM read bandwidth at the same thread
count (median over rounds; with --stream-each, of a STREAM run just before
that file's cell, since this VM's two-core bandwidth was seen to move between
~35 and ~62 GB/s from one round to the next; with --stream-runner, the mean of STREAM runs
just before and just after each runner's own run, since it moved between 46 and 84 GB/s
within one cell too).  For pp, with build/fma_peak (make bench-fma; --fma), the matmul
GFLOP/s (2 x `prompt_matmul_params` from slim bench x tokens/s: every matrix but the
embedding and the output, attention left out) as a percentage of the thread count times one
core's FMA peak, measured once per round: how near a compute-bound F16 prefill runs to the
ceiling (F16, BF16 and F32 files only).  The `ok` column applies issue 20's bar: pp >=
1.2x; tg >= 1.2x, or llama.cpp >= 80% of STREAM and slim >= 90%, on the medians, or in most
rounds on their own (a round's bandwidth clause counted only where, with --stream-runner,
both runs were settled: the STREAM before and after each within 15%; the tally is printed).

usage: python3 tools/bench/compare_native.py [--build-llama DIR | --llama-bench BIN]
           [-m MODEL ...] [-t 1,2] [-r 5] [-p 512] [-n 128] [--modes none,mmap]
           [--cli build/slim] [--stream build/stream] [--stream-each] [--stream-runner]
           [--fma build/fma_peak] [--json FILE]
Run it under flock so no other timing runs at once (docs/PERFORMANCE.md):
  flock /tmp/slim-bench.lock python3 tools/bench/compare_native.py --build-llama /work/peer/bench20
needs: make (build/slim), make stream (build/stream), make bench-fma, cmake and a C++ compiler for --build-llama
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from benchlib import cpu_name, run_stream as run_stream_json, slim_records

VENDORED = Path("/work/peer/llama.cpp-engine/llama_cpp_python-0.3.36/vendor/llama.cpp")
MODELS = ["models/gemma-3-270m-q4_k_m.gguf", "models/smollm2-135m-instruct-q4_1.gguf",
          "models/bench/llama1b-q4_0.gguf", "models/bench/llama1b-q4_k_m.gguf",
          "models/bench/llama1b-q8_0.gguf", "models/bench/llama1b-f16.gguf"]


def build_llama(out: Path, src: Path) -> Path:
    b = out / "b"
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["nice", "-n", "10", "cmake", "-S", str(src), "-B", str(b),
                    "-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON", "-DLLAMA_CURL=OFF",
                    "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
                    "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_OPENSSL=OFF"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["nice", "-n", "10", "cmake", "--build", str(b), "--target", "llama-bench",
                    "-j2"], check=True, stdout=subprocess.DEVNULL)
    return b / "bin" / "llama-bench"


def slim_round(cli, model, threads, p, n):
    """One repetition of slim bench: ({'pp': t/s, 'tg': t/s}, its first record)."""
    recs = slim_records(cli, model, threads, p, n)
    return {r["test"][:2]: r["median_ts"] for r in recs}, recs[0]


def llama_round(binary, model, threads, p, n, mode):
    """One repetition of llama-bench (after its own warm-up run) in load mode `mode`."""
    out = subprocess.run([str(binary), "-m", model, "-p", str(p), "-n", str(n), "-t",
                          str(threads), "-r", "1", "-lm", mode, "-o", "json"],
                         check=True, capture_output=True, text=True).stdout
    res = {}
    for r in json.loads(out):
        res["pp" if r["n_prompt"] > 0 else "tg"] = r["avg_ts"]
    return res


def run_stream(path, threads, mib, reps):
    """STREAM read GB/s by thread count."""
    return {r["threads"]: r["read_gbs"] for r in run_stream_json(path, threads, mib, reps)["results"]}


def fma_peak(path):
    """One core's FMA peak, GFLOP/s per CPU second, the best width fma_peak reports."""
    out = subprocess.run([path, "-r", "3"], check=True, capture_output=True, text=True).stdout
    rows = [ln.split("|") for ln in out.splitlines() if ln.startswith("| ") and "-bit" in ln]
    return max(float(r[2]) for r in rows)


def med_range(v, fmt="{:.2f}"):
    return (fmt + " (" + fmt + "-" + fmt + ")").format(statistics.median(v), min(v), max(v))


def main():
    ap = argparse.ArgumentParser(description="slim vs llama-bench, Markdown tables")
    ap.add_argument("-m", nargs="+", action="extend", default=None,
                    help="GGUF files (default: compare.py's six)")
    ap.add_argument("-t", default="1,2", help="thread counts, comma-separated")
    ap.add_argument("-r", type=int, default=5, help="alternating rounds (medians of these)")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("--modes", default="none,mmap", help="llama-bench load modes (-lm)")
    ap.add_argument("--cli", default="build/slim")
    ap.add_argument("--stream", default="build/stream", help="tools/bench/stream.c binary")
    ap.add_argument("--stream-mib", type=int, default=512, help="MiB per STREAM array")
    ap.add_argument("--stream-reps", type=int, default=3, help="STREAM runs per round (best)")
    ap.add_argument("--stream-each", action="store_true",
                    help="also run STREAM just before each file's cell in each round, and take "
                         "the %% STREAM columns from it (this VM's bandwidth can change between "
                         "two cells of one round)")
    ap.add_argument("--stream-runner", action="store_true",
                    help="also run STREAM just after each runner's run in each cell (the one "
                         "before it being the previous one's, or the cell's), and take each "
                         "runner's %% STREAM from the mean of its own two (the two-core "
                         "bandwidth of this VM was seen to change within one cell)")
    ap.add_argument("--fma", default="build/fma_peak",
                    help="tools/bench/fma_peak.c binary (make bench-fma), run once per round: pp "
                         "rows give matmul GFLOP/s as a %% of threads x one core's peak; '' skips")
    ap.add_argument("--llama-bench", default=None, help="llama-bench binary")
    ap.add_argument("--build-llama", metavar="DIR", default=None,
                    help="build llama-bench from the vendored source into DIR/b first")
    ap.add_argument("--llama-src", default=str(VENDORED))
    ap.add_argument("--json", default=None, help="write every sample to this file")
    a = ap.parse_args()
    models = a.m or MODELS
    threads_list = [int(t) for t in a.t.split(",")]
    modes = a.modes.split(",")
    for path in models + [a.cli, a.stream]:
        if not os.path.exists(path):
            sys.exit(f"compare_native.py: no {path} (make; make stream; make bench-models)")
    if a.build_llama:
        binary = build_llama(Path(a.build_llama), Path(a.llama_src))
    else:
        binary = Path(a.llama_bench or "/work/peer/bench20/b/bin/llama-bench")
    if not binary.exists():
        sys.exit(f"compare_native.py: no {binary} (--build-llama DIR)")

    runners = ["slim"] + [f"llama-{m}" for m in modes]
    fma = []  # each round's one-core FMA peak, GFLOP/s per CPU second
    if a.fma and not os.path.exists(a.fma):
        sys.exit(f"compare_native.py: no {a.fma} (make bench-fma, or --fma '')")
    stream = {t: [] for t in threads_list}  # each round's read GB/s
    # samples[(model, threads)][runner][test] = [t/s per round]; info from slim bench
    samples, info = {}, {}
    cell_stream = {}  # (model, threads) -> [read GB/s just before the cell, per round]
    # (model, threads) -> {runner: [(read GB/s just before its run, just after), per round]}
    runner_stream = {}
    for rnd in range(a.r):
        for t, gbs in run_stream(a.stream, threads_list, a.stream_mib, a.stream_reps).items():
            stream[t].append(gbs)
        if a.fma:
            fma.append(fma_peak(a.fma))
        for model in models:
            for threads in threads_list:
                cell = samples.setdefault((model, threads), {r: {} for r in runners})
                if a.stream_each:
                    gbs = run_stream(a.stream, [threads], a.stream_mib, a.stream_reps)[threads]
                    cell_stream.setdefault((model, threads), []).append(gbs)
                k = rnd % len(runners)
                prev = cell_stream[(model, threads)][-1] if a.stream_each else None
                if a.stream_runner and prev is None:
                    prev = run_stream(a.stream, [threads], a.stream_mib, a.stream_reps)[threads]
                for runner in runners[k:] + runners[:k]:
                    if runner == "slim":
                        res, info[model] = slim_round(a.cli, model, threads, a.p, a.n)
                    else:
                        res = llama_round(binary, model, threads, a.p, a.n, runner[6:])
                    for test, v in res.items():
                        cell[runner].setdefault(test, []).append(v)
                    if a.stream_runner:  # the STREAM after one runner is the next one's before
                        gbs = run_stream(a.stream, [threads], a.stream_mib, a.stream_reps)[threads]
                        runner_stream.setdefault((model, threads), {}).setdefault(
                            runner, []).append((prev, gbs))
                        prev = gbs
                print(f"round {rnd + 1}/{a.r} {os.path.basename(model)} {threads}t: " +
                      ", ".join(f"{r} " + "/".join(f"{cell[r][x][-1]:.1f}" for x in ("pp", "tg")
                                                   if x in cell[r]) for r in runners),
                      file=sys.stderr, flush=True)

    print(f"{cpu_name()}, {os.cpu_count()} CPUs; llama-bench {binary} "
          f"(modes {', '.join(modes)}); medians (min-max) of {a.r} alternating rounds")
    print("STREAM (%s, %d MiB arrays, best of %d, once per round) read GB/s: %s" % (
        a.stream, a.stream_mib, a.stream_reps, ", ".join(
            f"{t} thread{'s' if t > 1 else ''} {med_range(g)}" for t, g in stream.items())))
    for (model, threads), g in cell_stream.items():
        print(f"STREAM just before {os.path.basename(model)} {threads}t, per round: " +
              ", ".join(f"{x:.2f}" for x in g))
    for (model, threads), by_runner in runner_stream.items():
        print(f"STREAM just before / after each runner, {os.path.basename(model)} {threads}t, "
              "per round: " + "; ".join(f"{r} " + ", ".join(f"{b:.1f}/{e:.1f}" for b, e in g)
                                        for r, g in by_runner.items()))
    print()
    print("| file | threads | test | slim t/s | " + " | ".join(
        f"llama.cpp -lm {m} t/s" for m in modes) + " | slim / better | per-round ratio | "
        "slim: tg GB/s (% STREAM), pp GFLOP/s (% FMA peak) | llama.cpp: the same | ok |")
    print("|---|---|---|---|" + "---|" * len(modes) + "---|---|---|---|---|")
    summary, records = {}, []

    def pct_fma(v, threads, pmp):
        """Median over rounds of the prefill's matmul GFLOP/s over threads x that round's peak."""
        return statistics.median(2 * pmp * x / 1e9 / (threads * f) for x, f in zip(v, fma))

    for (model, threads), cell in samples.items():
        for test, label in (("pp", f"pp{a.p}"), ("tg", f"tg{a.n}")):
            if test not in cell["slim"]:
                continue
            s = cell["slim"][test]
            # float weights only: quantized ones multiply in int8, not on the FMA units
            pmp = (info[model].get("prompt_matmul_params", 0)
                   if info[model].get("type") in ("F16", "BF16", "F32") else 0)
            lm = {r: cell[r][test] for r in runners[1:]}
            best = max(lm, key=lambda r: statistics.median(lm[r]))
            ratio = statistics.median(s) / statistics.median(lm[best])
            per_round = [x / max(v[i] for v in lm.values()) for i, x in enumerate(s)]
            line = (f"| {os.path.basename(model)} | {threads} | {label} | {med_range(s)} | " +
                    " | ".join(med_range(v) for v in lm.values()) +
                    f" | {ratio:.2f} | {min(per_round):.2f}-{max(per_round):.2f} |")
            ok = ratio >= 1.2
            rec = {"model": model, "threads": threads, "test": label, "slim_ts": s,
                   "llama_ts": lm, "better_mode": best, "ratio": ratio,
                   "stream_read_gbs": stream[threads]}
            if test == "tg":
                wpt = info[model]["weights_per_token"]
                near = cell_stream.get((model, threads), stream[threads])
                # with --stream-runner: a run's STREAM is the mean of the ones just before and
                # just after it, and it is settled when those two agree within 15%
                own = runner_stream.get((model, threads), {})
                den = {r: [(b + e) / 2 for b, e in own[r]] if r in own else near
                       for r in ("slim", best)}
                settled = {r: [abs(b - e) <= 0.15 * max(b, e) for b, e in own[r]] if r in own
                           else [True] * len(s) for r in ("slim", best)}
                frac = {r: [wpt * x / 1e9 / g for x, g in zip(v, den[r])]
                        for r, v in [("slim", s), (best, lm[best])]}
                pct = {r: statistics.median(f) for r, f in frac.items()}
                line += (f" {wpt * statistics.median(s) / 1e9:.2f} ({100 * pct['slim']:.0f}%) |"
                         f" {wpt * statistics.median(lm[best]) / 1e9:.2f}"
                         f" ({100 * pct[best]:.0f}%) |")
                ok = ok or (pct[best] >= 0.8 and pct["slim"] >= 0.9)
                # the same bar round by round, each runner against its own STREAM, the
                # bandwidth clause only where both runs were settled; the cell passes too
                # when most rounds pass on their own
                both = [settled["slim"][i] and settled[best][i] for i in range(len(s))]
                rounds_ok = sum(1 for i, q in enumerate(per_round)
                                if q >= 1.2 or (both[i] and frac[best][i] >= 0.8
                                                and frac["slim"][i] >= 0.9))
                ok = ok or 2 * rounds_ok > len(s)
                # each engine's share of the STREAM around its own run, slim's over llama.cpp's:
                # the ratio with the two-core bandwidth state taken out (it can flip between the
                # runs of one round on a VM)
                shares = [a_ / b_ for a_, b_ in zip(frac["slim"], frac[best])]
                rec.update(weights_per_token=wpt, slim_pct_stream=pct["slim"],
                           share_ratio=statistics.median(shares), share_ratio_rounds=shares,
                           llama_pct_stream=pct[best], stream_near_gbs=near,
                           stream_runner_gbs=own, rounds_ok=rounds_ok,
                           rounds_unsettled=both.count(False),
                           slim_pct_stream_rounds=frac["slim"], llama_pct_stream_rounds=frac[best])
            else:
                if fma and pmp:
                    pf = [pct_fma(v, threads, pmp) for v in (s, lm[best])]
                    line += "".join(f" {2 * pmp * statistics.median(v) / 1e9:.1f} ({100 * f:.0f}%) |"
                                    for v, f in zip((s, lm[best]), pf))
                    rec.update(fma_peak_gflops=fma, prompt_matmul_params=pmp,
                               slim_pct_fma=pf[0], llama_pct_fma=pf[1])
                else:
                    line += " | |"
            tally = (f" ({rec['rounds_ok']}/{len(s)} rounds, {rec['rounds_unsettled']} unsettled;"
                     f" STREAM-share ratio {med_range(rec['share_ratio_rounds'])})"
                     if test == "tg" else "")
            print(line + (" yes" if ok else " **no**") + tally + " |")
            summary[(os.path.basename(model), label, threads)] = (ratio, ok)
            records.append(rec)

    print()
    cols = [(f"pp{a.p}", t) for t in threads_list] + [(f"tg{a.n}", t) for t in threads_list]
    print("| file | " + " | ".join(f"{x} {t}t" for x, t in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for model in models:
        name = os.path.basename(model)
        print(f"| {name} | " + " | ".join(
            "%.2f%s" % (summary[(name, x, t)][0], "" if summary[(name, x, t)][1] else " (no)")
            for x, t in cols) + " |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"cpu": cpu_name(), "llama_bench": str(binary), "rounds": a.r,
                       "stream_read_gbs": stream, "rows": records}, f, indent=1)


if __name__ == "__main__":
    main()
