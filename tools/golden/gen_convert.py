#!/usr/bin/env python3
"""Golden data for tests/unit/test_convert.c (the GGUF writer, the weight
quantizers, `slim convert`), from independent implementations only:

tests/data/convert_quant.bin: F32 rows and what llama.cpp and the `gguf`
  package make of them.  A tiny llama-arch F32 GGUF (n_embd 256 so every
  K-quant fits) is written with gguf-py, its blk.0.attn_q.weight rows set to
  edge cases (zeros, constants, denormals, values below GGML's GROUP_MAX_EPS,
  large values, outliers, one-signed rows, exact rounding ties, zero
  sub-blocks, wide dynamic range) and seeded random rows; llama-cpp-python's
  llama_model_quantize (pure, no imatrix) quantizes it to Q4_0 Q4_1 Q5_0 Q5_1
  Q8_0 Q4_K Q5_K Q6_K, and gguf.quants.quantize gives F16, BF16 and the legacy
  formats of the same rows (which must equal llama.cpp's: checked here).
  Format, little-endian:
    char[8] "SLIMCVQ1"; u32 n_rows, n_cols, n_types
    f32 rows[n_rows][n_cols]
    per type: u32 ggml_type, u32 source (0 gguf-py, 1 llama.cpp), u32 row_bytes,
              u8 data[n_rows][row_bytes]

tests/data/convert_writer.gguf: a GGUF written by gguf-py's GGUFWriter with
  one KV of every type and an array of every element type, general.alignment
  64 and tensors of several types; test_convert.c writes the same content with
  slim's writer and compares the bytes.  WRITER_KVS / WRITER_TENSORS below are
  mirrored in test_convert.c (writer_fixture()).

usage: .venv/bin/python tools/golden/gen_convert.py        (writes both files)
needs: pip install gguf numpy llama-cpp-python   (gguf 0.19.0, llama-cpp-python 0.3.36)
"""
import ctypes
import os
import struct
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "tests", "data")
sys.path.insert(0, HERE)

import gen_synthetic  # noqa: E402  (the synthetic vocabulary)

SEED = 20250702
N_COLS = 256
N_ROWS = 40  # the first rows of attn_q: the edge cases, then random rows


