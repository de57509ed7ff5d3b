#!/usr/bin/env python3
"""Hugging Face checkpoints, teacher-forced logits and PEFT LoRA adapters as
golden data for slim's Hugging Face loader and its LoRA support
(tests/data/hf/<case>/, described in tests/data/hf/README.md).

Every case is a tiny random model built from a config that switches on every
feature its family's released models use, written with save_pretrained in
float32 (config.json exactly as transformers writes it, model.safetensors).
Every parameter is random with a fixed seed (norm weights too: transformers
would initialise them to 1 or 0, which would hide a loader that drops them).
The oracle is transformers itself (eager attention, float32, eval mode); the
LoRA oracle is PEFT; the GGUF adapters come from llama.cpp's own
convert_lora_to_gguf.py.

setup: sh tools/setup.sh venv golden-hf

usage:
  .venv/bin/python tools/golden/gen_hf.py                 # write tests/data/hf/*
  .venv/bin/python tools/golden/gen_hf.py --only llama,phi3
  .venv/bin/python tools/golden/gen_hf.py --only qwen3    # the checkpoint is
        gen_synthetic.py --hf qwen3's; this compares transformers with the
        llama.cpp logits that script wrote and replaces them with transformers'
  .venv/bin/python tools/golden/gen_hf.py --verify        # write nothing; reload every
        checkpoint/adapter with transformers/PEFT and compare with golden.bin,
        and show how far each feature moves the logits (feature switched off)
  .venv/bin/python tools/golden/gen_hf.py --llama-cpp     # with --verify: llama cpp
        cross-check of llama/lora.gguf (base converted to /tmp, not committed)
  --llama-cpp-src DIR  llama.cpp source tree (default: /tmp/hfg_dl/
        llama_cpp_python-0.3.36/vendor/llama.cpp), for convert_lora_to_gguf.py;
        get it with
          pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36
          tar xzf llama_cpp_python-0.3.36.tar.gz
        The GGUF adapters are written by exactly this command (per adapter):
          PYTHONPATH=<src>/gguf-py python3 <src>/convert_lora_to_gguf.py \
              --outtype f32 --base tests/data/hf/<case> \
              --outfile tests/data/hf/<case>/lora.gguf tests/data/hf/<case>/lora
Generated with: python 3.11.7, torch 2.15.0, transformers 5.23.0,
peft 0.21.2, safetensors 0.8.0, gguf-py and convert_lora_to_gguf.py from
llama-cpp-python 0.3.36's vendor/llama.cpp.  (torch's CUDA wheel needs its
nvidia-* packages installed even on CPU.)

golden.bin (little-endian):
  i32 magic 0x534C4847 ("GHLS" as bytes 47 48 4C 53); i32 n_tokens = 64;
  i32 n_vocab; i32 tokens[n_tokens]; f32 logits[n_tokens][n_vocab]
tokens[0] is the config's bos_token_id; the rest are seeded random ids
>= 4 (no special token).  One forward over all 64 tokens, position ids
0..63, no attention mask (causal), no KV cache.

Per case:
  config.json, model.safetensors, golden.bin  float32 model and its logits
  bf16/   the same weights stored as bfloat16 (config dtype bfloat16);
          bf16/golden.bin = logits of those bf16 weights upcast to float32
          (from_pretrained(dtype=float32)), computed in float32
  lora/   PEFT adapter r=4 on every projection the family has;
          lora/golden.bin = base + adapter (PeftModel, float32)
  lora2/  a second adapter: other seed, r=2, other alpha, fewer modules
  lora.gguf, lora2.gguf  the adapters converted by llama.cpp (outtype f32)

Notes on what transformers does (the loader must match):
  * sliding windows (transformers' sliding_window_overlay): query i sees key j
    iff i - sliding_window < j <= i, i.e. the last `sliding_window` positions
    including itself.
  * phi3 longrope: transformers picks long_factor when max(position_ids)+1 >
    original_max_position_embeddings, short_factor otherwise; here
    64 > 32 so the LONG factors are used at every position of the golden
    forward.  cos/sin are also multiplied by attention_factor =
    sqrt(1 + ln(max_position_embeddings / original) / ln(original))
    = sqrt(1 + ln 4 / ln 32) (factor comes from the ratio, not from a key).
  * llama3 rope: original_max_position_embeddings 32 puts the 8 frequencies
    of head_dim 16 in all three branches (unscaled, smoothed, divided by 8).
  * gemma3: rope_parameters is nested per layer type (full_attention: linear
    factor 8, theta 1e6; sliding_attention: default, theta 10000) and
    layer_types lists each layer's kind.
  * query_pre_attn_scalar (gemma2/3) is what transformers scales queries by;
    llama.cpp ignores it (1/sqrt(head_dim)), so the goldens use 24 != 32.
  * rsLoRA (use_rslora): scale alpha/sqrt(r) instead of alpha/r.

Sizes: vocab 128, hidden 64, 4 heads / 2 KV heads, 2 layers (gemma3: 3),
intermediate 32 (llama 96), to keep tests/data/hf near 5 MB.

--verify --llama-cpp results (this script, the versions above): llama.cpp
(F32 K/V cache) agrees with transformers/PEFT to max|diff| <= 3e-6 x std on
llama, llama_tied, mistral, qwen2, phi3 (base, lora, lora2; rsLoRA ones
included) once its known differences are applied to transformers
(LLAMA_CPP_SEMANTICS); the Gemmas differ by 3e-4..1.3e-3 x std, which is
ggml's fp16-table GELU (with GELU inputs/outputs rounded to fp16 the gemma
case agrees to 6e-6).
"""

