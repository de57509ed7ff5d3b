#!/usr/bin/env python3
"""Position 0 of Gemma 3 (BOS alone) evaluated in float64, next to slim and llama.cpp.

With one token, attention is softmax over one key = 1, so each head's output
is V: the forward is embedding, then per layer V, Wo, the norms and the FFN,
then the tied output matrix.  Every weight is dequantized exactly in double
(Q8_0 d*q, Q5_0 d*(q-16), Q4_K d*sc*q - dmin*m, Q6_K d*sc*(q-32): each exact in
a double), and each matmul is evaluated in double on
  f64q   its input quantized as the weight format's vec_dot_type reference does
         (GGML's quantize_row_q8_0_ref for Q8_0/Q5_0, quantize_row_q8_K_ref for
         Q4_K/Q6_K; in float32 arithmetic, from the float32 rounding of the
         double activation), the quantized values then exact in double;
  f64    its input as is (float activations).
f64q-kv16 is f64q with V rounded to fp16, as slim's and llama.cpp's default
KV caches store it.  --first adds f64q-kv16-x86q8: that with Q8_0 activations
rounded as llama.cpp's x86 quantize_row_q8_0 does (id = 127/amax rather than
1/d, ties to even rather than away from zero; its Q8_K is the reference).

Printed per evaluation: log p(TOKEN | BOS), KL(ref || it) over the whole
vocabulary and max |d log p| against f64q and against llama.cpp (no flash
attention).  slim runs through tools/golden/pos0_slim.c (built here against
build/libslim.a), repacked (default) and SLIM_CPU_REPACK=0.

--noise N adds N f64q runs with every matmul output perturbed by a random
relative 2^-24 (one float32 rounding): how far rounding alone moves the
figures, through the activation quantizers' rounding flips.

usage (repo root, after make lib):
  /work/venvs/pyslim/bin/python tools/golden/pos0_reference.py [MODEL.gguf] [--token 184] [--noise 3]
needs numpy, llama-cpp-python (the GGUF file is read here: no gguf-py)
"""
import argparse
import os
import struct
import subprocess
import sys
import time

import numpy as np


F16 = np.dtype("<f2")


def h(raw):  # fp16 bytes (..., 2) -> float64
    return raw.copy().view(F16)[..., 0].astype(np.float64)


# ---- exact dequantization (double) -------------------------------------------------------------

def deq_q8_0(raw):  # raw (rows, nb*34) uint8
    b = raw.reshape(raw.shape[0], -1, 34)
    return (h(b[..., 0:2])[..., None] * b[..., 2:].view(np.int8).astype(np.float64)).reshape(raw.shape[0], -1)


def deq_q5_0(raw):
    b = raw.reshape(raw.shape[0], -1, 22)
    d = h(b[..., 0:2])
    qh = b[..., 2:6].copy().view("<u4")[..., 0].astype(np.int64)
    qs = b[..., 6:22].astype(np.int64)
    j = np.arange(16)
    lo = (qs & 15) | (((qh[..., None] >> j) & 1) << 4)
    hi = (qs >> 4) | (((qh[..., None] >> (j + 16)) & 1) << 4)
    q = np.concatenate([lo, hi], axis=-1) - 16
    return (d[..., None] * q).reshape(raw.shape[0], -1)


def k4_scale_min(s):  # s (..., 12) int64 -> sc, m (..., 8)
    sc = np.empty(s.shape[:-1] + (8,), np.int64)
    m = np.empty_like(sc)
    sc[..., :4] = s[..., 0:4] & 63
    m[..., :4] = s[..., 4:8] & 63
    sc[..., 4:] = (s[..., 8:12] & 15) | ((s[..., 0:4] >> 6) << 4)
    m[..., 4:] = (s[..., 8:12] >> 4) | ((s[..., 4:8] >> 6) << 4)
    return sc, m


def deq_q4_k(raw):
    b = raw.reshape(raw.shape[0], -1, 144)
    d, dmin = h(b[..., 0:2]), h(b[..., 2:4])
    sc, m = k4_scale_min(b[..., 4:16].astype(np.int64))
    qs = b[..., 16:144].astype(np.int64).reshape(b.shape[:-1] + (4, 32))
    q = np.stack([qs & 15, qs >> 4], axis=-2).reshape(b.shape[:-1] + (8, 32))  # sub-block 2c, 2c+1
    y = (d[..., None] * sc)[..., None] * q - (dmin[..., None] * m)[..., None]
    return y.reshape(raw.shape[0], -1)


