#!/usr/bin/env python3
"""cuda_perf_model.py: a first-order performance model of slim's CUDA kernels.

For every kernel launch of a batch-1 decode step, of a batched decode step of
N = 1..32 sequences (the engine's, over the paged KV cache; also in the
invariant mode) and of a 512-token prefill, at the shapes of four real models
and two weight formats, it derives the launch
shape (as the launchers in kernels/*.cu compute it), the DRAM bytes moved and
the FLOPs, and predicts the time on five GPUs:

    t = max(bytes / bw_eff, flops / (eff_c * peak)) + launch

    bw_eff = min(eff_bw * BW, resident_warps * inflight_per_warp / latency)

The second term of bw_eff is Little's law: a launch with few warps (one
256-thread block for a decode rmsnorm, 8 blocks for Gemma's decode attention)
cannot keep enough loads in flight to reach the bandwidth.  resident_warps
follows from the grid and the occupancy (registers from ptxas, shared memory,
threads and blocks per SM).  Tensor-core kernels (prefill GEMM, flash
attention) also lose the last partial wave.  Everything is documented in
docs/CUDA.md ("Performance model").

Outputs: --markdown (the tables of docs/CUDA.md), --json (everything), --tsv
--gpu NAME (the kernel work list with predictions, read by
tests/gpu/bench_kernels), --bench-pred --gpu NAME (predicted pp512 / tg128 of
`slim bench` for tests/gpu/run.sh).  Python 3 standard library only.
"""
import argparse
import json
import math
import sys

# ----------------------------------------------------------------- GPUs
# Datasheet figures (sources in docs/CUDA.md): DRAM bandwidth, dense FP16
# tensor-core rate with FP32 accumulate (no sparsity), FP32 FMA rate, SMs, and
# the host link (one direction), L2 size.  latency_ns is an assumed loaded
# DRAM latency for Little's law (L2_LATENCY_NS for activations that the
# previous kernel left in L2); max_warps / max_blocks per SM and shared memory
# per SM from the CUDA programming guide's compute-capability tables.
# mma_sync_ceiling: the share of the tensor peak that mma.sync can reach (on
# H100 the peak needs wgmma, which these kernels do not use).
GPUS = {
    "H100-SXM": dict(bw=3.35e12, tc=989.4e12, fp32=66.9e12, sms=132, max_warps=64, max_blocks=32,
                     smem=227 * 1024, latency_ns=700, l2=50e6, link=64e9,
                     mma_sync_ceiling=0.6, label="H100 SXM"),
    "A100-SXM-80GB": dict(bw=2.039e12, tc=312e12, fp32=19.5e12, sms=108, max_warps=64,
                          max_blocks=32, smem=163 * 1024, latency_ns=650, l2=40e6, link=32e9,
                          mma_sync_ceiling=1.0, label="A100 80GB SXM"),
    "L4": dict(bw=300e9, tc=121e12, fp32=30.3e12, sms=58, max_warps=48, max_blocks=24,
               smem=99 * 1024, latency_ns=600, l2=48e6, link=32e9, mma_sync_ceiling=1.0,
               label="L4"),
    "RTX4090": dict(bw=1008e9, tc=165.2e12, fp32=82.6e12, sms=128, max_warps=48, max_blocks=24,
                    smem=99 * 1024, latency_ns=600, l2=72e6, link=32e9, mma_sync_ceiling=1.0,
                    label="RTX 4090"),
    # Not in the doc's tables: for run.sh on an H200 (same chip as H100, HBM3e).
    "H200": dict(bw=4.8e12, tc=989.4e12, fp32=66.9e12, sms=132, max_warps=64, max_blocks=32,
                 smem=227 * 1024, latency_ns=700, l2=50e6, link=64e9, mma_sync_ceiling=0.6,
                 label="H200"),
}
L2_LATENCY_NS = 300
DOC_GPUS = ["H100-SXM", "A100-SXM-80GB", "L4", "RTX4090"]

# nvidia-smi name fragments -> GPUS key (tests/gpu/run.sh).
GPU_MATCH = [("H200", "H200"), ("H100", "H100-SXM"), ("A100", "A100-SXM-80GB"), ("L4", "L4"),
             ("4090", "RTX4090")]

# ----------------------------------------------------------------- assumptions
DEFAULTS = dict(
    eff_bw=0.90,  # fraction of DRAM bandwidth a streaming kernel reaches (the target)
    eff_tc=0.30,  # fraction of the FP16 tensor peak reached by the mma.sync kernels
    eff_fma=0.50,  # fraction of the FP32 FMA peak (f32 decode attention, dequant math)
    launch_us=2.5,  # per kernel node of a replayed CUDA graph (launch gap + ramp + drain)
    eager_launch_us=4.0,  # host cost of one eager launch (prefill is not graph-captured)
    step_us=10.0,  # per decode step: graph launch, stream sync, H2D of the step's ids
    link_eff=0.80,  # fraction of the host link a pinned D2H copy reaches
    reread_x=4.0,  # a batched mat-vec's later passes over a row (L1/L2 hits) vs DRAM speed
)

