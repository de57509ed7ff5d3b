"""slim.Model: a loaded model with its own context (KV cache), over the C API."""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import os
import threading
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
    Union,
)

import numpy as np

from ._constrain import Constraint, JSONSchema, ScoreResult, constraint_from, score
from ._errors import InvalidArgumentError, check
from ._openai import OpenAIMixin
from ._slim_cffi import ffi, lib

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["Model", "LoRA", "ModelInfo", "TensorInfo", "Completion", "Message", "PathLike"]

PathLike = Union[str, "os.PathLike[str]"]
Message = Mapping[str, str]
"""A chat message: {"role": "system" | "user" | "assistant", "content": text}."""


def _s(p: Any) -> str:
    """A C string (borrowed) as str; '' for NULL."""
    return ffi.string(p).decode("utf-8", "replace") if p != ffi.NULL else ""


def _enum_value(ctype: str, prefix: str, name: str, what: str) -> int:
    """'cpu' -> SLIM_BACKEND_CPU, from the header's enum (no copied table)."""
    values = ffi.typeof(ctype).relements
    key = prefix + str(name).upper()
    if key not in values:
        names = ", ".join(sorted(k[len(prefix) :].lower() for k in values))
        raise InvalidArgumentError(f"{what} must be one of {names}, not {name!r}")
    return int(values[key])


def sampler_params(**given: Any) -> Any:
    """A new slim_sampler_params: slim's defaults, with the arguments that are
    not None set (temperature, top_k, ..., seed: the struct's field names)."""
    sp = ffi.new("slim_sampler_params *", lib.slim_sampler_default_params())
    for k, v in given.items():
        if v is not None:
            setattr(sp, k, v)
    return sp


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """slim_model_info: what slim_model_get_info reports (one field per struct field)."""

    architecture: str
    name: str
    file_type: str
    n_params: int
    file_size: int
    n_vocab: int
    n_ctx_train: int
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    head_dim: int
    bos: int
    eos: int


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """slim_tensor_info: one tensor of the model file."""

    name: str
    type: str
    n_dims: int
    ne: tuple[int, ...]
    offset: int
    size: int


def _struct_to_dict(c: Any, ctype: str) -> dict[str, Any]:
    """Every field but struct_size, C strings as str and arrays as tuples."""
    out: dict[str, Any] = {}
    for name, field in ffi.typeof(ctype).fields:
        if name == "struct_size":
            continue
        v = getattr(c, name)
        if field.type.kind == "pointer":
            v = _s(v)
        elif field.type.kind == "array":
            v = tuple(v)
        out[name] = v
    return out


class _Weights:
    """Owns one slim_model; shared by the Model objects fork() makes."""

    def __init__(self, ptr: Any, path: str) -> None:
        self.ptr = ptr
        self.path = path

    # The library functions are bound as defaults: at interpreter exit the
    # module's globals may be gone before the last objects.
    def __del__(self, _free: Any = lib.slim_model_free, _null: Any = ffi.NULL) -> None:
        if getattr(self, "ptr", _null) != _null:
            _free(self.ptr)
            self.ptr = _null


class LoRA:
    """A LoRA adapter loaded for one model (Model.load_lora).  Attach it to a
    Model (a context) with Model.attach_lora; the adapter itself is shared."""

    def __init__(self, weights: _Weights, path: PathLike) -> None:
        out = ffi.new("slim_lora **")
        self.path = os.fspath(path)
        self._weights = weights  # the model must outlive the adapter
        check(lib.slim_lora_load(weights.ptr, os.fsencode(path), out))
        self._ptr = out[0]

    def _handle(self) -> Any:
        if self._ptr == ffi.NULL:
            raise ValueError("the LoRA is closed")
        return self._ptr

    def close(self) -> None:
        """Release this handle; Models it is attached to keep using it (it
        can no longer be attached or detached)."""
        if self._ptr != ffi.NULL:
            lib.slim_lora_free(self._ptr)
            self._ptr = ffi.NULL

    def __del__(self, _free: Any = lib.slim_lora_free, _null: Any = ffi.NULL) -> None:
        if getattr(self, "_ptr", _null) != _null:
            _free(self._ptr)
            self._ptr = _null

    def __repr__(self) -> str:
        return f"slim.LoRA({self.path!r})"


class _ProgressBox:
    def __init__(self, fn: Callable[[float], Any]) -> None:
        self.fn = fn
        self.error: BaseException | None = None