def deq_q6_k(raw):
    b = raw.reshape(raw.shape[0], -1, 210)
    ql = b[..., 0:128].astype(np.int64)
    qh = b[..., 128:192].astype(np.int64)
    sc = b[..., 192:208].view(np.int8).astype(np.int64)
    d = h(b[..., 208:210])
    e = np.arange(256)
    hh, s, l = e // 128, (e // 32) % 4, e % 32
    lo = (ql[..., 64 * hh + 32 * (s & 1) + l] >> (4 * (s >> 1))) & 15
    hi = (qh[..., 32 * hh + l] >> (2 * s)) & 3
    q = (lo | hi << 4) - 32
    y = (d[..., None] * sc[..., e // 16]) * q
    return y.reshape(raw.shape[0], -1)


DEQ = {"Q8_0": deq_q8_0, "Q5_0": deq_q5_0, "Q4_K": deq_q4_k, "Q6_K": deq_q6_k}
VEC_DOT_TYPE = {"Q8_0": "Q8_0", "Q5_0": "Q8_0", "Q4_K": "Q8_K", "Q6_K": "Q8_K", "F32": None}


# ---- activation quantization, GGML's references in float32 arithmetic ----------------------

def q8_0_ref(x):  # quantize_row_q8_0_ref: d = amax/127 (fp16 stored), q = roundf(x / d)
    x = x.astype(np.float32).reshape(-1, 32)
    amax = np.abs(x).max(axis=1)
    d = amax / np.float32(127)
    idn = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), np.float32(0)).astype(np.float32)
    v = x * idn[:, None]
    q = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))  # roundf: half away from zero
    dh = d.astype(np.float16).astype(np.float64)
    return (dh[:, None] * q.astype(np.float64)).reshape(-1)


def q8_k_ref(x):  # quantize_row_q8_K_ref: iscale = -127/max (first largest |x|), nearest even
    x = x.astype(np.float32).reshape(-1, 256)
    mx = x[np.arange(x.shape[0]), np.argmax(np.abs(x), axis=1)]
    nz = mx != 0
    iscale = np.where(nz, np.float32(-127.0) / np.where(nz, mx, 1), 0).astype(np.float32)
    q = np.minimum(np.rint(iscale[:, None] * x), 127)  # rint: ties to even, as nearest_int
    d = np.where(nz, np.float32(1) / np.where(nz, iscale, 1), 0).astype(np.float32)
    return (d.astype(np.float64)[:, None] * q.astype(np.float64)).reshape(-1)


def q8_0_ggml_x86(x):  # llama.cpp's x86 quantize_row_q8_0 (AVX): id = 127/amax, ties to even
    x = x.astype(np.float32).reshape(-1, 32)
    amax = np.abs(x).max(axis=1)
    d = amax / np.float32(127)
    idn = np.where(amax != 0, np.float32(127) / np.where(amax != 0, amax, 1), 0).astype(np.float32)
    q = np.rint(x * idn[:, None])
    return (d.astype(np.float16).astype(np.float64)[:, None] * q.astype(np.float64)).reshape(-1)


QUANT = {"Q8_0": q8_0_ref, "Q8_K": q8_k_ref}
Q8_0_GGML_X86 = {"Q8_0": q8_0_ggml_x86, "Q8_K": q8_k_ref}


# GGUF: the types this model uses (id: name, block elements, block bytes)
GTYPES = {0: ("F32", 1, 4), 8: ("Q8_0", 32, 34), 6: ("Q5_0", 32, 22), 12: ("Q4_K", 256, 144),
          14: ("Q6_K", 256, 210)}
SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
          12: "<d"}


