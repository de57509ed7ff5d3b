#!/usr/bin/env python3
"""Synthetic Llama-3.2-1B-shaped GGUF models for the CPU benchmarks.

Random weights (fixed seed, realistic scales), the shapes of Llama 3.2 1B:
arch llama, n_embd 2048, 16 layers, 32 heads, 8 KV heads (head_dim 64),
n_ff 8192, vocab 128256, tied embeddings (no output.weight), rope base 500000
with Llama 3 rope scaling (rope_freqs.weight, factor 32), context 131072.

The F16 file is written here with the gguf package; Q4_0, Q4_K_M and Q8_0 are
made from it by llama.cpp's own quantizer through llama-cpp-python
(llama_model_quantize with llama_model_quantize_default_params()), so the
Q4_K_M mix (Q6_K tied embeddings/output, Q6_K on half of attn_v / ffn_down,
Q4_K elsewhere) is llama.cpp's.

Vocabulary: byte-level BPE ("gpt2", pre-tokenizer "llama-bpe") of 128256
tokens: the 256 GPT-2 byte tokens, 9025 two-character and 118719
three-character tokens over printable ASCII and the space (each with its
merge), then 256 control tokens <|begin_of_text|> (128000) ... like Llama 3's.
Token strings are synthetic, but the vocabulary loads and tokenizes in slim
and llama.cpp.  Content does not matter for speed: the work per token is the
same.

usage: .venv/bin/python tools/bench/gen_llama1b.py OUTDIR [--types f16,q4_0,q4_k_m,q8_0] [--force]
           [--cli build/slim] [--no-check]
writes OUTDIR/llama1b-{f16,q4_0,q4_k_m,q8_0}.gguf (~2.5 GB + 0.7 + 0.8 + 1.3 GB),
(--types q2_k,q3_k_m,q5_k_m: llama.cpp's mixes of those, 0.58 + 0.69 + 0.91 GB),
then loads each in llama-cpp-python (tokenize, decode) and in slim (build/slim
run, if built) and prints sizes and sha256.
needs: pip install gguf numpy llama-cpp-python (checked: gguf 0.19.0,
       llama-cpp-python 0.3.36)
"""
import argparse
import ctypes
import hashlib
import math
import os
import sys
import time

import numpy as np
import gguf

# The GPT-2 byte map and Llama 3's rope_freqs, as the golden scripts write them.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden"))
from gen_synthetic import llama3_rope_factors  # noqa: E402
from gen_vocab_refs import bytes_to_unicode  # noqa: E402

N_EMBD, N_LAYER, N_HEAD, N_HEAD_KV, N_FF, N_VOCAB = 2048, 16, 32, 8, 8192, 128256
HEAD_DIM = N_EMBD // N_HEAD
CTX = 131072
ROPE_BASE = 500000.0
EPS = 1e-5
N_SPECIAL = 256
SEED = 20261124


def make_vocab():
    """(tokens, token types, merges): types 1 normal, 3 control."""
    b2u = bytes_to_unicode()
    tokens = [b2u[b] for b in range(256)]
    # printable ASCII and the space (GPT-2's "\u0120")
    chars = [b2u[b] for b in range(0x20, 0x7F)]
    merges = []
    pairs = [(a, b) for a in chars for b in chars]
    for a, b in pairs:
        tokens.append(a + b)
        merges.append(a + " " + b)
    n_normal = N_VOCAB - N_SPECIAL
    for ab in [a + b for a, b in pairs]:
        for c in chars:
            if len(tokens) == n_normal:
                break
            tokens.append(ab + c)
            merges.append(ab + " " + c)
        if len(tokens) == n_normal:
            break
    special = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
               "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>",
               "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
               "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
    k = 3
    while len(special) < N_SPECIAL:
        special.append("<|reserved_special_token_%d|>" % k)
        k += 1
    types = [1] * len(tokens) + [3] * N_SPECIAL
    tokens += special
    assert len(tokens) == N_VOCAB == len(set(tokens))
    return tokens, types, merges


