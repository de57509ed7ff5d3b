#!/bin/sh
# tests/fuzz/seeds.sh TARGET DIR: write TARGET's seed corpus into DIR, from
# tests/data (run from the repository root).  Small inputs: libFuzzer mutates
# what it is given, and a large seed slows every execution.
set -eu
t=$1
d=$2
mkdir -p "$d"
sep=$(printf '\036')
case "$t" in
gguf) cp tests/data/tiny.gguf tests/data/lora_llama3_a.gguf tests/data/convert_writer.gguf "$d"/ ;;
safetensors)
    cp tests/data/tiny.safetensors "$d"/
    cp tests/data/lora_llama3_a/adapter_model.safetensors "$d"/adapter.safetensors ;;
json)
    cp tests/data/json_sample.json "$d"/
    for f in tests/data/hf/*/config.json; do cp "$f" "$d/$(basename "$(dirname "$f")").json"; done
    cp tests/data/lora_llama3_a/adapter_config.json "$d"/ ;;
hf_config) for f in tests/data/hf/*/config.json; do cp "$f" "$d/$(basename "$(dirname "$f")").json"; done ;;
tokenizer_json)
    # the small byte-level BPE of tests/unit/test_hf_tokenizer.c, and an SPM-style Unigram
    cat > "$d/bpe.json" <<'J'
{"version": "1.0", "added_tokens": [{"id": 5, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}], "normalizer": null, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}, "post_processor": null, "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}, "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": {"a": 0, "b": 1, "c": 2, "\u0120": 3, "ab": 4, "<s>": 5, "\u0120c": 6}, "merges": ["a b", ["\u0120", "c"]]}}
J
    cat > "$d/spm.json" <<'J'
{"version": "1.0", "added_tokens": [{"id": 0, "content": "<unk>", "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false}], "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"}, {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}, "pre_tokenizer": null, "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}, "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true, "fuse_unk": true, "vocab": {"<unk>": 0, "<0x41>": 1, "\u2581": 2, "a": 3, "\u2581a": 4}, "merges": ["\u2581 a"]}}
J
    # CI's out-of-memory of 2026-12-06: one id of 222222063 among seven tokens
    sed 's/"c": 2,/"c": 222222063,/' "$d/bpe.json" > "$d/big-id.json"
    # a campaign's 2 GB added token: Replaces that each lengthen the text ~80 times
    cp tests/data/hf_tokenizer_growth.json "$d/growth.json"
    ;;
tokenize)
    for i in 0 1 2 3; do
        printf "\\00$i\\000Hello, world! caf\\303\\251 \\342\\200\\224 12345\n\\t<s> <|begin_of_text|>" > "$d/text$i"
        printf "\\00$i\\001\\377\\376 invalid \\300\\200 utf-8 \\355\\240\\200" > "$d/bad$i"
    done ;;
chat)
    for i in 0 1 2; do
        printf "\\00$i\\001${sep}system${sep}Be brief.${sep}user${sep}Hi!${sep}assistant${sep}Hello.${sep}user${sep}Bye" > "$d/conv$i"
        printf "\\00$i\\000chatml${sep}user${sep}x" > "$d/over$i"
    done ;;
lora)
    { printf '\000'; cat tests/data/lora_llama3_a.gguf; } > "$d/gguf"
    { printf '\001'; cat tests/data/lora_llama3_a/adapter_config.json; printf '\036\036';
      cat tests/data/lora_llama3_a/adapter_model.safetensors; } > "$d/peft" ;;
gbnf)
    printf 'root ::= "a" [b-d]* ("x" | "yz")+\n' > "$d/g1"
    cp tests/data/constrain_ambiguous.gbnf "$d"/ ;; # a 20 s unit under ASan before the mask budget
regex)
    printf '[a-z]+@[a-z]+\\.(com|org)' > "$d/r1"
    # a 2026-12-06 campaign's timeout: every count of .?{6,7674} live at once
    printf '4\003....?{6,7674}7....\000\000?\000\000\000?\000+\\\000' > "$d/slow-count" ;;
schema) printf '{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string","maxLength":4}},"required":["a"]}' > "$d/s1" ;;
*) echo "seeds.sh: no seeds for $t" >&2; exit 2 ;;
esac
