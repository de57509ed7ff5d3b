"""OpenAI-shaped helpers: llama-cpp-python's dict shapes, key for key.

The comparison with llama-cpp-python itself runs when it is installed
(``pip install llama-cpp-python``: it builds llama.cpp from source) and is
skipped with that message otherwise; the shape checks below it always run."""

from __future__ import annotations

import json
import numbers
from typing import Any

import pytest

import slim

from conftest import MODEL

PROMPT = "The capital of France is"
MSGS = [{"role": "user", "content": "Name a colour."}]


def shape(x: Any, key: str = "") -> Any:
    """Keys and leaf types, recursively (lists by their first element); the
    completion logprobs' top_logprobs dicts are keyed by token text, so only
    their value type counts."""
    if isinstance(x, dict):
        if key == "top_logprobs" and "logprob" not in x:
            return {"<token>": sorted({shape(v) for v in x.values()})}
        return {k: shape(v, k) for k, v in sorted(x.items())}
    if isinstance(x, list):
        return [shape(x[0], key)] if x else []
    if isinstance(x, bool):
        return "bool"
    if isinstance(x, numbers.Number):  # llama-cpp-python's logprobs are np.float32
        return "number"
    return type(x).__name__


def same_shape(a: Any, b: Any) -> bool:
    """shape() equality where an empty list (nothing generated) matches any list."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_shape(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return not a or not b or same_shape(a[0], b[0])
    return a == b


def test_completion_shape(model: slim.Model) -> None:
    r = model.create_completion(PROMPT, max_tokens=6, temperature=0)
    assert shape(r) == {
        "choices": [{"finish_reason": "str", "index": "number", "logprobs": "NoneType", "text": "str"}],
        "created": "number",
        "id": "str",
        "model": "str",
        "object": "str",
        "usage": {"completion_tokens": "number", "prompt_tokens": "number", "total_tokens": "number"},
    }
    assert r["object"] == "text_completion" and r["id"].startswith("cmpl-")
    assert r["model"] == model.path
    assert r["choices"][0]["text"] == model.generate(PROMPT, 6, temperature=0)
    assert r["choices"][0]["finish_reason"] == "length"
    assert r["usage"] == {"prompt_tokens": 6, "completion_tokens": 6, "total_tokens": 12}
    json.dumps(r)  # plain JSON types only
    assert model(PROMPT, max_tokens=6, temperature=0)["choices"] == r["choices"]
    echo = model.create_completion(PROMPT, max_tokens=2, temperature=0, echo=True)
    assert echo["choices"][0]["text"].startswith(PROMPT)


def test_completion_stream_and_logprobs(model: slim.Model) -> None:
    chunks = list(model.create_completion(PROMPT, max_tokens=6, temperature=0, stream=True))
    assert "".join(c["choices"][0]["text"] for c in chunks) == model.generate(PROMPT, 6, temperature=0)
    assert [c["choices"][0]["finish_reason"] for c in chunks][-2:] == [None, "length"]
    assert len({c["id"] for c in chunks}) == 1 and "usage" not in chunks[0]
    r = model.create_completion(PROMPT, max_tokens=4, temperature=0, logprobs=2)
    lp = r["choices"][0]["logprobs"]
    assert sorted(lp) == ["text_offset", "token_logprobs", "tokens", "top_logprobs"]
    assert "".join(lp["tokens"]) == r["choices"][0]["text"]
    assert lp["text_offset"][0] == len(PROMPT) and all(len(t) <= 3 for t in lp["top_logprobs"])
    assert lp["top_logprobs"][0][lp["tokens"][0]] == lp["token_logprobs"][0]


def test_chat_completion_shape(smollm2: slim.Model) -> None:
    r = smollm2.create_chat_completion(MSGS, max_tokens=8, temperature=0)
    assert shape(r) == {
        "choices": [
            {
                "finish_reason": "str",
                "index": "number",
                "logprobs": "NoneType",
                "message": {"content": "str", "role": "str"},
            }
        ],
        "created": "number",
        "id": "str",
        "model": "str",
        "object": "str",
        "usage": {"completion_tokens": "number", "prompt_tokens": "number", "total_tokens": "number"},
    }
    assert r["object"] == "chat.completion" and r["id"].startswith("chatcmpl-")
    assert r["choices"][0]["message"]["content"] == smollm2.chat(MSGS, 8, temperature=0)
    chunks = list(smollm2.create_chat_completion(MSGS, max_tokens=8, temperature=0, stream=True))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert chunks[-1]["choices"][0]["delta"] == {} and chunks[-1]["object"] == "chat.completion.chunk"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == r["choices"][0]["message"]["content"]
    lp = smollm2.create_chat_completion(MSGS, max_tokens=3, temperature=0, logprobs=True, top_logprobs=2)
    content = lp["choices"][0]["logprobs"]["content"]
    assert len(content) <= 3 and sorted(content[0]) == ["bytes", "logprob", "token", "top_logprobs"]
    parts = [{"role": "user", "content": [{"type": "text", "text": "Name a "}, {"type": "text", "text": "colour."}]}]
    assert smollm2.create_chat_completion(parts, max_tokens=8, temperature=0)["choices"] == r["choices"]


def test_llama_cpp_options(model: slim.Model) -> None:
    model.create_completion(PROMPT, max_tokens=1, typical_p=1.0, grammar=None, logit_bias=None)
    with pytest.raises(slim.InvalidArgumentError, match="mirostat_mode=2 is not supported"):
        model.create_completion(PROMPT, max_tokens=1, mirostat_mode=2)
    with pytest.raises(TypeError, match="bogus"):
        model.create_completion(PROMPT, bogus=1)
    with pytest.raises(slim.InvalidArgumentError, match="text content"):
        model.create_chat_completion([{"role": "user", "content": [{"type": "image_url"}]}], template="gemma")


@pytest.fixture(scope="module")
def llama() -> Any:
    try:
        import llama_cpp
    except ImportError:
        pytest.skip("llama-cpp-python is not installed (pip install llama-cpp-python): "
                    "the key-for-key comparison with it is skipped")
    if not MODEL.exists():
        pytest.skip(f"{MODEL} is missing")
    return llama_cpp.Llama(
        str(MODEL), n_ctx=512, n_threads=2, logits_all=True, chat_format="gemma", verbose=False
    )


def test_same_shapes_as_llama_cpp_python(llama: Any, model: slim.Model) -> None:
    kw = dict(max_tokens=6, temperature=0)
    pairs = [
        (llama.create_completion(PROMPT, **kw), model.create_completion(PROMPT, **kw)),
        (llama.create_completion(PROMPT, logprobs=2, **kw), model.create_completion(PROMPT, logprobs=2, **kw)),
        (llama(PROMPT, echo=True, **kw), model(PROMPT, echo=True, **kw)),
        (llama.create_chat_completion(MSGS, **kw), model.create_chat_completion(MSGS, template="gemma", **kw)),
        (
            llama.create_chat_completion(MSGS, logprobs=True, top_logprobs=2, **kw),
            model.create_chat_completion(MSGS, logprobs=True, top_logprobs=2, template="gemma", **kw),
        ),
    ]
    for theirs, ours in pairs:
        assert same_shape(shape(ours), shape(theirs)), json.dumps(theirs, indent=1, default=repr)
        assert ours["object"] == theirs["object"]
        assert ours["id"].split("-")[0] == theirs["id"].split("-")[0]
    # Same tokenizer and chat template: the same prompt token counts.
    for i in (0, 3):
        assert pairs[i][1]["usage"]["prompt_tokens"] == pairs[i][0]["usage"]["prompt_tokens"]
    for theirs, ours in pairs[:1] + pairs[3:4]:
        print("llama-cpp-python:", json.dumps(theirs["choices"][0], default=repr))
        print("slim:            ", json.dumps(ours["choices"][0]))
    for stream_theirs, stream_ours in [
        (llama.create_completion(PROMPT, stream=True, **kw), model.create_completion(PROMPT, stream=True, **kw)),
        (
            llama.create_chat_completion(MSGS, stream=True, **kw),
            model.create_chat_completion(MSGS, stream=True, template="gemma", **kw),
        ),
    ]:
        theirs, ours = list(stream_theirs), list(stream_ours)
        for i in (0, 1, -1):  # the first, a middle and the closing chunk
            assert same_shape(shape(ours[i]), shape(theirs[i])), (i, theirs[i], ours[i])
