#!/usr/bin/env python3
"""LoRA adapters for the synthetic models of gen_synthetic.py, with llama.cpp's
logits for the models with the adapters applied (tests/unit/test_lora.c).

Every adapter is random (fixed seeds) with non-zero B, mixed ranks, a subset
of the modules and alpha != r, so that every part of the scale and every
adapted weight shows in the logits.  Written:

  lora_llama3_a.gguf   llama.cpp GGUF adapter for synth_llama3.gguf: layer 0
                       q k v o gate up down at rank 8, layer 1 q v down at
                       rank 4; adapter.lora.alpha 16 (so alpha/r is 2 and 4)
  lora_llama3_a/       the same adapter as PEFT saves it (adapter_config.json,
                       adapter_model.safetensors): r 8, lora_alpha 16,
                       rank_pattern for layer 1's rank 4; A stored F16, B BF16
                       (the GGUF holds the same rounded values as F32); Q/K B
                       rows in Hugging Face order, i.e. before the row
                       permutation llama.cpp's converter applies for its
                       adjacent-pair RoPE (convert_hf_to_gguf.py, permute)
  lora_llama3_b.gguf   a second llama3 adapter: k, o, up of both layers at
                       rank 2 (padded to 4 in slim), no adapter.lora.alpha
                       (llama.cpp then uses the scale alone)
  lora_gemma3.gguf     synth_gemma3.gguf: F16 tensors, rank 4, alpha 8, all
                       seven projections on layers 0, 2 and 5 (global)
  lora_phi3.gguf       synth_phi3.gguf: fused attn_qkv (rank 4) and the fused
                       gate+up ffn_up (2*n_ff rows, rank 8) on layer 0,
                       attn_output and ffn_down on layer 1; no alpha key: the
                       PEFT scales are folded into B
  lora_phi3/           the same as PEFT: qkv_proj / gate_up_proj / o_proj /
                       down_proj, use_rslora (alpha / sqrt(r)), lora_alpha 6,
                       alpha_pattern 12 for layer 1's down_proj, F32

Golden files (little-endian), llama.cpp's full logits:
  char[8] "SLIMLRA1"; u32 n_vocab, n_tokens; i32 tokens[n_tokens];
  f32 logits[n_tokens][n_vocab]
  lora_llama3_a.bin    synth_llama3 + lora_llama3_a at scale 1
  lora_llama3_ab.bin   synth_llama3 + lora_llama3_a at 0.5 + lora_llama3_b at -1.25
  lora_gemma3.bin      synth_gemma3 + lora_gemma3 at 1
  lora_phi3.bin        synth_phi3 + lora_phi3 at 0.8
The tokens are the first 48 of gen_synthetic.py's test sequence; llama.cpp
runs them as one batch (n_ctx 256, F32 K/V cache, flash attention off) with
the adapters set through llama_set_adapters_lora.

The seeds of the gemma3 and phi3 adapters were picked among 12 so that
llama.cpp's top-1 margin is >= 0.035 at every position (others went down to
5e-5), so that the test's top-1 check measures logic, not rounding.

Checks printed on every run: a float64 numpy model of the graph
(gen_synthetic.reference_logits) with the adapters merged into the weights,
W + scale * alpha/r * B A, against llama.cpp's logits with the adapters at
run time; how far the adapters move the logits; the smallest top-1 margin.

usage: .venv/bin/python tools/golden/gen_lora.py     (needs gguf numpy llama-cpp-python,
       checked with gguf 0.19.0 and llama-cpp-python 0.3.36)
"""
import ctypes
import json
import math
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_synthetic as gs  # noqa: E402

DATA = gs.DATA
N_TOKENS = 48

# GGUF names of a layer's projections, with the PEFT module paths.
PEFT_NAME = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
             "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
             "attn_qkv": "self_attn.qkv_proj", "ffn_up_fused": "mlp.gate_up_proj"}


