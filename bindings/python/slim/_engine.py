"""slim.Engine: the batched engine (slim_engine_*) for many requests at once,
from many threads (futures, blocking iterators) or from asyncio (awaitables,
async iterators).

No Python runs on the engine's thread: every request's callback is C
(slim/_engine_queue.c) that copies the event into a queue; one dispatcher
thread per Engine waits on that queue with the GIL released and hands the
events to the requests, which wake their waiting threads and event loops."""

from __future__ import annotations

import asyncio
import atexit
import codecs
import concurrent.futures
import dataclasses
import itertools
import threading
import time
import weakref
from typing import Any, AsyncIterator, Generator, Iterator, Sequence, Union

from ._constrain import Constraint, JSONSchema, constraint_from
from ._errors import InvalidArgumentError, NoMemoryError, check, error_class
from ._model import LoRA, Message, Model, PathLike, _enum_value, sampler_params
from ._openai import OpenAIMixin
from ._slim_cffi import ffi, lib

__all__ = ["Engine", "Request", "EngineResult", "EngineStats"]

Prompt = Union[str, bytes, Sequence[int]]

# "length", "eos", "stop", "cancelled", "context", "error": the header's enum.
_FINISH = {
    v: k[len("SLIM_FINISH_") :].lower()
    for k, v in ffi.typeof("slim_finish_reason").relements.items()
}
_MAX_TOKENS_NONE = 2**31 - 1  # max_tokens=None: until the context is full


@dataclasses.dataclass
class EngineResult:
    """A finished request (what slim's SLIM_EVENT_DONE reports).

    ``finish_reason``: "length" (max_tokens), "eos" (an end-of-generation
    token), "stop" (a stop string; ``text`` ends before it), "cancelled",
    "context" (n_ctx or the KV pool reached).  ``tokens`` are the generated
    ids (the end-of-generation token left out); ``n_completion`` counts
    sampled tokens as slim_generate does (that token included).  With
    ``logprobs`` N: ``token_logprobs[i]`` and ``top_logprobs[i]`` ({token:
    logprob} of the N most likely) per generated token; with
    ``prompt_logprobs``: ``prompt_logprobs[i]`` of prompt token i given the
    ones before (0 for the first) and ``prompt_top_logprobs[i]``."""

    text: str
    tokens: list[int]
    finish_reason: str
    n_prompt: int
    n_cached: int
    n_completion: int
    queue_ms: float
    ttft_ms: float
    total_ms: float
    token_logprobs: list[float] = dataclasses.field(default_factory=list)
    top_logprobs: list[dict[int, float]] = dataclasses.field(default_factory=list)
    prompt_logprobs: list[float] | None = None
    prompt_top_logprobs: list[dict[int, float]] | None = None


@dataclasses.dataclass(frozen=True)
class EngineStats:
    """slim_engine_stats: the KV pool, the queue and counters."""

    kv_blocks: int
    kv_block_size: int
    kv_free: int
    kv_used: int
    kv_cached: int
    n_waiting: int
    n_running: int
    n_steps: int
    n_preemptions: int
    prefix_hit_tokens: int
    kv_swa_blocks: int  # the sliding-window layers' own pool (0: they share the main one)
    kv_swa_used: int


def _stop_prefix(stops: list[str], text: str) -> int:
    """Length of the longest end of ``text`` that begins a stop string."""
    best = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), best, -1):
            if s.startswith(text[-n:]):
                best = n
                break
    return best


