#!/usr/bin/env python3
"""A real model as a Hugging Face directory, and transformers' logits for it.

The registries ship the test models as GGUF only; this rebuilds the
checkpoint fine-tuning tools would have written: weights dequantized by the
`gguf` package, Llama's Q/K rows un-permuted back to rotate-half order (the
inverse of llama.cpp's convert_hf_to_gguf.py `permute`), Gemma's folded
(1 + w) norms unfolded, a config.json, and the tokenizer files made by
`make hf-tokenizers`.  Then transformers loads the directory and computes
teacher-forced logits (golden.bin, the format of tools/golden/gen_hf.py), so
slim reading the same directory is compared with transformers on a real model
(tests/unit/test_hf_model.c, SLIM_TEST_HF_REAL; `make test-full`).

    .venv/bin/python tools/golden/gguf_to_hf.py smollm2|gemma3 MODELS_DIR OUT_DIR

Needs: gguf, numpy, safetensors, torch, transformers.  Large (F32 weights):
written under models/, never committed.
"""
import json
import os
import shutil
import struct
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

SOURCES = {
    "smollm2": ("smollm2-135m-instruct-q4_1.gguf", "smollm2"),
    "gemma3": ("gemma-3-270m-q4_k_m.gguf", "gemma3"),
}


def field(r, key):
    f = r.fields.get(key)
    return None if f is None else f.contents()


def unpermute(w, n_head):
    """llama.cpp row order (pairs adjacent) back to rotate-half order."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def tensors_of(r):
    out = {}
    for t in r.tensors:
        a = dequantize(t.data, t.tensor_type).astype(np.float32)
        out[t.name] = a.reshape([int(x) for x in reversed(t.shape)])
    return out


def build(kind, models, out):
    gguf_name, tok = SOURCES[kind]
    r = GGUFReader(os.path.join(models, gguf_name))
    arch = field(r, "general.architecture")
    g = lambda k: field(r, f"{arch}.{k}")
    t = tensors_of(r)
    n_layer, n_head, n_kv = g("block_count"), g("attention.head_count"), g("attention.head_count_kv")
    vocab = t["token_embd.weight"].shape[0]
    gemma = arch == "gemma3"
    norm = (lambda w: w - 1.0) if gemma else (lambda w: w)
    st = {"model.embed_tokens.weight": t["token_embd.weight"],
          "model.norm.weight": norm(t["output_norm.weight"])}
    if "output.weight" in t:
        st["lm_head.weight"] = t["output.weight"]
    for i in range(n_layer):
        p, b = f"model.layers.{i}.", f"blk.{i}."
        q, k = t[b + "attn_q.weight"], t[b + "attn_k.weight"]
        if not gemma:
            q, k = unpermute(q, n_head), unpermute(k, n_kv)
        st.update({p + "self_attn.q_proj.weight": q, p + "self_attn.k_proj.weight": k,
                   p + "self_attn.v_proj.weight": t[b + "attn_v.weight"],
                   p + "self_attn.o_proj.weight": t[b + "attn_output.weight"],
                   p + "mlp.gate_proj.weight": t[b + "ffn_gate.weight"],
                   p + "mlp.up_proj.weight": t[b + "ffn_up.weight"],
                   p + "mlp.down_proj.weight": t[b + "ffn_down.weight"],
                   p + "input_layernorm.weight": norm(t[b + "attn_norm.weight"])})
        if gemma:
            st.update({p + "self_attn.q_norm.weight": norm(t[b + "attn_q_norm.weight"]),
                       p + "self_attn.k_norm.weight": norm(t[b + "attn_k_norm.weight"]),
                       p + "post_attention_layernorm.weight": norm(t[b + "post_attention_norm.weight"]),
                       p + "pre_feedforward_layernorm.weight": norm(t[b + "ffn_norm.weight"]),
                       p + "post_feedforward_layernorm.weight": norm(t[b + "post_ffw_norm.weight"])})
        else:
            st[p + "post_attention_layernorm.weight"] = t[b + "ffn_norm.weight"]
    common = dict(vocab_size=int(vocab), hidden_size=int(g("embedding_length")),
                  intermediate_size=int(g("feed_forward_length")), num_hidden_layers=int(n_layer),
                  num_attention_heads=int(n_head), num_key_value_heads=int(n_kv),
                  rms_norm_eps=float(g("attention.layer_norm_rms_epsilon")),
                  max_position_embeddings=int(g("context_length")), torch_dtype="float32")
    if gemma:
        hd = int(g("attention.key_length"))
        cfg = dict(common, architectures=["Gemma3ForCausalLM"], model_type="gemma3_text",
                   head_dim=hd, query_pre_attn_scalar=hd, hidden_activation="gelu_pytorch_tanh",
                   rope_theta=float(g("rope.freq_base")), rope_local_base_freq=10000.0,
                   sliding_window=int(g("attention.sliding_window")), sliding_window_pattern=6,
                   tie_word_embeddings="output.weight" not in t, final_logit_softcapping=None,
                   attn_logit_softcapping=None, rope_scaling=None)
    else:
        cfg = dict(common, architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu",
                   head_dim=int(g("embedding_length")) // int(n_head),
                   rope_theta=float(g("rope.freq_base")), tie_word_embeddings="output.weight" not in t)
    os.makedirs(out, exist_ok=True)
    from safetensors.numpy import save_file
    save_file({k: np.ascontiguousarray(v) for k, v in st.items()}, os.path.join(out, "model.safetensors"),
              metadata={"format": "pt"})
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    src = os.path.join(models, "hf-tok", tok)
    for name in os.listdir(src):
        shutil.copy(os.path.join(src, name), out)


def golden(out, n_tokens=64, seed=7):
    import torch
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32, attn_implementation="eager").eval()
    rng = np.random.default_rng(seed)
    vocab = m.config.vocab_size
    toks = rng.integers(0, min(vocab, 32000), n_tokens).astype(np.int32)
    toks[0] = m.config.bos_token_id if m.config.bos_token_id is not None else 1
    with torch.no_grad():
        lg = m(torch.tensor(toks[None].astype(np.int64))).logits[0].float().numpy()
    with open(os.path.join(out, "golden.bin"), "wb") as f:
        f.write(struct.pack("<iii", 0x534C4847, n_tokens, lg.shape[1]))
        f.write(toks.astype("<i4").tobytes())
        f.write(lg.astype("<f4").tobytes())
    print(f"{out}: {n_tokens} tokens, logits std {lg.std():.3f}")


if __name__ == "__main__":
    kind, models, out = sys.argv[1:4]
    build(kind, models, out)
    golden(out)
