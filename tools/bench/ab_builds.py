#!/usr/bin/env python3
"""Two builds of slim, A vs B: slim bench pp/tg, alternating per round (the
order flips every round), medians and B/A ratios.
Usage: ab_builds.py [--a NAME=CLI] [--b NAME=CLI] ROUNDS PP TG FILE...
  default A native=build-native/slim, B dispatch=build/slim; e.g. the build
  before a change against this tree's:
    flock /tmp/slim-bench.lock python3 tools/bench/ab_builds.py \
        --a old=/tmp/old21/build/slim --b new=build/slim 3 256 64 models/x.gguf ..."""
import argparse, json, statistics, subprocess

ap = argparse.ArgumentParser()
ap.add_argument("--a", default="native=build-native/slim")
ap.add_argument("--b", default="dispatch=build/slim")
ap.add_argument("--threads", default="1,2")
ap.add_argument("rounds", type=int)
ap.add_argument("pp")
ap.add_argument("tg")
ap.add_argument("files", nargs="+")
args = ap.parse_args()
rounds, pp, tg, files = args.rounds, args.pp, args.tg, args.files
A, B = (s.split("=", 1)[0] for s in (args.a, args.b))
bins = dict(s.split("=", 1) for s in (args.a, args.b))
res = {}
for f in files:
    for t in (int(x) for x in args.threads.split(",")):
        for r in range(rounds):
            order = [A, B] if r % 2 == 0 else [B, A]
            for b in order:
                out = subprocess.run([bins[b], "bench", "-m", f, "-p", pp, "-n", tg, "-t", str(t),
                                      "-r", "1", "-o", "json"], capture_output=True, text=True, check=True).stdout
                for rec in json.loads(out):
                    kind = "pp" if rec["n_prompt"] else "tg"
                    res.setdefault((f, t, kind, b), []).append(rec["median_ts"])
        for kind in ("pp", "tg"):
            a, b = (res[(f, t, kind, x)] for x in (A, B))
            ma, mb = statistics.median(a), statistics.median(b)
            print(f"{f.split('/')[-1]:34s} t={t} {kind}{pp if kind=='pp' else tg}: {A} {ma:8.2f}  {B} {mb:8.2f}  ratio {mb/ma:.3f}  "
                  f"({A} {min(a):.1f}-{max(a):.1f}, {B} {min(b):.1f}-{max(b):.1f})", flush=True)