# ----------------------------------------------------------------- models
# config.json / GGUF metadata (sources in docs/CUDA.md).
MODELS = {
    "gemma-3-270m": dict(n_embd=640, n_layer=18, n_head=4, n_head_kv=1, head_dim=256, n_ff=2048,
                         vocab=262144, tied=True, swa_window=512, swa_every=6, qk_norm=True,
                         post_norms=True, label="Gemma-3-270M"),
    "llama-3.2-1b": dict(n_embd=2048, n_layer=16, n_head=32, n_head_kv=8, head_dim=64, n_ff=8192,
                         vocab=128256, tied=True, swa_window=0, swa_every=0, qk_norm=False,
                         post_norms=False, label="Llama-3.2-1B"),
    "llama-3.1-8b": dict(n_embd=4096, n_layer=32, n_head=32, n_head_kv=8, head_dim=128,
                         n_ff=14336, vocab=128256, tied=False, swa_window=0, swa_every=0,
                         qk_norm=False, post_norms=False, label="Llama-3.1-8B"),
    "mistral-nemo-12b": dict(n_embd=5120, n_layer=40, n_head=32, n_head_kv=8, head_dim=128,
                             n_ff=14336, vocab=131072, tied=False, swa_window=0, swa_every=0,
                             qk_norm=False, post_norms=False, label="Mistral-Nemo-12B"),
}
QUANTS = ["q4_k_m", "q8_0"]

# ----------------------------------------------------------------- formats
# name: (elements per block, bytes per block, activation format of its dot product)
DTYPES = {
    "Q4_0": (32, 18, "Q8_0"),
    "Q5_0": (32, 22, "Q8_0"),
    "Q8_0": (32, 34, "Q8_0"),
    "Q4_K": (256, 144, "Q8_K"),
    "Q5_K": (256, 176, "Q8_K"),
    "Q6_K": (256, 210, "Q8_K"),
    "Q8_K": (256, 292, None),
}
# matvec.cuh: lanes per block and warp steps issued before use (UNROLL).
MV_LANES = {"Q4_0": (4, 4), "Q5_0": (4, 4), "Q8_0": (8, 4), "Q4_K": (16, 2), "Q5_K": (16, 2),
            "Q6_K": (16, 2)}
# ptxas registers per thread (nvcc, sm_90) of the kernels, for occupancy.
REGS = {"matvec": 40, "rmsnorm": 30, "rope": 30, "quantize": 27, "ew": 28, "kv_store": 14,
        "get_rows": 48, "argmax": 26, "attn_combine": 40, "gemm_k": 129, "gemm_q": 107}
ATTN_DEC_REGS = {1: 74, 2: 96, 4: 126, 8: 168}
ATTN_PF_REGS = {16: 89, 32: 112, 64: 144, 80: 156, 96: 162, 128: 157, 192: 207, 256: 238}


def row_bytes(dtype, n):
    blk, by, _ = DTYPES[dtype]
    assert n % blk == 0, (dtype, n)
    return n // blk * by


def use_more_bits(i, n):  # llama.cpp's choice of the Q6_K layers in Q4_K_M
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def weight_type(quant, tensor, layer, n_layer, n_cols, tied):
    """llama.cpp's Q4_K_M choice (llama_tensor_get_type), or all Q8_0.  n_cols: row length."""
    if quant == "q8_0":
        return "Q8_0"
    t = "Q4_K"
    if tensor == "output" or (tensor == "token_embd" and tied):
        t = "Q6_K"
    elif tensor in ("attn_v", "ffn_down") and use_more_bits(layer, n_layer):
        t = "Q6_K"
    if n_cols % 256:  # K-quants need rows of whole 256-element super-blocks
        t = {"Q4_K": "Q5_0", "Q6_K": "Q8_0"}[t]
    return t


# ----------------------------------------------------------------- launches
class Call:
    """One launcher call: shape, traffic and the parameters of its time."""

    def __init__(self, op, key, grid, block, smem, regs, nbytes, flops, inflight, unit="mem",
                 nodes=1, note="", act=True):
        self.op, self.key = op, key
        self.grid, self.block, self.smem, self.regs = grid, block, smem, regs
        self.bytes, self.flops = nbytes, flops
        self.inflight = inflight  # bytes in flight per warp (Little's law)
        self.unit = unit  # 'mem', 'fma' or 'tc': which peak the FLOPs go against
        self.nodes = nodes  # kernel launches in the call
        self.note = note
        self.act = act  # reads activations only (L2-resident when small), not weights / KV
        self.active = None  # blocks that find work, where fewer than the grid
        self.reread = 0  # bytes read again from L1/L2 (a batched mat-vec's later passes)

    def n_blocks(self):
        return self.grid[0] * self.grid[1] * self.grid[2]

    def shape(self):
        g = str(self.grid[0]) if self.grid[1:] == (1, 1) else "x".join(map(str, self.grid))
        return f"{g} x {self.block}" + (f", {self.smem // 1024} KiB" if self.smem >= 1024 else "")


def blocks_per_sm(c, gpu):
    warps = (c.block + 31) // 32
    by_warps = gpu["max_warps"] // warps
    by_regs = 65536 // (max(c.regs, 16) * 32 * warps)
    by_smem = gpu["smem"] // c.smem if c.smem else 1 << 30
    return max(1, min(gpu["max_blocks"], by_warps, by_regs, by_smem))


