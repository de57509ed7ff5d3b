#!/usr/bin/env python3
"""Write tests/data/tiny.gguf, the GGUF reader's fixture, with the `gguf` package.

Every metadata value type, a few small tensors of several types and shapes, and
values chosen so that tests/unit/test_gguf.c can assert them exactly (the test
repeats the formulas below; change both together).  Deterministic: running it
twice gives the same bytes.

    .venv/bin/python tools/golden/gen_gguf_fixture.py [out_path]
"""
import os
import sys

import numpy as np

import gguf
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V

ALIGNMENT = 64  # not the default 32, so the reader must honour general.alignment


def f32_1d():  # ne = [7]
    return np.array([0.5 * i - 1.0 for i in range(7)], dtype=np.float32)


def f32_2d():  # ne = [5, 3]
    return np.array([[r * 10 + c + 0.25 for c in range(5)] for r in range(3)], dtype=np.float32)


def f32_3d():  # ne = [2, 3, 4]
    return np.arange(24, dtype=np.float32).reshape(4, 3, 2) * np.float32(-1.5)


def f16_2d():  # ne = [8, 4]
    return np.array([[(r * 8 + c) / 8.0 - 2.0 for c in range(8)] for r in range(4)], dtype=np.float16)


def q8_0_values():  # ne = [64, 3]; every 32-block holds +-127, so d == 1.0 and qs == x
    x = np.zeros((3, 64), dtype=np.float32)
    for r in range(3):
        for j in range(64):
            x[r, j] = ((j * 37 + r * 11) % 255) - 127
            if j % 32 == 0:
                x[r, j] = 127 if r % 2 == 0 else -127
    return x


def q4_k_bytes():  # ne = [256, 2]: one 144-byte block per row, raw bytes
    out = np.zeros((2, 144), dtype=np.uint8)
    for r in range(2):
        out[r, 0:2] = [0x00, 0x3C]  # d = 1.0 (f16)
        out[r, 2:4] = [0x00, 0x38]  # dmin = 0.5 (f16)
        out[r, 4:16] = [(k * 5 + r) & 63 for k in range(12)]
        out[r, 16:144] = [(k * 3 + r * 7) & 0xFF for k in range(128)]
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "tests", "data", "tiny.gguf")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)

    w = gguf.GGUFWriter(out, "tiny")  # writes general.architecture = "tiny" first
    w.add_custom_alignment(ALIGNMENT)
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.1)
    w.add_bool("test.bool_t", True)
    w.add_bool("test.bool_f", False)
    w.add_string("test.string", "hello, gguf \u2713\n'quoted'")
    w.add_key_value("test.empty_string", "", V.STRING)
    w.add_uint64("test.u64", 2**64 - 1)
    w.add_uint64("test.u64_small", 42)
    w.add_int64("test.i64", -(2**40) - 7)
    w.add_float64("test.f64", 2.718281828459045)
    w.add_string("test.\u00fcnic\u00f6de", "ok")
    w.add_key_value("test.arr_i32", [1, -2, 3, -4, 2147483647], V.ARRAY, sub_type=V.INT32)
    w.add_key_value("test.arr_u8", [0, 1, 254, 255], V.ARRAY, sub_type=V.UINT8)
    w.add_key_value("test.arr_u64", [2**64 - 1, 0, 1], V.ARRAY, sub_type=V.UINT64)
    w.add_key_value("test.arr_f32", [0.5, -1.25, 3.0], V.ARRAY, sub_type=V.FLOAT32)
    w.add_key_value("test.arr_bool", [True, False, True], V.ARRAY, sub_type=V.BOOL)
    w.add_key_value("test.arr_str", ["<pad>", "<eos>", "hello world", "", "\u00fcn\u00ef"],
                    V.ARRAY, sub_type=V.STRING)

    w.add_tensor("f32.1d", f32_1d())
    w.add_tensor("f32.2d", f32_2d())
    w.add_tensor("f32.3d", f32_3d())
    w.add_tensor("f16.2d", f16_2d())
    w.add_tensor("q8_0.2d", gguf.quants.quantize(q8_0_values(), Q.Q8_0), raw_dtype=Q.Q8_0)
    w.add_tensor("q4_k.2d", q4_k_bytes(), raw_dtype=Q.Q4_K)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # Self-check with the package's own reader.
    r = gguf.GGUFReader(out)
    assert r.fields["test.u8"].parts[-1][0] == 200
    names = [t.name for t in r.tensors]
    assert names == ["f32.1d", "f32.2d", "f32.3d", "f16.2d", "q8_0.2d", "q4_k.2d"], names
    q8 = next(t for t in r.tensors if t.name == "q8_0.2d")
    assert np.array_equal(gguf.quants.dequantize(q8.data, Q.Q8_0).reshape(3, 64), q8_0_values())
    size = os.path.getsize(out)
    assert size < 20 * 1024, size
    print(f"wrote {out} ({size} bytes, {len(r.fields)} keys, {len(r.tensors)} tensors)")


if __name__ == "__main__":
    main()