def edge_rows(rng):
    n = N_COLS
    r = []
    r.append(np.zeros(n))                                        # all zero
    r.append(np.full(n, 0.5))                                    # constant
    r.append(np.full(n, -3.0))                                   # constant negative
    r.append(rng.standard_normal(n) * 1e-40)                     # denormals
    r.append(rng.standard_normal(n) * 1e-20)                     # below GROUP_MAX_EPS
    r.append(rng.standard_normal(n) * 6e3)                       # large (fp16 scales still finite)
    x = rng.standard_normal(n) * 0.01
    x[17] = 50.0
    r.append(x)                                                  # one outlier
    r.append(np.abs(rng.standard_normal(n)))                     # positive only
    r.append(-np.abs(rng.standard_normal(n)))                    # negative only
    x = rng.standard_normal(n)
    for b in range(0, n, 64):
        x[b:b + 32] = 0
    r.append(x)                                                  # zero sub-blocks of 32
    x = rng.standard_normal(n)
    for b in range(0, n, 32):
        x[b:b + 16] *= 1e-3
    r.append(x)                                                  # 16-groups of 1e-3 vs 1
    r.append(rng.integers(-8, 8, n).astype(np.float64))          # small integers
    r.append(rng.integers(-16, 16, n) + 0.5)                     # halves: rounding ties
    r.append(np.linspace(-1, 1, n))                              # ramp
    x = np.zeros(n)
    x[200] = -2.5
    r.append(x)                                                  # one non-zero
    r.append(rng.standard_normal(n) * 10.0 ** rng.uniform(-6, 3, n))  # wide range
    r.append(rng.standard_normal(n) * 6e-8)                      # fp16 subnormal scale
    x = np.ones(n)
    x[::2] = 1e-39
    r.append(x)                                                  # denormals and ones
    r.append(rng.laplace(size=n) * 0.05)                         # heavy tails
    r.append(np.tile([1.0, -1.0], n // 2) * 0.125)               # alternating
    return r


def make_rows():
    rng = np.random.default_rng(SEED)
    rows = edge_rows(rng)
    while len(rows) < N_ROWS:
        rows.append(rng.standard_normal(N_COLS) * 0.02)
    return np.array(rows, dtype=np.float32)


def write_model(path, rows):
    import gguf
    rng = np.random.default_rng(SEED + 1)
    E, F, V = 256, 256, gen_synthetic.N_VOCAB
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("convert-quant")
    w.add_file_type(0)
    w.add_context_length(512)
    w.add_embedding_length(E)
    w.add_block_count(1)
    w.add_feed_forward_length(F)
    w.add_head_count(2)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(128)
    w.add_tokenizer_model("llama")
    vocab = gen_synthetic.VOCAB
    w.add_token_list([t for t, _, _ in vocab])
    w.add_token_scores([s for _, s, _ in vocab])
    w.add_token_types([ty for _, _, ty in vocab])
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)

    def mat(r, c):
        return (rng.standard_normal((r, c)) * 0.05).astype(np.float32)

    q = mat(E, E)
    q[:N_ROWS] = rows
    t = {"token_embd.weight": mat(V, E), "output_norm.weight": np.ones(E, np.float32),
         "output.weight": mat(V, E), "blk.0.attn_norm.weight": np.ones(E, np.float32),
         "blk.0.attn_q.weight": q, "blk.0.attn_k.weight": mat(E, E),
         "blk.0.attn_v.weight": mat(E, E), "blk.0.attn_output.weight": mat(E, E),
         "blk.0.ffn_norm.weight": np.ones(E, np.float32), "blk.0.ffn_gate.weight": mat(F, E),
         "blk.0.ffn_up.weight": mat(F, E), "blk.0.ffn_down.weight": mat(E, F)}
    for k, v in t.items():
        w.add_tensor(k, v)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# llama_ftype values (llama.h) and the tensor type a pure quantization gives
FTYPES = [("Q4_0", 2, 2), ("Q4_1", 3, 3), ("Q5_0", 8, 6), ("Q5_1", 9, 7), ("Q8_0", 7, 8),
          ("Q4_K", 14, 12), ("Q5_K", 16, 13), ("Q6_K", 18, 14)]


def llama_quantize(src, dst, ftype):
    import llama_cpp
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = ftype
    p.pure = True
    p.nthread = 1
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p))
    assert rc == 0, "llama_model_quantize failed: %d" % rc


def tensor_bytes(path, name):
    import gguf
    r = gguf.GGUFReader(path)
    for t in r.tensors:
        if t.name == name:
            return int(t.tensor_type), np.asarray(t.data).tobytes()
    raise KeyError(name)