import argparse
import copy
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
import torch  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(REPO, "tests", "data", "hf")
MAGIC = 0x534C4847
N_TOKENS = 64
VOCAB = 128
DEFAULT_SRC = "/tmp/hfg_dl/llama_cpp_python-0.3.36/vendor/llama.cpp"

ATTN = ["q_proj", "k_proj", "v_proj", "o_proj"]
MLP = ["gate_proj", "up_proj", "down_proj"]

# Special ids: inside the tiny vocabulary; inputs never use ids < 4.
IDS = dict(bos_token_id=1, eos_token_id=2, pad_token_id=0)
GEMMA_IDS = dict(bos_token_id=2, eos_token_id=1, pad_token_id=0)


def common(**kw):
    d = dict(
        vocab_size=VOCAB,
        hidden_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_hidden_layers=2,
        intermediate_size=32,  # != hidden, small: the fixtures' size budget
        max_position_embeddings=128,
    )
    d.update(kw)
    return d


def cfg_llama():
    from transformers import LlamaConfig

    return LlamaConfig(
        **common(**IDS, rms_norm_eps=1e-5, tie_word_embeddings=False,
                 intermediate_size=96),
        rope_parameters=dict(
            rope_type="llama3",
            rope_theta=500000.0,
            factor=8.0,
            low_freq_factor=1.0,
            high_freq_factor=4.0,
            original_max_position_embeddings=32,
        ),
    )


def cfg_llama_tied():
    from transformers import LlamaConfig

    return LlamaConfig(
        **common(**IDS, rms_norm_eps=1e-5, tie_word_embeddings=True),
        rope_parameters=dict(rope_type="linear", rope_theta=10000.0, factor=2.0),
    )


def cfg_mistral():
    from transformers import MistralConfig

    # head_dim 32: q width 128 != hidden 64 (Mistral-Nemo style)
    return MistralConfig(
        **common(**IDS, rms_norm_eps=1e-5, head_dim=32, sliding_window=16,
                 tie_word_embeddings=False),
        rope_parameters=dict(rope_type="default", rope_theta=1000000.0),
    )


def cfg_qwen2():
    from transformers import Qwen2Config

    return Qwen2Config(
        **common(**IDS, rms_norm_eps=1e-6, tie_word_embeddings=True),
        rope_parameters=dict(rope_type="default", rope_theta=1000000.0),
    )


