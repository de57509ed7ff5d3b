#!/usr/bin/env python3
"""OLD_SLIM vs NEW_SLIM (two slim binaries) with a busy loop pinned to CPU 1: slim bench -t 2 and -t 1, alternating, medians."""
import json, os, statistics, subprocess, sys
rounds = int(sys.argv[1]); files = sys.argv[2:]
bins = {"old": os.environ.get("OLD_SLIM", "old/build/slim"), "new": os.environ.get("NEW_SLIM", "build/slim")}
busy = subprocess.Popen(["taskset", "-c", "1", "sh", "-c", "while :; do :; done"])
try:
    for f in files:
        res = {}
        for r in range(rounds):
            for t in (2, 1):
                for b in (["old", "new"] if r % 2 == 0 else ["new", "old"]):
                    out = subprocess.run(["taskset", "-c", "0,1", bins[b], "bench", "-m", f, "-p", "64", "-n", "64",
                                          "-t", str(t), "-r", "1", "-o", "json"], capture_output=True, text=True, check=True).stdout
                    for rec in json.loads(out):
                        k = "pp64" if rec["n_prompt"] else "tg64"
                        res.setdefault((t, k, b), []).append(rec["median_ts"])
        for t in (2, 1):
            for k in ("pp64", "tg64"):
                o = res[(t, k, "old")]; n = res[(t, k, "new")]
                print(f"{f.split('/')[-1]:34s} busy t={t} {k}: old {statistics.median(o):7.1f} ({min(o):.1f}-{max(o):.1f})  new {statistics.median(n):7.1f} ({min(n):.1f}-{max(n):.1f})", flush=True)
finally:
    busy.kill()
