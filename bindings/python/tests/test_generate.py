"""generate / stream / stop strings / chat against slim_generate and the
chat templates."""

from __future__ import annotations

from typing import Any

import pytest

import slim
from slim import ffi, lib


def c_generate(model: slim.Model, prompt: str, max_tokens: int, flags: int | None = None, **sp: Any) -> tuple[bytes, int]:
    """slim_generate itself (C's loop) on a fresh context: text bytes, n_generated."""
    ctx = ffi.new("slim_context **")
    cp = ffi.new("slim_context_params *", lib.slim_context_default_params())
    cp.n_ctx = 512
    slim.check(lib.slim_context_create(model._w.ptr, cp, ctx))
    spp = ffi.new("slim_sampler_params *", lib.slim_sampler_default_params())
    for k, v in sp.items():
        setattr(spp, k, v)
    smp = ffi.new("slim_sampler **")
    slim.check(lib.slim_sampler_create(spp, smp))
    gp = ffi.new("slim_generate_params *", lib.slim_generate_default_params())
    gp.max_tokens = max_tokens
    if flags is not None:
        gp.tokenize_flags = flags
    pieces: list[bytes] = []

    @ffi.callback("int(slim_token, const char *, size_t, void *)")
    def on_token(tok: int, piece: Any, n: int, user: Any) -> int:
        pieces.append(ffi.unpack(piece, n))
        return 0

    stats = ffi.new("slim_generate_stats *")
    stats.struct_size = ffi.sizeof("slim_generate_stats")
    try:
        slim.check(lib.slim_generate(ctx[0], smp[0], prompt.encode(), gp, on_token, ffi.NULL, stats))
    finally:
        lib.slim_sampler_free(smp[0])
        lib.slim_context_free(ctx[0])
    return b"".join(pieces), stats.n_generated


PROMPT = "The capital of France is"


def test_greedy_equals_slim_generate(model: slim.Model) -> None:
    ref, n = c_generate(model, PROMPT, 24, temperature=0.0)
    c = model.completion(PROMPT, 24, temperature=0.0)
    assert isinstance(c, slim.Completion)
    assert c.text() == ref.decode()
    assert c.n_generated == n == 24 and c.finish_reason == "length"
    assert c.n_prompt == len(model.tokenize(PROMPT))
    assert model.generate(PROMPT, 24, temperature=0) == ref.decode()


@pytest.mark.parametrize("seed", [0, 42])
def test_sampled_equals_slim_generate(model: slim.Model, seed: int) -> None:
    kw = dict(temperature=0.9, top_k=50, top_p=0.9, min_p=0.02, repeat_penalty=1.1, seed=seed)
    ref, _ = c_generate(model, PROMPT, 24, **kw)
    assert model.generate(PROMPT, 24, **kw) == ref.decode("utf-8", "replace")
    assert model.generate(PROMPT, 24, **kw) == model.generate(PROMPT, 24, **kw)


def test_defaults_are_slims(model: slim.Model) -> None:
    """No sampling arguments: the C defaults (temperature 0.8, seed 0, ...)."""
    ref, _ = c_generate(model, PROMPT, 16)
    assert model.generate(PROMPT, 16) == ref.decode("utf-8", "replace")


def test_stream_pieces_join_to_the_text(model: slim.Model) -> None:
    full = model.generate(PROMPT, 32, temperature=0)
    pieces = list(model.generate(PROMPT, 32, temperature=0, stream=True))
    assert len(pieces) > 5 and "".join(pieces) == full
    it = model.generate(PROMPT, 32, temperature=0, stream=True)
    assert isinstance(next(it), str)
    with pytest.raises(RuntimeError, match="unfinished stream"):
        model.generate(PROMPT, 4)  # same thread, stream still open
    it.close()  # type: ignore[attr-defined]
    assert model.generate(PROMPT, 32, temperature=0) == full


