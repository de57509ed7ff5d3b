#!/bin/sh
# make test-eval: the 50-item versions of the committed tasks through `slim eval`,
# every figure recomputed by tools/eval_check.py (scikit-learn, scipy), a resume
# and a rerun giving the same outputs (the output hash), and report.html
# rendered to PNG by headless Chromium.
#   SLIM_CLI (build/slim), PYTHON (the test venv's), DATASETS (the data sets'
#   directory; default: the tasks' own ../shared/datasets), EVAL_OUT (kept; default a temp dir)
set -eu
cd "$(dirname "$0")/../.."
CLI=${SLIM_CLI:-build/slim}
PY=${PYTHON:-.venv/bin/python}
OUT=${EVAL_OUT:-$(mktemp -d)}
mkdir -p "$OUT"
fail() { echo "test-eval: FAIL: $*" >&2; exit 1; }
t0=$(date +%s)

for task in banking77-50 restaurant8k-50; do
    dir=$OUT/$task
    echo "test-eval: $task"
    "$CLI" eval "tests/eval/$task.json" --out "$dir" --fresh -q > "$dir.md" || fail "$task: slim eval"
    cat "$dir.md"
    "$PY" tools/eval_check.py "$dir" || fail "$task: eval_check.py"
    hash=$(sed -n 's/.*"output_hash":"\([0-9a-f]*\)".*/\1/p' "$dir/results.json")
    [ -n "$hash" ] || fail "$task: no output hash"
    # resume: every item read back, nothing rerun, the same figures
    cp "$dir/results.json" "$dir/results.first.json"
    "$CLI" eval "tests/eval/$task.json" --out "$dir" -q > "$dir.resumed.md" 2> "$dir.resumed.err" ||
        fail "$task: resumed run"
    grep -q "resuming" "$dir.resumed.err" || fail "$task: did not resume"
    grep -q "\"output_hash\":\"$hash\"" "$dir/results.json" || fail "$task: resumed hash differs"
    # an interrupted run: the last 5 items of the last candidate are run again
    head -n -5 "$dir/items.jsonl" > "$dir/items.cut" && mv "$dir/items.cut" "$dir/items.jsonl"
    "$CLI" eval "tests/eval/$task.json" --out "$dir" -q > /dev/null || fail "$task: rerun"
    grep -q "\"output_hash\":\"$hash\"" "$dir/results.json" || fail "$task: rerun's outputs differ"
done

# label scoring (the prompt after the last one's shared prefix, then slim_score's trie)
# against whole prefills of prompt + label
SLIM_EVAL_CHECK_SCORING=1 "$CLI" eval tests/eval/banking77-50.json --limit 3 --out "$OUT/check" \
    --fresh -q > /dev/null 2> "$OUT/check.err" || fail "scoring check run"
diff=$(sed -n 's/.*max |difference| from whole prefills \([^ ]*\)$/\1/p' "$OUT/check.err")
echo "test-eval: label scores vs whole prefills: max |difference| $diff"
# bitwise: slim_score's trie over the cached prompt and one whole prefill give the same logits
[ "$diff" = 0 ] || fail "label scores differ from whole prefills by $diff"

# a task file error is a message and exit status 1, not a crash
echo '{"kind":"classify"}' > "$OUT/bad.json"
if "$CLI" eval "$OUT/bad.json" --out "$OUT/bad" 2> "$OUT/bad.err"; then fail "bad task accepted"; fi
grep -q "labels" "$OUT/bad.err" || fail "bad task: no message naming labels"

# the HTML report in a real browser
CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$CHROME" ] || fail "no chromium to render report.html (apt-get install chromium)"
for task in banking77-50 restaurant8k-50; do
    png=$OUT/$task/report.png
    rm -f "$png"
    timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
        --window-size=1100,1400 --screenshot="$png" "file://$(realpath "$OUT/$task/report.html")" \
        > "$OUT/$task/chromium.log" 2>&1 || fail "$task: chromium (see $OUT/$task/chromium.log)"
    "$PY" - "$png" <<'EOF' || fail "$task: the PNG is blank"
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB")
colors = len(set(im.resize((275, 350)).getdata()))
print(f"test-eval: {sys.argv[1]}: {im.size[0]}x{im.size[1]}, {colors} colours")
sys.exit(0 if colors > 20 else 1)
EOF
done
echo "test-eval: passed in $(( $(date +%s) - t0 )) s (outputs in $OUT)"
