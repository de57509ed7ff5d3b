#!/usr/bin/env python3
"""Synthetic random-weight GGUF models, one per architecture family, with
llama.cpp's next-token logits on them as golden data (tests/unit/test_arch.c).

Each model is tiny (F32 weights, n_embd 64, vocab 320) but switches on every
feature of its family, with hyperparameters chosen so that each feature binds
on the 160-token test sequence (windows shorter than the sequence, softcaps
below the raw values, rope scaling that moves the angles).  The weights come
from numpy with a fixed seed, so the files are the same on every run.

usage:
  .venv/bin/python tools/golden/gen_synthetic.py            # write tests/data/synth_*.{gguf,bin}
  .venv/bin/python tools/golden/gen_synthetic.py --verify   # also: llama.cpp with each feature
        switched off (or a key llama.cpp should ignore added), and the float64
        numpy model of each graph against llama.cpp; writes nothing new
  .venv/bin/python tools/golden/gen_synthetic.py --only gemma2 [--verify]
  .venv/bin/python tools/golden/gen_synthetic.py --hf qwen3  # tests/data/hf/qwen3 (see write_hf),
        then gen_hf.py --only qwen3 replaces its golden.bin with transformers' logits
needs: pip install gguf numpy llama-cpp-python   (checked with gguf 0.19.0 and
       llama-cpp-python 0.3.36)

Golden files use forward_golden.bin's format (tools/golden/gen_forward.py),
little-endian:
  char[8] "SLIMFWD1"; u32 n_prompts = 1, n_vocab, top_k = 32, n_greedy = 0
  u32 n_prompt = n_tokens = 160; i32 tokens[160] (<s> then random normal tokens)
  per position: f32 logsumexp over the whole vocabulary; i32 ids[top_k];
                f32 logits[top_k] (llama.cpp's largest, in descending order)
llama.cpp runs the 160 tokens as one batch (n_ctx 256, 2 threads, flash
attention off, F32 K/V cache, so its attention is all-F32 as the weights are).

Common to every model: vocabulary of 320 SentencePiece tokens (<unk> <s> </s>
<|endoftext|> <|end|>, the 256 byte tokens <0x00>..<0xFF>, 59 pieces "\u2581x",
"\u2581xy" with scores; llama.cpp refuses arch phi3 without the two Phi-3
control tokens), rms
epsilon 1e-5 (1e-6 for the Gemmas), context_length 512, general.file_type 0.

Models and what each setting exercises:

llama3   arch llama; n_embd 64, 2 layers, n_ff 128, n_head 8, n_head_kv 2
         (GQA 4:1), head_dim 8, rope base 500000, untied output.weight;
         rope_freqs.weight: Llama 3 rope scaling (factor 8, low_freq_factor 1,
         high_freq_factor 4) computed as convert_hf_to_gguf.py does, with
         original_max_position_embeddings 256 so that the 4 frequencies fall in
         all three branches (factor 1, smoothed 3.56, 8, 8).  RoPE on adjacent
         pairs (GGML_ROPE_TYPE_NORM).
mistral  arch llama as Mistral GGUFs are; Mistral-Nemo-like head_dim 32 with
         n_embd 64 and n_head 4 (q width 128 != n_embd: attention.key_length /
         value_length 32, rope.dimension_count 32), n_head_kv 2, rope base 1e6,
         untied output, n_ff 96.  No sliding window: llama.cpp ignores
         <arch>.attention.sliding_window for arch llama (and no llama.cpp arch
         applies Mistral v0.1's window: mistral3 is Ministral 3 without SWA);
         --verify shows that adding the key changes nothing.
qwen2    arch qwen2; n_embd 64, n_head 4, n_head_kv 2, head_dim 16, n_ff 128,
         rope base 1e6, attn_q/k/v.bias (std 0.5, so they matter), tied
         embeddings (no output.weight), NEOX rope.
phi3     arch phi3; n_embd 64, n_head 4, n_head_kv 2, head_dim 16, n_ff 128;
         fused attn_qkv.weight (q, k, v rows), fused ffn_up.weight (gate rows
         then up rows, 2*n_ff) with SwiGLU, untied output; partial rotary
         rope.dimension_count 12 < head_dim 16 (NEOX pairs (i, i+6) over the
         first 12 dims, dims 12..15 untouched); LongRoPE: rope_factors_long /
         rope_factors_short (6 each), context_length 512 > rope.scaling.
         original_context_length 64, so llama.cpp (context 256 > 64) uses the
         long factors, and rope.scaling.attn_factor = sqrt(1 + ln 8 / ln 64)
         (as the converter computes it from 512 / 64) scales cos and sin.
         sliding_window 2047 as in Phi-3-mini: llama.cpp disables Phi SWA
         ("Phi SWA is currently disabled"), so it must not be applied; --verify
         shows a window of 16 changes nothing.
qwen3    arch qwen3 (dense); n_embd 64, n_head 4, n_head_kv 2, head_dim 32 (!= 64/4,
         as Qwen3's 128 != 1024/16: attention.key_length / value_length), n_ff
         128, rope base 1e6, rms epsilon 1e-6, QK RMSNorm per head (before RoPE),
         no Q/K/V biases, untied output.weight, NEOX rope.
gemma2   arch gemma2; n_embd 64, n_head 4, n_head_kv 2, head_dim 32 (!= 64/4),
         n_ff 128, 2 layers; sliding window 16 (< 160) on even layers (llama.cpp's
         default pattern 2: layer 0 local, layer 1 global); attn_logit_softcapping
         10 (scaled scores std ~3, max ~10) and final_logit_softcapping 10 (raw
         logits std 3.1, max 12.7); post-attention and post-FFN norms; embeddings
         scaled by sqrt(n_embd); q scaled by 1/sqrt(head_dim) (llama.cpp reads no
         query_pre_attn_scalar key: head_dim for every model but the 46-layer 27B,
         which uses n_embd/n_head); GeGLU (tanh GELU); tied embeddings; NEOX.
gemma3   arch gemma3; n_embd 64, n_head 2, n_head_kv 1, head_dim 16 (!= 32),
         n_ff 64, 6 layers: sliding window 16 on layers 0-4, layer 5 global
         (default pattern 6, no pattern key, as in released files); rope base 1e6
         global with linear scaling factor 8 (rope.scaling.type linear,
         rope.scaling.factor 8: Gemma 3 4B+), local layers base 10000 unscaled;
         QK RMSNorm; post norms; embedding scale; GeGLU; tied;
         final_logit_softcapping 10 (raw logits std 3.1, max 11.5): released
         Gemma 3 files have none, llama.cpp applies it when present.
gemma    arch gemma (Gemma 1); n_embd 64, n_head 4, n_head_kv 1 (MQA as Gemma 2B),
         head_dim 32 (!= 16, as Gemma 7B's 256 != 3072/16), n_ff 128, 2 layers;
         embedding scale sqrt(n_embd), q scaled by 1/sqrt(head_dim), GeGLU, tied,
         NEOX, no post norms.

Gemma norm weights are stored as they are used (the converter's +1 is already
folded in), so every norm here is a plain RMSNorm times the stored weight.

Weights: N(0, gain^2 / fan_in) matrices, norms 1 + N(0, 0.01); q/k projections
scaled so that attention is peaked (scores std ~2-3) and RoPE matters; the
Gemmas' embeddings small (0.5 / sqrt(n_embd)) and their blocks' outputs x2, so
that the scaled embedding does not make every position predict its own token.
Logits' standard deviation is 2.8-3.1 for every model.  Each model's seed
(make_specs) was picked among 12 to 16 candidates so that no position is a near tie:
an exact model computed as slim does (fp16 K/V) keeps llama.cpp's top-1 at
every position with a margin >= 0.004 (--verify prints it), so the test's
top-1 check measures logic, not rounding.

--verify (this build of llama.cpp, llama-cpp-python 0.3.36) found: a float64
numpy model of each graph below matches llama.cpp to <= 7e-6 (Gemmas: <= 2.1e-3,
llama.cpp's GELU reading a table of fp16 values); the same model with exact
GELU and fp16 K/V (slim's arithmetic) differs by 2.7e-3..1.4e-2; switching any
feature off in llama.cpp moves the logits by 2.6 to 19; a window one key wider,
the attention factor on the unrotated dims too, or the attention softcap
before the q scale each move them by 3 to 12.
"""
import argparse
import math
import os
import struct
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(ROOT, "tests", "data")