def test_stop_strings(model: slim.Model) -> None:
    full = model.generate(PROMPT, 32, temperature=0)
    word = full.split()[2]
    cut = full.index(word)
    c = model.completion(PROMPT, 32, temperature=0, stop=[word, "zzz-never"])
    assert c.text() == full[:cut] and c.finish_reason == "stop"
    assert c.n_generated < 32
    # Streaming holds back a possible start of a stop string, never yields past it.
    pieces = list(model.generate(PROMPT, 32, temperature=0, stop=word, stream=True))
    assert "".join(pieces) == full[:cut]
    assert model.generate(PROMPT, 32, temperature=0, stop=full[:2]) == ""


def test_max_tokens_edges(model: slim.Model) -> None:
    c = model.completion(PROMPT, 0)
    assert c.text() == "" and c.n_generated == 0 and c.finish_reason == "length"
    small = model.fork(n_ctx=16)
    c = small.completion(PROMPT, None, temperature=0)  # until the context is full
    c.text()
    assert c.finish_reason == "length"
    assert c.n_prompt + c.n_generated - 1 == 16
    assert len(c.tokens) == c.n_generated


def test_stop_at_eos(smollm2: slim.Model) -> None:
    msgs = [{"role": "user", "content": "Say hi."}]
    prompt = smollm2.apply_chat_template(msgs)
    c = smollm2.completion(prompt, 200, temperature=0, parse_special=True)
    text = c.text()
    assert c.finish_reason == "stop" and c.n_generated == len(c.tokens) + 1
    ref, n = c_generate(smollm2, prompt, 200, lib.SLIM_TOKENIZE_ADD_BOS | lib.SLIM_TOKENIZE_PARSE_SPECIAL, temperature=0.0)
    assert text == ref.decode() and n == c.n_generated
    more = smollm2.completion(prompt, 8, temperature=0, parse_special=True, stop_at_eos=False)
    assert more.text() and more.n_generated == 8


def test_token_ids_as_prompt(model: slim.Model) -> None:
    ids = model.tokenize(PROMPT)
    assert model.generate(ids, 8, temperature=0) == model.generate(PROMPT, 8, temperature=0)


def test_logprobs(model: slim.Model) -> None:
    c = model.completion(PROMPT, 6, temperature=0, logprobs=3)
    c.text()
    assert len(c.token_logprobs) == len(c.top_logprobs) == 6
    for tok, lp, top in zip(c.tokens, c.token_logprobs, c.top_logprobs):
        assert len(top) == 3 and lp <= 0
        best = max(top, key=top.get)
        assert best == tok and top[tok] == lp  # greedy picks the most likely
        assert list(top.values()) == sorted(top.values(), reverse=True)
    # Against a softmax of model.logits over the same tokens.
    import numpy as np

    rows = model.logits(model.tokenize(PROMPT) + c.tokens[:-1]).astype(np.float64)
    n = len(model.tokenize(PROMPT))
    for i, (tok, lp) in enumerate(zip(c.tokens, c.token_logprobs)):
        r = rows[n - 1 + i]
        ref = r[tok] - (r.max() + np.log(np.exp(r - r.max()).sum()))
        assert abs(ref - lp) < 1e-4


def test_chat_template_and_chat(smollm2: slim.Model) -> None:
    assert smollm2.chat_template() == "chatml"
    msgs: list[slim.Message] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}]
    text = smollm2.apply_chat_template(msgs)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert not smollm2.apply_chat_template(msgs, add_generation_prompt=False).endswith("assistant\n")
    reply = smollm2.chat(msgs, 32, temperature=0)
    assert reply == smollm2.generate(text, 32, temperature=0, parse_special=True)
    assert reply and "<|im_end|>" not in reply
    assert "".join(smollm2.chat(msgs, 32, temperature=0, stream=True)) == reply


def test_chat_with_a_named_template(model: slim.Model) -> None:
    msgs = [{"role": "user", "content": "Hello"}]
    assert model.chat_template("gemma") == "gemma"
    text = model.apply_chat_template(msgs, template="gemma")
    assert text == "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n"
    assert isinstance(model.chat(msgs, 4, template="gemma", temperature=0), str)
