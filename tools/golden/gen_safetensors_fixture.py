#!/usr/bin/env python3
"""Write the safetensors and JSON fixtures of tests/unit/test_safetensors.c and
tests/unit/test_json.c with the `safetensors` package (pip install safetensors
numpy) and Python's json module:

  tests/data/tiny.safetensors              one file: many dtypes, a scalar, an empty
                                           tensor, a non-ASCII name, __metadata__
  tests/data/st_sharded/                   a sharded checkpoint as transformers writes
                                           it: model.safetensors.index.json and two
                                           model-0000N-of-00002.safetensors shards
  tests/data/json_sample.json              json.dumps(ensure_ascii=True): every
                                           non-ASCII character as \\u escapes
                                           (surrogate pairs for emoji)

Values are chosen so the C tests can assert them exactly (they repeat the
formulas below; change both together).  Deterministic: the same bytes every run.

    .venv/bin/python tools/golden/gen_safetensors_fixture.py [out_dir]
"""
import json
import os
import sys

import numpy as np

import safetensors
from safetensors import serialize
from safetensors.numpy import TensorSpec


def f32_2d():  # [3, 5]
    return np.array([[r * 10 + c + 0.25 for c in range(5)] for r in range(3)], dtype=np.float32)


def f16_1d():  # [8]
    return np.array([i / 8.0 - 2.0 for i in range(8)], dtype=np.float16)


def bf16_2d_f32():  # [2, 4], exact in bfloat16
    return np.array([[(r * 4 + c) * 0.5 - 1.0 for c in range(4)] for r in range(2)], dtype=np.float32)


def bf16_bits(x):
    return (x.view(np.uint32) >> 16).astype(np.uint16)


TENSORS = [
    # name, dtype for serialize, array (its bytes are the data; bf16/f8 as raw integers)
    ("f32.2d", "float32", f32_2d()),
    ("f16.1d", "float16", f16_1d()),
    ("bf16.2d", "bfloat16", bf16_bits(bf16_2d_f32())),
    ("i64.1d", "int64", np.array([-(2**62), -1, 2**40 + 7], dtype=np.int64)),
    ("i32.scalar", "int32", np.array(123456789, dtype=np.int32)),  # shape []
    ("u8.1d", "uint8", np.array([0, 1, 127, 128, 255], dtype=np.uint8)),
    ("bool.1d", "bool", np.array([True, False, True], dtype=np.bool_)),
    ("f64.1d", "float64", np.array([2.718281828459045, -0.0], dtype=np.float64)),
    ("empty", "float32", np.zeros((0, 4), dtype=np.float32)),
    ("i8.2d", "int8", np.array([[-128, 127], [0, -1]], dtype=np.int8)),
    ("f8.1d", "float8_e4m3fn", np.array([0x38, 0x40, 0xB8, 0x7E], dtype=np.uint8)),
    ("\u00fcn\u00efcode.name", "float32", np.array([42.0], dtype=np.float32)),
]
METADATA = {"note": "\u00fcn\u00efcode \u2713 \"quoted\""}  # one key: the writer orders a map randomly


def write(path, tensors, metadata):
    keep = []
    specs = {}
    for name, dtype, arr in tensors:
        a = arr if arr.flags.c_contiguous else arr.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)
        keep.append(a)
        specs[name] = TensorSpec(dtype=dtype, shape=a.shape, data_ptr=a.ctypes.data, data_len=a.nbytes)
    data = bytes(serialize(specs, metadata=metadata))
    with open(path, "wb") as f:
        f.write(data)
    return data


SHARDS = {
    "model-00001-of-00002.safetensors": [
        ("model.embed_tokens.weight", "float32", np.arange(12, dtype=np.float32).reshape(4, 3) * 0.5),
        ("model.layers.0.mlp.weight", "float16", np.array([[1, -1], [0.5, 2]], dtype=np.float16)),
    ],
    "model-00002-of-00002.safetensors": [
        ("model.layers.1.mlp.weight", "bfloat16", bf16_bits(np.array([[1, 2], [3, -4]], dtype=np.float32))),
        ("lm_head.weight", "float32", -np.arange(12, dtype=np.float32).reshape(4, 3)),
        ("unlisted.extra", "float32", np.array([7.0], dtype=np.float32)),  # not in the weight_map
    ],
}

JSON_SAMPLE = {
    "ascii": "plain",
    "latin": "\u00fcn\u00efc\u00f6de",
    "cjk": "\u4e2d\u6587",
    "emoji": "\U0001f600 grin",
    "controls": "tab\there\nnewline \"q\" back\\slash \x01",
    "nul": "a\x00b",
    "numbers": [0, -0.0, 1.5, -2.25e-10, 1e300, 9007199254740993, -9223372036854775808,
                18446744073709551615, 3.0],
    "nested": {"a": [1, [2, [3, {"b": None}]]], "t": True, "f": False},
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "tests", "data")
    os.makedirs(out, exist_ok=True)

    path = os.path.join(out, "tiny.safetensors")
    data = write(path, TENSORS, METADATA)
    with safetensors.safe_open(path, framework="numpy") as f:
        assert f.metadata() == METADATA
        assert np.array_equal(f.get_tensor("f32.2d"), f32_2d())
        assert f.get_tensor("i32.scalar").shape == ()
    n = int.from_bytes(data[:8], "little")
    assert n % 8 == 0, n  # the writer pads the header to 8
    print(f"wrote {path} ({len(data)} bytes, header {n}, {len(TENSORS)} tensors)")

    sdir = os.path.join(out, "st_sharded")
    os.makedirs(sdir, exist_ok=True)
    weight_map, total = {}, 0
    for fname, ts in SHARDS.items():
        write(os.path.join(sdir, fname), ts, {"format": "pt"})
        for name, _, arr in ts:
            if name != "unlisted.extra":
                weight_map[name] = fname
                total += arr.nbytes
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    with open(os.path.join(sdir, "model.safetensors.index.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")  # as transformers does
    print(f"wrote {sdir} ({len(weight_map)} tensors in {len(SHARDS)} shards)")

    jpath = os.path.join(out, "json_sample.json")
    with open(jpath, "w", encoding="ascii") as f:
        f.write(json.dumps(JSON_SAMPLE, indent=1, ensure_ascii=True) + "\n")
    print(f"wrote {jpath}")


if __name__ == "__main__":
    main()
