#!/usr/bin/env python3
"""A random LoRA adapter (llama.cpp GGUF adapter format) for a base GGUF:
rank R on every layer's attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up
and ffn_down, for benchmarks where no real adapter exists (`slim bench
--parallel --lora`).  The shapes come from the base file's tensors.

  python3 tools/bench/gen_random_lora.py BASE.gguf OUT.gguf [--rank 16] [--seed 1]

A ~ N(0, 1/in), B ~ N(0, 0.02 / sqrt(r)), F16, adapter.lora.alpha = rank
(scale 1): a small, realistic perturbation.  Needs the `gguf` package
(tools/requirements/test.txt)."""

import argparse
import math

import numpy as np
import gguf

MODULES = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("base")
    ap.add_argument("out")
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rd = gguf.GGUFReader(a.base)
    arch = bytes(rd.fields["general.architecture"].parts[-1]).decode()
    rng = np.random.default_rng(a.seed)
    w = gguf.GGUFWriter(a.out, arch)
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", float(a.rank))
    n = 0
    for t in rd.tensors:
        parts = t.name.split(".")  # blk.N.module.weight
        if len(parts) != 4 or parts[0] != "blk" or parts[2] not in MODULES:
            continue
        n_in, n_out = int(t.shape[0]), int(t.shape[1])  # GGUF order: ne0 = in
        la = rng.standard_normal((a.rank, n_in)) / math.sqrt(n_in)
        lb = rng.standard_normal((n_out, a.rank)) * 0.02 / math.sqrt(a.rank)
        w.add_tensor(t.name + ".lora_a", la.astype(np.float16))
        w.add_tensor(t.name + ".lora_b", lb.astype(np.float16))
        n += 1
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"{a.out}: {arch}, {n} projections, rank {a.rank}")


if __name__ == "__main__":
    main()
