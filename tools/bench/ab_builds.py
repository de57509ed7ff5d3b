#!/usr/bin/env python3
"""Dispatch build (build/slim) vs native build (build-native/slim): slim bench
pp/tg, alternating per round, medians.  Usage: ab.py ROUNDS PP TG FILE..."""
import json, statistics, subprocess, sys
rounds, pp, tg = int(sys.argv[1]), sys.argv[2], sys.argv[3]
files = sys.argv[4:]
bins = {"native": "build-native/slim", "dispatch": "build/slim"}
res = {}
for f in files:
    for t in (1, 2):
        for r in range(rounds):
            order = ["native", "dispatch"] if r % 2 == 0 else ["dispatch", "native"]
            for b in order:
                out = subprocess.run([bins[b], "bench", "-m", f, "-p", pp, "-n", tg, "-t", str(t),
                                      "-r", "1", "-o", "json"], capture_output=True, text=True, check=True).stdout
                for rec in json.loads(out):
                    kind = "pp" if rec["n_prompt"] else "tg"
                    res.setdefault((f, t, kind, b), []).append(rec["median_ts"])
        for kind in ("pp", "tg"):
            n = statistics.median(res[(f, t, kind, "native")]); d = statistics.median(res[(f, t, kind, "dispatch")])
            print(f"{f.split('/')[-1]:34s} t={t} {kind}{pp if kind=='pp' else tg}: native {n:8.2f}  dispatch {d:8.2f}  ratio {d/n:.3f}  "
                  f"(native {min(res[(f,t,kind,'native')]):.1f}-{max(res[(f,t,kind,'native')]):.1f}, dispatch {min(res[(f,t,kind,'dispatch')]):.1f}-{max(res[(f,t,kind,'dispatch')]):.1f})", flush=True)
