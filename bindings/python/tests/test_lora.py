"""LoRA adapters through slim.Model: against PEFT's logits (tests/data/hf),
detach / scale 0 giving the base model bitwise, per-Model attachment."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

import slim

from conftest import HF_LLAMA, need


def golden(path: Path) -> tuple[list[int], np.ndarray]:
    raw = need(path).read_bytes()
    _, n, v = struct.unpack("<3i", raw[:12])
    toks = list(struct.unpack(f"<{n}i", raw[12 : 12 + 4 * n]))
    return toks, np.frombuffer(raw[12 + 4 * n :], dtype=np.float32).reshape(n, v)


@pytest.fixture(scope="module")
def hf() -> slim.Model:
    return slim.Model(need(HF_LLAMA), n_ctx=128, kv_type="f32")


def test_peft_adapter_matches_peft(hf: slim.Model) -> None:
    toks, base_ref = golden(HF_LLAMA / "golden.bin")
    _, lora_ref = golden(HF_LLAMA / "lora" / "golden.bin")
    base = hf.logits(toks)
    a = hf.load_lora(HF_LLAMA / "lora")
    hf.attach_lora(a, 1.0)
    assert hf.loras == {a: 1.0}
    got = hf.logits(toks)
    # PEFT's own logits (float32 transformers): within float rounding.
    assert np.abs(got - lora_ref).max() <= 1e-4 * lora_ref.std()
    assert np.abs(lora_ref - base_ref).max() > 50 * np.abs(got - lora_ref).max()  # it matters
    # The GGUF conversion of the same adapter gives the same logits.
    g = hf.load_lora(HF_LLAMA / "lora.gguf")
    hf.detach_lora(a)
    hf.attach_lora(g)
    assert np.abs(hf.logits(toks) - got).max() <= 1e-5 * lora_ref.std()
    # Scale 0, then detached: exactly the base model.
    hf.attach_lora(g, 0.0)
    assert hf.loras == {g: 0.0}
    assert np.array_equal(hf.logits(toks), base)
    hf.detach_lora(g)
    assert hf.loras == {}
    assert np.array_equal(hf.logits(toks), base)
    a.close()
    a.close()  # twice is fine
    g.close()


def test_adapters_are_per_model_and_survive_close(hf: slim.Model) -> None:
    toks, _ = golden(HF_LLAMA / "golden.bin")
    other = hf.fork()
    a = hf.load_lora(HF_LLAMA / "lora2")
    other.attach_lora(a, 0.5)
    a.close()  # the context keeps using it (reference counted)
    with_a = other.logits(toks)
    base = hf.logits(toks)  # hf itself has no adapter
    assert not np.array_equal(with_a, base)
    with pytest.raises(ValueError, match="closed"):
        other.detach_lora(a)
    b = hf.load_lora(HF_LLAMA / "lora2")  # a second handle of the same adapter
    other.attach_lora(b, 0.5)
    assert repr(b) == f"slim.LoRA({str(HF_LLAMA / 'lora2')!r})" and len(other.loras) == 2
    other.close()