def tensor_specs():
    """(name, numpy shape (rows, cols), kind); F32 norms, F16 matrices."""
    specs = [("token_embd.weight", (N_VOCAB, N_EMBD), "embd"),
             ("rope_freqs.weight", (HEAD_DIM // 2,), "rope")]
    kv = N_HEAD_KV * HEAD_DIM
    for i in range(N_LAYER):
        p = "blk.%d." % i
        specs += [(p + "attn_norm.weight", (N_EMBD,), "norm"),
                  (p + "attn_q.weight", (N_EMBD, N_EMBD), "mat"),
                  (p + "attn_k.weight", (kv, N_EMBD), "mat"),
                  (p + "attn_v.weight", (kv, N_EMBD), "mat"),
                  (p + "attn_output.weight", (N_EMBD, N_EMBD), "out"),
                  (p + "ffn_norm.weight", (N_EMBD,), "norm"),
                  (p + "ffn_gate.weight", (N_FF, N_EMBD), "mat"),
                  (p + "ffn_up.weight", (N_FF, N_EMBD), "mat"),
                  (p + "ffn_down.weight", (N_EMBD, N_FF), "out")]
    specs.append(("output_norm.weight", (N_EMBD,), "norm"))
    return specs


def make_tensor(idx, shape, kind):
    """Weights of a trained model's order of magnitude: embeddings and
    projections ~N(0, 0.02) (outputs scaled by 1/sqrt(2 * n_layer)), norms
    around 1 with spread."""
    rng = np.random.default_rng(SEED + idx)
    if kind == "rope":
        return llama3_rope_factors(HEAD_DIM, ROPE_BASE, 32.0, 1.0, 4.0, 8192)
    if kind == "norm":
        return (1.0 + 0.1 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
    std = 0.02 / math.sqrt(2 * N_LAYER) if kind == "out" else 0.02
    out = np.empty(shape, dtype=np.float16)
    step = 8192  # rows at a time: bounded float32 scratch
    for r in range(0, shape[0], step):
        out[r:r + step] = rng.standard_normal((min(step, shape[0] - r), shape[1]),
                                              dtype=np.float32) * np.float32(std)
    return out


def write_f16(path):
    tokens, types, merges = make_vocab()
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("synthetic Llama-3.2-1B-shaped (random weights)")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_context_length(CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(ROPE_BASE)
    w.add_layer_norm_rms_eps(EPS)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    w.add_vocab_size(N_VOCAB)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(128000)
    w.add_eos_token_id(128009)
    w.add_add_bos_token(True)
    specs = tensor_specs()
    for name, shape, kind in specs:
        dt = np.float32 if kind in ("norm", "rope") else np.float16
        nbytes = int(np.prod(shape)) * np.dtype(dt).itemsize
        w.add_tensor_info(name, shape, np.dtype(dt), nbytes)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for idx, (name, shape, kind) in enumerate(specs):
        w.write_tensor_data(make_tensor(idx, shape, kind))
    w.close()


def quantize(src, dst, ftype):
    import llama_cpp
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = ftype
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p))
    if rc != 0:
        sys.exit("llama_model_quantize(%s) failed: %d" % (dst, rc))


def check_llama_cpp(path):
    """Load in llama.cpp (llama-cpp-python), tokenize and decode a few tokens."""
    from llama_cpp import Llama
    llm = Llama(model_path=path, n_ctx=64, n_batch=16, n_threads=2, verbose=False)
    toks = llm.tokenize(b"The three primary colors are")
    assert len(toks) > 1 and toks[0] == 128000, toks
    llm.eval(toks)
    n_vocab = llm.n_vocab()
    del llm
    assert n_vocab == N_VOCAB, n_vocab
    return len(toks)


def check_slim(cli, path):
    """Load in slim and generate a few tokens."""
    import subprocess
    subprocess.run([cli, "run", "-m", path, "-p", "hi", "-n", "4", "-t", "2"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--types", default="f16,q4_0,q4_k_m,q8_0")
    ap.add_argument("--force", action="store_true", help="rewrite existing files")
    ap.add_argument("--no-check", action="store_true", help="skip the load checks")
    ap.add_argument("--cli", default="build/slim", help="slim CLI for the load check (if built)")
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    path = lambda t: os.path.join(a.outdir, "llama1b-%s.gguf" % t)
    types = a.types.split(",")
    f16 = path("f16")
    if a.force or not os.path.exists(f16):
        t0 = time.time()
        write_f16(f16 + ".tmp")
        os.replace(f16 + ".tmp", f16)
        print("wrote %s in %.0f s" % (f16, time.time() - t0), flush=True)
    import llama_cpp
    ftypes = {"q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
              "q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M,
              "q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
              "q2_k": llama_cpp.LLAMA_FTYPE_MOSTLY_Q2_K,
              "q3_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q3_K_M,
              "q5_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q5_K_M}
    for t in types:
        if t == "f16" or (os.path.exists(path(t)) and not a.force):
            continue
        t0 = time.time()
        quantize(f16, path(t) + ".tmp", ftypes[t])
        os.replace(path(t) + ".tmp", path(t))
        print("wrote %s in %.0f s" % (path(t), time.time() - t0), flush=True)
    print("\n| file | bytes | sha256 |\n|---|---|---|")
    for t in types:
        if not a.no_check:
            check_llama_cpp(path(t))
            if os.path.exists(a.cli):
                check_slim(a.cli, path(t))
        print("| %s | %d | %s |" % (os.path.basename(path(t)), os.path.getsize(path(t)),
                                     sha256(path(t))), flush=True)


if __name__ == "__main__":
    main()
