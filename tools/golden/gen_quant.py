#!/usr/bin/env python3
"""Golden data for the quant formats (tests/unit/test_quant.c), from the `gguf` package.

Two kinds of records:

  dequantize  random blocks (random bytes, with every fp16/f32 scale field set
              to a finite value of magnitude in [1e-3, 1] and random sign) and
              their dequantization by gguf.quants.dequantize.  slim's to_float
              must reproduce it bit for bit.
  quantize    float rows (random, plus edge blocks: zeros, constants, one
              outlier, tiny values with a subnormal fp16 scale, ...) and their
              quantization by gguf.quants.quantize.  slim's from_float must
              reproduce the bytes exactly.

gguf-py has no Q8_1 or Q8_K code (and its size table still says Q8_1 is 40
bytes: GGML's block_q8_1 is fp16 d, fp16 s, int8 qs[32] = 36 bytes), so for
those two this script carries a numpy transcription of GGML's
dequantize_row_q8_* / quantize_row_q8_1_ref / quantize_row_q8_K_ref instead.
(For an all-zero Q8_K block GGML leaves bsums unwritten; slim and this script
write zeros.)

Output: tests/data/quant_golden.bin, little-endian:
  char[8] "SLIMQNT1"; u32 n_records
  per record: u32 kind (0 = dequantize: blocks are the input, floats the
              expected output; 1 = quantize: floats are the input, blocks the
              expected output), u32 type (GGML type id), u32 n (elements),
              u32 n_bytes; u8 blocks[n_bytes]; f32 floats[n]

Deterministic: running it twice gives the same bytes.

usage: .venv/bin/python tools/golden/gen_quant.py [OUT]
needs: pip install gguf numpy   (generated with gguf 0.19.0, numpy 2.x)
"""
import struct
import sys

import numpy as np

import gguf
import gguf.quants
from gguf import GGMLQuantizationType as Q

OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/data/quant_golden.bin"
rng = np.random.default_rng(0x51A7)

KIND_DEQUANT, KIND_QUANT = 0, 1

# type: (block_size, type_size, [(offset, "f16"|"f32")] scale fields, blocks for dequant)
FORMATS = {
    Q.F32: (1, 4, [], 64),
    Q.F16: (1, 2, [], 256),
    Q.BF16: (1, 2, [], 256),
    Q.Q4_0: (32, 18, [(0, "f16")], 32),
    Q.Q4_1: (32, 20, [(0, "f16"), (2, "f16")], 32),
    Q.Q5_0: (32, 22, [(0, "f16")], 32),
    Q.Q5_1: (32, 24, [(0, "f16"), (2, "f16")], 32),
    Q.Q8_0: (32, 34, [(0, "f16")], 32),
    Q.Q8_1: (32, 36, [(0, "f16"), (2, "f16")], 32),
    Q.Q2_K: (256, 84, [(80, "f16"), (82, "f16")], 16),
    Q.Q3_K: (256, 110, [(108, "f16")], 16),
    Q.Q4_K: (256, 144, [(0, "f16"), (2, "f16")], 16),
    Q.Q5_K: (256, 176, [(0, "f16"), (2, "f16")], 16),
    Q.Q6_K: (256, 210, [(208, "f16")], 16),
    Q.Q8_K: (256, 292, [(0, "f32")], 16),
}


def sane_scales(count, dtype):
    mag = 10.0 ** rng.uniform(-3.0, 0.0, size=count)
    sign = np.where(rng.integers(0, 2, size=count) == 1, -1.0, 1.0)
    return (mag * sign).astype(dtype)


def random_blocks(qtype):
    bs, ts, fields, nblk = FORMATS[qtype]
    if qtype == Q.F32:
        return rng.standard_normal(nblk).astype(np.float32).view(np.uint8)
    if qtype in (Q.F16, Q.BF16):
        # random bit patterns, any finite value (subnormals included)
        bits = rng.integers(0, 1 << 16, size=nblk, dtype=np.uint32).astype(np.uint16)
        exp_mask = 0x7C00 if qtype == Q.F16 else 0x7F80
        bits = np.where((bits & exp_mask) == exp_mask, bits ^ np.uint16(0x4000), bits)
        return bits.astype(np.uint16).view(np.uint8)
    raw = rng.integers(0, 256, size=(nblk, ts), dtype=np.uint16).astype(np.uint8)
    for off, kind in fields:
        dt = np.float16 if kind == "f16" else np.float32
        vals = sane_scales(nblk, dt).view(np.uint8).reshape(nblk, -1)
        raw[:, off:off + vals.shape[1]] = vals
    return raw.reshape(-1)


# ---- GGML's Q8_1 and Q8_K, transcribed (gguf-py lacks them) -------------------

def q8_dequant(blocks, qtype):
    if qtype == Q.Q8_1:
        b = blocks.reshape(-1, 36)
        d = b[:, 0:2].copy().view(np.float16).astype(np.float32)
        q = b[:, 4:].copy().view(np.int8).astype(np.float32)
        return (q * d).reshape(-1)
    b = blocks.reshape(-1, 292)
    d = b[:, 0:4].copy().view(np.float32)
    q = b[:, 4:260].copy().view(np.int8).astype(np.float32)
    return (d * q).reshape(-1)


def roundf(v):  # C roundf: half away from zero
    a = np.abs(v)
    f = np.floor(a)
    return np.sign(v) * (f + np.floor(2 * (a - f)))