@ffi.def_extern()
def _slim_py_progress(fraction: float, user: Any) -> None:
    box = ffi.from_handle(user)
    if box.error is None:
        try:
            box.fn(fraction)
        except BaseException as e:  # re-raised by save_gguf after the call
            box.error = e


class Model(OpenAIMixin):
    """A model loaded with slim and one context (KV cache) to run it.

    ``path`` is a GGUF file or a Hugging Face model directory.  ``weight_type``
    converts the weight matrices at load ("f16", "q8_0", "q4_k", ...; None keeps
    them), ``backend`` is "cpu" or "cuda", ``use_mmap`` maps the file instead of
    reading it.  ``n_ctx`` (0: min(training context, 4096)), ``n_threads`` (0: all
    CPUs), ``n_batch`` (0: 512) and ``kv_type`` ("f16" or "f32") configure the
    context.  A Model is safe to share between threads (calls on it take turns);
    for parallel work give each thread its own Model, or a fork() of one, which
    shares the weights.  Every slim call releases the GIL."""

    def __init__(
        self,
        path: PathLike,
        weight_type: str | None = None,
        backend: str = "cpu",
        use_mmap: bool = True,
        *,
        n_ctx: int = 0,
        n_threads: int = 0,
        n_batch: int = 0,
        kv_type: str = "f16",
    ) -> None:
        self._ctx = ffi.NULL
        mp = ffi.new("slim_model_params *", lib.slim_model_default_params())
        mp.use_mmap = 1 if use_mmap else 0
        mp.backend = _enum_value("slim_backend", "SLIM_BACKEND_", backend, "backend")
        wt = ffi.new("char[]", weight_type.encode()) if weight_type else ffi.NULL
        mp.weight_type = wt
        out = ffi.new("slim_model **")
        check(lib.slim_model_load(os.fsencode(path), mp, out))
        weights = _Weights(out[0], os.fspath(path))
        self._init_context(weights, n_ctx, n_threads, n_batch, kv_type)

    def _init_context(
        self, weights: _Weights, n_ctx: int, n_threads: int, n_batch: int, kv_type: str
    ) -> None:
        self._w = weights
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._loras: dict[LoRA, float] = {}
        self._ctx_args = (n_ctx, n_threads, n_batch, kv_type)
        cp = ffi.new("slim_context_params *", lib.slim_context_default_params())
        cp.n_ctx, cp.n_threads, cp.n_batch = n_ctx, n_threads, n_batch
        cp.kv_type = _enum_value("slim_kv_type", "SLIM_KV_", kv_type, "kv_type")
        out = ffi.new("slim_context **")
        check(lib.slim_context_create(weights.ptr, cp, out))
        self._ctx = out[0]
        self._n_ctx = int(lib.slim_context_n_ctx(self._ctx))
        info = ffi.new("slim_model_info *")
        info.struct_size = ffi.sizeof("slim_model_info")
        check(lib.slim_model_get_info(weights.ptr, info))
        self._info = ModelInfo(**_struct_to_dict(info, "slim_model_info"))

    def fork(self, **context: Any) -> Model:
        """A new Model sharing these weights (no second load) with its own
        context; keyword arguments n_ctx, n_threads, n_batch, kv_type override
        this one's.  Adapters are not carried over."""
        names = ("n_ctx", "n_threads", "n_batch", "kv_type")
        unknown = set(context) - set(names)
        if unknown:
            raise TypeError(f"fork() got unexpected arguments {sorted(unknown)}")
        args = dict(zip(names, self._ctx_args), **context)
        m = Model.__new__(Model)
        m._ctx = ffi.NULL
        m._init_context(self._weights(), **args)
        return m

    # ---- lifetime -----------------------------------------------------------

    def close(self) -> None:
        """Free the context now (the weights go with the last Model and LoRA
        using them).  Further calls raise ValueError."""
        if getattr(self, "_ctx", ffi.NULL) != ffi.NULL:
            with self._busy():
                lib.slim_context_free(self._ctx)
                self._ctx = ffi.NULL
                self._loras.clear()

    def __del__(self, _free: Any = lib.slim_context_free, _null: Any = ffi.NULL) -> None:
        if getattr(self, "_ctx", _null) != _null:
            _free(self._ctx)
            self._ctx = _null

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        i = self._info
        return f"slim.Model({self.path!r}: {i.architecture} {i.file_type}, {i.n_params} parameters)"

    def _weights(self) -> _Weights:
        if self._ctx == ffi.NULL:
            raise ValueError("the Model is closed")
        return self._w

    @contextlib.contextmanager
    def _busy(self) -> Iterator[Any]:
        """Exclusive use of the context; yields it."""
        if self._owner == threading.get_ident():
            raise RuntimeError(
                "this Model is in use by an unfinished stream on this thread: "
                "exhaust or close() that iterator first, or use Model.fork()"
            )
        with self._lock:
            self._owner = threading.get_ident()
            try:
                if self._ctx == ffi.NULL:
                    raise ValueError("the Model is closed")
                yield self._ctx
            finally:
                self._owner = None

    # ---- information --------------------------------------------------------

    @property
    def path(self) -> str:
        """The path the model was loaded from."""
        return self._w.path

    @property
    def info(self) -> ModelInfo:
        """Architecture, sizes and special tokens (slim_model_get_info)."""
        return self._info

    @property
    def n_vocab(self) -> int:
        """Vocabulary size: the length of a row of logits."""
        return self._info.n_vocab

    @property
    def n_ctx(self) -> int:
        """This context's KV cache length in tokens."""
        return self._n_ctx

    @property
    def n_past(self) -> int:
        """Tokens in the KV cache now (after the last call that ran the model)."""
        self._weights()  # not closed
        return int(lib.slim_context_n_past(self._ctx))

    @property
    def metadata(self) -> dict[str, str]:
        """The file's metadata, values rendered as text (empty for a directory)."""
        w = self._weights()
        out: dict[str, str] = {}
        for i in range(int(lib.slim_model_meta_count(w.ptr))):
            cap = 1024
            while True:
                key, val = ffi.new("char[]", cap), ffi.new("char[]", cap)
                st = lib.slim_model_meta_get(w.ptr, i, key, cap, val, cap)
                if st != lib.SLIM_ERR_BUFFER_TOO_SMALL or cap >= 1 << 20:
                    break
                cap *= 8
            check(st)
            out[_s(key)] = _s(val)
        return out

    @property
    def tensors(self) -> list[TensorInfo]:
        """Every tensor of the file (name, type, shape, offset, size)."""
        w = self._weights()
        out = []
        ti = ffi.new("slim_tensor_info *")
        for i in range(int(lib.slim_model_tensor_count(w.ptr))):
            ti.struct_size = ffi.sizeof("slim_tensor_info")
            check(lib.slim_model_tensor_get(w.ptr, i, ti))
            d = _struct_to_dict(ti, "slim_tensor_info")
            d["ne"] = d["ne"][: d["n_dims"]]
            out.append(TensorInfo(**d))
        return out

    # ---- tokenizer ----------------------------------------------------------

    def tokenize(
        self, text: str | bytes, add_special: bool = True, parse_special: bool = False
    ) -> list[int]:
        """Token ids of ``text``.  ``add_special`` adds BOS (and EOS) where the
        vocabulary asks for them; ``parse_special`` turns text like "<eos>"
        into that control token."""
        w = self._weights()
        b = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        flags = (lib.SLIM_TOKENIZE_ADD_BOS if add_special else 0) | (
            lib.SLIM_TOKENIZE_PARSE_SPECIAL if parse_special else 0
        )
        n = ffi.new("size_t *")
        cap = len(b) + 4
        buf = ffi.new("slim_token[]", cap)
        st = lib.slim_tokenize(w.ptr, b, len(b), flags, buf, cap, n)
        if st == lib.SLIM_ERR_BUFFER_TOO_SMALL:
            cap = n[0]
            buf = ffi.new("slim_token[]", cap)
            st = lib.slim_tokenize(w.ptr, b, len(b), flags, buf, cap, n)
        check(st)
        return list(ffi.unpack(buf, n[0]))

    def _text_call(self, fn: Callable[..., int], *args: Any) -> bytes:
        n = ffi.new("size_t *")
        cap = 256
        while True:
            buf = ffi.new("char[]", cap)
            st = fn(*args, buf, cap, n)
            if st != lib.SLIM_ERR_BUFFER_TOO_SMALL:
                check(st)
                return ffi.unpack(buf, n[0])
            cap = n[0]

    def detokenize_bytes(self, tokens: Iterable[int], render_special: bool = False) -> bytes:
        """The exact bytes of ``tokens`` (which may end inside a UTF-8 character)."""
        w = self._weights()
        ids = ffi.new("slim_token[]", list(tokens))
        flags = lib.SLIM_DETOKENIZE_RENDER_SPECIAL if render_special else 0
        return self._text_call(lib.slim_detokenize, w.ptr, ids, len(ids), flags)

    def detokenize(self, tokens: Iterable[int], render_special: bool = False) -> str:
        """Text of ``tokens``; control tokens show only with ``render_special``.
        Invalid UTF-8 becomes U+FFFD."""
        return self.detokenize_bytes(tokens, render_special).decode("utf-8", "replace")

    def token_to_piece(self, token: int, render_special: bool = False) -> bytes:
        """The bytes one token adds to generated text (may be part of a character)."""
        w = self._weights()
        flags = lib.SLIM_DETOKENIZE_RENDER_SPECIAL if render_special else 0
        return self._text_call(lib.slim_token_to_piece, w.ptr, token, flags)

    def token_text(self, token: int) -> str | None:
        """The vocabulary's raw string for a token ("▁the"), None if out of range."""
        p = lib.slim_token_text(self._weights().ptr, token)
        return None if p == ffi.NULL else _s(p)

    def is_eog(self, token: int) -> bool:
        """True for the tokens that end a generation (EOS, end-of-turn tokens)."""
        return bool(lib.slim_token_is_eog(self._weights().ptr, token))

    # ---- forward pass -------------------------------------------------------

    def logits(
        self,
        tokens: Sequence[int] | npt.ArrayLike,
        last_only: bool = False,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Run ``tokens`` from an empty KV cache and return float32 logits: an
        (n_tokens, n_vocab) array whose row i follows token i, or with
        ``last_only`` the (n_vocab,) row after the last token.  slim writes the
        rows straight into the array (``out``, if given: C-contiguous float32
        of that shape); only ``last_only`` copies one row out of the context."""
        toks = np.ascontiguousarray(tokens, dtype=np.int32)
        if toks.ndim != 1 or toks.size == 0:
            raise InvalidArgumentError("tokens must be a non-empty 1-D sequence of token ids")
        V = self.n_vocab
        shape = (V,) if last_only else (toks.size, V)
        if out is None:
            out = np.empty(shape, dtype=np.float32)
        elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
            raise InvalidArgumentError(f"out must be a C-contiguous float32 array of shape {shape}")
        tp = ffi.from_buffer("slim_token[]", toks)
        with self._busy() as ctx:
            lib.slim_context_reset(ctx)
            if last_only:
                check(lib.slim_prefill(ctx, tp, toks.size, ffi.NULL))
                src = np.frombuffer(ffi.buffer(lib.slim_get_logits(ctx), 4 * V), np.float32)
                out[...] = src
            else:
                dst = ffi.from_buffer("float[]", out, require_writable=True)
                check(lib.slim_prefill(ctx, tp, toks.size, dst))
        return out

    def reset(self) -> None:
        """Empty the KV cache."""
        with self._busy() as ctx:
            lib.slim_context_reset(ctx)

    # ---- generation ---------------------------------------------------------

    def _prompt_tokens(
        self, prompt: str | bytes | Sequence[int], add_special: bool, parse_special: bool
    ) -> list[int]:
        if isinstance(prompt, (str, bytes)):
            return self.tokenize(prompt, add_special, parse_special)
        return [int(t) for t in prompt]

    def completion(
        self,
        prompt: str | bytes | Sequence[int],
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
        constraint: Constraint | None = None,
        json_schema: JSONSchema | None = None,
        grammar: str | None = None,
        regex: str | None = None,
        choices: Sequence[str] | None = None,
        json_object: bool = False,
    ) -> Completion:
        """A generation run, not started yet: iterate it for text pieces, or
        call .text().  Its attributes (finish_reason, tokens, n_prompt, ...)
        are filled as it runs.  Arguments as for generate(); ``logprobs`` N
        records each token's log-probability and the N most likely tokens'."""
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
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        toks = self._prompt_tokens(prompt, add_special, parse_special)
        c = constraint_from(self, constraint, json_schema, grammar, regex, choices, json_object)
        return Completion(self, toks, max_tokens, sp, stops, stop_at_eos, logprobs, c)

    def generate(
        self,
        prompt: str | bytes | Sequence[int],
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
        stream: bool = False,
        stop_at_eos: bool = True,
        add_special: bool = True,
        parse_special: bool = False,
        constraint: Constraint | None = None,
        json_schema: JSONSchema | None = None,
        grammar: str | None = None,
        regex: str | None = None,
        choices: Sequence[str] | None = None,
        json_object: bool = False,
    ) -> str | Iterator[str]:
        """Continue ``prompt`` (text, or token ids) from an empty KV cache.

        Sampling arguments left None take slim's defaults (temperature 0.8,
        top_k 40, top_p 0.95, min_p 0.05, no penalties, seed 0: a fixed seed
        gives the same text); temperature 0 is greedy.  Generation ends after
        ``max_tokens`` tokens (None: when the context is full), at an
        end-of-generation token (``stop_at_eos``), or before the first
        occurrence of any ``stop`` string, which is not part of the result.
        Returns the text, or with ``stream=True`` an iterator of text pieces
        (complete UTF-8 characters).  This is what slim_generate computes,
        driven token by token so that it can stream and stop on strings.

        Constrained generation (one at a time): ``json_schema`` (a dict or
        JSON text), ``json_object=True`` (any JSON object), ``grammar`` (GBNF),
        ``regex``, ``choices`` (one of the strings), or a compiled
        ``constraint``: only tokens that keep the output valid are sampled."""
        c = self.completion(
            prompt,
            max_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            min_p=min_p,
            repeat_penalty=repeat_penalty,
            repeat_last_n=repeat_last_n,
            presence_penalty=presence_penalty,
            frequency_penalty=frequency_penalty,
            seed=seed,
            stop=stop,
            stop_at_eos=stop_at_eos,
            add_special=add_special,
            parse_special=parse_special,
            constraint=constraint,
            json_schema=json_schema,
            grammar=grammar,
            regex=regex,
            choices=choices,
            json_object=json_object,
        )
        return iter(c) if stream else c.text()

    def score(
        self,
        prompt: str | bytes | Sequence[int],
        labels: Sequence[str],
        *,
        add_special: bool = True,
        parse_special: bool = False,
    ) -> ScoreResult:
        """How likely each of ``labels`` is as the continuation of ``prompt``
        (slim_score): total and per-token log-probabilities, probabilities
        normalised over the labels, and the most likely (``.label``).  Labels
        are tokenized alone: write " positive" where the prompt leaves the
        space to the answer.  Shared label prefixes are computed once."""
        toks = self._prompt_tokens(prompt, add_special, parse_special)
        if not toks:
            raise InvalidArgumentError("the prompt has no tokens")
        ids = ffi.new("slim_token[]", toks)
        with self._busy() as ctx:
            lib.slim_context_reset(ctx)
            check(lib.slim_prefill(ctx, ids, len(toks), ffi.NULL))
            return score(ctx, labels)

    def constraint(self, kind: str, text: str | Sequence[str] | Mapping[str, Any] = "", **params: Any) -> Constraint:
        """Compile a Constraint for this model: ``kind`` "json_schema" (a dict
        or JSON text), "gbnf", "regex", "choices" (a list) or "json_object";
        ``json_whitespace=True`` lets JSON have whitespace between tokens."""
        if kind == "choices":
            return Constraint.choices(self, list(text))  # type: ignore[arg-type]
        if kind == "json_schema":
            return Constraint.json_schema(self, text, **params)  # type: ignore[arg-type]
        return Constraint(self, kind, text, **params)  # type: ignore[arg-type]

    # ---- chat ---------------------------------------------------------------

    def chat_template(self, template: str | None = None) -> str:
        """The chat template family slim uses ("chatml", "gemma", ...); ``template``
        forces a family name or gives a template text to recognise."""
        name = ffi.new("char **")
        ov = template.encode() if template else ffi.NULL
        check(lib.slim_chat_template_name(self._weights().ptr, ov, name))
        return _s(name[0])

    def apply_chat_template(
        self,
        messages: Sequence[Message],
        template: str | None = None,
        add_generation_prompt: bool = True,
    ) -> str:
        """The conversation rendered as the model's chat template does (no BOS);
        ``add_generation_prompt`` appends the assistant turn's header."""
        keep = []
        msgs = ffi.new("slim_chat_message[]", len(messages))
        for i, m in enumerate(messages):
            try:
                role, content = m["role"], m["content"]
            except (KeyError, TypeError):
                raise InvalidArgumentError(
                    f"message {i}: needs 'role' and 'content' strings, got {m!r}"
                ) from None
            if not isinstance(role, str) or not isinstance(content, str):
                raise InvalidArgumentError(f"message {i}: role and content must be str")
            r, c = ffi.new("char[]", role.encode()), ffi.new("char[]", content.encode())
            keep += [r, c]
            msgs[i].role, msgs[i].content = r, c
        ov = template.encode() if template else ffi.NULL
        w = self._weights()
        text = self._text_call(
            lib.slim_chat_render, w.ptr, ov, msgs, len(messages), int(add_generation_prompt)
        )
        return text.decode("utf-8", "replace")

    def chat(
        self,
        messages: Sequence[Message],
        max_tokens: int | None = 1024,
        *,
        template: str | None = None,
        stream: bool = False,
        **sampling: Any,
    ) -> str | Iterator[str]:
        """The assistant's reply to ``messages`` through the model's chat
        template (or ``template``): rendered, tokenized with BOS and special
        tokens, generated until end of turn.  ``sampling``: the keyword
        arguments of generate() (temperature, top_k, ..., seed, stop)."""
        text = self.apply_chat_template(messages, template, True)
        return self.generate(
            text, max_tokens, stream=stream, add_special=True, parse_special=True, **sampling
        )

    # ---- adapters -----------------------------------------------------------

    def load_lora(self, path: PathLike) -> LoRA:
        """Load a LoRA adapter for this model's weights (a PEFT directory or a
        llama.cpp GGUF adapter).  Usable by every fork of this Model."""
        return LoRA(self._weights(), path)

    def attach_lora(self, lora: LoRA, scale: float = 1.0) -> None:
        """Apply ``lora`` with ``scale`` to this Model's following runs (again:
        replaces the scale)."""
        with self._busy() as ctx:
            check(lib.slim_context_attach_lora(ctx, lora._handle(), scale))
            self._loras[lora] = float(scale)

    def detach_lora(self, lora: LoRA) -> None:
        """Stop applying ``lora`` (InvalidArgumentError if it is not attached)."""
        with self._busy() as ctx:
            check(lib.slim_context_detach_lora(ctx, lora._handle()))
            self._loras.pop(lora, None)

    @property
    def loras(self) -> dict[LoRA, float]:
        """The adapters attached to this Model, with their scales."""
        return dict(self._loras)

    # ---- writing ------------------------------------------------------------

    def save_gguf(
        self,
        path: PathLike,
        type: str | None = None,
        progress: Callable[[float], Any] | None = None,
    ) -> None:
        """Write the model as a GGUF file llama.cpp loads, weight matrices
        converted to ``type`` ("f16", "q8_0", "q4_k", ...; None keeps them).
        ``progress(fraction)`` is called as it goes."""
        w = self._weights()
        box = _ProgressBox(progress) if progress else None
        handle = ffi.new_handle(box) if box else ffi.NULL
        fn = lib._slim_py_progress if box else ffi.NULL
        ty = type.encode() if type else ffi.NULL
        check(lib.slim_model_save_gguf(w.ptr, os.fsencode(path), ty, fn, handle))
        if box and box.error:
            raise box.error


