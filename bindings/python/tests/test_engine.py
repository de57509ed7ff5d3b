"""slim.Engine: the batched engine from Python threads and asyncio.

Outputs are checked against slim.Model on its own context (greedy and
seeded sampling: the engine's logits do not depend on what shares a step),
logprobs against log-softmax of Model.logits, and concurrency by wall time:
requests submitted together are batched, so they finish well inside the sum
of the same requests run one after another."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import threading
import time

import numpy as np
import pytest

import slim

from conftest import HF_LLAMA, need

PROMPTS = [
    "The capital of France is",
    "Water boils at",
    "The largest planet is",
    "In 1492,",
    "My favourite food is",
    "The sun rises in the",
    "Two plus two equals",
    "Once upon a time",
]


@pytest.fixture(scope="module")
def engine(model: slim.Model) -> slim.Engine:
    e = slim.Engine(model, n_threads=2, kv_tokens=8192, n_ctx=512)
    yield e
    e.close()


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))


def test_greedy_and_seeded_equal_model(engine: slim.Engine, model: slim.Model) -> None:
    for p in PROMPTS[:3]:
        assert engine.generate(p, 12, temperature=0) == model.generate(p, 12, temperature=0)
    # Sampling: the same sampler chain and seed as Model.generate.
    kw = dict(temperature=0.9, top_k=50, top_p=0.9, seed=1234)
    assert engine.generate(PROMPTS[0], 16, **kw) == model.generate(PROMPTS[0], 16, **kw)
    # slim's defaults (temperature 0.8, seed 0) when nothing is given, as Model.
    assert engine.generate(PROMPTS[1], 10) == model.generate(PROMPTS[1], 10)
    # Token ids as the prompt, and parse_special / add_special.
    ids = model.tokenize(PROMPTS[2])
    assert engine.generate(ids, 8, temperature=0) == model.generate(ids, 8, temperature=0)
    assert engine.generate("<eos>x", 4, temperature=0, parse_special=True, add_special=False) == (
        model.generate("<eos>x", 4, temperature=0, parse_special=True, add_special=False)
    )


def test_result_fields_and_stream(engine: slim.Engine, model: slim.Model) -> None:
    r = engine.submit(PROMPTS[0], 8, temperature=0)
    pieces = list(r)
    res = r.result(timeout=60)
    assert isinstance(res, slim.EngineResult) and r.done()
    assert "".join(pieces) == res.text == model.generate(PROMPTS[0], 8, temperature=0)
    assert res.finish_reason == "length" and r.finish_reason == "length"
    assert res.n_prompt == len(model.tokenize(PROMPTS[0])) == r.n_prompt
    assert res.n_completion == 8 == r.n_generated and len(res.tokens) == 8 == len(r.tokens)
    assert res.tokens == r.tokens and model.detokenize(res.tokens) == res.text
    assert 0 <= res.queue_ms <= res.ttft_ms <= res.total_ms
    assert len(r.token_times) == 8 and r.token_times == sorted(r.token_times)
    assert r.id > 0 and "length" in repr(r)
    # The prefix cache: the same 6-token prompt again takes no cached block
    # (block 16), a long shared prompt does.
    long = " ".join(["word"] * 60)
    engine.submit(long, 1, temperature=0).result()
    again = engine.submit(long, 1, temperature=0).result()
    assert again.n_cached >= 48
    st = engine.stats()
    assert isinstance(st, slim.EngineStats) and st.kv_block_size == 16 and st.n_steps > 0
    assert st.kv_blocks == 8192 // 16
    assert st.prefix_hit_tokens >= 48 and st.n_running == 0


def test_stop_strings_and_eos(engine: slim.Engine, model: slim.Model, smollm2: slim.Model) -> None:
    full = model.generate(PROMPTS[0], 12, temperature=0)
    stop = full[8:11]  # a stop string inside the text, maybe spanning tokens
    r = engine.submit(PROMPTS[0], 12, temperature=0, stop=[stop, "zzzz-never"])
    pieces = list(r)
    res = r.result()
    want = full[: full.find(stop)]
    assert res.text == want == "".join(pieces) and res.finish_reason == "stop"
    assert res.text == model.generate(PROMPTS[0], 12, temperature=0, stop=stop)
    # An end-of-generation token (the instruct model's end of turn): "eos",
    # not in tokens or text.
    msgs = [{"role": "user", "content": "Say hi."}]
    with slim.Engine(smollm2, n_threads=2, kv_tokens=2048) as e:
        chat = e.submit_chat(msgs, 200, temperature=0).result()
        assert chat.finish_reason == "eos" and chat.n_completion == len(chat.tokens) + 1
        assert chat.text == smollm2.chat(msgs, 200, temperature=0) == e.chat(msgs, 200, temperature=0)
        # stop_at_eos=False runs on to max_tokens.
        n = e.submit_chat(msgs, len(chat.tokens) + 3, temperature=0, stop_at_eos=False).result()
        assert n.finish_reason == "length" and len(n.tokens) == len(chat.tokens) + 3
    # max_tokens=None: until n_ctx.
    ctx = engine.submit(PROMPTS[1], None, temperature=0, stop_at_eos=False).result()
    assert ctx.finish_reason == "context" and ctx.n_prompt + len(ctx.tokens) == 512


def test_logprobs_match_model_logits(engine: slim.Engine, model: slim.Model) -> None:
    ids = model.tokenize(PROMPTS[3])
    r = engine.submit(ids, 5, temperature=0, logprobs=3, prompt_logprobs=True).result()
    ref = log_softmax(model.logits(ids + r.tokens[:-1]))
    n = len(ids)
    for i, t in enumerate(r.tokens):
        row = ref[n - 1 + i]
        assert abs(r.token_logprobs[i] - row[t]) < 2e-3
        top = list(r.top_logprobs[i])
        assert len(top) == 3 and top[0] == t == int(np.argmax(row))  # greedy: the most likely
        assert top == [int(k) for k in np.argsort(-row, kind="stable")[:3]]
    assert r.prompt_logprobs is not None and r.prompt_logprobs[0] == 0.0
    assert r.prompt_top_logprobs is not None and len(r.prompt_top_logprobs) == n
    for i in range(1, n):
        assert abs(r.prompt_logprobs[i] - ref[i - 1][ids[i]]) < 2e-3
    # logprobs=0: each token's own logprob, no alternatives.
    z = engine.submit(ids, 2, temperature=0, logprobs=0).result()
    assert z.top_logprobs == [{}, {}] and z.token_logprobs[0] == pytest.approx(r.token_logprobs[0])
    assert engine.submit(ids, 2, temperature=0).result().token_logprobs == []


def test_cancel_and_close(model: slim.Model) -> None:
    e = slim.Engine(model, n_threads=2, kv_tokens=2048, n_ctx=512)
    r = e.submit(PROMPTS[0], 400, temperature=0, stop_at_eos=False)
    it = iter(r)
    next(it)
    assert r.cancel()
    res = r.result(timeout=60)
    assert res.finish_reason == "cancelled" and 1 <= len(res.tokens) < 400
    assert not r.cancel()  # finished
    # Leaving a stream early cancels its request (sync and async).
    s = e.submit(PROMPTS[1], 400, temperature=0, stop_at_eos=False)
    for _ in s:
        break
    assert s.result(timeout=60).finish_reason == "cancelled"

    async def first_piece(q: slim.Request) -> None:
        agen = q.__aiter__()
        await agen.__anext__()
        await agen.aclose()

    a = e.submit(PROMPTS[2], 400, temperature=0, stop_at_eos=False)
    asyncio.run(first_piece(a))
    assert a.result(timeout=60).finish_reason == "cancelled" and len(a.tokens) < 400
    # close() cancels what is unfinished: every request gets its result.
    reqs = [e.submit(p, 400, temperature=0, stop_at_eos=False) for p in PROMPTS[:4]]
    e.close()
    assert all(q.result(timeout=60).finish_reason == "cancelled" for q in reqs)
    with pytest.raises(ValueError, match="closed"):
        e.submit(PROMPTS[0])
    e.close()  # twice is fine
    # An unfinished request keeps its Engine; an Engine nobody holds is freed
    # (its dispatcher thread ends).
    def dispatchers() -> int:
        return sum(t.name == "slim-engine-dispatch" for t in threading.enumerate())

    n0 = dispatchers()
    r = slim.Engine(model, n_threads=2, kv_tokens=1024).submit(PROMPTS[0], 4, temperature=0)
    assert dispatchers() == n0 + 1
    assert r.text(timeout=60) == model.generate(PROMPTS[0], 4, temperature=0)
    del r
    gc.collect()
    deadline = time.time() + 10
    while time.time() < deadline and dispatchers() > n0:
        time.sleep(0.05)
    assert dispatchers() == n0


def test_errors_raise_with_slims_message(engine: slim.Engine, model: slim.Model) -> None:
    with pytest.raises(slim.InvalidArgumentError, match="max_tokens -1 is negative"):
        engine.submit(PROMPTS[0], -1)
    with pytest.raises(slim.InvalidArgumentError, match=r"logprobs 21 outside 0\.\.20"):
        engine.submit(PROMPTS[0], 2, logprobs=21)
    with pytest.raises(slim.InvalidArgumentError, match="token 1 has id 999999999 outside"):
        engine.submit([2, 999999999], 2)
    with pytest.raises(slim.InvalidArgumentError, match="lora 3 is not attached"):
        engine.submit(PROMPTS[0], 2, lora=3)
    with pytest.raises(slim.InvalidArgumentError, match="stop string 0 is NULL or empty"):
        engine.submit(PROMPTS[0], 2, stop=[""])
    with pytest.raises(slim.InvalidArgumentError, match="do not fit n_ctx 512"):
        engine.submit(list(range(10, 700)), 2)
    with pytest.raises(slim.InvalidArgumentError, match="no tokens"):
        engine.submit([], 2)
    with pytest.raises(slim.InvalidArgumentError, match="n_threads"):
        slim.Engine(model, n_threads=-1)
    with pytest.raises(slim.InvalidArgumentError, match="kv_type must be one of"):
        slim.Engine(model, kv_type="q9")
    with pytest.raises(slim.SlimIOError, match="missing.gguf"):
        slim.Engine("models/missing.gguf")
    with pytest.raises(TypeError, match="unexpected"):
        slim.Engine(model, weight_type="q8_0")
    assert engine.generate(PROMPTS[0], 2, temperature=0)  # still fine afterwards


def _run_sequential(engine: slim.Engine, prompts: list[str], n: int) -> tuple[float, list[str]]:
    t0 = time.perf_counter()
    out = [engine.generate(p, n, temperature=0) for p in prompts]
    return time.perf_counter() - t0, out


def test_eight_threads_batch_concurrently(engine: slim.Engine, model: slim.Model) -> None:
    """8 Python threads each calling generate(): the same greedy outputs as
    sequential calls (and as Model), and they run at once: one batched
    run takes well under the sum of the sequential ones."""
    n_tok = 24
    seq_t, seq = _run_sequential(engine, PROMPTS, n_tok)
    assert seq[:2] == [model.generate(p, n_tok, temperature=0) for p in PROMPTS[:2]]
    out: list[str] = [""] * len(PROMPTS)
    inside = threading.Barrier(len(PROMPTS))

    def run(i: int) -> None:
        inside.wait()
        out[i] = engine.generate(PROMPTS[i], n_tok, temperature=0)

    t0 = time.perf_counter()
    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(PROMPTS))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    conc_t = time.perf_counter() - t0
    print(f"8 threads: sequential {seq_t:.2f} s, concurrent {conc_t:.2f} s ({seq_t / conc_t:.2f}x)")
    assert out == seq
    assert conc_t < 0.6 * seq_t
    # The same through futures from a thread pool.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futs = [pool.submit(engine.generate, p, n_tok, temperature=0) for p in PROMPTS]
        assert [f.result() for f in futs] == seq
    reqs = [engine.submit(p, n_tok, temperature=0) for p in PROMPTS]
    done, _ = concurrent.futures.wait([r.future for r in reqs], timeout=120)
    assert len(done) == 8 and [r.text() for r in reqs] == seq


def test_asyncio_gather_of_32(engine: slim.Engine) -> None:
    """32 requests from one event loop: awaited results and async streams
    give the sequential greedy outputs, and the batch beats the sum."""
    prompts = [f"{p} {k}" for k in range(4) for p in PROMPTS]
    n_tok = 12
    seq_t, seq = _run_sequential(engine, prompts, n_tok)

    async def stream(p: str) -> str:
        return "".join([s async for s in engine.astream(p, n_tok, temperature=0)])

    async def main() -> tuple[float, list[str], list[str]]:
        t0 = time.perf_counter()
        got = await asyncio.gather(*(engine.agenerate(p, n_tok, temperature=0) for p in prompts))
        t = time.perf_counter() - t0
        streamed = await asyncio.gather(*(stream(p) for p in prompts))
        return t, list(got), list(streamed)

    conc_t, got, streamed = asyncio.run(main())
    print(f"32 asyncio requests: sequential {seq_t:.2f} s, gathered {conc_t:.2f} s ({seq_t / conc_t:.2f}x)")
    assert got == seq and streamed == seq
    assert conc_t < 0.5 * seq_t


def test_asyncio_cancellation_cancels_the_request(engine: slim.Engine) -> None:
    """Cancelling the task that awaits a request cancels the request."""

    async def wait(r: slim.Request) -> slim.EngineResult:
        return await r

    async def main() -> slim.Request:
        r = engine.submit(PROMPTS[0], 400, temperature=0, stop_at_eos=False)
        t = asyncio.ensure_future(wait(r))
        await asyncio.sleep(0.2)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        return r

    r = asyncio.run(main())
    res = r.result(timeout=60)
    assert res.finish_reason == "cancelled" and len(res.tokens) < 400


def _greedy(m: slim.Model, prompt: list[int], n: int) -> list[int]:
    """Greedy tokens by argmax of Model.logits (this model has no tokenizer)."""
    toks = list(prompt)
    for _ in range(n):
        toks.append(int(np.argmax(m.logits(toks, last_only=True))))
    return toks[len(prompt) :]


def test_lora_by_adapter() -> None:
    """A request names its adapter: the same tokens as a Model with that
    adapter attached; requests with and without adapters share steps."""
    hf = slim.Model(need(HF_LLAMA), n_ctx=128, kv_type="f32")
    a = hf.load_lora(HF_LLAMA / "lora")
    prompt = [1, 5, 9, 13, 17, 21]
    base = _greedy(hf, prompt, 10)
    hf2 = hf.fork()
    hf2.attach_lora(a, 1.0)
    with_a = _greedy(hf2, prompt, 10)
    assert with_a != base  # the adapter matters here
    with slim.Engine(hf, n_threads=2, kv_tokens=1024, kv_type="f32") as e:
        kw = dict(temperature=0, stop_at_eos=False)
        r1 = e.submit(prompt, 10, lora=a, **kw)
        r0 = e.submit(prompt, 10, **kw)
        assert r1.result().tokens == with_a and r0.result().tokens == base
        assert e.loras == {a: (0, 1.0)} and e.attach_lora(a) == 0
        with pytest.raises(slim.InvalidArgumentError, match="attached with scale 1.0"):
            e.attach_lora(a, 0.5)
        assert e.submit(prompt, 10, lora=0, **kw).result().tokens == with_a
        b = hf.load_lora(HF_LLAMA / "lora2")
        assert e.attach_lora(b, 0.5) == 1
        b.close()  # the engine keeps its own reference
        assert len(e.submit(prompt, 4, lora=1, **kw).result().tokens) == 4


def test_openai_helpers_on_engine(engine: slim.Engine, model: slim.Model) -> None:
    kw = dict(max_tokens=6, temperature=0)
    ours, ref = engine.create_completion(PROMPTS[0], **kw), model.create_completion(PROMPTS[0], **kw)
    assert ours["choices"] == ref["choices"] and ours["usage"] == ref["usage"]
    assert ours["object"] == "text_completion" and ours["model"] == model.path
    msgs = [{"role": "user", "content": "Say hi."}]
    ours = engine.create_chat_completion(msgs, max_tokens=40, temperature=0, template="gemma")
    ref = model.create_chat_completion(msgs, max_tokens=40, temperature=0, template="gemma")
    assert ours["choices"] == ref["choices"] and ours["usage"] == ref["usage"]
    chunks = list(engine.create_chat_completion(msgs, max_tokens=40, temperature=0, stream=True, template="gemma"))
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == (
        ref["choices"][0]["message"]["content"]
    )
    lp = engine.create_completion(PROMPTS[0], logprobs=2, **kw)["choices"][0]["logprobs"]
    rl = model.create_completion(PROMPTS[0], logprobs=2, **kw)["choices"][0]["logprobs"]
    assert lp["tokens"] == rl["tokens"] and lp["text_offset"] == rl["text_offset"]
    assert np.allclose(lp["token_logprobs"], rl["token_logprobs"], atol=2e-3)