class Request:
    """One request submitted to an Engine.  Thread-safe.

    - ``result(timeout)`` blocks for the :class:`EngineResult` (raising the
      slim error when the request failed); ``text(timeout)`` for its text;
      ``future`` is the same as a concurrent.futures.Future.
    - ``await request`` gives the EngineResult in asyncio.
    - Iterating it (``for piece in request``, or ``async for``) gives the
      text as it is generated: whole UTF-8 characters, held back while they
      could begin a stop string, and together exactly the final text.
      Closing such an iterator early (``break``) cancels the request.
    - ``cancel()`` stops it: it finishes with finish_reason "cancelled" and
      what it generated so far.

    While it runs ``tokens``, ``token_logprobs``, ``top_logprobs`` and
    ``token_times`` (time.perf_counter() when Python received each token)
    grow; afterwards the result's fields are also attributes here."""

    def __init__(self, core: _Core, key: int, stops: list[str], logprobs: int | None) -> None:
        self._core = core
        self.key = key
        self.id = 0  # slim's id, once submitted
        self.stop = stops
        self.logprobs = logprobs
        self.future: concurrent.futures.Future[EngineResult] = concurrent.futures.Future()
        self.future.set_running_or_notify_cancel()  # runs from now: Future.cancel() is a no-op
        self.tokens: list[int] = []
        self.pieces: list[bytes] = []
        self.token_logprobs: list[float] = []
        self.top_logprobs: list[dict[int, float]] = []
        self.token_times: list[float] = []
        self.submit_time = 0.0
        self._cond = threading.Condition(threading.Lock())
        self._out: list[str] = []  # text pieces ready for iterators
        self._out_len = 0  # characters in _out
        self._pending = ""  # decoded, held back (may begin a stop string)
        self._stopped = False  # a stop string was seen: nothing more goes out
        self._dec = codecs.getincrementaldecoder("utf-8")("replace")
        self._done = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        # An unfinished request keeps its Engine alive (Engine(path).submit(...) works).
        self._engine: Engine | None = None

    # ---- fed by the dispatcher thread ---------------------------------------

    def _on_token(self, ev: Any, now: float) -> None:
        piece = ffi.unpack(ev.piece, ev.piece_len)
        self.tokens.append(int(ev.token))
        self.pieces.append(piece)
        self.token_times.append(now)
        if self.logprobs is not None:
            self.token_logprobs.append(float(ev.logprob))
            k = min(int(ev.n_top), self.logprobs)
            self.top_logprobs.append({int(t.token): float(t.logprob) for t in ev.top[0:k]})
        if self._stopped:
            return
        text = self._pending + self._dec.decode(piece)
        if self.stop:
            hits = [i for i in (text.find(s) for s in self.stop) if i >= 0]
            if hits:
                self._stopped = True
                self._emit(text[: min(hits)])
                self._pending = ""
                return
            hold = _stop_prefix(self.stop, text)
        else:
            hold = 0
        self._pending = text[len(text) - hold :] if hold else ""
        self._emit(text[: len(text) - hold])

    def _emit(self, s: str) -> None:
        if s:
            with self._cond:
                self._out.append(s)
                self._out_len += len(s)

    def _on_done(self, node: Any) -> None:
        ev = node.ev
        status = int(ev.status)
        reason = _FINISH.get(int(ev.finish_reason), str(ev.finish_reason))
        text = (
            ffi.unpack(ev.text, ev.text_len).decode("utf-8", "replace") if ev.text != ffi.NULL else ""
        )
        n_prompt = int(ev.n_prompt)
        res = EngineResult(
            text=text,
            tokens=list(ffi.unpack(ev.tokens, ev.n_tokens)) if ev.tokens != ffi.NULL else [],
            finish_reason=reason,
            n_prompt=n_prompt,
            n_cached=int(ev.n_cached),
            n_completion=int(ev.n_completion),
            queue_ms=float(ev.queue_ms),
            ttft_ms=float(ev.ttft_ms),
            total_ms=float(ev.total_ms),
            token_logprobs=self.token_logprobs,
            top_logprobs=self.top_logprobs,
        )
        if ev.prompt_logprobs != ffi.NULL:
            k = int(ev.n_prompt_top)
            res.prompt_logprobs = [float(ev.prompt_logprobs[i].logprob) for i in range(n_prompt)]
            if ev.prompt_top != ffi.NULL:
                res.prompt_top_logprobs = [
                    {int(t.token): float(t.logprob) for t in ev.prompt_top[i * k : (i + 1) * k]}
                    for i in range(n_prompt)
                ]
        self.result_ = res
        if status == lib.SLIM_OK and node.lost:
            status = lib.SLIM_ERR_NOMEM
        if status != lib.SLIM_OK:
            msg = ffi.string(ev.error).decode("utf-8", "replace") if ev.error != ffi.NULL else ""
            if node.lost:
                msg = f"{node.lost} token events lost: out of memory in the engine callback"
            exc = error_class(status)(msg or "the engine could not copy the result", status)
            if isinstance(exc, NoMemoryError) and not msg:
                exc = NoMemoryError("out of memory copying the result", status)
            self._finish(exc)
            return
        # What the iterators have not had yet (held back, or an incomplete
        # character): the final text is the truth, the pieces its prefix.
        sent = "".join(self._out)
        if text.startswith(sent):
            self._emit(text[len(sent) :])
        self._finish(None)

    def _finish(self, exc: BaseException | None) -> None:
        with self._cond:
            self._done = True
            self._cond.notify_all()
        self._engine = None  # the Engine may go now
        if exc is None:
            self.future.set_result(self.result_)
        else:
            self.future.set_exception(exc)

    def _wake(self) -> None:
        """After a batch of events: wake blocked iterators and event loops."""
        with self._cond:
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, fut)
            except RuntimeError:  # the loop is closed
                pass

    # ---- the caller's side -------------------------------------------------

    def done(self) -> bool:
        """True once the request has finished (result or error)."""
        return self.future.done()

    def result(self, timeout: float | None = None) -> EngineResult:
        """Wait for the result (concurrent.futures.TimeoutError after
        ``timeout`` seconds); raises the request's SlimError if it failed."""
        return self.future.result(timeout)

    def text(self, timeout: float | None = None) -> str:
        """Wait and return the generated text."""
        return self.result(timeout).text

    def cancel(self) -> bool:
        """Ask slim to stop this request.  It finishes with finish_reason
        "cancelled" (unless it finished first).  False if it had finished."""
        if self.future.done():
            return False
        core = self._core
        if core.engine != ffi.NULL and self.id:
            lib.slim_engine_cancel(core.engine, self.id)  # unknown id: it just finished
        return not self.future.done()

    def __await__(self) -> Generator[Any, None, EngineResult]:
        fut = asyncio.wrap_future(self.future)
        try:
            return (yield from fut.__await__())
        except asyncio.CancelledError:
            self.cancel()
            raise

    def __iter__(self) -> Iterator[str]:
        i = 0
        try:
            while True:
                with self._cond:
                    while i >= len(self._out) and not self._done:
                        self._cond.wait()
                    new, done = self._out[i:], self._done
                i += len(new)
                yield from new
                if done and i >= len(self._out):
                    break
        except GeneratorExit:  # the caller stopped reading: stop generating (as Model's streams)
            self.cancel()
            raise
        self.result()  # raises the request's error, if any

    async def __aiter__(self) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        i = 0
        try:
            while True:
                with self._cond:
                    new, done = self._out[i:], self._done
                    if not new and not done:
                        fut: asyncio.Future[None] = loop.create_future()
                        self._waiters.append((loop, fut))
                if new:
                    i += len(new)
                    for s in new:
                        yield s
                elif done:
                    break
                else:
                    await fut
        except (asyncio.CancelledError, GeneratorExit):  # cancelled, or the caller stopped reading
            self.cancel()
            raise
        self.result()

    # OpenAI helpers read these as from a Model's Completion.
    @property
    def finish_reason(self) -> str | None:
        """The result's finish_reason (None while running)."""
        return self.future.result().finish_reason if self.future.done() else None

    @property
    def n_prompt(self) -> int:
        """Prompt tokens (known once finished)."""
        return self.result().n_prompt

    @property
    def n_generated(self) -> int:
        """Sampled tokens, an end-of-generation token counted."""
        return self.result().n_completion

    def __repr__(self) -> str:
        state = self.finish_reason or "running"
        return f"<slim.Request {self.id}: {state}, {len(self.tokens)} tokens>"


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class _Core:
    """The C engine, its queue and the dispatcher thread: what the dispatcher
    needs, apart from the Engine object (so that an unused Engine is freed)."""

    def __init__(self, weights: Any, params: Any) -> None:
        self.weights = weights  # the model outlives the engine
        self.engine = ffi.NULL
        self.queue = lib.slimpy_queue_new()
        if self.queue == ffi.NULL:
            raise NoMemoryError("out of memory creating the engine's event queue")
        out = ffi.new("slim_engine **")
        st = lib.slim_engine_create(weights.ptr, params, out)
        if st != lib.SLIM_OK:
            lib.slimpy_queue_free(self.queue)
            self.queue = ffi.NULL
            check(st)
        self.engine = out[0]
        self.requests: dict[int, Request] = {}
        self.lock = threading.Lock()
        self.keys = itertools.count(1)
        self.closing = False
        self.thread = threading.Thread(target=self._dispatch, name="slim-engine-dispatch", daemon=True)
        self.thread.start()
        _live_cores.add(self)

    def _dispatch(self) -> None:
        wait, free = lib.slimpy_queue_wait, lib.slimpy_list_free
        DONE, TOKEN = lib.SLIM_EVENT_DONE, lib.SLIM_EVENT_TOKEN
        clock = time.perf_counter
        while True:
            head = wait(self.queue, 0 if self.closing else -1)  # the GIL is released
            if head == ffi.NULL:
                if self.closing:
                    return
                continue
            now = clock()
            touched: dict[int, Request] = {}
            n = head
            while n != ffi.NULL:
                key, ev = int(n.key), n.ev
                req = self.requests.get(key)
                if req is not None:
                    try:
                        if ev.type == TOKEN:
                            req._on_token(ev, now)
                        elif ev.type == DONE:
                            with self.lock:
                                del self.requests[key]
                            req._on_done(n)
                    except BaseException as e:  # never let one request stop the rest
                        if not req.future.done():
                            req._finish(e)
                    touched[key] = req
                n = n.next
            free(head)
            for req in touched.values():
                req._wake()

    def close(self) -> None:
        if self.engine != ffi.NULL:
            # Every unfinished request gets its final event (cancelled) here.
            lib.slim_engine_free(self.engine)
            self.engine = ffi.NULL
        if self.queue != ffi.NULL:
            self.closing = True
            lib.slimpy_queue_wake(self.queue)
            if threading.current_thread() is not self.thread:
                self.thread.join()
                lib.slimpy_queue_free(self.queue)
                self.queue = ffi.NULL