class Completion:
    """One generation run (Model.completion).  Iterating it runs the model and
    yields text pieces; ``text()`` runs it to the end.  Afterwards:
    ``finish_reason`` ("stop": end-of-generation token or a stop string;
    "length": max_tokens or a full context), ``tokens`` (generated ids, the
    end-of-generation token excluded), ``n_prompt``, ``n_generated`` (tokens
    sampled, as slim_generate counts them), and with logprobs requested
    ``token_logprobs`` / ``top_logprobs`` per token."""

    def __init__(
        self,
        model: Model,
        prompt_tokens: list[int],
        max_tokens: int | None,
        sampler_params: Any,
        stop: list[str],
        stop_at_eos: bool,
        logprobs: int | None,
        constraint: Constraint | None = None,
    ) -> None:
        self.model = model
        self.constraint = constraint
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens if max_tokens is None or max_tokens >= 0 else None
        self._sp = sampler_params
        self.stop = [s for s in stop if s]
        self.stop_at_eos = stop_at_eos
        self.logprobs = logprobs
        self.finish_reason: str | None = None
        self.tokens: list[int] = []
        self.pieces: list[bytes] = []
        self.token_logprobs: list[float] = []
        self.top_logprobs: list[dict[int, float]] = []
        self.n_generated = 0
        self._started = False

    @property
    def n_prompt(self) -> int:
        """Prompt tokens."""
        return len(self.prompt_tokens)

    def _tokens(self) -> Generator[bytes, None, None]:
        """Run the model: yields each generated token's piece (exact bytes)."""
        if self._started:
            raise RuntimeError("a Completion runs once")
        self._started = True
        m = self.model
        if not self.prompt_tokens:
            raise InvalidArgumentError("the prompt has no tokens")
        w = m._weights()
        V = m.n_vocab
        out = ffi.new("slim_sampler **")
        check(lib.slim_sampler_create(self._sp, out))
        sampler = ffi.gc(out[0], lib.slim_sampler_free)
        # The prompt goes to the penalty history only: a constraint starts at
        # the first generated token.
        accept_prompt = lib.slim_sampler_accept
        if self.constraint is not None:
            check(lib.slim_sampler_set_constraint(sampler, self.constraint._handle()))
            accept_prompt = lib.slim_sampler_accept_prompt
        tok = ffi.new("slim_token *")
        prompt = ffi.new("slim_token[]", self.prompt_tokens)
        with m._busy() as ctx:
            for t in self.prompt_tokens:
                accept_prompt(sampler, t)
            lib.slim_context_reset(ctx)
            check(lib.slim_prefill(ctx, prompt, len(prompt), ffi.NULL))
            n_ctx = lib.slim_context_n_ctx(ctx)
            while True:
                if self.max_tokens is not None and self.n_generated >= self.max_tokens:
                    self.finish_reason = "length"
                    return
                logits = lib.slim_get_logits(ctx)
                check(lib.slim_sampler_sample(sampler, logits, V, tok))
                t = int(tok[0])
                lib.slim_sampler_accept(sampler, t)
                self.n_generated += 1
                if self.logprobs is not None:
                    self._record_logprobs(logits, V, t)
                if self.stop_at_eos and lib.slim_token_is_eog(w.ptr, t):
                    self.finish_reason = "stop"
                    return
                piece = self.model.token_to_piece(t)
                self.tokens.append(t)
                self.pieces.append(piece)
                yield piece
                if self.max_tokens is not None and self.n_generated >= self.max_tokens:
                    self.finish_reason = "length"
                    return
                if lib.slim_context_n_past(ctx) >= n_ctx:
                    self.finish_reason = "length"
                    return
                check(lib.slim_decode(ctx, t))

    def _record_logprobs(self, logits: Any, V: int, t: int) -> None:
        x = np.frombuffer(ffi.buffer(logits, 4 * V), np.float32).astype(np.float64)
        mx = x.max()
        lp = x - (mx + np.log(np.exp(x - mx).sum()))
        self.token_logprobs.append(float(lp[t]))
        k = max(int(self.logprobs or 0), 0)
        top = np.argpartition(-lp, k)[:k] if 0 < k < V else np.arange(V)[:k]
        top = top[np.argsort(-lp[top], kind="stable")]
        self.top_logprobs.append({int(i): float(lp[i]) for i in top})

    def __iter__(self) -> Iterator[str]:
        dec = codecs.getincrementaldecoder("utf-8")("replace")
        pending = ""  # decoded text not yet yielded: it may start a stop string
        gen = self._tokens()
        try:
            for piece in gen:
                pending += dec.decode(piece)
                cut = self._find_stop(pending)
                if cut >= 0:
                    self.finish_reason = "stop"
                    if cut:
                        yield pending[:cut]
                    return
                hold = self._stop_prefix(pending)
                if len(pending) > hold:
                    yield pending[: len(pending) - hold]
                    pending = pending[len(pending) - hold :]
        finally:
            gen.close()
        pending += dec.decode(b"", final=True)
        cut = self._find_stop(pending)
        if cut >= 0:
            self.finish_reason = "stop"
            pending = pending[:cut]
        if pending:
            yield pending

    def _find_stop(self, text: str) -> int:
        hits = [i for i in (text.find(s) for s in self.stop) if i >= 0]
        return min(hits) if hits else -1

    def _stop_prefix(self, text: str) -> int:
        """Length of the longest end of ``text`` that begins a stop string."""
        best = 0
        for s in self.stop:
            for n in range(min(len(s) - 1, len(text)), best, -1):
                if s.startswith(text[-n:]):
                    best = n
                    break
        return best

    def text(self) -> str:
        """Run to the end and return the whole text."""
        return "".join(self)
