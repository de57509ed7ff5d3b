#!/bin/sh
# Issue 16's endpoint acceptance: the banking77 task through `slim eval --endpoint`
# against `slim serve` of the same model gives the same per-item outputs as the
# in-process run.  Prints the items compared, the ones that differ and the largest
# difference of the chosen label's confidence.
#   SLIM_CLI (build/slim), PYTHON, TASK (tests/eval/banking77-50.json), MODEL (the
#   task's candidate), EVAL_OUT (kept; default a temp dir), INPROC (an existing
#   in-process run's directory, e.g. make test-eval's; default: run it here)
set -eu
cd "$(dirname "$0")/../.."
CLI=${SLIM_CLI:-build/slim}
PY=${PYTHON:-.venv/bin/python}
TASK=${TASK:-tests/eval/banking77-50.json}
MODEL=${MODEL:-models/smollm2-135m-instruct-q4_1.gguf}
OUT=${EVAL_OUT:-$(mktemp -d)}
mkdir -p "$OUT"
fail() { echo "endpoint: FAIL: $*" >&2; exit 1; }

"$CLI" serve -m "$MODEL" --port 0 -t 2 > "$OUT/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2> /dev/null || true' EXIT INT TERM
port=
for _ in $(seq 600); do
    port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$OUT/serve.log")
    [ -n "$port" ] && break
    kill -0 $pid 2> /dev/null || fail "slim serve exited: $(cat "$OUT/serve.log")"
    sleep 0.2
done
[ -n "$port" ] || fail "slim serve did not start"

INPROC=${INPROC:-}
if [ -z "$INPROC" ]; then
    INPROC=$OUT/inproc
    "$CLI" eval "$TASK" --out "$INPROC" --fresh -q > "$OUT/inproc.md" || fail "in-process run"
fi
"$CLI" eval "$TASK" --endpoint "http://127.0.0.1:$port/v1" --out "$OUT/endpoint" --fresh -q \
    > "$OUT/endpoint.md" || fail "endpoint run"

"$PY" - "$INPROC/items.jsonl" "$OUT/endpoint/items.jsonl" <<'PYEOF' || fail "outputs differ"
import json, sys
def items(path):
    out = {}
    for line in open(path):
        d = json.loads(line)
        if "id" in d:
            out[d["id"]] = d
    return out
a, b = items(sys.argv[1]), items(sys.argv[2])
same = [k for k in a if k in b and a[k]["output"] == b[k]["output"]]
diff = [k for k in a if k in b and a[k]["output"] != b[k]["output"]]
conf = [abs(a[k].get("conf", 0) - b[k].get("conf", 0)) for k in same]
print(f"endpoint: {len(a)} in-process items, {len(b)} through slim serve: "
      f"{len(same)} outputs equal, {len(diff)} differ {diff[:10]}; "
      f"max |confidence difference| {max(conf) if conf else 0:.3g}")
sys.exit(0 if len(a) == len(b) and not diff and set(a) == set(b) else 1)
PYEOF