def call_time_us(c, gpu, a):
    """Predicted time of one call, microseconds (including its launch overhead)."""
    warps_per_block = (c.block + 31) // 32
    bps = blocks_per_sm(c, gpu)
    slots = gpu["sms"] * bps
    busy = c.active if c.active is not None else c.n_blocks()
    resident_warps = min(busy, slots) * warps_per_block
    in_l2 = c.act and c.bytes <= gpu["l2"] / 2
    lat = (L2_LATENCY_NS if in_l2 else gpu["latency_ns"]) * 1e-9
    bw_cap = resident_warps * c.inflight / lat
    bw = min(a["eff_bw"] * gpu["bw"], bw_cap)
    t_mem = c.bytes / bw + c.reread / (a["reread_x"] * a["eff_bw"] * gpu["bw"])
    t_cmp = 0.0
    if c.unit == "tc":
        waves = c.n_blocks() / slots
        tail = waves / math.ceil(waves)  # the last wave's idle SMs
        t_cmp = c.flops / (a["eff_tc"] * gpu["mma_sync_ceiling"] * gpu["tc"] * tail)
    elif c.unit == "dp4a":  # 4 int8 MACs per instruction at half the FP32 issue rate
        t_cmp = c.flops / (a["eff_fma"] * gpu["fp32"] * 2)
    elif c.flops:
        t_cmp = c.flops / (a["eff_fma"] * gpu["fp32"])
    return (max(t_mem, t_cmp)) * 1e6 + c.nodes * a["launch_us"]