SEED = 20250611
N_TOKENS = 160
TOP_K = 32
N_CTX = 256
CTX_LEN = 512
N_VOCAB = 320

# ----------------------------------------------------------------------------
# vocabulary


def make_vocab():
    """(text, score, type): SentencePiece types 1 normal, 2 unknown, 3 control, 6 byte."""
    # <|endoftext|> and <|end|>: llama.cpp's vocabulary loader looks both up
    # for arch phi3 and refuses the model without them.
    vocab = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3), ("<|endoftext|>", 0.0, 3),
             ("<|end|>", 0.0, 3)]
    vocab += [("<0x%02X>" % b, 0.0, 6) for b in range(256)]
    letters = "etaoinshrdlu"
    pieces = ["\u2581" + a for a in letters] + ["\u2581" + a + b for a in letters for b in letters]
    for i, p in enumerate(pieces[: N_VOCAB - len(vocab)]):
        vocab.append((p, -1.0 - i * 0.25, 1))
    assert len(vocab) == N_VOCAB and len(set(t for t, _, _ in vocab)) == N_VOCAB
    return vocab


VOCAB = make_vocab()
NORMAL_IDS = [i for i, (_, _, ty) in enumerate(VOCAB) if ty == 1]

# ----------------------------------------------------------------------------
# model specifications


def llama3_rope_factors(head_dim, base, factor, low, high, old_ctx):
    """rope_freqs.weight as convert_hf_to_gguf.py's LlamaModel writes it."""
    freqs = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    out = []
    for f in freqs:
        wavelen = 2 * math.pi / f
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def base_spec(**kw):
    s = dict(
        n_embd=64, n_layer=2, n_ff=128, n_head=4, n_head_kv=2, head_dim=None, n_rot=None,
        rope_base=10000.0, eps=1e-5, neox=True, act="silu", qk_norm=False, post_norms=False,
        embd_scale=False, tied=False, fused_qkv=False, fused_up=False, qkv_bias=False,
        attn_softcap=0.0, final_softcap=0.0, swa_window=0, swa_pattern=0,
        rope_base_swa=None, rope_linear=0.0, rope_freqs=None, longrope=None,
        write_key_length=False, qk_gain=1.5, logit_gain=3.0, out_gain=1.0, seed=0,
        extra_keys={})
    s.update(kw)
    if s["head_dim"] is None:
        s["head_dim"] = s["n_embd"] // s["n_head"]
    if s["n_rot"] is None:
        s["n_rot"] = s["head_dim"]
    return s