def q8_1_quant(x):
    x = x.reshape(-1, 32).astype(np.float32)
    d = (np.abs(x).max(axis=1, keepdims=True) / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
    q = roundf((x * idv).astype(np.float32)).astype(np.int8)
    s = (q.astype(np.int32).sum(axis=1, keepdims=True).astype(np.float32) * d).astype(np.float32)
    out = np.concatenate([d.astype(np.float16).view(np.uint8), s.astype(np.float16).view(np.uint8),
                          q.view(np.uint8)], axis=1)
    return out.reshape(-1)


def q8_k_quant(x):
    out = []
    for blk in x.reshape(-1, 256).astype(np.float32):
        a = np.abs(blk)
        if a.max() == 0:
            out.append(np.zeros(292, dtype=np.uint8))
            continue
        mx = blk[int(np.argmax(a))]  # first element of largest magnitude
        iscale = np.float32(-127.0) / mx
        q = np.rint((iscale * blk).astype(np.float32))  # ties to even, as nearest_int
        q = np.minimum(q, 127).astype(np.int8)
        bsums = q.reshape(16, 16).astype(np.int32).sum(axis=1).astype(np.int16)
        d = np.float32(1.0) / iscale
        out.append(np.concatenate([np.array([d], dtype=np.float32).view(np.uint8),
                                   q.view(np.uint8), bsums.view(np.uint8)]))
    return np.concatenate(out)


def dequantize(blocks, qtype):
    if qtype in (Q.Q8_1, Q.Q8_K):
        return q8_dequant(blocks, qtype)
    return gguf.quants.dequantize(blocks, qtype).astype(np.float32).reshape(-1)


def quantize(x, qtype):
    if qtype == Q.Q8_1:
        return q8_1_quant(x)
    if qtype == Q.Q8_K:
        return q8_k_quant(x)
    return np.asarray(gguf.quants.quantize(x, qtype)).view(np.uint8).reshape(-1)


# ---- float rows for the quantizers --------------------------------------------

def quant_rows(bs, nrand):
    blocks = [
        np.zeros(bs),                                  # all zero: scale 0
        np.full(bs, 0.75),                             # constant
        np.full(bs, -2.5),                             # negative constant
        np.r_[np.full(bs - 1, 0.01), [-40.0]],         # one negative outlier
        rng.standard_normal(bs) * 1e-6,                # fp16 scale underflows to subnormal
        np.linspace(-1.0, 1.0, bs),                    # evenly spread, both signs
        np.arange(bs) % 16 - 8.0,                      # exact grid values: rounding ties
        np.r_[[-127.0], np.arange(bs - 1) % 50 - 24.5],  # scale 1 for Q8_*: ties at k + 0.5
        np.r_[[-8.0], np.arange(bs - 1) % 15 - 7.5 + np.float32(2.0 ** -22)],  # near ties
        np.r_[[3.0, -3.0], rng.uniform(-3.0, 3.0, bs - 2)],  # max magnitude twice, +/-
    ]
    for _ in range(nrand):
        blocks.append(rng.standard_normal(bs) * 10.0 ** rng.uniform(-3, 2))
    return np.concatenate(blocks).astype(np.float32)


def float_specials(qtype):
    v = [0.0, 1.0, -1.0, 65504.0, 65520.0, -70000.0, 6.0e-8, 2.98e-8, 1.0e-5, -3.0e-6,
         np.inf, -np.inf, 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, 3.4e38, 1e-40]
    if qtype == Q.BF16:
        v += [1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8, np.nan]  # ties; NaN stays quiet
    v = np.array(v, dtype=np.float32)
    return np.concatenate([v, rng.standard_normal(64 - len(v)).astype(np.float32)
                           * np.float32(10.0) ** rng.uniform(-6, 4, 64 - len(v)).astype(np.float32)])


def main():
    records = []
    for qtype in FORMATS:
        blocks = random_blocks(qtype)
        ref = dequantize(blocks, qtype)
        records.append((KIND_DEQUANT, qtype, blocks, ref))
    for qtype in (Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0, Q.Q8_1):
        x = quant_rows(32, 8)
        records.append((KIND_QUANT, qtype, quantize(x, qtype), x))
    x = quant_rows(256, 2)
    records.append((KIND_QUANT, Q.Q8_K, quantize(x, Q.Q8_K), x))
    for qtype in (Q.F16, Q.BF16):
        x = float_specials(qtype)
        with np.errstate(over="ignore"):  # F16: what gguf.quants.quantize does
            y = x.astype(np.float16).view(np.uint8) if qtype == Q.F16 else quantize(x, qtype)
        records.append((KIND_QUANT, qtype, np.asarray(y).reshape(-1), x))

    with open(OUT, "wb") as f:
        f.write(b"SLIMQNT1" + struct.pack("<I", len(records)))
        for kind, qtype, blocks, floats in records:
            bs, ts = FORMATS[qtype][0], FORMATS[qtype][1]
            blocks = np.ascontiguousarray(blocks, dtype=np.uint8)
            floats = np.ascontiguousarray(floats, dtype="<f4")
            assert blocks.size == floats.size // bs * ts, (qtype.name, blocks.size, floats.size)
            f.write(struct.pack("<IIII", kind, int(qtype), floats.size, blocks.size))
            f.write(blocks.tobytes())
            f.write(floats.tobytes())
    print(f"{OUT}: {len(records)} records")


if __name__ == "__main__":
    main()