def cfg_gemma():
    from transformers import GemmaConfig

    return GemmaConfig(
        # GemmaConfig reads hidden_act (released configs say "gelu", which
        # transformers maps to gelu_pytorch_tanh and writes back as such)
        **common(**GEMMA_IDS, rms_norm_eps=1e-6, head_dim=32,
                 hidden_act="gelu_pytorch_tanh"),
        rope_parameters=dict(rope_type="default", rope_theta=10000.0),
    )


def cfg_gemma2():
    from transformers import Gemma2Config

    return Gemma2Config(
        **common(**GEMMA_IDS, rms_norm_eps=1e-6, head_dim=32,
                 hidden_activation="gelu_pytorch_tanh",
                 attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
                 sliding_window=16, query_pre_attn_scalar=24),
        rope_parameters=dict(rope_type="default", rope_theta=10000.0),
    )


def gemma3_text(pattern=3, **kw):
    from transformers import Gemma3TextConfig

    # 3 layers, pattern 3: sliding, sliding, global (released models: 5+1;
    # a pattern of 6 would need 6 layers, too big for the fixture budget)
    d = common(**GEMMA_IDS, rms_norm_eps=1e-6, head_dim=32,
               num_hidden_layers=3,
               hidden_activation="gelu_pytorch_tanh", sliding_window=16,
               query_pre_attn_scalar=24)
    d.update(kw)
    return Gemma3TextConfig(
        **d,
        sliding_window_pattern=pattern,
        rope_parameters=dict(
            full_attention=dict(rope_type="linear", factor=8.0, rope_theta=1000000.0),
            sliding_attention=dict(rope_type="default", rope_theta=10000.0),
        ),
    )


def cfg_gemma3():
    return gemma3_text()


def cfg_gemma3_mm():
    from transformers import Gemma3Config, SiglipVisionConfig

    # the language model as in the gemma3 case but 2 layers (sliding,
    # global); a one-layer vision tower on 8x8 images, 2x2 patches of 4x4
    text = gemma3_text(pattern=2, num_hidden_layers=2)
    vision = SiglipVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, image_size=8, patch_size=4,
        vision_use_head=False,
    )
    return Gemma3Config(
        text_config=text, vision_config=vision, mm_tokens_per_image=4,
        boi_token_index=VOCAB - 3, eoi_token_index=VOCAB - 2,
        image_token_index=VOCAB - 1, **GEMMA_IDS,
    )


def cfg_phi3():
    from transformers import Phi3Config

    rot_half = int(16 * 0.75) // 2  # head_dim 16, rotary dims 12
    rng = np.random.default_rng(7)
    short = [round(float(x), 4) for x in 1.0 + rng.uniform(0, 0.5, rot_half)]
    long_ = [round(float(x), 4) for x in np.linspace(1.0, 12.0, rot_half)]
    return Phi3Config(
        **common(**IDS, rms_norm_eps=1e-5, sliding_window=16,
                 original_max_position_embeddings=32,
                 tie_word_embeddings=False),
        rope_parameters=dict(
            rope_type="longrope", rope_theta=10000.0,
            partial_rotary_factor=0.75, short_factor=short, long_factor=long_,
        ),
    )