def make_specs():
    specs = {}
    specs["llama3"] = base_spec(
        arch="llama", n_head=8, n_head_kv=2, rope_base=500000.0, neox=False,
        rope_freqs=llama3_rope_factors(8, 500000.0, 8.0, 1.0, 4.0, 256), seed=0)
    specs["mistral"] = base_spec(
        arch="llama", n_head=4, n_head_kv=2, head_dim=32, n_ff=96, rope_base=1e6, neox=False,
        write_key_length=True, seed=9)
    specs["qwen2"] = base_spec(
        arch="qwen2", rope_base=1e6, qkv_bias=True, tied=True, out_gain=2.0, seed=9)
    specs["qwen3"] = base_spec(
        arch="qwen3", head_dim=32, eps=1e-6, rope_base=1e6, qk_norm=True, write_key_length=True,
        seed=6)
    n_rot = 12
    half = n_rot // 2
    long_f = (1.0 + 39.0 * (np.arange(half) / (half - 1)) ** 2).astype(np.float32)
    short_f = (1.0 + 0.1 * np.arange(half)).astype(np.float32)
    specs["phi3"] = base_spec(
        arch="phi3", n_rot=n_rot, fused_qkv=True, fused_up=True,
        longrope=dict(long=long_f, short=short_f, n_ctx_orig=64,
                      attn_factor=math.sqrt(1 + math.log(CTX_LEN / 64) / math.log(64))),
        extra_keys={"sliding_window": 2047}, seed=7)
    specs["gemma2"] = base_spec(
        arch="gemma2", head_dim=32, eps=1e-6, act="gelu", post_norms=True, embd_scale=True,
        tied=True, attn_softcap=10.0, final_softcap=10.0, swa_window=16, swa_pattern=2,
        write_key_length=True, qk_gain=3.0, logit_gain=6.0, out_gain=2.0, seed=9)
    specs["gemma3"] = base_spec(
        arch="gemma3", n_layer=6, n_ff=64, n_head=2, n_head_kv=1, head_dim=16, eps=1e-6,
        act="gelu", qk_norm=True, post_norms=True, embd_scale=True, tied=True, rope_base=1e6,
        rope_base_swa=10000.0, rope_linear=8.0, swa_window=16, swa_pattern=6, final_softcap=10.0,
        write_key_length=True, qk_gain=2.0, logit_gain=6.0, out_gain=2.0, seed=3)
    specs["gemma"] = base_spec(
        arch="gemma", n_head=4, n_head_kv=1, head_dim=32, eps=1e-6, act="gelu", embd_scale=True,
        tied=True, write_key_length=True, logit_gain=6.0, out_gain=2.0, seed=3)
    return specs


# ----------------------------------------------------------------------------
# weights


def make_tensors(name, s):
    """Tensors by GGUF name, numpy shape (ne1, ne0): rows are output features."""
    rng = np.random.default_rng([SEED, sum(map(ord, name)), s["seed"]])
    E, F, L = s["n_embd"], s["n_ff"], s["n_layer"]
    hd, nh, nkv = s["head_dim"], s["n_head"], s["n_head_kv"]
    Q, KV = nh * hd, nkv * hd

    def mat(rows, cols, gain=1.0):
        return (rng.standard_normal((rows, cols)) * gain / math.sqrt(cols)).astype(np.float32)

    def norm(n, spread=0.1):
        return (1.0 + spread * rng.standard_normal(n)).astype(np.float32)

    t = {}
    # Logits' scale: the LM head's rows (the embedding when tied), or for the
    # Gemmas (whose embedding is scaled by sqrt(n_embd) and must not swamp the
    # blocks' outputs, else every position predicts its own token) the final
    # norm's weights.
    out_norm = 1.0
    if s["embd_scale"]:
        embd_std, out_norm = 0.5 / math.sqrt(E), s["logit_gain"]
    elif s["tied"]:
        embd_std = s["logit_gain"] / math.sqrt(E)
    else:
        embd_std = 1.0
    t["token_embd.weight"] = (rng.standard_normal((N_VOCAB, E)) * embd_std).astype(np.float32)
    t["output_norm.weight"] = out_norm * norm(E)
    if not s["tied"]:
        t["output.weight"] = mat(N_VOCAB, E, s["logit_gain"])
    if s["rope_freqs"] is not None:
        t["rope_freqs.weight"] = s["rope_freqs"]
    if s["longrope"] is not None:
        t["rope_factors_long.weight"] = s["longrope"]["long"]
        t["rope_factors_short.weight"] = s["longrope"]["short"]
    g = math.sqrt(s["qk_gain"])
    for il in range(L):
        p = "blk.%d." % il
        t[p + "attn_norm.weight"] = norm(E)
        wq, wk, wv = mat(Q, E, g), mat(KV, E, g), mat(KV, E)
        if s["fused_qkv"]:
            t[p + "attn_qkv.weight"] = np.concatenate([wq, wk, wv], axis=0)
        else:
            t[p + "attn_q.weight"], t[p + "attn_k.weight"], t[p + "attn_v.weight"] = wq, wk, wv
        if s["qkv_bias"]:
            t[p + "attn_q.bias"] = (0.5 * rng.standard_normal(Q)).astype(np.float32)
            t[p + "attn_k.bias"] = (0.5 * rng.standard_normal(KV)).astype(np.float32)
            t[p + "attn_v.bias"] = (0.5 * rng.standard_normal(KV)).astype(np.float32)
        if s["qk_norm"]:
            t[p + "attn_q_norm.weight"] = norm(hd)
            t[p + "attn_k_norm.weight"] = norm(hd)
        t[p + "attn_output.weight"] = mat(E, Q, s["out_gain"])
        if s["post_norms"]:
            t[p + "post_attention_norm.weight"] = s["out_gain"] * norm(E)
        t[p + "ffn_norm.weight"] = norm(E)
        gate, up = mat(F, E), mat(F, E)
        if s["fused_up"]:
            t[p + "ffn_up.weight"] = np.concatenate([gate, up], axis=0)
        else:
            t[p + "ffn_gate.weight"], t[p + "ffn_up.weight"] = gate, up
        t[p + "ffn_down.weight"] = mat(E, F, s["out_gain"])
        if s["post_norms"]:
            t[p + "post_ffw_norm.weight"] = s["out_gain"] * norm(E)
    return t


