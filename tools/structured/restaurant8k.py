#!/usr/bin/env python3
"""End to end JSON-Schema-constrained extraction on restaurant8k (issue 15).

For N restaurant8k test utterances, runs `slim run` greedy with the prompt
below twice, alternating: unconstrained, and with --json-schema (a schema of
the dataset's five slots).  Every constrained output must parse and validate
against the schema with the `jsonschema` package; tokens/s is the CLI's
generation rate (forced tokens counted: they are generated tokens), per
run; per model the medians of the per-utterance rates and of the per-utterance
ratio constrained / unconstrained (the two runs of a pair back to back), and
the summed totals; each run under flock /tmp/slim-bench.lock.

usage: python3 tools/structured/restaurant8k.py [--model M ...] [--n 20] [--slim build/slim]
"""
import argparse, json, os, re, statistics, subprocess, sys, tempfile
import jsonschema

ap = argparse.ArgumentParser()
ap.add_argument("--model", nargs="+", default=["models/gemma-3-270m-q4_k_m.gguf",
                                               "models/smollm2-135m-instruct-q4_1.gguf"])
ap.add_argument("--n", type=int, default=20)
ap.add_argument("--tokens", type=int, default=192)
ap.add_argument("--slim", default="build/slim")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--data", default=next((d for d in ("../shared/datasets/restaurant8k", "/work/shared/datasets/restaurant8k") if os.path.isdir(d)), "../shared/datasets/restaurant8k"))
args = ap.parse_args()

SLOTS = ["date", "time", "people", "first_name", "last_name"]
SCHEMA = {"type": "object",
          "properties": {s: {"type": ["string", "null"], "maxLength": 24} for s in SLOTS},
          "required": SLOTS, "additionalProperties": False}
PROMPT = ("Extract the restaurant booking details from the message as JSON with the keys "
          "date, time, people, first_name, last_name (null for what it does not say).\n"
          "Message: {text}\nJSON: ")

items = [x for x in json.load(open(os.path.join(args.data, "test.json")))
         if len(x["userInput"]["text"]) >= 25][: args.n]
GEN = re.compile(r"generation: (\d+) tokens in ([0-9.]+) ms")


def run(model, prompt, schema_path):
    cmd = ["flock", "/tmp/slim-bench.lock", args.slim, "run", "-m", model, "-p", prompt,
           "--no-echo", "--temp", "0", "-n", str(args.tokens), "-t", str(args.threads)]
    if schema_path:
        cmd += ["--json-schema", schema_path]
    p = subprocess.run(cmd, capture_output=True)
    if p.returncode not in (0, 3):
        sys.exit("slim run failed (%d): %s" % (p.returncode, p.stderr.decode()))
    m = GEN.search(p.stderr.decode())
    text = p.stdout.decode()
    return text[:-1] if text.endswith("\n") else text, int(m.group(1)), float(m.group(2))


def bench(model, sp):
    tot = {"free": [0, 0.0], "schema": [0, 0.0]}
    rates = {"free": [], "schema": []}
    valid = 0
    for i, x in enumerate(items):
        prompt = PROMPT.replace("{text}", x["userInput"]["text"])
        order = (None, sp) if i % 2 == 0 else (sp, None)  # alternate A/B
        for s in order:
            text, n, ms = run(model, prompt, s)
            k = "schema" if s else "free"
            tot[k][0] += max(n - 1, 0)  # the CLI's rate: tokens after the first over gen time
            tot[k][1] += ms
            rates[k].append(max(n - 1, 0) * 1e3 / ms)
            if s:
                try:
                    jsonschema.validate(json.loads(text), SCHEMA)
                    valid += 1
                except Exception as e:  # noqa: BLE001 - report and count
                    print("INVALID %r: %s" % (text, e))
                if i < 2:
                    print("example: %r -> %s" % (x["userInput"]["text"], text))
    rf = tot["free"][0] * 1e3 / tot["free"][1]
    rs = tot["schema"][0] * 1e3 / tot["schema"][1]
    ratio = statistics.median(b / a for a, b in zip(rates["free"], rates["schema"]))
    print("model %s, %d utterances, -n %d, greedy, %d threads (machine shared)" % (
        model, len(items), args.tokens, args.threads))
    print("valid (jsonschema): %d/%d" % (valid, len(items)))
    print("unconstrained: %d tokens in %.0f ms, %.2f tokens/s; median per run %.2f" % (
        tot["free"][0], tot["free"][1], rf, statistics.median(rates["free"])))
    print("constrained:   %d tokens in %.0f ms, %.2f tokens/s; median per run %.2f "
          "(forced tokens counted)" % (tot["schema"][0], tot["schema"][1], rs,
                                       statistics.median(rates["schema"])))
    print("constrained / unconstrained: totals %.1f%%, median of the %d pairs %.1f%%" % (
        100 * rs / rf, len(items), 100 * ratio), flush=True)


with tempfile.TemporaryDirectory() as d:
    sp = os.path.join(d, "schema.json")
    json.dump(SCHEMA, open(sp, "w"))
    for model in args.model:
        bench(model, sp)
