"""OpenAI-shaped helpers: llama-cpp-python's dict shapes, key for key.

The comparison with llama-cpp-python itself (for slim.Model and slim.Engine)
runs it in a subprocess with an interpreter that has it (see
_llama_cpp_python) and is skipped with that message when none has; the shape
checks above it always run."""

from __future__ import annotations

import json
import numbers
import os
import subprocess
import sys
from typing import Any

import pytest

import slim

from conftest import MODEL, ROOT

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


# llama-cpp-python runs in a subprocess, with the interpreter that has it:
# $SLIM_LLAMA_CPP_PYTHON, this one, the project's .venv, or the shared one
# this project's machines provide.  The requests go in as JSON and its dicts
# come back as JSON (numpy floats as numbers).
LLAMA_SCRIPT = r"""
import json, sys
import llama_cpp
req = json.load(sys.stdin)
llm = llama_cpp.Llama(req["model"], n_ctx=512, n_threads=2, logits_all=True,
                      chat_format="gemma", verbose=False)
out = []
for method, args, kw in req["calls"]:
    r = getattr(llm, method)(*args, **kw)
    out.append(list(r) if kw.get("stream") else r)
json.dump({"version": llama_cpp.__version__, "results": out}, sys.stdout, default=float)
"""


def _llama_cpp_python() -> str | None:
    cands = [os.environ.get("SLIM_LLAMA_CPP_PYTHON"), sys.executable,
             str(ROOT / ".venv" / "bin" / "python"), "/work/venvs/pyslim/bin/python"]
    for py in cands:
        if py and os.access(py, os.X_OK):
            ok = subprocess.run([py, "-c", "import llama_cpp"], capture_output=True).returncode == 0
            if ok:
                return py
    return None


@pytest.fixture(scope="module")
def llama() -> Any:
    """run(calls) -> llama-cpp-python's results of [(method, args, kwargs)]."""
    py = _llama_cpp_python()
    if py is None:
        pytest.skip("llama-cpp-python is not installed (pip install llama-cpp-python, or "
                    "SLIM_LLAMA_CPP_PYTHON=an interpreter that has it): the key-for-key "
                    "comparison with it is skipped")
    if not MODEL.exists():
        pytest.skip(f"{MODEL} is missing")

    def run(calls: list[tuple[str, list[Any], dict[str, Any]]]) -> list[Any]:
        req = json.dumps({"model": str(MODEL), "calls": calls})
        p = subprocess.run([py, "-c", LLAMA_SCRIPT], input=req, capture_output=True, text=True,
                           timeout=600)
        assert p.returncode == 0, p.stderr[-3000:]
        got = json.loads(p.stdout)
        print(f"llama-cpp-python {got['version']} ({py})")
        return got["results"]

    return run


@pytest.fixture(scope="module")
def engine(model: slim.Model) -> Any:
    with slim.Engine(model, n_threads=2, kv_tokens=4096, n_ctx=512) as e:
        yield e


def test_same_shapes_as_llama_cpp_python(llama: Any, model: slim.Model, engine: slim.Engine) -> None:
    """The same requests to llama-cpp-python, slim.Model and slim.Engine: the
    same keys at every level and the same leaf types."""
    kw: dict[str, Any] = dict(max_tokens=6, temperature=0)
    calls: list[tuple[str, list[Any], dict[str, Any]]] = [
        ("create_completion", [PROMPT], kw),
        ("create_completion", [PROMPT], dict(kw, logprobs=2)),
        ("__call__", [PROMPT], dict(kw, echo=True)),
        ("create_chat_completion", [MSGS], kw),
        ("create_chat_completion", [MSGS], dict(kw, logprobs=True, top_logprobs=2)),
        ("create_completion", [PROMPT], dict(kw, stream=True)),
        ("create_chat_completion", [MSGS], dict(kw, stream=True)),
    ]
    theirs_all = llama(calls)

    def ours(obj: Any, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if method == "create_chat_completion":
            kwargs = dict(kwargs, template="gemma")
        r = getattr(obj, method)(*args, **kwargs)
        return list(r) if kwargs.get("stream") else r

    for impl in (model, engine):
        got = [ours(impl, *c) for c in calls]
        for (method, _, ckw), theirs, mine in zip(calls, theirs_all, got):
            if ckw.get("stream"):
                for i in (0, 1, -1):  # the first, a middle and the closing chunk
                    assert same_shape(shape(mine[i]), shape(theirs[i])), (impl, i, theirs[i], mine[i])
                continue
            assert same_shape(shape(mine), shape(theirs)), json.dumps(theirs, indent=1)
            assert mine["object"] == theirs["object"]
            assert mine["id"].split("-")[0] == theirs["id"].split("-")[0]
        # Same tokenizer and chat template: the same prompt token counts.
        for i in (0, 3):
            assert got[i]["usage"]["prompt_tokens"] == theirs_all[i]["usage"]["prompt_tokens"]
        for i in (0, 3):
            print(type(impl).__name__, "llama-cpp-python:", json.dumps(theirs_all[i]["choices"][0]))
            print(type(impl).__name__, "slim:            ", json.dumps(got[i]["choices"][0]))