# Engines still open at interpreter exit are closed while the module is whole.
_live_cores: weakref.WeakSet[_Core] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for core in list(_live_cores):
        core.close()


class Engine(OpenAIMixin):
    """The batched engine over a loaded model: requests submitted from any
    thread or event loop run together (continuous batching, a paged KV cache
    with a prefix cache); a greedy request gives the same tokens as it does
    alone on a Model.

    ``model`` is a :class:`Model` (its weights are shared; its own context is
    not used) or a path to load.  Engine parameters (slim_engine_params):
    ``n_threads`` (0: all CPUs), ``block_size`` (tokens per KV block, 16),
    ``kv_tokens`` (KV pool size in tokens, 8192) or ``kv_bytes``,
    ``step_tokens`` (a step's token budget, 512), ``max_seqs`` (64),
    ``max_queue`` (4096), ``n_ctx`` (a request's tokens at most:
    min(training context, 4096)), ``kv_type`` ("f16"/"f32"),
    ``prefix_cache``.  0 takes slim's default.

    ``submit()`` returns a :class:`Request` (a future, an iterator and an
    awaitable); ``generate()`` blocks, ``agenerate()`` / ``astream()`` are
    for asyncio.  ``create_completion`` / ``create_chat_completion`` are
    llama-cpp-python's helpers, as on Model.  ``close()`` (or ``with``)
    cancels what is unfinished and frees the engine."""

    def __init__(
        self,
        model: Model | PathLike,
        *,
        n_threads: int = 0,
        block_size: int = 0,
        kv_tokens: int = 0,
        kv_bytes: int = 0,
        step_tokens: int = 0,
        max_seqs: int = 0,
        max_queue: int = 0,
        n_ctx: int = 0,
        kv_type: str = "f16",
        prefix_cache: bool = True,
        **model_params: Any,
    ) -> None:
        self._core: _Core | None = None
        if not isinstance(model, Model):
            model = Model(model, n_ctx=32, n_threads=1, **model_params)
        elif model_params:
            raise TypeError(f"unexpected arguments {sorted(model_params)} with a loaded Model")
        self.model = model
        ep = ffi.new("slim_engine_params *", lib.slim_engine_default_params())
        ep.n_threads, ep.block_size, ep.kv_tokens = n_threads, block_size, kv_tokens
        ep.kv_bytes, ep.step_tokens, ep.max_seqs = kv_bytes, step_tokens, max_seqs
        ep.max_queue, ep.n_ctx = max_queue, n_ctx
        ep.kv_type = _enum_value("slim_kv_type", "SLIM_KV_", kv_type, "kv_type")
        ep.prefix_cache = 1 if prefix_cache else 0
        self._core = _Core(model._weights(), ep)
        self._loras: dict[LoRA, tuple[int, float]] = {}
        self._lora_lock = threading.Lock()

    # ---- lifetime -----------------------------------------------------------

    def _live(self) -> _Core:
        core = self._core
        if core is None or core.engine == ffi.NULL:
            raise ValueError("the Engine is closed")
        return core

    def close(self) -> None:
        """Cancel every unfinished request (each finishes "cancelled"), stop
        the engine's threads and free it.  Further calls raise ValueError."""
        if self._core is not None:
            self._core.close()

    def __del__(self) -> None:
        if getattr(self, "_core", None) is not None:
            self._core.close()  # type: ignore[union-attr]

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"slim.Engine({self.model.path!r})"

    # ---- what Model offers (for the OpenAI helpers and callers) -------------

    @property
    def path(self) -> str:
        """The model's path."""
        return self.model.path

    def tokenize(self, text: str | bytes, add_special: bool = True, parse_special: bool = False) -> list[int]:
        """Model.tokenize."""
        return self.model.tokenize(text, add_special, parse_special)

    def detokenize(self, tokens: Sequence[int], render_special: bool = False) -> str:
        """Model.detokenize."""
        return self.model.detokenize(tokens, render_special)

    def token_to_piece(self, token: int, render_special: bool = False) -> bytes:
        """Model.token_to_piece."""
        return self.model.token_to_piece(token, render_special)

    def apply_chat_template(
        self, messages: Sequence[Message], template: str | None = None, add_generation_prompt: bool = True
    ) -> str:
        """Model.apply_chat_template."""
        return self.model.apply_chat_template(messages, template, add_generation_prompt)

    def _model(self) -> Any:  # OpenAIMixin: the object with completion() and the tokenizer
        return self

    # ---- adapters and statistics --------------------------------------------

    def attach_lora(self, lora: LoRA, scale: float = 1.0) -> int:
        """Attach ``lora`` with ``scale`` (once per engine; it stays until the
        engine is freed) and return its index.  submit(lora=adapter) attaches
        an adapter it has not seen with scale 1."""
        core = self._live()
        with self._lora_lock:
            if lora in self._loras:
                idx, sc = self._loras[lora]
                if sc != float(scale):
                    raise InvalidArgumentError(
                        f"{lora!r} is attached with scale {sc}; an engine attaches an adapter once"
                    )
                return idx
            out = ffi.new("int32_t *")
            check(lib.slim_engine_attach_lora(core.engine, lora._handle(), float(scale), out))
            self._loras[lora] = (int(out[0]), float(scale))
            return int(out[0])

    @property
    def loras(self) -> dict[LoRA, tuple[int, float]]:
        """Attached adapters: (index, scale) each."""
        return dict(self._loras)

    def stats(self) -> EngineStats:
        """slim_engine_get_stats: KV blocks, queue lengths, steps, preemptions."""
        core = self._live()
        s = ffi.new("slim_engine_stats *")
        s.struct_size = ffi.sizeof("slim_engine_stats")
        check(lib.slim_engine_get_stats(core.engine, s))
        return EngineStats(**{f: int(getattr(s, f)) for f, _ in ffi.typeof("slim_engine_stats").fields if f != "struct_size"})

    # ---- requests ------------------------------------------------------------

    def submit(
        self,
        prompt: Prompt,
        max_tokens: int | None = 128,
        *,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        min_p: float | None = None,
        repeat_penalty: float | None = None,
        repeat_last_n: int | None = None,
        presence_penalty: float | None = None,
        frequency_penalty: float | None = None,
        seed: int | None = None,
        stop: str | Sequence[str] | None = None,
        stop_at_eos: bool = True,
        add_special: bool = True,
        parse_special: bool = False,
        logprobs: int | None = None,
        prompt_logprobs: bool = False,
        lora: LoRA | int | None = None,
        constraint: Constraint | None = None,
        json_schema: JSONSchema | None = None,
        grammar: str | None = None,
        regex: str | None = None,
        choices: Sequence[str] | None = None,
        json_object: bool = False,
    ) -> Request:
        """Queue a request and return its :class:`Request` at once.

        ``prompt`` is text (tokenized with BOS where the vocabulary asks for it
        when ``add_special``; control-token text parsed with
        ``parse_special``) or token ids.  Sampling as Model.generate: arguments
        left None take slim's defaults (temperature 0.8, top_k 40, top_p 0.95,
        min_p 0.05, seed 0), temperature 0 is greedy.  It ends after
        ``max_tokens`` (None: at n_ctx), at an end-of-generation token
        (``stop_at_eos``) or before a ``stop`` string.  ``logprobs`` N (0..20)
        records each token's log-probability and the N most likely;
        ``prompt_logprobs`` those of the prompt's tokens too.  ``lora``: an
        adapter (attached on first use with scale 1) or an attach_lora index.
        Constrained generation as Model.generate (``json_schema``, ``grammar``,
        ``regex``, ``choices``, ``json_object``, or a compiled ``constraint``;
        forced tokens are appended as a prompt chunk and reported as tokens)."""
        core = self._live()
        sp = sampler_params(
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            min_p=min_p,
            repeat_penalty=repeat_penalty,
            repeat_last_n=repeat_last_n,
            presence_penalty=presence_penalty,
            frequency_penalty=frequency_penalty,
            seed=seed,
        )
        rp = ffi.new("slim_request_params *", lib.slim_request_default_params())
        rp.sampling = sp
        keep: list[Any] = [sp]
        if isinstance(prompt, (str, bytes)):
            b = prompt.encode("utf-8") if isinstance(prompt, str) else bytes(prompt)
            if b"\0" in b:
                raise InvalidArgumentError("the prompt contains a NUL character")
            keep.append(ffi.new("char[]", b))
            rp.prompt = keep[-1]
            rp.tokenize_flags = (lib.SLIM_TOKENIZE_ADD_BOS if add_special else 0) | (
                lib.SLIM_TOKENIZE_PARSE_SPECIAL if parse_special else 0
            )
        else:
            ids = [int(t) for t in prompt]
            if not ids:
                raise InvalidArgumentError("the prompt has no tokens")
            keep.append(ffi.new("slim_token[]", ids))
            rp.tokens, rp.n_tokens = keep[-1], len(ids)
        if max_tokens is None:
            max_tokens = _MAX_TOKENS_NONE
        rp.max_tokens = max_tokens
        rp.stop_at_eos = 1 if stop_at_eos else 0
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        if stops:
            cs = [ffi.new("char[]", s.encode("utf-8")) for s in stops]
            arr = ffi.new("char *[]", cs)
            keep += [cs, arr]
            rp.stop, rp.n_stop = arr, len(stops)
        # slim reports a token's logprob only with N >= 1: 0 asks for 1, unshown.
        rp.logprobs = max(int(logprobs), 1) if logprobs is not None else 0
        rp.prompt_logprobs = 1 if prompt_logprobs else 0
        if lora is not None:
            rp.lora = lora if isinstance(lora, int) else self.attach_lora(lora)
        c = constraint_from(self.model, constraint, json_schema, grammar, regex, choices, json_object)
        if c is not None:
            keep.append(c)  # the request takes its own reference at submit
            rp.constraint = c._handle()
        key = next(core.keys)
        node = lib.slimpy_request_new(core.queue, key)
        if node == ffi.NULL:
            raise NoMemoryError("out of memory submitting a request")
        rp.on_event = ffi.addressof(lib, "slimpy_on_event")
        rp.user = node
        req = Request(core, key, [s for s in stops if s], logprobs)
        req._engine = self
        with core.lock:
            core.requests[key] = req
        idp = ffi.new("uint64_t *")
        req.submit_time = time.perf_counter()
        st = lib.slim_engine_submit(core.engine, rp, idp)
        if st != lib.SLIM_OK:
            with core.lock:
                core.requests.pop(key, None)
            lib.slimpy_node_free(node)
            check(st)
        req.id = int(idp[0])
        return req

    def generate(
        self, prompt: Prompt, max_tokens: int | None = 128, *, stream: bool = False, **kwargs: Any
    ) -> str | Iterator[str]:
        """submit() and wait: the text, or with ``stream=True`` an iterator of
        text pieces.  Safe from any number of threads at once."""
        req = self.submit(prompt, max_tokens, **kwargs)
        return iter(req) if stream else req.text()

    async def agenerate(self, prompt: Prompt, max_tokens: int | None = 128, **kwargs: Any) -> str:
        """submit() and await the text (asyncio)."""
        return (await self.submit(prompt, max_tokens, **kwargs)).text

    def astream(self, prompt: Prompt, max_tokens: int | None = 128, **kwargs: Any) -> AsyncIterator[str]:
        """submit() and return an async iterator of the text pieces."""
        return self.submit(prompt, max_tokens, **kwargs).__aiter__()

    def chat(
        self,
        messages: Sequence[Message],
        max_tokens: int | None = 1024,
        *,
        template: str | None = None,
        stream: bool = False,
        **kwargs: Any,
    ) -> str | Iterator[str]:
        """The reply to ``messages`` through the chat template, as Model.chat."""
        req = self.submit_chat(messages, max_tokens, template=template, **kwargs)
        return iter(req) if stream else req.text()

    def submit_chat(
        self, messages: Sequence[Message], max_tokens: int | None = 1024, *, template: str | None = None, **kwargs: Any
    ) -> Request:
        """submit() of the rendered conversation (BOS and special tokens parsed)."""
        text = self.apply_chat_template(messages, template, True)
        return self.submit(text, max_tokens, add_special=True, parse_special=True, **kwargs)

    def completion(self, prompt: Prompt, max_tokens: int | None = 128, **kwargs: Any) -> Request:
        """submit(): the OpenAI helpers' run (the Model's is a Completion)."""
        return self.submit(prompt, max_tokens, **kwargs)
