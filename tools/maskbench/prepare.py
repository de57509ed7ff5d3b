#!/usr/bin/env python3
"""MaskBench data (../shared/jsonschemabench/*.jsonl.gz) to the runner's input.

Each output line: {"split", "id", "schema": <schema as JSON text>,
"tests": [{"valid": bool, "text": <instance>}]}, the instance serialised as
json.dumps(data, separators=(",", ":"), ensure_ascii=False): compact, and
non-ASCII characters as UTF-8 (MaskBench's generation is UTF-8 text; the
ASCII-escaped form would make every such character six tokens of \\uXXXX).

    python3 tools/maskbench/prepare.py ../shared/jsonschemabench out.jsonl
"""
import gzip
import json
import os
import sys


def main():
    src, dst = sys.argv[1], sys.argv[2]
    n = 0
    with open(dst, "w", encoding="utf-8") as out:
        for name in sorted(os.listdir(src)):
            if not name.endswith(".jsonl.gz"):
                continue
            split = name[: -len(".jsonl.gz")]
            with gzip.open(os.path.join(src, name), "rt", encoding="utf-8") as f:
                for line in f:
                    d = json.loads(line)
                    tests = [
                        {"valid": bool(t["valid"]),
                         "text": json.dumps(t["data"], separators=(",", ":"), ensure_ascii=False)}
                        for t in d.get("tests", [])
                    ]
                    rec = {"split": split, "id": d.get("id", ""),
                           "schema": json.dumps(d["schema"], ensure_ascii=False), "tests": tests}
                    out.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    n += 1
    print(f"{n} schemas -> {dst}", file=sys.stderr)


if __name__ == "__main__":
    main()