# name: config builder, model class, (1+w) norms, lora targets, lora2
# targets, rslora for (lora, lora2), the gain on q/k weights
CASES = {
    "llama": dict(cfg=cfg_llama, cls="LlamaForCausalLM", lora=ATTN + MLP,
                  lora2=["q_proj", "v_proj"], rslora=(False, False)),
    "llama_tied": dict(cfg=cfg_llama_tied, cls="LlamaForCausalLM", lora=ATTN + MLP,
                       lora2=["k_proj", "o_proj", "down_proj"], rslora=(False, False)),
    "mistral": dict(cfg=cfg_mistral, cls="MistralForCausalLM", lora=ATTN + MLP,
                    lora2=["q_proj", "up_proj"], rslora=(False, False)),
    "qwen2": dict(cfg=cfg_qwen2, cls="Qwen2ForCausalLM", lora=ATTN + MLP,
                  lora2=["v_proj", "gate_proj"], rslora=(True, False)),
    "gemma": dict(cfg=cfg_gemma, cls="GemmaForCausalLM", gemma=True, lora=ATTN + MLP,
                  lora2=["q_proj", "k_proj", "down_proj"], rslora=(False, False)),
    "gemma2": dict(cfg=cfg_gemma2, cls="Gemma2ForCausalLM", gemma=True,
                   lora=ATTN + MLP, lora2=["o_proj", "up_proj"], rslora=(True, False),
                   qk_gain=4.0),
    "gemma3": dict(cfg=cfg_gemma3, cls="Gemma3ForCausalLM", gemma=True,
                   lora=ATTN + MLP, lora2=["v_proj", "gate_proj", "down_proj"],
                   rslora=(False, False)),
    "gemma3_mm": dict(cfg=cfg_gemma3_mm, cls="Gemma3ForConditionalGeneration",
                      gemma=True, lora=None),
    "phi3": dict(cfg=cfg_phi3, cls="Phi3ForCausalLM",
                 lora=["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
                 lora2=["qkv_proj", "down_proj"], rslora=(False, True)),
    # the checkpoint is gen_synthetic.py's (the synthetic GGUF's weights under
    # their Hugging Face names); only its golden.bin is transformers' (here)
    "qwen3": dict(cfg=None, cls="Qwen3ForCausalLM", lora=None,
                  external="tools/golden/gen_synthetic.py --hf qwen3"),
}

# Config changes that switch one feature off, for --verify's report of how
# much each feature moves the logits.
FEATURES = {
    "llama": {"llama3 rope -> default": lambda c: c.rope_parameters.update(rope_type="default")},
    "llama_tied": {"linear rope -> default": lambda c: c.rope_parameters.update(rope_type="default")},
    "mistral": {"sliding_window -> none": lambda c: setattr(c, "sliding_window", None)},
    "gemma2": {
        "attn softcap -> none": lambda c: setattr(c, "attn_logit_softcapping", None),
        "final softcap -> none": lambda c: setattr(c, "final_logit_softcapping", None),
        "sliding_window -> 4096": lambda c: setattr(c, "sliding_window", 4096),
        "query_pre_attn_scalar -> head_dim": lambda c: setattr(c, "query_pre_attn_scalar", 32),
    },
    "gemma3": {
        "sliding_window -> 4096": lambda c: setattr(c, "sliding_window", 4096),
        "global linear rope -> default": lambda c: c.rope_parameters["full_attention"].update(rope_type="default"),
        "local theta 1e4 -> 1e6": lambda c: c.rope_parameters["sliding_attention"].update(rope_theta=1e6),
    },
    "qwen3": {"rope_theta 1e6 -> 1e4": lambda c: c.rope_parameters.update(rope_theta=1e4)},
    "phi3": {
        "sliding_window -> none": lambda c: setattr(c, "sliding_window", None),
        "long -> short factors (orig 32 -> 64)": lambda c: (
            setattr(c, "original_max_position_embeddings", 64),
            c.rope_parameters.update(original_max_position_embeddings=64)),
    },
}


def seed_of(*parts):
    return zlib.crc32("/".join(parts).encode())


def randomize(model, case, spec):
    """Every parameter random, fixed seed, sorted by name."""
    g = torch.Generator().manual_seed(seed_of(case, "weights"))
    gemma = spec.get("gemma", False)
    qk_gain = spec.get("qk_gain", 1.0)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if p.ndim == 1:
                if name.endswith("bias"):
                    v = torch.randn(p.shape, generator=g) * 0.5
                elif gemma and "vision" not in name:
                    v = torch.randn(p.shape, generator=g) * 0.1  # (1 + w) norms
                else:
                    v = 1.0 + torch.randn(p.shape, generator=g) * 0.1
            elif "embed_tokens" in name or "lm_head" in name:
                v = torch.randn(p.shape, generator=g) * 0.5
            else:
                fan_in = p.shape[-1] if p.ndim == 2 else int(np.prod(p.shape[1:]))
                v = torch.randn(p.shape, generator=g) / math.sqrt(fan_in)
                if name.endswith(("q_proj.weight", "k_proj.weight")):
                    v = v * qk_gain
            p.copy_(v.to(p.dtype))


def model_class(name):
    import transformers

    return getattr(transformers, name)


def tokens_for(case, cfg):
    tc = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    rng = np.random.default_rng(seed_of(case, "tokens"))
    bos = cfg.bos_token_id if cfg.bos_token_id is not None else 1
    toks = [bos] + [int(t) for t in rng.integers(4, tc.vocab_size - 3, N_TOKENS - 1)]
    return toks


def logits_of(model, toks):
    model.eval()
    ids = torch.tensor([toks], dtype=torch.long)
    pos = torch.arange(len(toks), dtype=torch.long)[None]
    with torch.no_grad():
        out = model(input_ids=ids, position_ids=pos, use_cache=False)
    return out.logits[0].float().numpy()


def write_golden(path, toks, logits):
    n, v = logits.shape
    assert n == len(toks)
    with open(path, "wb") as f:
        f.write(struct.pack("<3i", MAGIC, n, v))
        f.write(np.asarray(toks, dtype="<i4").tobytes())
        f.write(np.ascontiguousarray(logits, dtype="<f4").tobytes())


def read_golden(path):
    with open(path, "rb") as f:
        data = f.read()
    magic, n, v = struct.unpack_from("<3i", data, 0)
    assert magic == MAGIC, path
    toks = list(np.frombuffer(data, "<i4", n, 12))
    logits = np.frombuffer(data, "<f4", n * v, 12 + 4 * n).reshape(n, v)
    assert len(data) == 12 + 4 * n + 4 * n * v, path
    return toks, logits


def load(case_dir, spec, dtype=torch.float32, config=None):
    kw = dict(dtype=dtype, attn_implementation="eager")
    if config is not None:
        kw["config"] = config
    return model_class(spec["cls"]).from_pretrained(case_dir, **kw)


def lora_config(spec, which):
    from peft import LoraConfig

    if which == "lora":
        return LoraConfig(r=4, lora_alpha=8, target_modules=spec["lora"],
                          use_rslora=spec["rslora"][0], lora_dropout=0.0,
                          init_lora_weights=False)
    return LoraConfig(r=2, lora_alpha=6, target_modules=spec["lora2"],
                      use_rslora=spec["rslora"][1], lora_dropout=0.0,
                      init_lora_weights=False)


def randomize_lora(peft_model, case, which):
    """A and B seeded random, B clearly non-zero so the adapter shows."""
    g = torch.Generator().manual_seed(seed_of(case, which))
    with torch.no_grad():
        for name, p in sorted(peft_model.named_parameters()):
            if "lora_A" in name:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))
            elif "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)