def weight_shape(s, mod):
    """(out, in) of a projection as the GGUF model stores it."""
    E, F = s["n_embd"], s["n_ff"]
    Q, KV = s["n_head"] * s["head_dim"], s["n_head_kv"] * s["head_dim"]
    return {"attn_q": (Q, E), "attn_k": (KV, E), "attn_v": (KV, E), "attn_output": (E, Q),
            "ffn_gate": (F, E), "ffn_up": (F, E), "ffn_down": (E, F),
            "attn_qkv": (Q + 2 * KV, E), "ffn_up_fused": (2 * F, E)}[mod]


def make_adapter(s, seed, plan, gain):
    """plan: [(layer, module, rank, scale)] -> {(layer, module): (A, B, scale)}.
    A [r, in] ~ N(0, 1/in); B [out, r] scaled so that scale * B A x is about
    `gain` per output for a unit-RMS x.  Values are rounded to fp16 so that
    every stored precision holds them exactly."""
    rng = np.random.default_rng([gs.SEED, 77, seed])
    out = {}
    for layer, mod, r, sc in plan:
        o, i = weight_shape(s, mod)
        a = rng.standard_normal((r, i)) / math.sqrt(i)
        b = rng.standard_normal((o, r)) * gain / (sc * math.sqrt(r))
        out[(layer, mod)] = (a.astype(np.float16).astype(np.float32),
                             b.astype(np.float16).astype(np.float32), sc)
    return out


def permute(w, n_head, n_head_kv):
    """convert_hf_to_gguf.py's LlamaModel.permute: Hugging Face's NEOX-half
    rows of each head to llama.cpp's adjacent pairs."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def unpermute(w, n_head, n_head_kv):
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def gguf_name(mod):
    return "ffn_up" if mod == "ffn_up_fused" else mod


def write_gguf_adapter(path, arch, ad, alpha, dtype=np.float32, fold=False):
    """fold: B times the pair's scale, no alpha key (llama.cpp: scale alone)."""
    import gguf
    w = gguf.GGUFWriter(path, arch)
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    if alpha is not None:
        w.add_float32("adapter.lora.alpha", float(alpha))
    for (layer, mod), (a, b, sc) in sorted(ad.items()):
        base = "blk.%d.%s.weight" % (layer, gguf_name(mod))
        bb = b * np.float32(sc) if fold else b
        w.add_tensor(base + ".lora_a", np.ascontiguousarray(a, dtype=dtype))
        w.add_tensor(base + ".lora_b", np.ascontiguousarray(bb, dtype=dtype))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def st_bytes(arr, dtype):
    if dtype == "F32":
        return arr.astype("<f4").tobytes()
    if dtype == "F16":
        return arr.astype("<f2").tobytes()
    if dtype == "BF16":  # callers pass bf16-exact values: truncation is exact
        u = arr.astype("<f4").view("<u4")
        assert (u & 0xFFFF).max(initial=0) == 0
        return (u >> 16).astype("<u2").tobytes()
    raise ValueError(dtype)


def write_safetensors(path, tensors):
    """tensors: {name: (array, dtype)}; the official layout (header padded to
    8 bytes with spaces)."""
    header, blobs, off = {}, [], 0
    for name, (arr, dt) in tensors.items():
        data = st_bytes(arr, dt)
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def bf16_round(x):
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32)


