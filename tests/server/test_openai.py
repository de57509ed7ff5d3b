"""slim serve driven by the official openai package: every endpoint and field of
docs/SERVER.md, and each error status raised as the client's exception class."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import threading
import time

import httpx
import openai
import pytest

from conftest import CLI, MODEL, MODEL_NAME, Server, assert_sanitizer_clean, need_server_build

PROMPT = "The three primary colors are"
MSGS = [{"role": "user", "content": "Name three colors."}]


def slim_run(prompt: str, n: int, lora: str | None = None) -> str:
    """The same greedy continuation from `slim run` (a plain slim_context, not the engine)."""
    args = [str(CLI), "run", "-m", str(MODEL), "-p", prompt, "-n", str(n), "--temp", "0",
            "--no-echo", "-t", "2"]
    if lora:
        args += ["--lora", lora]
    out = subprocess.run(args, capture_output=True, check=True).stdout.decode()
    return out[:-1] if out.endswith("\n") else out  # slim run ends with a newline


def test_health_and_models(server, client, lora_dir):
    assert httpx.get(server.url + "/health").status_code == 200
    models = client.models.list()
    ids = [m.id for m in models.data]
    assert ids == [MODEL_NAME, "tuned"]
    assert models.data[1].model_extra["parent"] == MODEL_NAME


def test_completion_greedy_matches_slim_run(client):
    r = client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=12, temperature=0)
    assert r.object == "text_completion" and r.model == MODEL_NAME
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 12 and r.usage.prompt_tokens > 3
    assert r.usage.total_tokens == r.usage.prompt_tokens + 12
    assert r.choices[0].text == slim_run(PROMPT, 12)


def test_completion_stream_equals_whole(client):
    whole = client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=16,
                                      temperature=0)
    chunks = list(client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=16,
                                            temperature=0, stream=True,
                                            stream_options={"include_usage": True}))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == whole.choices[0].text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 16
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_chat_and_stream(server, client):
    r = client.chat.completions.create(model=MODEL_NAME, messages=MSGS, max_tokens=10,
                                       temperature=0)
    assert r.object == "chat.completion"
    msg = r.choices[0].message
    assert msg.role == "assistant" and isinstance(msg.content, str) and msg.content
    assert r.choices[0].finish_reason in ("stop", "length")
    # the same text from the chat template rendered by hand (Gemma's turn markers)
    rendered = ("<start_of_turn>user\nName three colors.<end_of_turn>\n<start_of_turn>model\n")
    tok = httpx.post(server.url + "/tokenize", json={"messages": MSGS}).json()
    tok2 = httpx.post(server.url + "/tokenize", json={"prompt": rendered}).json()
    assert tok["tokens"] == tok2["tokens"] and r.usage.prompt_tokens == tok["count"]
    parts = list(client.chat.completions.create(model=MODEL_NAME, messages=MSGS, max_tokens=10,
                                                temperature=0, stream=True))
    assert parts[0].choices[0].delta.role == "assistant"
    assert "".join(p.choices[0].delta.content or "" for p in parts) == msg.content
    assert parts[-1].choices[0].finish_reason == r.choices[0].finish_reason
    # content as an array of text parts, system message
    r2 = client.chat.completions.create(
        model=MODEL_NAME, max_tokens=10, temperature=0,
        messages=[{"role": "user", "content": [{"type": "text", "text": "Name three "},
                                               {"type": "text", "text": "colors."}]}])
    assert r2.choices[0].message.content == msg.content


def test_n_and_seed(client):
    kw = dict(model=MODEL_NAME, prompt=PROMPT, max_tokens=8, temperature=1.0, n=3, seed=1234)
    a = client.completions.create(**kw)
    b = client.completions.create(**kw)
    c = client.completions.create(**{**kw, "seed": 99})
    ta = [ch.text for ch in a.choices]
    assert [ch.index for ch in a.choices] == [0, 1, 2]
    assert ta == [ch.text for ch in b.choices]  # same seed: the same choices
    assert len(set(ta)) > 1  # n choices are different draws
    assert ta != [ch.text for ch in c.choices]
    assert a.usage.completion_tokens == 24
    chat = client.chat.completions.create(model=MODEL_NAME, messages=MSGS, max_tokens=6, n=2,
                                          seed=5, temperature=1.0)
    assert len(chat.choices) == 2


def test_stop_strings(client):
    full = client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=24,
                                     temperature=0).choices[0].text
    words = full.split(" ")
    stop = " " + words[3]  # a word in the middle of the greedy text
    cut = full[: full.index(stop)]
    r = client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=24, temperature=0,
                                  stop=[stop, "zzzz-never"])
    assert r.choices[0].text == cut and r.choices[0].finish_reason == "stop"
    s = list(client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=24,
                                       temperature=0, stop=stop, stream=True))
    assert "".join(c.choices[0].text for c in s) == cut
    assert s[-1].choices[0].finish_reason == "stop"


def test_chat_logprobs(client):
    r = client.chat.completions.create(model=MODEL_NAME, messages=MSGS, max_tokens=6,
                                       temperature=0, logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) >= 1
    assert "".join(t.token for t in content) == r.choices[0].message.content
    for t in content:
        assert len(t.top_logprobs) == 3
        lps = [x.logprob for x in t.top_logprobs]
        assert lps == sorted(lps, reverse=True) and sum(math.exp(x) for x in lps) <= 1.0001
        assert t.top_logprobs[0].token == t.token  # greedy: the most likely token
        assert t.logprob == pytest.approx(lps[0], abs=1e-6) and t.logprob <= 0
        assert bytes(t.bytes) == t.token.encode()


def test_echo_prompt_logprobs(server, client):
    """echo + logprobs gives each prompt token's log-probability (lm-evaluation-harness's
    local-completions): checked against the log-probabilities the same tokens had when
    the server generated them."""
    gen = client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=6,
                                    temperature=0, logprobs=2)
    lp = gen.choices[0].logprobs
    assert len(lp.tokens) == 6 and len(lp.top_logprobs) == 6
    ids = httpx.post(server.url + "/tokenize", json={"prompt": PROMPT}).json()["tokens"]
    cont = httpx.post(server.url + "/tokenize",
                      json={"prompt": gen.choices[0].text, "add_special_tokens": False}).json()
    full = ids + cont["tokens"]
    e = client.completions.create(model=MODEL_NAME, prompt=full, max_tokens=0, echo=True,
                                  logprobs=1, temperature=0)
    elp = e.choices[0].logprobs
    assert e.choices[0].text == PROMPT + gen.choices[0].text
    assert len(elp.token_logprobs) == len(full) and elp.token_logprobs[0] is None
    assert elp.top_logprobs[0] is None
    if cont["tokens"] == [] or len(cont["tokens"]) != 6:
        pytest.skip("the continuation does not re-tokenize to the generated tokens")
    for a, b in zip(elp.token_logprobs[len(ids):], lp.token_logprobs):
        assert a == pytest.approx(b, abs=2e-3)
    assert all(x <= 0 for x in elp.token_logprobs[1:])
    assert elp.text_offset[0] == 0 and elp.text_offset == sorted(elp.text_offset)


def test_prompt_forms(server, client):
    ids = httpx.post(server.url + "/tokenize", json={"prompt": PROMPT}).json()["tokens"]
    a = client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=5, temperature=0)
    b = client.completions.create(model=MODEL_NAME, prompt=ids, max_tokens=5, temperature=0)
    c = client.completions.create(model=MODEL_NAME, prompt=[PROMPT, "Hello"], max_tokens=5,
                                  temperature=0)
    assert a.choices[0].text == b.choices[0].text == c.choices[0].text
    assert len(c.choices) == 2 and c.choices[1].index == 1
    d = httpx.post(server.url + "/detokenize", json={"tokens": ids}).json()
    assert d["prompt"] == PROMPT


def test_lora_by_model_name(client, lora_dir):
    base = client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=10,
                                     temperature=0).choices[0].text
    tuned = client.completions.create(model="tuned", prompt=PROMPT, max_tokens=10,
                                      temperature=0)
    assert tuned.model == "tuned"
    assert tuned.choices[0].text != base
    assert tuned.choices[0].text == slim_run(PROMPT, 10, lora=str(lora_dir))


def test_metrics(server, client):
    before = httpx.get(server.url + "/metrics").text
    client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=4, temperature=0)
    m = httpx.get(server.url + "/metrics")
    assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")

    def value(text, name):
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"{name} missing")

    for name in ["vllm:num_requests_running", "vllm:num_requests_waiting",
                 "vllm:gpu_cache_usage_perc", "vllm:kv_cache_usage_perc",
                 "vllm:prefix_cache_hits_total", "vllm:prefix_cache_queries_total",
                 "vllm:prompt_tokens_total", "vllm:generation_tokens_total",
                 "vllm:time_to_first_token_seconds_count",
                 "vllm:inter_token_latency_seconds_count"]:
        value(m.text, name)
    assert value(m.text, "vllm:generation_tokens_total") >= \
        value(before, "vllm:generation_tokens_total") + 4
    assert value(m.text, "vllm:time_to_first_token_seconds_count") >= \
        value(before, "vllm:time_to_first_token_seconds_count") + 1
    assert value(m.text, "vllm:inter_token_latency_seconds_count") >= \
        value(before, "vllm:inter_token_latency_seconds_count") + 3
    assert value(m.text, "vllm:num_requests_running") == 0
    # the same prompt again: its full blocks come from the prefix cache
    long_prompt = "word " * 80
    client.completions.create(model=MODEL_NAME, prompt=long_prompt, max_tokens=1)
    h0 = value(httpx.get(server.url + "/metrics").text, "vllm:prefix_cache_hits_total")
    client.completions.create(model=MODEL_NAME, prompt=long_prompt, max_tokens=1)
    h1 = value(httpx.get(server.url + "/metrics").text, "vllm:prefix_cache_hits_total")
    assert h1 >= h0 + 64


def test_errors(server, client, http):
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=5,
                                  temperature="hot")
    assert e.value.status_code == 400 and e.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=5, top_p=3)
    with pytest.raises(openai.BadRequestError) as e:  # context overflow, with the counts
        client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=100000)
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model=MODEL_NAME, prompt="hi " * 5000, max_tokens=10)
    assert "maximum context length is 4096" in e.value.message
    for rf in [{"type": "xml"},  # unknown type; a malformed schema: a 400, never a 200
               {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 5}}},
               {"type": "json_schema", "json_schema": {"name": "x", "schema": {
                   "type": "string", "pattern": "a", "enum": ["a"]}}}]:
        with pytest.raises(openai.BadRequestError) as e:
            client.chat.completions.create(model=MODEL_NAME, messages=MSGS, response_format=rf)
        assert e.value.body["param"] == "response_format", rf
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL_NAME, messages=[{"role": "tool",
                                                                    "content": "x"}])
    with pytest.raises(openai.NotFoundError) as e:
        client.completions.create(model="no-such-model", prompt=PROMPT, max_tokens=1)
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.get("/no/such/route", cast_to=object)
    with pytest.raises(openai.APIStatusError) as e:  # 2 MB > --max-body 1 MiB
        client.completions.create(model=MODEL_NAME, prompt="x" * (2 << 20), max_tokens=1)
    assert e.value.status_code == 413
    # raw bodies: malformed JSON, invalid UTF-8, not an object; the envelope's shape
    for body in [b"{", b'{"prompt": "\xff"}', b"[1]", b""]:
        r = http.post("/v1/completions", content=body,
                      headers={"content-type": "application/json"})
        assert r.status_code == 400, body
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"}
        assert err["type"] == "invalid_request_error"


def test_api_key_queue_and_drain(tmp_path):
    """A second server with an API key and a queue of one: 401 without the key, 429 with
    Retry-After when the queue is full, 503 while draining, then exit 0."""
    need_server_build()
    s = Server(["--api-key", "sekrit", "--max-queue", "1", "--drain-timeout", "300"],
               tmp_path / "server.log")
    try:
        with pytest.raises(openai.AuthenticationError):
            s.client(api_key="wrong").models.list()
        with pytest.raises(openai.AuthenticationError):
            s.client(api_key="sekri").models.list()
        ok = s.client(api_key="sekrit")
        assert [m.id for m in ok.models.list().data] == [MODEL_NAME]
        assert httpx.get(s.url + "/health").status_code == 200  # no key needed
        # one long request holds the only queue slot
        long = {}

        def run_long():
            long["r"] = ok.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=200,
                                              temperature=0)

        t = threading.Thread(target=run_long)
        t.start()
        time.sleep(0.5)
        with pytest.raises(openai.RateLimitError) as e:
            ok.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=1)
        assert e.value.response.headers["retry-after"] == "1"
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        # a kept-alive connection gets 503 while the server drains
        with pytest.raises(openai.InternalServerError) as e:
            ok.models.list()
        assert e.value.status_code == 503
        # 200 tokens take seconds, but minutes under ASan on a loaded machine (a 120 s wait
        # ran out there, and stop() then cancelled the request it was waiting for)
        t.join(900)
        assert not t.is_alive(), "the running request did not finish within 900 s of the drain"
        assert long["r"].choices[0].finish_reason == "length"  # the running one finished
        assert long["r"].usage.completion_tokens == 200
    finally:
        rc = s.stop()
    assert rc == 0, s.log
    assert "draining" in s.log
    assert_sanitizer_clean(s.log)


def test_health_503_while_loading(tmp_path):
    """/health answers 503 before the model is loaded (the server listens first)."""
    need_server_build()
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    p = subprocess.Popen([str(CLI), "serve", "-m", str(MODEL), "--port", str(port), "-t", "1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and 200 not in seen:
            try:
                seen.add(httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code)
            except httpx.TransportError:
                pass
            time.sleep(0.005)
    finally:
        p.send_signal(signal.SIGINT)
        rc = p.wait(60)
    assert 200 in seen and rc == 0
    if 503 not in seen:
        pytest.skip("the model loaded before the first /health answer")


def test_json_escaping_round_trip(server):
    """Quotes, backslashes, control characters, NUL and non-ASCII text survive the
    server's JSON writer (read back by Python's json module)."""
    text = 'a "quoted" \\ back\\slash\n\ttab \x01\x1f ctrl \x00 nul é ü 漢字 😀 \u2028'
    tok = httpx.post(server.url + "/tokenize",
                     json={"prompt": text, "add_special_tokens": False})
    assert tok.status_code == 200
    back = httpx.post(server.url + "/detokenize", json={"tokens": tok.json()["tokens"]})
    assert back.status_code == 200 and back.json()["prompt"] == text


def test_response_format(client):
    """json_schema and json_object through slim's constraint engine: the text parses and
    satisfies the schema, streamed or not."""
    schema = {"type": "object", "additionalProperties": False, "required": ["color", "count"],
              "properties": {"color": {"type": "string", "enum": ["red", "green", "blue"]},
                             "count": {"type": "integer", "minimum": 1, "maximum": 9}}}
    rf = {"type": "json_schema", "json_schema": {"name": "c", "schema": schema, "strict": True}}
    r = client.chat.completions.create(model=MODEL_NAME, messages=MSGS, max_tokens=40,
                                       temperature=0, response_format=rf)
    text = r.choices[0].message.content
    v = json.loads(text)
    assert set(v) == {"color", "count"} and v["color"] in ("red", "green", "blue")
    assert isinstance(v["count"], int) and 1 <= v["count"] <= 9
    assert r.choices[0].finish_reason == "stop"
    parts = list(client.chat.completions.create(model=MODEL_NAME, messages=MSGS, max_tokens=40,
                                                temperature=0, response_format=rf, stream=True))
    assert "".join(p.choices[0].delta.content or "" for p in parts) == text
    seeded = client.chat.completions.create(model=MODEL_NAME, messages=MSGS, max_tokens=40,
                                            temperature=1.0, seed=3, n=3, response_format=rf)
    for ch in seeded.choices:
        assert json.loads(ch.message.content)["color"] in ("red", "green", "blue")
    o = client.completions.create(model=MODEL_NAME, prompt="A cat as JSON:", max_tokens=48,
                                  temperature=0,
                                  extra_body={"response_format": {"type": "json_object"}})
    t = o.choices[0].text
    assert t.startswith("{")
    if o.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(t), dict)


def test_request_time_limit(tmp_path):
    """--timeout: a request running longer is cancelled (its KV blocks freed): 504 when
    not streaming, finish_reason "abort" ending the stream."""
    need_server_build()
    s = Server(["--timeout", "3"], tmp_path / "server.log")
    try:
        c = s.client()
        with pytest.raises(openai.InternalServerError) as e:
            c.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=3000,
                                 extra_body={"ignore_eos": True})
        assert e.value.status_code == 504
        chunks = list(c.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=3000,
                                           stream=True, extra_body={"ignore_eos": True}))
        assert chunks[-1].choices[0].finish_reason == "abort"
        assert c.completions.create(model=MODEL_NAME, prompt=PROMPT,
                                    max_tokens=2).choices[0].finish_reason == "length"
    finally:
        rc = s.stop()
    assert rc == 0, s.log
    assert_sanitizer_clean(s.log)


def test_logit_bias(server, client):
    """logit_bias as OpenAI defines it: -100 bans the greedy token (the runner-up of the
    unbiased top_logprobs takes its place), 100 forces a chosen token at every step,
    in completions and chat, streamed or not; bad keys and values are a 400 naming it."""

    def token_id(text: str) -> int:
        ids = httpx.post(server.url + "/tokenize",
                         json={"prompt": text, "add_special_tokens": False}).json()["tokens"]
        assert len(ids) == 1, (text, ids)
        assert httpx.post(server.url + "/detokenize",
                          json={"tokens": ids}).json()["prompt"] == text
        return ids[0]

    plain = client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=1,
                                      temperature=0, logprobs=5)
    greedy = plain.choices[0].text
    top = plain.choices[0].logprobs.top_logprobs[0]
    ranked = sorted(top, key=top.get, reverse=True)
    assert ranked[0] == greedy and len(ranked) >= 2
    g = token_id(greedy)

    banned = client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=1,
                                       temperature=0, logit_bias={str(g): -100})
    assert banned.choices[0].text == ranked[1]
    # a small bias leaves the choice alone; the report's logprobs are the model's own
    same = client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=1,
                                     temperature=0, logprobs=1, logit_bias={str(g): -0.001})
    assert same.choices[0].text == greedy
    assert same.choices[0].logprobs.token_logprobs[0] == pytest.approx(top[greedy], abs=1e-4)

    forced_text = " banana"
    f = token_id(forced_text)
    for stream in (False, True):
        r = client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=4,
                                      temperature=1.0, seed=3, stream=stream,
                                      logit_bias={str(f): 100, str(g): -100})
        text = "".join(c.choices[0].text for c in r) if stream else r.choices[0].text
        assert text == forced_text * 4, (stream, text)

    chat = client.chat.completions.create(model=MODEL_NAME, messages=MSGS, max_tokens=3,
                                          temperature=0, logit_bias={str(f): 100})
    assert chat.choices[0].message.content == forced_text * 3
    unbiased = client.chat.completions.create(model=MODEL_NAME, messages=MSGS, max_tokens=1,
                                              temperature=0)
    first = unbiased.choices[0].message.content
    b = token_id(first)
    chat_banned = client.chat.completions.create(model=MODEL_NAME, messages=MSGS, max_tokens=1,
                                                 temperature=0, logit_bias={str(b): -100})
    assert chat_banned.choices[0].message.content != first

    big = 10**9  # beyond any vocabulary
    for bias, why in [({"abc": 1}, 'key "abc" is not a token id'),
                      ({"-5": 1}, 'key "-5" is not a token id'),
                      ({"12": 101}, "between -100 and 100, got 101"),
                      ({"12": -100.5}, "between -100 and 100, got -100.5"),
                      ({"12": "1"}, "must be a number, got string"),
                      ({str(big): 1}, f"token {big} is outside the vocabulary")]:
        with pytest.raises(openai.BadRequestError) as e:
            client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=1,
                                      logit_bias=bias)
        assert e.value.body["param"] == "logit_bias", bias
        assert why in e.value.message, (bias, e.value.message)
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=1,
                                  extra_body={"logit_bias": [1, 2]})
    assert e.value.body["param"] == "logit_bias"
    # an empty object is no bias at all
    r = client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=1, temperature=0,
                                  logit_bias={})
    assert r.choices[0].text == greedy