def make_adapter(case_dir, case, spec, which):
    from peft import PeftModel, get_peft_model

    base = load(case_dir, spec)
    pm = get_peft_model(base, lora_config(spec, which))
    randomize_lora(pm, case, which)
    pm.base_model.model.name_or_path = ""
    out = os.path.join(case_dir, which)
    pm.save_pretrained(out)
    # adapter_config.json: no absolute path of this machine in the fixture
    ac_path = os.path.join(out, "adapter_config.json")
    with open(ac_path) as f:
        ac = json.load(f)
    ac["base_model_name_or_path"] = None
    ac["target_modules"] = sorted(ac["target_modules"])  # PEFT writes a set
    with open(ac_path, "w") as f:
        json.dump(ac, f, indent=2, sort_keys=True)
        f.write("\n")
    rm = os.path.join(out, "README.md")  # PEFT's model card template
    if os.path.exists(rm):
        os.remove(rm)
    # the golden comes from the saved adapter, reloaded as a user would
    pm2 = PeftModel.from_pretrained(load(case_dir, spec), out)
    return pm2


def convert_gguf(case_dir, which, src):
    """llama.cpp's convert_lora_to_gguf.py, outtype f32.  It copies lora_alpha
    and ignores use_rslora, and llama.cpp scales by alpha / r; for an rsLoRA
    adapter (scale alpha / sqrt(r)) it therefore converts a copy whose
    adapter_config.json says lora_alpha = alpha * sqrt(r), use_rslora false,
    so that lora.gguf means what the PEFT adapter means."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(src, "gguf-py") + os.pathsep + env.get("PYTHONPATH", "")
    adir = os.path.join(case_dir, which)
    with open(os.path.join(adir, "adapter_config.json")) as f:
        ac = json.load(f)
    note = ""
    if ac.get("use_rslora"):
        # same basename: the converter derives general.name from it
        tmp = os.path.join("/tmp/hfg_rslora", os.path.basename(case_dir), which)
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
        shutil.copytree(adir, tmp)
        ac["lora_alpha"] = ac["lora_alpha"] * math.sqrt(ac["r"])
        ac["use_rslora"] = False
        with open(os.path.join(tmp, "adapter_config.json"), "w") as f:
            json.dump(ac, f, indent=2)
        adir = tmp
        note = f" (rsLoRA: alpha written as {ac['lora_alpha']:.6g})"
    cmd = [sys.executable, os.path.join(src, "convert_lora_to_gguf.py"),
           "--outtype", "f32", "--base", case_dir,
           "--outfile", os.path.join(case_dir, which + ".gguf"), adir]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:]
        return "skipped: " + (tail[0] if tail else "converter failed")
    return "converted" + note


def stats(name, logits, base=None):
    s = float(logits.std())
    msg = f"  {name:14s} std {s:7.3f}  max|x| {np.abs(logits).max():7.3f}"
    if base is not None:
        d = float(np.abs(logits - base).max())
        msg += f"  max|d-base|/std {d / s:.3g}"
    print(msg)
    return s


def generate_external(case, spec):
    """A checkpoint another script wrote (spec["external"]): its golden.bin
    becomes transformers' logits of the same tokens.  The golden.bin found
    there (llama.cpp's when fresh from that script) is compared first."""
    case_dir = os.path.join(OUT, case)
    gpath = os.path.join(case_dir, "golden.bin")
    if not os.path.exists(gpath):
        sys.exit(f"{case}: no {gpath}; run {spec['external']} first")
    toks, before = read_golden(gpath)
    toks = [int(t) for t in toks]
    got = logits_of(load(case_dir, spec), toks)
    d = float(np.abs(got - before).max())
    top = int((got.argmax(1) == before.argmax(1)).sum())
    print(f"{case} (checkpoint from {spec['external']})")
    print(f"  transformers vs the golden.bin there: max|diff|/std {d / before.std():.3g}"
          f"  top-1 agree {top}/{len(toks)}")
    write_golden(gpath, toks, got)
    stats("base", got)
    return {}


def generate(case, spec, src):
    from transformers import set_seed

    if spec.get("external"):
        return generate_external(case, spec)
    set_seed(0)
    case_dir = os.path.join(OUT, case)
    if os.path.isdir(case_dir):
        shutil.rmtree(case_dir)
    os.makedirs(case_dir)
    cfg = spec["cfg"]()
    model = model_class(spec["cls"])._from_config(cfg, attn_implementation="eager",
                                                  dtype=torch.float32)
    randomize(model, case, spec)
    model.eval()
    model.save_pretrained(case_dir)
    toks = tokens_for(case, cfg)
    base = logits_of(model, toks)
    write_golden(os.path.join(case_dir, "golden.bin"), toks, base)
    print(case)
    stats("base", base)
    info = {}
    if spec.get("lora") is None:
        return info
    # bf16 storage: the golden is of the rounded weights, computed in f32
    bdir = os.path.join(case_dir, "bf16")
    mb = copy.deepcopy(model).to(torch.bfloat16)
    mb.save_pretrained(bdir)
    lb = logits_of(load(bdir, spec, dtype=torch.float32), toks)
    write_golden(os.path.join(bdir, "golden.bin"), toks, lb)
    stats("bf16", lb, base)
    for which in ("lora", "lora2"):
        pm = make_adapter(case_dir, case, spec, which)
        ll = logits_of(pm, toks)
        write_golden(os.path.join(case_dir, which, "golden.bin"), toks, ll)
        s = stats(which, ll, base)
        assert float(np.abs(ll - base).max()) > 1e-3 * s * 10, "adapter invisible"
        info[which] = convert_gguf(case_dir, which, src) if src else "skipped: no source"
        print(f"  {which}.gguf: {info[which]}")
    return info


def verify(case, spec, llama_cpp, src):
    case_dir = os.path.join(OUT, case)
    toks, gold = read_golden(os.path.join(case_dir, "golden.bin"))
    got = logits_of(load(case_dir, spec), toks)
    print(f"{case}: reload max|diff| {np.abs(got - gold).max():.3g} (std {gold.std():.3f})")
    assert np.abs(got - gold).max() <= 1e-4 * gold.std(), case
    from transformers import AutoConfig

    for feat, fn in FEATURES.get(case, {}).items():
        c = AutoConfig.from_pretrained(case_dir)
        fn(c)
        alt = logits_of(load(case_dir, spec, config=c), toks)
        print(f"  feature off: {feat:40s} max|diff|/std {np.abs(alt - gold).max() / gold.std():.3g}")
    if spec.get("lora") is None:
        if llama_cpp:
            cross_check_llama_cpp(case, case_dir, spec, toks, src)
        return
    from peft import PeftModel

    bdir = os.path.join(case_dir, "bf16")
    _, gb = read_golden(os.path.join(bdir, "golden.bin"))
    got = logits_of(load(bdir, spec), toks)
    print(f"  bf16 reload max|diff| {np.abs(got - gb).max():.3g}")
    assert np.abs(got - gb).max() <= 1e-4 * gb.std()
    for which in ("lora", "lora2"):
        _, gl = read_golden(os.path.join(case_dir, which, "golden.bin"))
        pm = PeftModel.from_pretrained(load(case_dir, spec), os.path.join(case_dir, which))
        got = logits_of(pm, toks)
        print(f"  {which} reload max|diff| {np.abs(got - gl).max():.3g}"
              f"  (adapter moves logits by {np.abs(gl - gold).max() / gold.std():.3g} std)")
        assert np.abs(got - gl).max() <= 1e-4 * gl.std()
        # merged weights: W + scale * B A, computed by PEFT itself
        merged = PeftModel.from_pretrained(load(case_dir, spec),
                                           os.path.join(case_dir, which)).merge_and_unload()
        got = logits_of(merged, toks)
        print(f"  {which} merged  max|diff| {np.abs(got - gl).max():.3g}")
    if llama_cpp:
        cross_check_llama_cpp(case, case_dir, spec, toks, src)


# Where llama.cpp's graph knowingly differs from transformers: the config
# change that makes transformers compute what llama.cpp computes.  llama.cpp
# has no sliding window for arch llama (Mistral) and disables it for phi3
# ("Phi SWA is currently disabled"); gemma3: see gemma3_as_llama_cpp; for
# gemma2/gemma3 it scales queries by
# 1/sqrt(head_dim) (1/sqrt(n_embd/n_head) for 27B) instead of reading
# query_pre_attn_scalar (the released models have it equal to that).
LLAMA_CPP_SEMANTICS = {
    "mistral": lambda c: setattr(c, "sliding_window", None),
    "phi3": lambda c: setattr(c, "sliding_window", None),
    "gemma2": lambda c: setattr(c, "query_pre_attn_scalar", c.head_dim),
    "gemma3": lambda c: gemma3_as_llama_cpp(c),
    "gemma3_mm": lambda c: gemma3_as_llama_cpp(c.text_config),
}


def gemma3_as_llama_cpp(c):
    # convert_hf_to_gguf writes no sliding_window_pattern for gemma3 and
    # llama.cpp then assumes 6 (layer 5, 11, ... global): with fewer than 6
    # layers every layer is a sliding one (theta_swa 10000, no scaling)
    c.query_pre_attn_scalar = c.head_dim
    c.layer_types = ["sliding_attention"] * c.num_hidden_layers


def cross_check_llama_cpp(case, case_dir, spec, toks, src):
    """llama.cpp on the base converted to GGUF (in /tmp, not committed), with
    and without lora.gguf / lora2.gguf, against transformers/PEFT (with
    LLAMA_CPP_SEMANTICS applied).  F32 K/V cache, so only the summation order
    should differ."""
    import llama_cpp
    from peft import PeftModel
    from transformers import AutoConfig

    gguf_base = f"/tmp/hfg_{case}_base_f32.gguf"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(src, "gguf-py")
    # convert_hf_to_gguf needs a tokenizer: write a throw-away one in a
    # temporary copy of the case
    tmp = f"/tmp/hfg_{case}_case"
    if os.path.isdir(tmp):
        shutil.rmtree(tmp)
    shutil.copytree(case_dir, tmp, ignore=shutil.ignore_patterns("bf16", "lora*", "golden.bin"))
    write_tiny_tokenizer(tmp, VOCAB)
    r = subprocess.run([sys.executable, os.path.join(src, "convert_hf_to_gguf.py"),
                        "--outtype", "f32", "--outfile", gguf_base, tmp],
                       env=env, capture_output=True, text=True)
    if r.returncode != 0:
        print("  llama.cpp: base conversion failed:", (r.stderr or r.stdout).strip().splitlines()[-3:])
        return
    cfg = AutoConfig.from_pretrained(case_dir)
    if case in LLAMA_CPP_SEMANTICS:
        LLAMA_CPP_SEMANTICS[case](cfg)
    runs = [("base", None)]
    if spec.get("lora"):
        runs += [("lora", "lora"), ("lora2", "lora2")]
    for name, which in runs:
        m = load(case_dir, spec, config=copy.deepcopy(cfg))
        if which:
            m = PeftModel.from_pretrained(m, os.path.join(case_dir, which))
        ref = logits_of(m, toks)
        kw = dict(model_path=gguf_base, n_ctx=128, n_batch=128, logits_all=True,
                  verbose=False, n_threads=2, type_k=0, type_v=0, flash_attn=False)
        if which:
            kw["lora_path"] = os.path.join(case_dir, which + ".gguf")
        llm = llama_cpp.Llama(**kw)
        llm.eval(toks)
        lg = np.array(llm.scores[: len(toks)], dtype=np.float64)
        top_ok = int((lg.argmax(1) == ref.argmax(1)).sum())
        print(f"  llama.cpp {name:5s}: max|diff|/std {np.abs(lg - ref).max() / ref.std():.3g}"
              f"  top-1 agree {top_ok}/{len(toks)}"
              + ("  (transformers with llama.cpp's semantics)" if case in LLAMA_CPP_SEMANTICS else ""))
        del llm


def write_tiny_tokenizer(d, vocab):
    """A small SentencePiece tokenizer.model, only so that the converter can
    write a GGUF (it pads the vocabulary to vocab_size; ids are fed directly)."""
    import io

    import sentencepiece as spm

    words = ["".join(chr(97 + (i * 7 + j * 3) % 26) for j in range(1 + i % 5)) for i in range(400)]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([" ".join(words[i:i + 20]) for i in range(0, 400, 20)]),
        model_writer=buf, vocab_size=min(vocab, 64), model_type="bpe",
        bos_id=1, eos_id=2, unk_id=0, pad_id=-1, minloglevel=2,
        user_defined_symbols=["<|endoftext|>", "<|end|>"])  # phi3 needs them
    with open(os.path.join(d, "tokenizer.model"), "wb") as f:
        f.write(buf.getvalue())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="")
    ap.add_argument("--verify", action="store_true")
    ap.add_argument("--llama-cpp", action="store_true")
    ap.add_argument("--llama-cpp-src", default=DEFAULT_SRC)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    cases = [c for c in CASES if not a.only or c in a.only.split(",")]
    src = a.llama_cpp_src if os.path.exists(os.path.join(a.llama_cpp_src, "convert_lora_to_gguf.py")) else None
    if not a.verify and src is None:
        print(f"warning: no llama.cpp source at {a.llama_cpp_src}; GGUF adapters skipped")
    for c in cases:
        if a.verify:
            verify(c, CASES[c], a.llama_cpp, src)
        else:
            generate(c, CASES[c], src)


if __name__ == "__main__":
    main()