def swa_layers(s):
    if not s["swa_window"]:
        return [False] * s["n_layer"]
    n = s["swa_pattern"]
    # llama.cpp's set_swa_pattern(n): layer il is local iff il % n < n - 1
    return [il % n < n - 1 for il in range(s["n_layer"])]


# ----------------------------------------------------------------------------
# GGUF


def write_gguf(path, name, s, tensors, extra=None):
    import gguf
    w = gguf.GGUFWriter(path, s["arch"])
    w.add_name("synth-" + name)
    w.add_file_type(0)
    w.add_context_length(CTX_LEN)
    w.add_embedding_length(s["n_embd"])
    w.add_block_count(s["n_layer"])
    w.add_feed_forward_length(s["n_ff"])
    w.add_head_count(s["n_head"])
    w.add_head_count_kv(s["n_head_kv"])
    w.add_layer_norm_rms_eps(s["eps"])
    w.add_rope_freq_base(s["rope_base"])
    if s["write_key_length"]:
        w.add_key_length(s["head_dim"])
        w.add_value_length(s["head_dim"])
    w.add_rope_dimension_count(s["n_rot"])
    if s["attn_softcap"]:
        w.add_attn_logit_softcapping(s["attn_softcap"])
    if s["final_softcap"]:
        w.add_final_logit_softcapping(s["final_softcap"])
    if s["swa_window"]:
        w.add_sliding_window(s["swa_window"])
    if s["rope_linear"]:
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(s["rope_linear"])
    if s["longrope"]:
        w.add_rope_scaling_orig_ctx_len(s["longrope"]["n_ctx_orig"])
        w.add_rope_scaling_attn_factors(s["longrope"]["attn_factor"])
    keys = dict(s["extra_keys"])
    keys.update(extra or {})
    for k, v in keys.items():
        full = "%s.%s" % (s["arch"], k if "." in k else "attention." + k)
        if isinstance(v, float):
            w.add_float32(full, v)
        else:
            w.add_uint32(full, v)
    w.add_tokenizer_model("llama")
    w.add_token_list([t for t, _, _ in VOCAB])
    w.add_token_scores([sc for _, sc, _ in VOCAB])
    w.add_token_types([ty for _, _, ty in VOCAB])
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    for k, v in tensors.items():
        w.add_tensor(k, np.ascontiguousarray(v, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ----------------------------------------------------------------------------
# llama.cpp


def llama_logits(path, tokens, n_ctx=N_CTX, f16_kv=False):
    from llama_cpp import Llama
    kv = 1 if f16_kv else 0  # GGML_TYPE_F16 / GGML_TYPE_F32
    llm = Llama(model_path=path, n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, n_threads=2,
                logits_all=True, verbose=False, seed=0, type_k=kv, type_v=kv, swa_full=True,
                flash_attn=False)
    assert llm.n_vocab() == N_VOCAB
    llm.eval(list(tokens))
    out = np.array(llm.scores[: len(tokens)], dtype=np.float32)
    llm.close()
    return out


# ----------------------------------------------------------------------------
# float64 numpy model of llama.cpp's graphs (the --verify check)


def _fp16(x):
    return x.astype(np.float16).astype(np.float64)


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def gelu_ggml(x):
    """ggml's CPU GELU: a table over fp16 inputs holding fp16 results."""
    y = _fp16(gelu_tanh(_fp16(x).astype(np.float32).astype(np.float64)))
    return np.where(x <= -10, 0.0, np.where(x >= 10, x, y))


def rmsnorm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def rope(x, pos, n_rot, base, freq_scale, factors, mscale, neox, mscale_all=False):
    """x [T, H, D]; ggml_rope_ext with ext_factor 0: dims >= n_rot pass through
    unchanged (not multiplied by mscale; mscale_all=True does, as a check)."""
    half = n_rot // 2
    inv = base ** (-2.0 * np.arange(half) / n_rot)
    if factors is not None:
        inv = inv / factors.astype(np.float64)
    theta = (pos[:, None] * freq_scale) * inv[None, :]           # [T, half]
    c = (np.cos(theta) * mscale)[:, None, :]
    sn = (np.sin(theta) * mscale)[:, None, :]
    y = x * mscale if mscale_all else x.copy()
    if neox:
        a, b = x[..., :half], x[..., half:n_rot]
        y[..., :half] = a * c - b * sn
        y[..., half:n_rot] = a * sn + b * c
    else:
        a, b = x[..., 0:n_rot:2], x[..., 1:n_rot:2]
        y[..., 0:n_rot:2] = a * c - b * sn
        y[..., 1:n_rot:2] = a * sn + b * c
    return y


def reference_logits(s, t, tokens, ggml_gelu=True, kv_fp16=False, use_long=True, alt=()):
    """alt: deliberate deviations, to show llama.cpp does not do them:
    'window+1' (one more key in the window), 'mscale_all' (attn_factor also on
    the unrotated dims), 'cap_unscaled' (softcap before the 1/sqrt(d) scale)."""
    T = len(tokens)
    E, L = s["n_embd"], s["n_layer"]
    hd, nh, nkv = s["head_dim"], s["n_head"], s["n_head_kv"]
    Q, KV, F = nh * hd, nkv * hd, s["n_ff"]
    W = {k: v.astype(np.float64) for k, v in t.items()}
    pos = np.arange(T, dtype=np.float64)
    swa = swa_layers(s)
    factors, mscale = None, 1.0
    if s["rope_freqs"] is not None:
        factors = s["rope_freqs"]
    if s["longrope"] is not None:
        factors = s["longrope"]["long" if use_long else "short"]
        mscale = s["longrope"]["attn_factor"]
    act = (gelu_ggml if ggml_gelu else gelu_tanh) if s["act"] == "gelu" else (
        lambda g: g / (1 + np.exp(-g)))
    x = W["token_embd.weight"][tokens]
    if s["embd_scale"]:
        x = x * np.float32(math.sqrt(E))
    mask = np.tril(np.ones((T, T), dtype=bool))
    for il in range(L):
        p = "blk.%d." % il
        h = rmsnorm(x, W[p + "attn_norm.weight"], s["eps"])
        if s["fused_qkv"]:
            qkv = h @ W[p + "attn_qkv.weight"].T
            q, k, v = qkv[:, :Q], qkv[:, Q:Q + KV], qkv[:, Q + KV:]
        else:
            q, k, v = (h @ W[p + "attn_q.weight"].T, h @ W[p + "attn_k.weight"].T,
                       h @ W[p + "attn_v.weight"].T)
        if s["qkv_bias"]:
            q, k, v = q + W[p + "attn_q.bias"], k + W[p + "attn_k.bias"], v + W[p + "attn_v.bias"]
        q, k, v = q.reshape(T, nh, hd), k.reshape(T, nkv, hd), v.reshape(T, nkv, hd)
        if s["qk_norm"]:
            q = rmsnorm(q, W[p + "attn_q_norm.weight"], s["eps"])
            k = rmsnorm(k, W[p + "attn_k_norm.weight"], s["eps"])
        base, fscale = s["rope_base"], 1.0 / s["rope_linear"] if s["rope_linear"] else 1.0
        if swa[il] and s["rope_base_swa"] is not None:
            base, fscale = s["rope_base_swa"], 1.0
        ma = "mscale_all" in alt
        q = rope(q, pos, s["n_rot"], base, fscale, factors, mscale, s["neox"], ma)
        k = rope(k, pos, s["n_rot"], base, fscale, factors, mscale, s["neox"], ma)
        if kv_fp16:
            k, v = _fp16(k), _fp16(v)
        cap_unscaled = "cap_unscaled" in alt
        if not cap_unscaled:
            q = q / math.sqrt(hd)
        win = s["swa_window"] + ("window+1" in alt)
        m = mask & (pos[:, None] - pos[None, :] < win) if swa[il] else mask
        out = np.zeros((T, nh, hd))
        for hh in range(nh):
            kh = hh // (nh // nkv)
            sc = q[:, hh, :] @ k[:, kh, :].T
            if s["attn_softcap"]:
                sc = s["attn_softcap"] * np.tanh(sc / s["attn_softcap"])
            if cap_unscaled:
                sc = sc / math.sqrt(hd)
            sc = np.where(m, sc, -np.inf)
            sc = np.exp(sc - sc.max(-1, keepdims=True))
            out[:, hh, :] = (sc / sc.sum(-1, keepdims=True)) @ v[:, kh, :]
        o = out.reshape(T, Q) @ W[p + "attn_output.weight"].T
        if s["post_norms"]:
            o = rmsnorm(o, W[p + "post_attention_norm.weight"], s["eps"])
        x = x + o
        h = rmsnorm(x, W[p + "ffn_norm.weight"], s["eps"])
        if s["fused_up"]:
            gu = h @ W[p + "ffn_up.weight"].T
            a = act(gu[:, :F]) * gu[:, F:]
        else:
            a = act(h @ W[p + "ffn_gate.weight"].T) * (h @ W[p + "ffn_up.weight"].T)
        o = a @ W[p + "ffn_down.weight"].T
        if s["post_norms"]:
            o = rmsnorm(o, W[p + "post_ffw_norm.weight"], s["eps"])
        x = x + o
    h = rmsnorm(x, W["output_norm.weight"], s["eps"])
    logits = h @ W["output.weight" if "output.weight" in W else "token_embd.weight"].T
    if s["final_softcap"]:
        logits = s["final_softcap"] * np.tanh(logits / s["final_softcap"])
    return logits


def binding_stats(s, t, tokens):
    """How much the softcaps bind: max raw |score| / cap, max raw |logit| / cap."""
    out = {}
    if s["final_softcap"]:
        s2 = dict(s, final_softcap=0.0)
        raw = reference_logits(s2, t, tokens)
        out["raw logits max/cap"] = np.abs(raw).max() / s["final_softcap"]
        out["raw logits > cap/2"] = float((np.abs(raw) > s["final_softcap"] / 2).mean())
    return out


# ----------------------------------------------------------------------------
# golden file


def write_golden(path, tokens, logits):
    with open(path, "wb") as f:
        f.write(b"SLIMFWD1")
        f.write(struct.pack("<4I", 1, N_VOCAB, TOP_K, 0))
        f.write(struct.pack("<2I", len(tokens), len(tokens)))
        f.write(np.asarray(tokens, dtype="<i4").tobytes())
        for row in logits.astype(np.float64):
            m = row.max()
            lse = m + np.log(np.exp(row - m).sum())
            ids = np.argsort(-row, kind="stable")[:TOP_K]
            f.write(struct.pack("<f", lse))
            f.write(ids.astype("<i4").tobytes())
            f.write(row[ids].astype("<f4").tobytes())


def test_tokens():
    rng = np.random.default_rng([SEED, 1])
    return [1] + [int(x) for x in rng.choice(NORMAL_IDS, N_TOKENS - 1)]


def summary(logits):
    srt = np.sort(logits, axis=1)
    gap = srt[:, -1] - srt[:, -2]
    return logits.std(), gap


# ----------------------------------------------------------------------------
# --verify: each feature switched off in llama.cpp, and the numpy model


def ablations(name, s):
    """(what, spec change, tensor change, extra keys, expect_change)."""
    out = []
    def drop(*names):
        return lambda t: {k: v for k, v in t.items() if k not in names}
    def zero_bias(t):
        return {k: (np.zeros_like(v) if k.endswith(".bias") else v) for k, v in t.items()}
    if name == "llama3":
        out.append(("rope_freqs.weight removed", {}, drop("rope_freqs.weight"), {}, True))
    if name == "mistral":
        out.append(("llama.attention.sliding_window = 16 added", {}, None,
                    {"sliding_window": 16}, False))
    if name == "qwen2":
        out.append(("q/k/v biases zeroed", {}, zero_bias, {}, True))
    if name == "qwen3":
        out.append(("q/k norms set to 1", {}, lambda t: {
            k: (np.ones_like(v) if "_norm" in k and "attn_" in k else v) for k, v in t.items()},
            {}, True))
    if name == "phi3":
        out.append(("rope_factors_long/short removed", {}, drop(
            "rope_factors_long.weight", "rope_factors_short.weight"), {}, True))
        out.append(("long factors replaced by short", {}, lambda t: dict(
            t, **{"rope_factors_long.weight": t["rope_factors_short.weight"]}), {}, True))
        out.append(("attn_factor 1", {"longrope": dict(s["longrope"], attn_factor=1.0)},
                    None, {}, True))
        out.append(("sliding_window 16 instead of 2047", {}, None, {"sliding_window": 16},
                    False))
    if name == "gemma2":
        out.append(("attn softcap 1e4", {"attn_softcap": 1e4}, None, {}, True))
        out.append(("final softcap 1e4", {"final_softcap": 1e4}, None, {}, True))
        out.append(("sliding_window 4096", {"swa_window": 4096}, None, {}, True))
    if name == "gemma3":
        out.append(("sliding_window 4096", {"swa_window": 4096}, None, {}, True))
        out.append(("no rope scaling keys", {"rope_linear": 0.0}, None, {}, True))
        out.append(("final softcap 1e4", {"final_softcap": 1e4}, None, {}, True))
    return out


def verify(name, s, t, tokens, base_llama, tmp):
    ref = reference_logits(s, t, tokens)
    std = base_llama.std()
    print("  numpy float64 model of the graph (ggml's fp16 GELU table) vs llama.cpp: "
          "max |d| %.2e (%.1e x std)" % (np.abs(ref - base_llama).max(),
                                          np.abs(ref - base_llama).max() / std))
    if s["act"] == "gelu":
        exact = reference_logits(s, t, tokens, ggml_gelu=False)
        print("  exact tanh GELU instead: max |d| %.2e" % np.abs(exact - base_llama).max())
    f16 = reference_logits(s, t, tokens, ggml_gelu=False, kv_fp16=True)
    print("  exact GELU + fp16 K/V (as slim keeps them) vs llama.cpp: max |d| %.2e "
          "(%.1e x std)" % (np.abs(f16 - base_llama).max(), np.abs(f16 - base_llama).max() / std))
    # Top-1 robustness: at each position, llama.cpp's top-1 margin over the
    # runner-up minus how much this model's error narrows it.
    top = np.argsort(-base_llama, axis=1)[:, :2]
    r = np.arange(len(tokens))
    margin = (base_llama[r, top[:, 0]] - base_llama[r, top[:, 1]]) - np.abs(
        (f16 - base_llama)[r, top[:, 0]] - (f16 - base_llama)[r, top[:, 1]])
    print("  that model's top-1 disagrees at %d of %d positions; smallest margin left %.4f"
          % (int((f16.argmax(1) != base_llama.argmax(1)).sum()), len(tokens), margin.min()))
    ll16 = llama_logits(os.path.join(tmp, "base.gguf"), tokens, f16_kv=True)
    print("  llama.cpp with its default F16 K/V cache vs F32: max |d| %.2e; vs the model "
          "with fp16 K/V: %.2e" % (np.abs(ll16 - base_llama).max(), np.abs(ll16 - f16).max()))
    for k, v in binding_stats(s, t, tokens).items():
        print("  %s: %.3f" % (k, v))
    if s["longrope"] is not None:
        p = os.path.join(tmp, "base.gguf")
        short_ctx = llama_logits(p, tokens[:64], n_ctx=64)
        ref_s = reference_logits(s, t, tokens[:64], use_long=False)
        ref_l = reference_logits(s, t, tokens[:64], use_long=True)
        print("  llama.cpp asked for n_ctx 64 (<= original 64; it pads to 256) vs numpy with "
              "short factors: %.2e, with long: %.2e" % (np.abs(short_ctx - ref_s).max(),
                                                       np.abs(short_ctx - ref_l).max()))
    alts = []
    if s["swa_window"]:
        alts.append(("window+1", "a window of %d keys instead of %d" % (s["swa_window"] + 1,
                                                                        s["swa_window"])))
    if s["longrope"] is not None:
        alts.append(("mscale_all", "attn_factor on all head dims, not only the rotated"))
    if s["attn_softcap"]:
        alts.append(("cap_unscaled", "attention softcap before the 1/sqrt(head_dim) scale"))
    for a, what in alts:
        d = np.abs(reference_logits(s, t, tokens, alt=(a,)) - base_llama).max()
        print("  numpy with %s: max |d| vs llama.cpp %.3e" % (what, d))
    # Keys no released file of the family sets, to see how llama.cpp reads them:
    # the file gets the key, the numpy model the meaning it is assumed to have.
    checks = []
    if name in ("gemma2", "gemma3"):
        checks.append(("rope.freq_base_swa 20000 -> local layers' base", {
            "rope.freq_base_swa": 20000.0}, dict(s, rope_base_swa=20000.0), {}))
    if name == "gemma2":
        checks.append(("linear rope factor 4 -> local layers scaled too", {}, dict(
            s, rope_linear=4.0), {"rope_linear": 4.0}))
    for what, keys, s_ref, s_file in checks:
        p = os.path.join(tmp, "check.gguf")
        write_gguf(p, name, dict(s, **s_file), t, keys)
        d = np.abs(llama_logits(p, tokens) - reference_logits(s_ref, t, tokens)).max()
        print("  llama.cpp with %-48s numpy max |d| %.2e -> %s" % (
            what + ":", d, "as assumed" if d < 1e-2 else "NOT as assumed"))
    for what, sch, tch, extra, expect in ablations(name, s):
        s2 = dict(s, **sch)
        t2 = tch(t) if tch else t
        p = os.path.join(tmp, "ablate.gguf")
        write_gguf(p, name, s2, t2, extra)
        try:
            ll = llama_logits(p, tokens)
            d = np.abs(ll - base_llama).max()
            verdict = {True: "binds" if d > 1e-3 else "NO EFFECT (unexpected)",
                       False: "ignored" if d == 0 else "CHANGES (unexpected)",
                       None: "applied" if d > 1e-3 else "not applied"}[expect]
            print("  llama.cpp, %-40s max |d| %.3e  -> %s" % (what + ":", d, verdict))
        except Exception as e:  # llama.cpp refused the file
            print("  llama.cpp, %-40s refused (%s)" % (what + ":", e))


# ----------------------------------------------------------------------------
# --hf: a Hugging Face checkpoint of a synthetic model, llama.cpp as its oracle

# Qwen3 tied (Qwen3-0.6B-like), the same family settings as the GGUF case.
HF_SPECS = {"qwen3": dict(arch="qwen3", head_dim=32, eps=1e-6, rope_base=1e6, qk_norm=True,
                          write_key_length=True, tied=True, seed=6)}
HF_ARCH = {"qwen3": "Qwen3ForCausalLM"}
HF_N_TOKENS = 64

# GGUF name -> Hugging Face name below "model." (the layer's "blk.N." -> "layers.N.").
HF_NAMES = {
    "token_embd.weight": "embed_tokens.weight", "output_norm.weight": "norm.weight",
    "attn_norm.weight": "input_layernorm.weight", "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight", "attn_v.weight": "self_attn.v_proj.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "attn_q_norm.weight": "self_attn.q_norm.weight",
    "attn_k_norm.weight": "self_attn.k_norm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight", "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight", "ffn_down.weight": "mlp.down_proj.weight"}


def hf_config(name, s):
    """config.json as transformers 5.23's Qwen3Config(...).to_json_string() writes it."""
    L = s["n_layer"]
    return {
        "architectures": [HF_ARCH[name]], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 1, "eos_token_id": 2, "head_dim": s["head_dim"], "hidden_act": "silu",
        "hidden_size": s["n_embd"], "initializer_range": 0.02,
        "intermediate_size": s["n_ff"], "layer_types": ["full_attention"] * L,
        "max_position_embeddings": CTX_LEN, "max_window_layers": 28, "model_type": name,
        "num_attention_heads": s["n_head"], "num_hidden_layers": L,
        "num_key_value_heads": s["n_head_kv"], "pad_token_id": None, "rms_norm_eps": s["eps"],
        "rope_parameters": {"rope_theta": s["rope_base"], "rope_type": "default"},
        "sliding_window": None, "tie_word_embeddings": s["tied"], "dtype": "float32",
        "transformers_version": "5.23.0", "use_cache": True, "use_sliding_window": False,
        "vocab_size": N_VOCAB}


def write_safetensors(path, tensors):
    import json
    header, off = {}, 0
    for k, v in tensors.items():
        n = v.size * 4
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for v in tensors.values():
            f.write(np.ascontiguousarray(v, dtype="<f4").tobytes())


def write_hf(name, out_dir):
    """tests/data/hf/<name>/: config.json, model.safetensors (F32, the GGUF's
    tensors under their Hugging Face names: Qwen3's Q/K rows need no
    permutation, both use NEOX pairs) and golden.bin (tests/unit/
    test_hf_model.c's format) with llama.cpp's logits of the same weights;
    tools/golden/gen_hf.py --only qwen3 then compares transformers with those
    and writes transformers' logits in their place (the committed golden)."""
    import json
    s = base_spec(**HF_SPECS[name])
    t = make_tensors(name + "_hf", s)
    os.makedirs(out_dir, exist_ok=True)
    hf = {}
    for k, v in t.items():
        if k.startswith("blk."):
            il, rest = k[4:].split(".", 1)
            hf["model.layers.%s.%s" % (il, HF_NAMES[rest])] = v
        else:
            hf["model." + HF_NAMES[k]] = v
    write_safetensors(os.path.join(out_dir, "model.safetensors"), hf)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(hf_config(name, s), f, indent=2, sort_keys=True)
        f.write("\n")
    rng = np.random.default_rng([SEED, 2])
    tokens = [1] + [int(x) for x in rng.choice(NORMAL_IDS, HF_N_TOKENS - 1)]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "hf.gguf")
        write_gguf(path, name, s, t)
        logits = llama_logits(path, tokens, n_ctx=128)
    with open(os.path.join(out_dir, "golden.bin"), "wb") as f:
        f.write(struct.pack("<3i", 0x534C4847, len(tokens), N_VOCAB))
        f.write(np.asarray(tokens, dtype="<i4").tobytes())
        f.write(logits.astype("<f4").tobytes())
    std, gap = summary(logits)
    print("hf %s: logits std %.3f, top1-top2 gap min %.4f, %d bytes" % (
        name, std, gap.min(), sum(os.path.getsize(os.path.join(out_dir, x))
                                  for x in os.listdir(out_dir))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--verify", action="store_true")
    ap.add_argument("--only", default=None)
    ap.add_argument("--out", default=DATA)
    ap.add_argument("--hf", default=None, help="write tests/data/hf/<name> (qwen3) and stop")
    args = ap.parse_args()
    if args.hf:
        write_hf(args.hf, os.path.join(args.out, "hf", args.hf))
        return
    specs = make_specs()
    tokens = test_tokens()
    names = [args.only] if args.only else list(specs)
    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            s = specs[name]
            t = make_tensors(name, s)
            if args.verify:
                path = os.path.join(tmp, "base.gguf")
            else:
                path = os.path.join(args.out, "synth_%s.gguf" % name)
            write_gguf(path, name, s, t)
            logits = llama_logits(path, tokens)
            std, gap = summary(logits)
            size = os.path.getsize(path)
            print("%-8s arch %-7s %7d bytes  logits std %.3f, top1-top2 gap min %.4f "
                  "(positions with gap < 0.01: %d), top-1 = current token at %d" % (
                      name, s["arch"], size, std, gap.min(), int((gap < 0.01).sum()),
                      int((logits.argmax(1) == np.array(tokens)).sum())))
            if args.verify:
                verify(name, s, t, tokens, logits, tmp)
            else:
                gpath = os.path.join(args.out, "synth_%s.bin" % name)
                write_golden(gpath, tokens, logits)
                total += size + os.path.getsize(gpath)
            sys.stdout.flush()
    if not args.verify:
        print("total %d bytes" % total)


if __name__ == "__main__":
    main()
