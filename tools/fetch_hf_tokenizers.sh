#!/bin/sh
# Hugging Face tokenizer directories for tests/unit/test_hf_tokenizer.c, made
# offline with transformers' converters (tools/golden/gen_hf_tokenizer.py dirs)
# from the tokenizers that `make model` (Gemma 3, SmolLM2 GGUFs) and
# `make vocabs` (models/tok/: Llama 3, Mistral v3, Nemo, cl100k) fetch.
# Needs python3 with transformers, tokenizers, tiktoken, sentencepiece,
# protobuf, gguf and mistral-common: `make hf-tokenizers` runs it with the
# project's .venv (PYTHON=.venv/bin/python; tools/requirements/test.txt pins them).
#
# Usage: sh tools/fetch_hf_tokenizers.sh [models_dir]   (default: models)
# Writes: models_dir/hf-tok/<family>/ tokenizer.json, tokenizer_config.json,
#         generation_config.json (+ chat_template.jinja) for gemma3 smollm2
#         llama3 mistral-v3 nemo phi4, then models_dir/hf-tok/.done
set -eu
MD=${1:-models}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}

for f in "$MD/gemma-3-270m-q4_k_m.gguf" "$MD/smollm2-135m-instruct-q4_1.gguf" \
    "$MD/tok/llama3/tokenizer.model" "$MD/tok/mistral_instruct_tokenizer_240323.model.v3" \
    "$MD/tok/tekken_240718.json" "$MD/tok/cl100k_base.tiktoken"; do
    [ -s "$f" ] || { echo "fetch_hf_tokenizers: $f is missing (make model vocabs)" >&2; exit 1; }
done
rm -f "$MD/hf-tok/.done"
mkdir -p "$MD/hf-tok"
echo "fetch_hf_tokenizers: converting 6 tokenizers with transformers into $MD/hf-tok" >&2
"$PY" "$ROOT/tools/golden/gen_hf_tokenizer.py" dirs "$MD" "$MD/hf-tok"
touch "$MD/hf-tok/.done"