class Model:
    def __init__(self, path):
        buf = np.memmap(path, np.uint8, mode="r")
        mv = memoryview(buf)
        pos = [0]

        def rd(fmt):
            v = struct.unpack_from(fmt, mv, pos[0])
            pos[0] += struct.calcsize(fmt)
            return v[0]

        def rstr():
            n = rd("<Q")
            s = bytes(mv[pos[0]:pos[0] + n]).decode()
            pos[0] += n
            return s

        def rval(t):
            if t == 8:
                return rstr()
            if t == 9:
                et, n = rd("<I"), rd("<Q")
                return [rval(et) for _ in range(n)] if et in (8, 9) or n < 64 else skip(et, n)
            return rd(SCALAR[t])

        def skip(et, n):  # long arrays (the vocabulary's scores and types): not needed
            pos[0] += struct.calcsize(SCALAR[et]) * n
            return None

        if bytes(mv[0:4]) != b"GGUF":
            raise SystemExit("%s: not a GGUF file" % path)
        pos[0] = 8
        n_t, n_kv = rd("<Q"), rd("<Q")
        kv = {}
        for _ in range(n_kv):
            k = rstr()
            kv[k] = rval(rd("<I"))
        infos = []
        for _ in range(n_t):
            name = rstr()
            dims = [rd("<Q") for _ in range(rd("<I"))]
            infos.append((name, dims, rd("<I"), rd("<Q")))
        align = kv.get("general.alignment", 32)
        base = (pos[0] + align - 1) // align * align
        self.t = {}
        for name, dims, typ, off in infos:
            tn, be, bb = GTYPES[typ]
            rows = int(np.prod(dims[1:])) if len(dims) > 1 else 1
            nbytes = rows * dims[0] // be * bb
            self.t[name] = (tn, rows, buf[base + off:base + off + nbytes].reshape(rows, -1))
        a = kv["general.architecture"]
        self.n_embd = kv[a + ".embedding_length"]
        self.n_layer = kv[a + ".block_count"]
        self.n_head = kv[a + ".attention.head_count"]
        self.n_head_kv = kv[a + ".attention.head_count_kv"]
        self.eps = kv[a + ".attention.layer_norm_rms_epsilon"]
        self.bos = kv["tokenizer.ggml.bos_token_id"]
        self.rope_base = kv.get(a + ".rope.freq_base", 10000.0)
        self.n_swa = kv.get(a + ".attention.sliding_window", 1 << 30)
        self.cache = {}

    def type(self, name):
        return self.t[name][0]

    def raw(self, name):
        return self.t[name][2]

    def vec(self, name):
        return self.t[name][2].reshape(-1).view("<f4").astype(np.float64)

    def weight(self, name):
        if name not in self.cache:
            self.cache[name] = DEQ[self.type(name)](self.raw(name))
        return self.cache[name]


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x) + eps) * w


def gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def forward(M, quant, kv16=False, noise=None, token=None, quants=QUANT):
    """log-softmax of the logits after BOS, in double.  noise: a numpy Generator;
    each matmul output then gets a random relative error of up to 2^-24 (what
    one float32 rounding does), to show how far that alone moves the result."""
    def mm(name, x):
        xin = x
        vt = VEC_DOT_TYPE[M.type(name)]
        if quant and vt:
            xin = quants[vt](x)
        y = M.weight(name) @ xin
        if noise is not None:
            y = y * (1 + noise.uniform(-2.0 ** -24, 2.0 ** -24, y.shape))
        return y

    E = M.raw("token_embd.weight")
    tok = M.bos if token is None else token
    x = deq_q8_0(E[tok:tok + 1])[0] * np.float64(np.float32(np.sqrt(np.float32(M.n_embd))))
    hd = M.vec("blk.0.attn_k_norm.weight").size
    for il in range(M.n_layer):
        p = "blk.%d." % il
        a = rmsnorm(x, M.vec(p + "attn_norm.weight"), M.eps)
        v = mm(p + "attn_v.weight", a)  # (n_head_kv * hd)
        if kv16:
            v = v.astype(np.float16).astype(np.float64)
        att = np.repeat(v.reshape(M.n_head_kv, hd), M.n_head // M.n_head_kv, axis=0).reshape(-1)
        o = mm(p + "attn_output.weight", att)
        x = x + rmsnorm(o, M.vec(p + "post_attention_norm.weight"), M.eps)
        f = rmsnorm(x, M.vec(p + "ffn_norm.weight"), M.eps)
        g = mm(p + "ffn_gate.weight", f)
        u = mm(p + "ffn_up.weight", f)
        d = mm(p + "ffn_down.weight", gelu(g) * u)
        x = x + rmsnorm(d, M.vec(p + "post_ffw_norm.weight"), M.eps)
    x = rmsnorm(x, M.vec("output_norm.weight"), M.eps)
    xin = quants["Q8_0"](x) if quant else x
    logits = np.empty(E.shape[0])
    for r0 in range(0, E.shape[0], 16384):  # the 262144 x 640 table in slices
        logits[r0:r0 + 16384] = deq_q8_0(E[r0:r0 + 16384]) @ xin
    return logsoftmax(logits)


def rope_neox(x, pos, base):
    """x (T, H, hd) rotated as GGML's NEOX mode: pairs (i, i + hd/2), angle pos * base^(-2i/hd)."""
    hd = x.shape[-1]
    ang = pos[:, None].astype(np.float64) * base ** (-2.0 * np.arange(hd // 2) / hd)
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    a, b = x[..., :hd // 2], x[..., hd // 2:]
    return np.concatenate([a * c - b * s, a * s + b * c], axis=-1)


def forward_seq(M, toks, kv16=False, quants=QUANT):
    """Teacher-forced log-softmax rows (T x n_vocab) of a whole token sequence in
    double: Gemma 3 with causal attention (sliding layers: 5 of every 6, RoPE base
    10000, window 512; the others the model's base), every matmul's input quantized
    as its weight format's vec_dot_type reference does (f64q).  kv16: K (after
    RoPE) and V rounded to fp16, as both engines' default KV caches store them."""
    T = len(toks)
    assert T < M.n_swa, "the sliding window is not modelled: sequences must be shorter"

    def mm(name, x):  # x (T, n) -> (T, rows)
        vt = VEC_DOT_TYPE[M.type(name)]
        xin = quants[vt](x).reshape(x.shape) if vt else x  # blocks never span rows
        return xin @ M.weight(name).T

    def norm_rows(x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + M.eps) * w

    E = M.raw("token_embd.weight")
    x = deq_q8_0(E[np.asarray(toks)]) * np.float64(np.float32(np.sqrt(np.float32(M.n_embd))))
    hd = M.vec("blk.0.attn_k_norm.weight").size
    pos = np.arange(T)
    causal = np.tril(np.ones((T, T), bool))
    for il in range(M.n_layer):
        p = "blk.%d." % il
        base = 10000.0 if il % 6 < 5 else M.rope_base
        a = norm_rows(x, M.vec(p + "attn_norm.weight"))
        q = norm_rows(mm(p + "attn_q.weight", a).reshape(T, M.n_head, hd), M.vec(p + "attn_q_norm.weight"))
        k = norm_rows(mm(p + "attn_k.weight", a).reshape(T, M.n_head_kv, hd), M.vec(p + "attn_k_norm.weight"))
        v = mm(p + "attn_v.weight", a).reshape(T, M.n_head_kv, hd)
        q, k = rope_neox(q, pos, base) / np.sqrt(hd), rope_neox(k, pos, base)
        if kv16:
            k, v = (t.astype(np.float16).astype(np.float64) for t in (k, v))
        g = M.n_head // M.n_head_kv
        k, v = np.repeat(k, g, axis=1), np.repeat(v, g, axis=1)  # (T, H, hd)
        sc = np.einsum("qhd,khd->hqk", q, k)
        sc = np.where(causal[None], sc, -np.inf)
        pr = np.exp(sc - sc.max(axis=-1, keepdims=True))
        pr /= pr.sum(axis=-1, keepdims=True)
        att = np.einsum("hqk,khd->qhd", pr, v).reshape(T, -1)
        o = mm(p + "attn_output.weight", att)
        x = x + norm_rows(o, M.vec(p + "post_attention_norm.weight"))
        f = norm_rows(x, M.vec(p + "ffn_norm.weight"))
        u = gelu(mm(p + "ffn_gate.weight", f)) * mm(p + "ffn_up.weight", f)
        x = x + norm_rows(mm(p + "ffn_down.weight", u), M.vec(p + "post_ffw_norm.weight"))
    x = norm_rows(x, M.vec("output_norm.weight"))
    xin = quants["Q8_0"](x).reshape(x.shape)
    if "embd32" not in M.cache:  # d * q of Q8_0 is exact in float32: half the memory of double
        M.cache["embd32"] = np.concatenate([deq_q8_0(E[r0:r0 + 16384]).astype(np.float32)
                                            for r0 in range(0, E.shape[0], 16384)])
    W = M.cache["embd32"]
    logits = np.empty((T, E.shape[0]))
    for r0 in range(0, E.shape[0], 16384):
        logits[:, r0:r0 + 16384] = xin @ W[r0:r0 + 16384].astype(np.float64).T
    m = logits.max(axis=1, keepdims=True)
    return logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))


def logsoftmax(l):
    l = np.asarray(l, np.float64)
    m = l.max()
    return l - m - np.log(np.exp(l - m).sum())


def kl(p, q):  # KL(p || q) of log-probabilities
    return float(np.sum(np.exp(p) * (p - q)))


def llama_logits(path, fa, tokens=None):
    """log-softmax after each token alone (BOS if none), one row per token."""
    from llama_cpp import Llama
    m = Llama(model_path=path, n_ctx=64, n_threads=2, logits_all=True, verbose=False, flash_attn=fa)
    rows = []
    for t in tokens or [m.token_bos()]:
        m.reset()
        m.eval([t])
        rows.append(logsoftmax(np.array(m.scores[0], np.float64)))
    return rows if tokens else rows[0]


def slim_exe():
    exe = "build/pos0_slim"
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime("build/libslim.a"):
        subprocess.check_call(["cc", "-O2", "-Iinclude", "tools/golden/pos0_slim.c", "build/libslim.a",
                               "-lm", "-pthread", "-o", exe])
    return exe


def slim_logits(path, repack, kv="f16", tokens=None):
    exe = slim_exe()
    env = dict(os.environ)
    if not repack:
        env["SLIM_CPU_REPACK"] = "0"
    out = "build/pos0_slim_%s_%s.bin" % ("packed" if repack else "plain", kv)
    subprocess.check_call([exe, path, out, "1", kv] + [str(t) for t in tokens or []], env=env)
    raw = np.fromfile(out, np.float32).reshape(len(tokens or [0]), -1)
    rows = [logsoftmax(r) for r in raw]
    return rows if tokens else rows[0]


def first_tokens(M, a):
    """--first N: each of N tokens alone at position 0 (BOS, then the ids of a
    fixed sentence): mean / median KL of each engine against f64q and f64q-kv16."""
    from llama_cpp import Llama
    tk = Llama(model_path=a.model, n_ctx=64, vocab_only=True, verbose=False)
    text = (b"The quick brown fox jumps over the lazy dog while 1905 papers by Einstein changed"
            b" physics; def main(): return 42 # Paris, Tokyo and Canberra are capitals.")
    toks = [M.bos] + [t for t in tk.tokenize(text, add_bos=False)][:a.first - 1]
    refs = {"f64q": [forward(M, True, token=t) for t in toks],
            "f64q-kv16": [forward(M, True, kv16=True, token=t) for t in toks],
            "f64q-kv16-x86q8": [forward(M, True, kv16=True, token=t, quants=Q8_0_GGML_X86)
                                for t in toks]}
    eng = {"f64q+2^-24": [forward(M, True, token=t, noise=np.random.default_rng(t)) for t in toks],
           "llama.cpp": llama_logits(a.model, False, toks),
           "slim (default)": slim_logits(a.model, True, tokens=toks),
           "slim plain": slim_logits(a.model, False, tokens=toks),
           "slim kv f32": slim_logits(a.model, True, "f32", tokens=toks)}
    print("position 0, %d tokens each alone (BOS and %d more), %s" % (len(toks), len(toks) - 1,
                                                                   os.path.basename(a.model)))
    print("%-16s" % "" + "".join(" %24s" % ("KL(%s||.) mean / median" % r) for r in refs))
    kls = {}
    for k, rows in eng.items():
        line = "%-16s" % k
        for r, ref in refs.items():
            v = np.array([kl(x, y) for x, y in zip(ref, rows)])
            kls[(k, r)] = v
            line += " %12.3e / %9.3e" % (v.mean(), np.median(v))
        print(line)
    for r in refs:
        d = kls[("slim (default)", r)] < kls[("llama.cpp", r)]
        print("slim closer to %s than llama.cpp on %d of %d tokens" % (r, d.sum(), len(toks)))


def slim_seq_logits(path, repack, toks):
    """slim's logits for every position of one prefill of toks (float32, T x n_vocab)."""
    env = dict(os.environ)
    if not repack:
        env["SLIM_CPU_REPACK"] = "0"
    out = "build/pos0_slim_seq.bin"
    subprocess.check_call([slim_exe(), path, out, "2", "f16", "-s"] + [str(t) for t in toks],
                          env=env)
    return np.fromfile(out, np.float32).reshape(len(toks), -1)


REFS = ("f64q", "f64q-kv16")


def golden_part(M, a, seqs, part):
    """Compute one part into a.work (skipped when its file exists): a reference's
    log-probabilities (float64, every position) or an engine's logits (float32)."""
    from llama_self_agreement import CONFIGS, config_logits
    os.makedirs(a.work, exist_ok=True)
    n, V = sum(map(len, seqs)), M.t["token_embd.weight"][1]
    jobs = ([(r, None) for r in REFS] if part in ("refs", "all") else
            [(part, None)] if part in REFS else [])
    if part in ("engines", "all"):
        jobs += [("slim default", None), ("slim SLIM_CPU_REPACK=0", None)]
        # 2 threads first: thread count has not changed llama.cpp's results
        jobs += sorted((("llama.cpp " + name, kw) for name, kw in CONFIGS),
                       key=lambda j: -j[1]["n_threads"])
    for name, kw in jobs:
        f = os.path.join(a.work, name.replace(" ", "_") + ".npy")
        if os.path.exists(f) or os.path.exists(f + ".part.npy") or a.only and not any(
                o in name for o in a.only.split(",")):
            continue  # done, being done by another run (or a stale .part.npy to delete), or not asked
        t0 = time.time()
        out = np.lib.format.open_memmap(f + ".part.npy", "w+", np.float64 if name in REFS else np.float32,
                                        (n, V))
        if name in REFS:
            rows = (forward_seq(M, toks, kv16=name.endswith("kv16")) for toks in seqs)
        elif name.startswith("slim"):
            rows = (slim_seq_logits(a.model, name == "slim default", toks) for toks in seqs)
        else:
            rows = config_logits(kw, seqs, a.model)
        i = 0
        for r in rows:
            out[i:i + len(r)] = r
            i += len(r)
        out.flush()
        del out
        os.rename(f + ".part.npy", f)
        print("%s: %d positions in %.0f s" % (name, n, time.time() - t0), flush=True)


def golden_report(M, a, g):
    """Per engine: top-1 / mean binned KL against the golden file (the forward
    test's figures) and KL(ref || engine) over the whole vocabulary, mean / median
    / p99, with top-1 agreement, against each float64 reference."""
    from llama_self_agreement import CONFIGS
    path = lambda name: os.path.join(a.work, name.replace(" ", "_") + ".npy")
    refs = {r: np.load(path(r), mmap_mode="r") for r in REFS}
    names = [REFS[1], "slim default", "slim SLIM_CPU_REPACK=0"] + ["llama.cpp " + n for n, _ in CONFIGS]
    names = [n for n in names if os.path.exists(path(n)) and
             (not a.only or any(o in n for o in a.only.split(",")))]
    eng = {n: np.load(path(n), mmap_mode="r") for n in names}
    top1, kbin = dict.fromkeys(names, 0), dict.fromkeys(names, 0.0)
    kls = {(n, r): [] for n in names for r in REFS}
    agree = dict.fromkeys(kls, 0)
    i = 0
    for toks, lse, ids, lg in g:  # a sequence at a time: T x n_vocab in memory
        T = len(toks)
        rp = {}
        for r in REFS:  # p, sum p log p per row, argmax: KL(ref || x) = sum p log p - p . lp_x
            ref = np.asarray(refs[r][i:i + T])
            pr = np.exp(ref)
            rp[r] = (pr, np.einsum("ij,ij->i", pr, ref), ref.argmax(1))
        lp_g = lg - lse[:, None]  # the golden file's top-k log-probabilities
        p_g = np.exp(lp_g)
        for n in names:
            row = np.asarray(eng[n][i:i + T], np.float64)
            lp = row - row.max(1, keepdims=True)
            lp -= np.log(np.exp(lp).sum(1, keepdims=True))
            top1[n] += int((row.argmax(1) == ids[:, 0]).sum())
            lp_k = np.take_along_axis(lp, ids, 1)  # binned_kl of llama_self_agreement.py, per row
            kb = (p_g * (lp_g - lp_k)).sum(1)
            rest_g, rest = 1 - p_g.sum(1), 1 - np.exp(lp_k).sum(1)
            ok = (rest_g > 1e-12) & (rest > 1e-12)
            kb[ok] += rest_g[ok] * np.log(rest_g[ok] / rest[ok])
            kbin[n] += kb.sum()
            for r, (pr, plogp, am) in rp.items():
                kls[(n, r)] += list(plogp - np.einsum("ij,ij->i", pr, lp))
                agree[(n, r)] += int((am == row.argmax(1)).sum())
        i += T
    print("%d positions (%d sequences) of %s, %s" % (i, len(g), a.golden, os.path.basename(a.model)))
    print("%-34s %15s" % ("", "vs golden file") +
          "".join(" %39s" % ("KL(%s||.) mean / median / p99, top-1" % r) for r in REFS))
    for n in names:
        line = "%-34s %6.4f %8.6f" % (n, top1[n] / i, kbin[n] / i)
        for r in REFS:
            v = np.array(kls[(n, r)])
            line += "   %9.3e / %9.3e / %9.3e %6.4f" % (v.mean(), np.median(v), np.percentile(v, 99),
                                                       agree[(n, r)] / i)
        print(line, flush=True)


def golden(M, a):
    from llama_self_agreement import read_golden
    g = read_golden(a.golden)
    if a.part != "report":
        golden_part(M, a, [x[0] for x in g], a.part)
    if a.part in ("report", "all"):
        golden_report(M, a, g)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default="models/gemma-3-270m-q4_k_m.gguf")
    ap.add_argument("--token", type=int, default=184)
    ap.add_argument("--no-engines", action="store_true", help="float64 only")
    ap.add_argument("--first", type=int, default=0,
                    help="instead: N tokens each alone at position 0, KL statistics")
    ap.add_argument("--noise", type=int, default=0,
                    help="also N f64q runs with a 2^-24 relative perturbation of every matmul output")
    ap.add_argument("--golden", metavar="FILE",
                    help="instead: every position of gen_forward.py's FILE teacher-forced, "
                         "float64 references vs slim and each llama.cpp configuration")
    ap.add_argument("--work", default="build/f64q_golden", help="--golden: the cache of parts")
    ap.add_argument("--part", default="all", choices=("all", "refs", "engines", "report") + REFS,
                    help="--golden: compute only this part (to run parts side by side)")
    ap.add_argument("--only", help="--golden: only the parts whose names contain one of these, "
                    "comma-separated (e.g. 'fa on')")
    a = ap.parse_args()
    M = Model(a.model)
    if a.golden:
        return golden(M, a)
    if a.first:
        return first_tokens(M, a)
    rows = {"f64q": forward(M, True), "f64q-kv16": forward(M, True, kv16=True),
            "f64": forward(M, False)}
    for seed in range(a.noise):
        rows["f64q+2^-24 #%d" % seed] = forward(M, True, noise=np.random.default_rng(seed))
    if not a.no_engines:
        rows["llama.cpp"] = llama_logits(a.model, False)
        rows["llama.cpp fa"] = llama_logits(a.model, True)
        rows["slim repacked"] = slim_logits(a.model, True)
        rows["slim plain"] = slim_logits(a.model, False)
        rows["slim kv f32"] = slim_logits(a.model, True, "f32")
    refs = [("f64q", rows["f64q"]), ("f64q-kv16", rows["f64q-kv16"])]
    if "llama.cpp" in rows:
        refs.append(("llama", rows["llama.cpp"]))
    print("position 0 (BOS alone), %s, token %d" % (os.path.basename(a.model), a.token))
    print("%-17s %10s" % ("", "log p") + "".join(" %12s %8s" % ("KL(%s||.)" % n, "max|dlp|")
                                                  for n, _ in refs))
    for k, v in rows.items():
        print("%-17s %10.6f" % (k, v[a.token]) +
              "".join(" %12.3e %8.4f" % (kl(r, v), np.abs(v - r).max()) for _, r in refs))


if __name__ == "__main__":
    main()
