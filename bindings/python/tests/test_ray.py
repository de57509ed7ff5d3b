"""slim.serve.ray: a local Ray instance with 2 slim replicas behind Serve's
HTTP proxy on loopback; 100 requests from the official openai client; both
replicas serve, and every greedy output equals the single-process one.

Part of `make test-full` (SLIM_TEST_FULL=1; `make test-full` installs
tools/requirements/ray.txt into .venv): starting Ray takes a while."""

from __future__ import annotations

import concurrent.futures
import os
import socket
from typing import Any

import pytest

import slim

from conftest import MODEL, need

if os.environ.get("SLIM_TEST_FULL") != "1":
    pytest.skip("the Ray Serve test runs in make test-full (SLIM_TEST_FULL=1)", allow_module_level=True)

ray = pytest.importorskip("ray", reason="pip install -r tools/requirements/ray.txt (ray[serve], openai)")
openai = pytest.importorskip("openai", reason="pip install -r tools/requirements/ray.txt")
from ray import serve  # noqa: E402

from slim.serve.ray import app_builder, deployment  # noqa: E402

PROMPTS = [f"{p}" for p in (
    "The capital of France is", "Water boils at", "The largest planet is", "In 1492,",
    "My favourite food is", "The sun rises in the", "Two plus two equals", "Once upon a time",
    "The best way to learn is", "Cats are",
)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served() -> Any:
    model = str(need(MODEL))
    port = free_port()
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        app = deployment(model, num_replicas=2, num_cpus=1,
                         engine_params={"n_threads": 1, "kv_tokens": 4096, "n_ctx": 512})
        serve.run(app, name="slim", route_prefix="/")
        yield openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0,
                            timeout=300)
    finally:
        serve.shutdown()
        ray.shutdown()


def test_two_replicas_openai_client(served: Any, model: slim.Model) -> None:
    client = served
    # Single process: the same helpers on a Model.
    want_text = {p: model.create_completion(p, max_tokens=8, temperature=0)["choices"][0]["text"]
                 for p in PROMPTS}
    msgs = lambda p: [{"role": "user", "content": f"Continue: {p}"}]  # noqa: E731
    want_chat = {p: model.create_chat_completion(msgs(p), max_tokens=8, temperature=0, template="gemma")
                 ["choices"][0]["message"]["content"] for p in PROMPTS}

    def one(i: int) -> tuple[str, str, str]:
        p = PROMPTS[i % len(PROMPTS)]
        if i % 2:
            raw = client.chat.completions.with_raw_response.create(
                model="gemma", messages=msgs(p), max_tokens=8, temperature=0,
                extra_body={"template": "gemma"})
            r = raw.parse()
            got = r.choices[0].message.content
            assert r.object == "chat.completion" and r.usage.completion_tokens == 8
            return raw.headers["x-slim-replica"], got, want_chat[p]
        raw = client.completions.with_raw_response.create(
            model="gemma", prompt=p, max_tokens=8, temperature=0)
        r = raw.parse()
        assert r.object == "text_completion" and r.choices[0].finish_reason == "length"
        return raw.headers["x-slim-replica"], r.choices[0].text, want_text[p]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(100)))
    replicas = {rep for rep, _, _ in results}
    print(f"100 requests: replicas {sorted(replicas)}, "
          f"{[sum(1 for r, _, _ in results if r == x) for x in sorted(replicas)]} each")
    assert len(replicas) == 2
    assert [got for _, got, _ in results] == [want for _, _, want in results]
    # A stream through the proxy, the model list, and slim's error message.
    chunks = list(client.completions.create(model="gemma", prompt=PROMPTS[0], max_tokens=8,
                                            temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == want_text[PROMPTS[0]]
    assert [m.id for m in client.models.list().data] == [os.path.basename(str(MODEL))]
    with pytest.raises(openai.BadRequestError, match="logprobs 21 outside"):
        client.completions.create(model="gemma", prompt=PROMPTS[0], max_tokens=2, logprobs=21)


def test_app_builder_arguments() -> None:
    with pytest.raises(ValueError, match="unknown arguments"):
        app_builder({"model": str(MODEL), "bogus": "1"})
    assert app_builder({"model": str(MODEL), "num_replicas": "2", "n_threads": "1"}) is not None