def quant_golden():
    import gguf
    from gguf import GGMLQuantizationType as QT
    rows = make_rows()
    out = []  # (ggml_type, source, row_bytes, data)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "f32.gguf")
        write_model(src, rows)
        for name, ftype, gtype in FTYPES:
            dst = os.path.join(tmp, name + ".gguf")
            llama_quantize(src, dst, ftype)
            ty, data = tensor_bytes(dst, "blk.0.attn_q.weight")
            assert ty == gtype, (name, ty)
            rb = len(data) // N_COLS
            data = data[: rb * N_ROWS]
            out.append((gtype, 1, rb, data))
            if gtype in (2, 3, 6, 7, 8):  # the gguf package has these: must agree
                mine = gguf.quants.quantize(rows, QT(gtype)).tobytes()
                same = sum(mine[i * rb:(i + 1) * rb] == data[i * rb:(i + 1) * rb]
                           for i in range(N_ROWS))
                print("%s: gguf-py == llama.cpp on %d / %d rows" % (name, same, N_ROWS))
            else:
                print("%s: %d bytes per row from llama.cpp" % (name, rb))
    for gtype in (1, 30):  # F16, BF16 from the gguf package
        data = gguf.quants.quantize(rows, QT(gtype)).tobytes()
        out.append((gtype, 0, len(data) // N_ROWS, data))
    path = os.path.join(DATA, "convert_quant.bin")
    with open(path, "wb") as f:
        f.write(b"SLIMCVQ1")
        f.write(struct.pack("<3I", N_ROWS, N_COLS, len(out)))
        f.write(rows.astype("<f4").tobytes())
        for gtype, source, rb, data in out:
            f.write(struct.pack("<3I", gtype, source, rb))
            f.write(data)
    print("wrote %s (%d bytes)" % (path, os.path.getsize(path)))


# ---------------------------------------------------------------------------
# the writer fixture (mirrored in test_convert.c)

def writer_fixture():
    import gguf
    from gguf import GGUFValueType as VT
    path = os.path.join(DATA, "convert_writer.gguf")
    w = gguf.GGUFWriter(path, "slimtest")
    w.add_custom_alignment(64)
    w.add_key_value("t.u8", 200, VT.UINT8)
    w.add_key_value("t.i8", -100, VT.INT8)
    w.add_key_value("t.u16", 65000, VT.UINT16)
    w.add_key_value("t.i16", -30000, VT.INT16)
    w.add_key_value("t.u32", 4000000000, VT.UINT32)
    w.add_key_value("t.i32", -2000000000, VT.INT32)
    w.add_key_value("t.f32", 3.25, VT.FLOAT32)
    w.add_key_value("t.bool", True, VT.BOOL)
    w.add_key_value("t.str", "h\u00e9llo w\u00f6rld", VT.STRING)
    w.add_key_value("t.u64", (1 << 60) + 3, VT.UINT64)
    w.add_key_value("t.i64", -(1 << 60), VT.INT64)
    w.add_key_value("t.f64", 1.0 / 3.0, VT.FLOAT64)
    w.add_key_value("t.empty", "", VT.STRING)
    w.add_key_value("a.u8", [1, 2, 255], VT.ARRAY, VT.UINT8)
    w.add_key_value("a.i8", [-1, 0, 127], VT.ARRAY, VT.INT8)
    w.add_key_value("a.u16", [7, 65535], VT.ARRAY, VT.UINT16)
    w.add_key_value("a.i16", [-32768, 5], VT.ARRAY, VT.INT16)
    w.add_key_value("a.u32", [1, 2, 3, 4], VT.ARRAY, VT.UINT32)
    w.add_key_value("a.i32", [-7, 0, 7], VT.ARRAY, VT.INT32)
    w.add_key_value("a.f32", [0.5, -1.25, 1e-3], VT.ARRAY, VT.FLOAT32)
    w.add_key_value("a.bool", [True, False, True], VT.ARRAY, VT.BOOL)
    w.add_key_value("a.str", ["a", "", "\u00fcn\u00efcode", "<0x0A>"], VT.ARRAY, VT.STRING)
    w.add_key_value("a.u64", [(1 << 63) + 1], VT.ARRAY, VT.UINT64)
    w.add_key_value("a.i64", [-1, 1 << 62], VT.ARRAY, VT.INT64)
    w.add_key_value("a.f64", [2.5, -0.1], VT.ARRAY, VT.FLOAT64)
    # tensors: values i * 0.25 - 3 (F32), bytes i % 251 (raw quantized blocks)
    f32 = (np.arange(3 * 5, dtype=np.float32) * 0.25 - 3).reshape(5, 3)
    w.add_tensor("f32.weight", f32)
    f16 = (np.arange(8 * 2, dtype=np.float32) * 0.5).astype(np.float16).reshape(2, 8)
    w.add_tensor("f16.weight", f16)
    q8 = (np.arange(2 * 34) % 251).astype(np.uint8).reshape(2, 34)  # two Q8_0 rows of 32
    w.add_tensor("blk.0.q8.weight", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    one = np.array([42.0], dtype=np.float32)
    w.add_tensor("one", one)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("wrote %s (%d bytes)" % (path, os.path.getsize(path)))


def main():
    writer_fixture()
    quant_golden()


if __name__ == "__main__":
    main()