def write_peft(dirname, s, ad, config, a_dtype="F32", b_dtype="F32", hf_qk=False,
               prefix="base_model.model.model.layers"):
    os.makedirs(dirname, exist_ok=True)
    t = {}
    for (layer, mod), (a, b, sc) in sorted(ad.items()):
        if hf_qk and mod in ("attn_q", "attn_k"):
            b = unpermute(b, s["n_head"], s["n_head_kv"] if mod == "attn_k" else s["n_head"])
        name = "%s.%d.%s" % (prefix, layer, PEFT_NAME[mod])
        t[name + ".lora_A.weight"] = (a, a_dtype)
        t[name + ".lora_B.weight"] = (b, b_dtype)
    write_safetensors(os.path.join(dirname, "adapter_model.safetensors"), t)
    with open(os.path.join(dirname, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


# ----------------------------------------------------------------------------


def llama_lora_logits(model_path, adapters, tokens):
    """adapters: [(gguf path, scale)]."""
    import llama_cpp
    from llama_cpp import Llama
    llm = Llama(model_path=model_path, n_ctx=gs.N_CTX, n_batch=gs.N_CTX, n_ubatch=gs.N_CTX,
                n_threads=2, logits_all=True, verbose=False, seed=0, type_k=0, type_v=0,
                swa_full=True, flash_attn=False)
    handles = []
    for path, _ in adapters:
        h = llama_cpp.llama_adapter_lora_init(llm._model.model, path.encode())
        if not h:
            raise RuntimeError("llama.cpp refused the adapter " + path)
        handles.append(h)
    arr = (llama_cpp.llama_adapter_lora_p_ctypes * len(handles))(*handles)
    scales = (ctypes.c_float * len(handles))(*[sc for _, sc in adapters])
    if llama_cpp.llama_set_adapters_lora(llm._ctx.ctx, arr, len(handles), scales):
        raise RuntimeError("llama_set_adapters_lora failed")
    llm.eval(list(tokens))
    out = np.array(llm.scores[: len(tokens)], dtype=np.float32)
    llm.close()
    return out


def merged(s, t, adapters):
    """The model's tensors with each adapter merged: W += scale * B A (the
    pair's alpha/r already in its scale)."""
    t = {k: v.astype(np.float64) for k, v in t.items()}
    for ad, user in adapters:
        for (layer, mod), (a, b, sc) in ad.items():
            name = "blk.%d.%s.weight" % (layer, gguf_name(mod))
            t[name] = t[name] + user * sc * (b.astype(np.float64) @ a.astype(np.float64))
    return t


def write_golden(path, tokens, logits):
    with open(path, "wb") as f:
        f.write(b"SLIMLRA1")
        f.write(struct.pack("<2I", gs.N_VOCAB, len(tokens)))
        f.write(np.asarray(tokens, dtype="<i4").tobytes())
        f.write(logits.astype("<f4").tobytes())


def report(name, s, t, tokens, adapters, logits):
    base = gs.llama_logits(os.path.join(DATA, "synth_%s.gguf" % s["name"]), tokens)
    ref = gs.reference_logits(s, merged(s, t, adapters), tokens)
    srt = np.sort(logits, axis=1)
    print("%-10s adapters move llama.cpp's logits by max %.2f (mean %.3f); numpy float64 "
          "merged-weights model vs llama.cpp run-time LoRA: max |d| %.2e; top-1 margin min "
          "%.4f; top-1 changed at %d of %d positions"
          % (name, np.abs(logits - base).max(), np.abs(logits - base).mean(),
             np.abs(ref - logits).max(), (srt[:, -1] - srt[:, -2]).min(),
             int((logits.argmax(1) != base.argmax(1)).sum()), len(tokens)))


def main():
    specs = gs.make_specs()
    tokens = gs.test_tokens()[:N_TOKENS]
    p = lambda n: os.path.join(DATA, n)  # noqa: E731

    # ---- llama3: adapters a and b
    s = dict(specs["llama3"], name="llama3")
    t = gs.make_tensors("llama3", s)
    full = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
    plan_a = [(0, m, 8, 16 / 8) for m in full] + [(1, m, 4, 16 / 4)
                                                   for m in ("attn_q", "attn_v", "ffn_down")]
    ad_a = make_adapter(s, 1, plan_a, 0.5)
    cfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 8, "lora_alpha": 16,
           "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False, "use_rslora": False,
           "modules_to_save": None, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj",
                                                      "gate_proj", "up_proj", "down_proj"],
           "rank_pattern": {"layers.1.self_attn.q_proj": 4, "layers.1.self_attn.v_proj": 4,
                            "model.layers.1.mlp.down_proj": 4},
           "alpha_pattern": {}, "base_model_name_or_path": "synth-llama3"}
    # A as F16 and B as BF16: both hold the fp16-rounded values only if B is
    # also bf16-exact, so B is rounded to bf16 for every copy.
    ad_a = {k: (a, bf16_round(b), sc) for k, (a, b, sc) in ad_a.items()}
    write_gguf_adapter(p("lora_llama3_a.gguf"), "llama", ad_a, 16)
    write_peft(p("lora_llama3_a"), s, ad_a, cfg, "F16", "BF16", hf_qk=True)
    plan_b = [(il, m, 2, 1.0) for il in (0, 1) for m in ("attn_k", "attn_output", "ffn_up")]
    ad_b = make_adapter(s, 2, plan_b, 0.4)
    write_gguf_adapter(p("lora_llama3_b.gguf"), "llama", ad_b, None)
    model = p("synth_llama3.gguf")
    lg = llama_lora_logits(model, [(p("lora_llama3_a.gguf"), 1.0)], tokens)
    report("llama3_a", s, t, tokens, [(ad_a, 1.0)], lg)
    write_golden(p("lora_llama3_a.bin"), tokens, lg)
    lg = llama_lora_logits(model, [(p("lora_llama3_a.gguf"), 0.5),
                                   (p("lora_llama3_b.gguf"), -1.25)], tokens)
    report("llama3_ab", s, t, tokens, [(ad_a, 0.5), (ad_b, -1.25)], lg)
    write_golden(p("lora_llama3_ab.bin"), tokens, lg)

    # ---- gemma3
    s = dict(specs["gemma3"], name="gemma3")
    t = gs.make_tensors("gemma3", s)
    plan = [(il, m, 4, 8 / 4) for il in (0, 2, 5) for m in full]
    ad = make_adapter(s, 11, plan, 0.5)
    write_gguf_adapter(p("lora_gemma3.gguf"), "gemma3", ad, 8, dtype=np.float16)
    lg = llama_lora_logits(p("synth_gemma3.gguf"), [(p("lora_gemma3.gguf"), 1.0)], tokens)
    report("gemma3", s, t, tokens, [(ad, 1.0)], lg)
    write_golden(p("lora_gemma3.bin"), tokens, lg)

    # ---- phi3: fused modules, rsLoRA, alpha_pattern
    s = dict(specs["phi3"], name="phi3")
    t = gs.make_tensors("phi3", s)
    plan = [(0, "attn_qkv", 4, 6 / math.sqrt(4)), (0, "ffn_up_fused", 8, 6 / math.sqrt(8)),
            (1, "attn_output", 8, 6 / math.sqrt(8)), (1, "ffn_down", 4, 12 / math.sqrt(4))]
    ad = make_adapter(s, 6, plan, 0.5)
    write_gguf_adapter(p("lora_phi3.gguf"), "phi3", ad, None, fold=True)
    cfg = {"peft_type": "LORA", "r": 8, "lora_alpha": 6, "use_rslora": True, "bias": "none",
           "fan_in_fan_out": False, "target_modules": "(.*\\.)?(qkv_proj|gate_up_proj|o_proj|down_proj)",
           "rank_pattern": {"layers.0.self_attn.qkv_proj": 4, "layers.1.mlp.down_proj": 4},
           "alpha_pattern": {"layers.1.mlp.down_proj": 12}}
    write_peft(p("lora_phi3"), s, ad, cfg)
    lg = llama_lora_logits(p("synth_phi3.gguf"), [(p("lora_phi3.gguf"), 0.8)], tokens)
    report("phi3", s, t, tokens, [(ad, 0.8)], lg)
    write_golden(p("lora_phi3.bin"), tokens, lg)


if __name__ == "__main__":
    main()