# Shapes as the launchers compute them (kernels/*.cu).
def ew_grid(n):
    return (min((n + 255) // 256, 65535 * 8), 1, 1)


def c_rmsnorm(n, rows):
    # One 256-thread block per row; x read twice (the second time from L1/L2).
    return Call("rmsnorm", f"rmsnorm n={n} rows={rows}", (rows, 1, 1), 256, 128,
                REGS["rmsnorm"], 8 * n * rows + 4 * n, 3 * n * rows, 32 * 4 * 4)


def c_rope(rows, heads, hd):
    pairs = rows * heads * hd // 2
    return Call("rope", f"rope rows={rows} heads={heads} hd={hd}",
                (min((pairs + 255) // 256, 65535 * 32), 1, 1), 256, 0, REGS["rope"],
                16 * pairs, 12 * pairs, 32 * 8)


def c_quantize(vdt, n, rows):
    blk, by, _ = DTYPES[vdt]
    total = n // blk * rows
    per_cta = 8 if vdt == "Q8_K" else 32
    return Call("quantize", f"quantize vdt={vdt} n={n} rows={rows}",
                ((total + per_cta - 1) // per_cta, 1, 1), 256, 0, REGS["quantize"],
                4 * n * rows + total * by, 3 * n * rows, 32 * (32 if vdt == "Q8_K" else 16))


def c_matvec(dt, n, rows, tokens=1):
    """slim_cuda_matvec(_tokens): a warp per row walks it once per token; the
    weights come from DRAM once, the later passes from L1/L2."""
    lanes, unroll = MV_LANES[dt]
    blk, by, vdt = DTYPES[dt]
    nb = n // blk
    per_warp = min(nb, unroll * (32 // lanes)) * by  # weight bytes one warp has in flight
    nbytes = rows * nb * by + tokens * (row_bytes(vdt, n) + 4 * rows)
    c = Call("matvec", f"matvec dtype={dt} n={n} rows={rows}" + (f" tokens={tokens}" if tokens > 1
                                                                   else ""),
             ((rows + 3) // 4, 1, 1), 128, 0, REGS["matvec"], nbytes, 2 * n * rows * tokens,
             per_warp, unit="dp4a", act=False)
    c.reread = (tokens - 1) * rows * nb * by
    return c


def c_gemm(dt, n, rows, tokens):
    # FLOPs as executed: the tensor cores work on whole 32-token tiles.
    blk, by, vdt = DTYPES[dt]
    pitch = (by + 15) // 16 * 16 if dt.endswith("_K") else (8 * by + 15) // 16 * 16
    smem = 64 * pitch + 32 * 264 * 2 + (32 * 4 + 32 * 16 * 4 if dt.endswith("_K") else 32 * 8)
    # DRAM: weights once (token tiles of a row tile run together), activations
    # once (re-read per row tile from L2), output once.
    nbytes = rows * row_bytes(dt, n) + tokens * row_bytes(vdt, n) + 4 * rows * tokens
    return Call("gemm", f"gemm dtype={dt} n={n} rows={rows} tokens={tokens}",
                ((tokens + 31) // 32, (rows + 63) // 64, 1), 128, smem,
                REGS["gemm_k" if dt.endswith("_K") else "gemm_q"], nbytes,
                2 * n * rows * ((tokens + 31) // 32 * 32), 2048, unit="tc", act=False)


def c_kv_store(tokens, width):
    total = tokens * width
    return Call("kv_store", f"kv_store tokens={tokens} width={width}", ew_grid(total), 256, 0,
                REGS["kv_store"], 6 * total, 0, 32 * 8)


def c_ew(op, n, nbytes_per, flops_per=1):
    return Call(op, f"{op} n={n}", ew_grid(n), 256, 0, REGS["ew"], nbytes_per * n, flops_per * n,
                32 * 8)


def c_get_rows(dt, n, ids):
    return Call("get_rows", f"get_rows dtype={dt} n={n} ids={ids}", (ids, 1, 1), 256, 0,
                REGS["get_rows"], ids * (row_bytes(dt, n) + 4 * n), 2 * n * ids, 32 * 16,
                act=False)


def c_argmax(n):
    g = (n + 8191) // 8192
    return Call("argmax", f"argmax n={n}", (g, 1, 1), 256, 64, REGS["argmax"], 4 * n, n, 32 * 16,
                nodes=2)


def dec_chunks(n_ctx):
    tiles = (n_ctx + 127) // 128
    ck = 128 * ((tiles + 127) // 128)
    return ck, (n_ctx + ck - 1) // ck


def c_attention(tokens, pos0, n_ctx, nh, nkv, hd, window):
    """slim_cuda_attention: split-KV decode (tokens <= 4) or flash prefill."""
    key = (f"attention tokens={tokens} pos0={pos0} n_ctx={n_ctx} heads={nh} kv={nkv} hd={hd} "
           f"window={window}")
    q_bytes = 4 * tokens * nh * hd
    if tokens <= 4:
        rows = tokens * (nh // nkv)
        rb = 1 if rows <= 1 else 2 if rows <= 2 else 4 if rows <= 4 else 8
        ck, nch = dec_chunks(n_ctx)
        last = pos0 + tokens
        first = max(0, pos0 - window + 1) if window else 0
        keys = last - first  # keys the last query sees (the others: <= that)
        active = (last - 1) // ck - first // ck + 1
        smem = rb * (256 * 4 + 128 * 4 + 12) + 8 * 128 * rb * 4
        kv = 2 * keys * nkv * hd * 2
        part = 2 * tokens * nh * active * (hd + 2) * 4  # partials written, then read
        nbytes = kv + q_bytes * 2 + part
        flops = 4 * tokens * nh * hd * keys
        # Phase A keeps ~4 16-byte K loads per thread in flight, then phases B
        # and C run with few loads: half of that on average.
        inflight = 32 * 16 * min(hd // 8, 4) // 2
        c = Call("attention", key, (nch, nkv, (rows + rb - 1) // rb), 128, smem,
                 ATTN_DEC_REGS[rb], nbytes, flops, inflight, unit="fma", nodes=2,
                 note=f"{active} of {nch} chunks active", act=False)
        c.active = active * nkv * ((rows + rb - 1) // rb)
        return c
    dp = next(d for d in (16, 32, 64, 80, 96, 128, 192, 256) if hd <= d)
    bn = 64 if dp <= 96 else 32
    smem = (64 + 2 * bn) * (dp + 8) * 2
    qt = (tokens + 63) // 64
    flops = 0
    for t in range(qt):  # keys a query tile walks: up to its last query, whole key tiles
        lo_pos = pos0 + 64 * t
        hi_pos = min(pos0 + 64 * t + 63, pos0 + tokens - 1)
        first = max(0, lo_pos - window + 1) if window else 0
        keys = math.ceil((hi_pos + 1 - first) / bn) * bn
        flops += 4 * 64 * dp * keys * nh
    kv = 2 * (pos0 + tokens) * nkv * hd * 2
    return Call("attention", key, (qt, nh, 1), 128, smem, ATTN_PF_REGS[dp],
                kv + 2 * q_bytes, flops, 2048, unit="tc", act=False)


def pa_chunk(n_ctx):
    """slim_cuda_attention_paged_chunk: keys per chunk (at most 64 chunks)."""
    per = (n_ctx + 63) // 64
    return max(256, (per + 31) // 32 * 32)


def c_attention_paged(positions, n_ctx, nh, nkv, hd, window, split, same_seq=False):
    """slim_cuda_attention_paged: one query per position in `positions`, each
    in its own sequence (decode) or all of one sequence (same_seq: a prompt,
    whose keys are read from DRAM once and re-read from L2)."""
    T = len(positions)
    ck = pa_chunk(n_ctx)
    nch = (n_ctx + ck - 1) // ck
    group = nh // nkv
    block = 32 * min(group, 4)
    smem = 32 * 129 * 4 + 32 * 128 * 4 + 4 * 256 * 4 + 128
    keys = active = 0
    for pos in positions:
        first = max(0, pos - window + 1) if window else 0
        keys += pos - first + 1
        active += (pos // ck - first // ck + 1) if split else 1
    last = max(positions)
    kv_keys = (last + 1 if not window else min(window, last + 1)) if same_seq else keys
    q_bytes = 4 * T * nh * hd
    part = 2 * nh * active * (hd + 2) * 4 if split else 0  # partials written, then read
    # A tile: 2 x 32 keys x hd/8 16-byte loads over the block, then compute.
    loads = max(1, min(8, 2 * 32 * (hd // 8) // block))
    pos = f"{min(positions)}..{last}" if same_seq else str(last)
    key = (f"attention_paged tokens={T} pos={pos} n_ctx={n_ctx} heads={nh} kv={nkv} hd={hd} "
           f"window={window} mode={'split' if split else 'one-pass'}")
    c = Call("attention", key, (nch if split else 1, nkv, T), block, smem, 77 if split else 100,
             2 * kv_keys * nkv * hd * 2 + 2 * q_bytes + part, 4 * nh * hd * keys,
             32 * 16 * loads // 2, unit="fma", nodes=2 if split else 1,
             note=f"{active} of {nch * T} chunk blocks active" if split else "", act=False)
    c.active = active * nkv
    return c


# ----------------------------------------------------------------- one step
def step_calls(m, quant, tokens, pos0, n_ctx):
    """The launcher calls of one forward step, in lib/runtime/forward.c's order,
    as lib/backend/cuda/cuda.c issues them: one quantize_rows per matmul, a
    mat-vec at one token, the GEMM above.  Returns (calls, logits_bytes)."""
    E, F, V = m["n_embd"], m["n_ff"], m["vocab"]
    nh, nkv, hd, L = m["n_head"], m["n_head_kv"], m["head_dim"], m["n_layer"]
    T = tokens
    calls = []

    def matmul(tensor, layer, n, rows, t):
        dt = weight_type(quant, tensor, layer, L, n, m["tied"])
        vdt = DTYPES[dt][2]
        calls.append(c_quantize(vdt, n, t))
        calls.append(c_matvec(dt, n, rows) if t == 1 else c_gemm(dt, n, rows, t))

    emb = weight_type(quant, "token_embd", 0, L, E, m["tied"])
    calls.append(c_get_rows(emb, E, T))
    for il in range(L):
        swa = m["swa_every"] and (il + 1) % m["swa_every"] != 0
        window = m["swa_window"] if swa else 0
        calls.append(c_rmsnorm(E, T))
        matmul("attn_q", il, E, nh * hd, T)
        matmul("attn_k", il, E, nkv * hd, T)
        matmul("attn_v", il, E, nkv * hd, T)
        if m["qk_norm"]:
            calls.append(c_rmsnorm(hd, T * nh))
            calls.append(c_rmsnorm(hd, T * nkv))
        calls.append(c_rope(T, nh, hd))
        calls.append(c_rope(T, nkv, hd))
        calls.append(c_ew("scale", T * nh * hd, 8))
        calls.append(c_kv_store(T, nkv * hd))
        calls.append(c_kv_store(T, nkv * hd))
        calls.append(c_attention(T, pos0, n_ctx, nh, nkv, hd, window))
        matmul("attn_output", il, nh * hd, E, T)
        if m["post_norms"]:
            calls.append(c_rmsnorm(E, T))
        calls.append(c_ew("add", T * E, 12))
        calls.append(c_rmsnorm(E, T))
        matmul("ffn_gate", il, E, F, T)
        matmul("ffn_up", il, E, F, T)
        calls.append(c_ew("act_mul", T * F, 12, 10))
        matmul("ffn_down", il, F, E, T)
        if m["post_norms"]:
            calls.append(c_rmsnorm(E, T))
        calls.append(c_ew("add", T * E, 12))
    # output_block: the last row only (no logits_all), then the logits to the host.
    calls.append(c_rmsnorm(E, 1))
    matmul("output", 0, E, V, 1)
    return calls, 4 * V


BUCKETS = (1, 2, 4, 8, 16, 32)


def batched_step_calls(m, quant, n_seqs, ctx, invariant=False, mv_max=8):
    """A batched decode step as lib/backend/cuda/cuda.c runs it: n_seqs
    sequences, each decoding its token at position ctx - 1 over its block
    table, padded to the batch-size bucket; paged attention (split over
    chunks); the mat-vec up to 8 rows, the GEMM above (and at every size in
    the invariant mode); the output matrix 8 rows at a time (context.c's
    logits_rows on a device), every row's logits copied to the host.
    Returns (calls, logits_bytes, rows)."""
    E, F, V = m["n_embd"], m["n_ff"], m["vocab"]
    nh, nkv, hd, L = m["n_head"], m["n_head_kv"], m["head_dim"], m["n_layer"]
    B = next(b for b in BUCKETS if b >= n_seqs)
    calls = []

    def matmul(tensor, layer, n, rows, t):
        dt = weight_type(quant, tensor, layer, L, n, m["tied"])
        calls.append(c_quantize(DTYPES[dt][2], n, t))
        calls.append(c_matvec(dt, n, rows, t) if t <= mv_max and not invariant else
                     c_gemm(dt, n, rows, t))

    calls.append(c_get_rows(weight_type(quant, "token_embd", 0, L, E, m["tied"]), E, B))
    for il in range(L):
        swa = m["swa_every"] and (il + 1) % m["swa_every"] != 0
        window = m["swa_window"] if swa else 0
        calls.append(c_rmsnorm(E, B))
        matmul("attn_q", il, E, nh * hd, B)
        matmul("attn_k", il, E, nkv * hd, B)
        matmul("attn_v", il, E, nkv * hd, B)
        if m["qk_norm"]:
            calls.append(c_rmsnorm(hd, B * nh))
            calls.append(c_rmsnorm(hd, B * nkv))
        calls.append(c_rope(B, nh, hd))
        calls.append(c_rope(B, nkv, hd))
        calls.append(c_ew("scale", B * nh * hd, 8))
        calls.append(c_kv_store(n_seqs, nkv * hd))
        calls.append(c_kv_store(n_seqs, nkv * hd))
        calls.append(c_attention_paged([ctx - 1] * n_seqs, ctx, nh, nkv, hd, window, True))
        matmul("attn_output", il, nh * hd, E, B)
        if m["post_norms"]:
            calls.append(c_rmsnorm(E, B))
        calls.append(c_ew("add", B * E, 12))
        calls.append(c_rmsnorm(E, B))
        matmul("ffn_gate", il, E, F, B)
        matmul("ffn_up", il, E, F, B)
        calls.append(c_ew("act_mul", B * F, 12, 10))
        matmul("ffn_down", il, F, E, B)
        if m["post_norms"]:
            calls.append(c_rmsnorm(E, B))
        calls.append(c_ew("add", B * E, 12))
    for r0 in range(0, B, 8):  # output_block: 8 rows at a time
        r = min(8, B - r0)
        calls.append(c_ew("copy", r * E, 8, 0))
        calls.append(c_rmsnorm(E, r))
        matmul("output", 0, E, V, r)
    return calls, 4 * V * B, B


def invariant_prefill_calls(m, quant, tokens):
    """A prompt of `tokens` in one step in the invariant mode: the paged
    attention (one pass, f32) instead of flash attention; the rest as
    step_calls."""
    calls, lb = step_calls(m, quant, tokens, 0, tokens)
    nh, nkv, hd = m["n_head"], m["n_head_kv"], m["head_dim"]
    out = []
    il = 0
    for c in calls:
        if c.op == "attention":
            swa = m["swa_every"] and (il + 1) % m["swa_every"] != 0
            window = m["swa_window"] if swa else 0
            c = c_attention_paged(list(range(tokens)), tokens, nh, nkv, hd, window, False, True)
            il += 1
        out.append(c)
    return out, lb


def step_time_us(calls, logits_bytes, gpu, a, graph):
    """A decode step is one graph replay; prefill launches eagerly (its
    kernels are long enough that the host's launch rate rarely binds)."""
    t_gpu = sum(call_time_us(c, gpu, a) for c in calls)
    nodes = sum(c.nodes for c in calls)
    t_copy = logits_bytes / (a["link_eff"] * gpu["link"]) * 1e6 + a["launch_us"]
    if graph:
        return t_gpu + t_copy + a["step_us"]
    return max(t_gpu, nodes * a["eager_launch_us"]) + t_copy + a["step_us"]


def argmax_time_us(m, gpu, a):
    """Greedy sampling on the device instead of copying the logits: argmax's
    two launches, then a 4-byte copy.  Returns the change of the step time."""
    v = m["vocab"]
    t_copy = lambda b: b / (a["link_eff"] * gpu["link"]) * 1e6  # noqa: E731
    return call_time_us(c_argmax(v), gpu, a) + t_copy(4) - t_copy(4 * v)


def decode_scenario(ctx):
    """A decode step at context length ctx: the new token at position ctx - 1."""
    return dict(tokens=1, pos0=ctx - 1, n_ctx=ctx)


def predict(a, decode_ctx=(1024, 4096)):
    out = []
    for mk, m in MODELS.items():
        for q in QUANTS:
            rec = dict(model=mk, quant=q, decode={}, decode_device_argmax={}, prefill512={},
                       bench={})
            for gk, g in GPUS.items():
                for ctx in decode_ctx:
                    calls, lb = step_calls(m, q, **decode_scenario(ctx))
                    t = step_time_us(calls, lb, g, a, True)
                    rec["decode"].setdefault(str(ctx), {})[gk] = 1e6 / t
                    rec["decode_device_argmax"].setdefault(str(ctx), {})[gk] = 1e6 / (
                        t + argmax_time_us(m, g, a))
                calls, lb = step_calls(m, q, 512, 0, 512)
                rec["prefill512"][gk] = 512 * 1e6 / step_time_us(calls, lb, g, a, False)
                # slim bench -p 512 -n 128: n_ctx = 513; tg: 128 decodes from an
                # empty context (mean position 63.5, predicted at position 64).
                calls, lb = step_calls(m, q, 512, 0, 513)
                pp = 512 * 1e6 / step_time_us(calls, lb, g, a, False)
                calls, lb = step_calls(m, q, 1, 64, 513)
                tg = 1e6 / step_time_us(calls, lb, g, a, True)
                rec["bench"][gk] = dict(pp512=pp, tg128=tg)
            out.append(rec)
    return out


def weights_bytes(m, quant):
    E, F, V, L = m["n_embd"], m["n_ff"], m["vocab"], m["n_layer"]
    q, kv = m["n_head"] * m["head_dim"], m["n_head_kv"] * m["head_dim"]
    tot = 0
    for il in range(L):
        for t, n, rows in (("attn_q", E, q), ("attn_k", E, kv), ("attn_v", E, kv),
                           ("attn_output", q, E), ("ffn_gate", E, F), ("ffn_up", E, F),
                           ("ffn_down", F, E)):
            tot += rows * row_bytes(weight_type(quant, t, il, L, n, m["tied"]), n)
    tot += V * row_bytes(weight_type(quant, "output", 0, L, E, m["tied"]), E)
    return tot


# ----------------------------------------------------------------- aggregation
def aggregate(calls):
    """Identical calls (same key) merged, in first-appearance order: (call, count)."""
    seen = {}
    for c in calls:
        if c.key in seen:
            seen[c.key][1] += 1
        else:
            seen[c.key] = [c, 1]
    return list(seen.values())


def scenarios():
    """Every (model, quant, phase label, step) the kernel tables and TSV cover."""
    for mk, m in MODELS.items():
        for q in QUANTS:
            for ctx in (1024, 4096):
                calls = step_calls(m, q, **decode_scenario(ctx))[0]
                # + on-device greedy sampling (not in the wired step, which copies the logits)
                yield mk, q, f"decode@{ctx}", calls + [c_argmax(m["vocab"])]
            yield mk, q, "prefill512", step_calls(m, q, 512, 0, 512)[0]
            if q == "q4_k_m":  # the engine's batched decode steps (bench_kernels times them too)
                for n in (2, 8, 32):
                    calls = batched_step_calls(m, q, n, 1024)[0]
                    yield mk, q, f"batched{n}@1024", [c for c in calls if c.op != "copy"]


def fmt_bytes(b):
    for unit, s in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if b >= s:
            return f"{b / s:.3g} {unit}"
    return f"{b:.0f} B"


def fmt_flops(f):
    for unit, s in (("TF", 1e12), ("GF", 1e9), ("MF", 1e6), ("KF", 1e3)):
        if f >= s:
            return f"{f / s:.3g} {unit}"
    return f"{f:.0f}"


def fmt_us(t):
    return f"{t:.1f}" if t < 100 else f"{t:.0f}"


# ----------------------------------------------------------------- outputs
def budget(calls, logits_bytes, gpu, a):
    """A decode step's time split: weights (mat-vec), attention, other kernels,
    launch overhead, host (copy + step); and the bandwidth bound (all bytes at
    the full datasheet bandwidth)."""
    parts = dict(matvec=0.0, attention=0.0, other=0.0, launch=0.0)
    for c in calls:
        t = call_time_us(c, gpu, a) - c.nodes * a["launch_us"]
        parts[c.op if c.op in ("matvec", "attention") else "other"] += t
        parts["launch"] += c.nodes * a["launch_us"]
    parts["host"] = step_time_us(calls, logits_bytes, gpu, a, True) - sum(parts.values())
    parts["total"] = step_time_us(calls, logits_bytes, gpu, a, True)
    parts["bound"] = sum(c.bytes for c in calls) / gpu["bw"] * 1e6
    parts["nodes"] = sum(c.nodes for c in calls)
    return parts


def markdown(a):
    p = predict(a)
    lines = []
    w = lines.append
    gl = " | ".join(GPUS[g]["label"] for g in DOC_GPUS)
    sep = "|---" * (2 + len(DOC_GPUS)) + "|"

    w("Predicted batch-1 decode, tokens/s, at context 1024 / 4096 (the new token's "
      "position), one graph replay per token and the logits copied to the host:\n")
    w(f"| model | weights | {gl} |")
    w(sep)
    for r in p:
        cells = [f"{r['decode']['1024'][g]:.0f} / {r['decode']['4096'][g]:.0f}" for g in DOC_GPUS]
        w(f"| {MODELS[r['model']]['label']} | {r['quant'].upper()} | " + " | ".join(cells) + " |")
    w("\nPredicted prefill of 512 tokens into an empty context, tokens/s:\n")
    w(f"| model | weights | {gl} |")
    w(sep)
    for r in p:
        cells = [f"{r['prefill512'][g]:,.0f}" for g in DOC_GPUS]
        w(f"| {MODELS[r['model']]['label']} | {r['quant'].upper()} | " + " | ".join(cells) + " |")

    for g in ("H100-SXM", "L4"):
        w(f"\nWhere a decode step's time goes on {GPUS[g]['label']} (Q4_K_M, context 4096), "
          "µs per token; *bound*: every byte the step moves at the full datasheet bandwidth:\n")
        w("| model | weights | kernel nodes | mat-vec | attention | other kernels | launch "
          "overhead | host | total | bound |")
        w("|---" * 10 + "|")
        for mk, m in MODELS.items():
            calls, lb = step_calls(m, "q4_k_m", **decode_scenario(4096))
            b = budget(calls, lb, GPUS[g], a)
            w(f"| {m['label']} | {weights_bytes(m, 'q4_k_m') / 1e6:.0f} MB | {b['nodes']} | "
              + " | ".join(fmt_us(b[k]) for k in ("matvec", "attention", "other", "launch",
                                                   "host", "total", "bound")) + " |")

    for phase in ("decode@4096", "prefill512"):
        title = ("Main decode kernels at context 4096 (Q4_K_M)" if phase != "prefill512" else
                 "Main prefill kernels, 512 tokens into an empty context (Q4_K_M)")
        w(f"\n{title}: per call (×: calls per step), bytes moved (DRAM), FLOPs, "
          "predicted µs per call:\n")
        w(f"| model | launch | grid x block | × | bytes | FLOPs | {gl} |")
        w("|---|---|---|---|---|---" + "|---" * len(DOC_GPUS) + "|")
        for mk, m in MODELS.items():
            calls = (step_calls(m, "q4_k_m", **decode_scenario(4096))[0] if phase != "prefill512"
                     else step_calls(m, "q4_k_m", 512, 0, 512)[0])
            for c, n in aggregate(calls):
                if c.op not in ("matvec", "gemm", "attention"):
                    continue
                ts = " | ".join(fmt_us(call_time_us(c, GPUS[g], a)) for g in DOC_GPUS)
                note = f" ({c.note})" if c.note else ""
                w(f"| {m['label']} | `{c.key}`{note} | {c.shape()} | {n} | {fmt_bytes(c.bytes)} | "
                  f"{fmt_flops(c.flops)} | {ts} |")

    w("\nPredicted batched decode (Q4_K_M): N sequences each decoding one token at context "
      "1024, one graph replay of the N's bucket per step, all N rows of logits copied to the "
      "host. Per step: bytes moved (DRAM) and FLOPs; aggregate tokens/s (N / step time):\n")
    w(f"| model | N | kernel nodes | bytes / step | FLOPs / step | {gl} |")
    w("|---|---|---|---|---" + "|---" * len(DOC_GPUS) + "|")
    for mk, m in MODELS.items():
        for n in BUCKETS:
            calls, lb, _ = batched_step_calls(m, "q4_k_m", n, 1024)
            cells = " | ".join(
                f"{n * 1e6 / step_time_us(calls, lb, GPUS[g], a, True):,.0f}" for g in DOC_GPUS)
            w(f"| {m['label']} | {n} | {sum(c.nodes for c in calls)} | "
              f"{fmt_bytes(sum(c.bytes for c in calls))} | "
              f"{fmt_flops(sum(c.flops for c in calls))} | {cells} |")

    w("\nWhat the invariant mode (`SLIM_CUDA_INVARIANT=1`) costs (Q4_K_M): decode steps of "
      "N = 1, 4 and 8 sequences at context 1024 (the GEMM instead of the mat-vec: the weights "
      "are read once either way, but the tensor cores compute a whole 32-token tile) and a "
      "512-token prompt in one step (the paged f32 attention instead of flash attention); "
      "aggregate tokens/s default / invariant. From 9 rows on both take the GEMM: there it "
      "costs nothing.\n")
    w(f"| model | phase | {gl} |")
    w("|---|---" + "|---" * len(DOC_GPUS) + "|")
    for mk, m in MODELS.items():
        for n in (1, 4, 8):
            d, i = (batched_step_calls(m, "q4_k_m", n, 1024, inv)[:2] for inv in (False, True))
            cells = []
            for g in DOC_GPUS:
                td = step_time_us(*d, GPUS[g], a, True)
                ti = step_time_us(*i, GPUS[g], a, True)
                cells.append(f"{n * 1e6 / td:,.0f} / {n * 1e6 / ti:,.0f} "
                             f"({100 * (td / ti - 1):+.0f}%)")
            w(f"| {m['label']} | decode N={n} | " + " | ".join(cells) + " |")
        pd = step_calls(m, "q4_k_m", 512, 0, 512)
        pi = invariant_prefill_calls(m, "q4_k_m", 512)
        cells = []
        for g in DOC_GPUS:
            td = step_time_us(*pd, GPUS[g], a, False)
            ti = step_time_us(*pi, GPUS[g], a, False)
            cells.append(f"{512e6 / td:,.0f} / {512e6 / ti:,.0f} ({100 * (td / ti - 1):+.0f}%)")
        w(f"| {m['label']} | prefill 512 | " + " | ".join(cells) + " |")

    m = MODELS["llama-3.1-8b"]
    w(f"\nEvery launch of one {m['label']} Q4_K_M decode step at context 4096, µs per call:\n")
    w(f"| launch | grid x block | × | bytes | FLOPs | {gl} |")
    w("|---|---|---|---|---" + "|---" * len(DOC_GPUS) + "|")
    for c, n in aggregate(step_calls(m, "q4_k_m", **decode_scenario(4096))[0]):
        ts = " | ".join(fmt_us(call_time_us(c, GPUS[g], a)) for g in DOC_GPUS)
        w(f"| `{c.key}` | {c.shape()} | {n} | {fmt_bytes(c.bytes)} | {fmt_flops(c.flops)} | "
          f"{ts} |")
    return "\n".join(lines) + "\n"


def as_json(a):
    gp = {k: dict(v) for k, v in GPUS.items()}
    kernels = []
    for mk, q, phase, calls in scenarios():
        for c, n in aggregate(calls):
            kernels.append(dict(model=mk, quant=q, phase=phase, key=c.key, op=c.op,
                                grid=list(c.grid), block=c.block, smem=c.smem, regs=c.regs,
                                count=n, bytes=c.bytes, flops=c.flops, nodes=c.nodes,
                                us={g: round(call_time_us(c, GPUS[g], a), 3) for g in GPUS}))
    return dict(version=1, assumptions=a, gpus=gp, models=MODELS,
                weights_bytes={mk: {q: weights_bytes(m, q) for q in QUANTS}
                               for mk, m in MODELS.items()},
                predictions=predict(a), kernels=kernels)


def tsv(a, gpu_key):
    """key, predicted µs, bytes, FLOPs, where used; one line per distinct call."""
    g = GPUS[gpu_key]
    rows = {}
    for mk, q, phase, calls in scenarios():
        for c, _ in aggregate(calls):
            r = rows.setdefault(c.key, [c, set()])
            r[1].add(f"{mk}/{q}/{phase}")
    out = [f"# cuda_perf_model predictions for {g['label']}: key\tpred_us\tbytes\tflops\tused_by"]
    for key, (c, used) in rows.items():
        out.append(f"{key}\t{call_time_us(c, g, a):.3f}\t{c.bytes}\t{c.flops}\t"
                   + ",".join(sorted(used)))
    return "\n".join(out) + "\n"


def gpu_from_name(name):
    for frag, key in GPU_MATCH:
        if frag.lower() in name.lower():
            return key
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--markdown", action="store_true", help="the tables of docs/CUDA.md")
    ap.add_argument("--json", action="store_true", help="everything, machine-readable")
    ap.add_argument("--tsv", action="store_true", help="per-kernel predictions for --gpu")
    ap.add_argument("--bench-pred", action="store_true",
                    help="predicted `slim bench` pp512/tg128 for --model on --gpu")
    ap.add_argument("--gpu", help="a GPUS key, or an nvidia-smi name to match")
    ap.add_argument("--model", default="gemma-3-270m")
    ap.add_argument("--quant", default="q4_k_m")
    for k, v in DEFAULTS.items():
        ap.add_argument("--" + k.replace("_", "-"), type=float, default=v)
    args = ap.parse_args()
    a = {k: getattr(args, k) for k in DEFAULTS}
    gkey = None
    if args.gpu:
        gkey = args.gpu if args.gpu in GPUS else gpu_from_name(args.gpu)
        if not gkey:
            sys.exit(f"cuda_perf_model: no model of GPU '{args.gpu}' (known: {', '.join(GPUS)})")
    if args.markdown:
        sys.stdout.write(markdown(a))
    elif args.json:
        json.dump(as_json(a), sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif args.tsv or args.bench_pred:
        if not gkey:
            sys.exit("cuda_perf_model: --tsv and --bench-pred need --gpu")
        if args.tsv:
            sys.stdout.write(tsv(a, gkey))
        else:
            r = next(r for r in predict(a) if r["model"] == args.model and r["quant"] == args.quant)
            b = r["bench"][gkey]
            print(f"pp512\t{b['pp512']:.1f}\ntg128\t{b['tg128']:.1f}")
    else:
        ap.print_help()


if __name__ == "__main__":
    main()
