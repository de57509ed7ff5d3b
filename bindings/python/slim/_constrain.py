"""Constrained generation (slim_constraint_*) and label scoring (slim_score)."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any, Mapping, Sequence, Union

import numpy as np

from ._errors import InvalidArgumentError, check
from ._slim_cffi import ffi, lib

if TYPE_CHECKING:
    from ._model import Model

__all__ = ["Constraint", "ScoreResult", "constraint_from"]

JSONSchema = Union[str, Mapping[str, Any]]


class Constraint:
    """A grammar, regex, JSON Schema or list of choices compiled for one
    model's vocabulary (slim_constraint).  Pass it as ``constraint=`` to
    Model.generate / Engine.submit, or use the shortcuts ``json_schema=``,
    ``grammar=``, ``regex=``, ``choices=``, ``json_object=True``.  Immutable
    and shareable between threads and requests; compiling the same text again
    returns slim's cached compilation.  The states (``start``, ``advance``,
    ``allowed``, ...) are for driving it yourself."""

    def __init__(self, model: Model, kind: str, text: str | bytes = b"", *, json_whitespace: bool = False) -> None:
        self._ptr = ffi.NULL
        self._weights = model._weights()  # the model outlives the handle
        self.kind = kind
        k = {
            "gbnf": lib.SLIM_CONSTRAINT_GBNF,
            "regex": lib.SLIM_CONSTRAINT_REGEX,
            "json_schema": lib.SLIM_CONSTRAINT_JSON_SCHEMA,
            "choices": lib.SLIM_CONSTRAINT_CHOICES,
            "json_object": lib.SLIM_CONSTRAINT_JSON_OBJECT,
        }.get(kind)
        if k is None:
            raise InvalidArgumentError(f"unknown constraint kind {kind!r}")
        b = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        cp = ffi.new("slim_constraint_params *", lib.slim_constraint_default_params())
        cp.json_whitespace = 1 if json_whitespace else 0
        out = ffi.new("slim_constraint **")
        check(lib.slim_constraint_compile(self._weights.ptr, k, b, len(b), cp, out))
        self._ptr = out[0]

    @classmethod
    def json_schema(cls, model: Model, schema: JSONSchema, *, json_whitespace: bool = False) -> Constraint:
        """Output that is JSON valid for ``schema`` (a dict or JSON text)."""
        text = schema if isinstance(schema, str) else json.dumps(schema)
        return cls(model, "json_schema", text, json_whitespace=json_whitespace)

    @classmethod
    def json_object(cls, model: Model, *, json_whitespace: bool = False) -> Constraint:
        """Any JSON object."""
        return cls(model, "json_object", b"", json_whitespace=json_whitespace)

    @classmethod
    def grammar(cls, model: Model, gbnf: str) -> Constraint:
        """A llama.cpp GBNF grammar (start rule "root")."""
        return cls(model, "gbnf", gbnf)

    @classmethod
    def regex(cls, model: Model, pattern: str) -> Constraint:
        """The whole output matches ``pattern`` (an ECMAScript subset)."""
        return cls(model, "regex", pattern)

    @classmethod
    def choices(cls, model: Model, options: Sequence[str]) -> Constraint:
        """Exactly one of ``options``."""
        enc = [o.encode("utf-8") for o in options]
        if any(b"\0" in e for e in enc):
            raise InvalidArgumentError("a choice contains a NUL character")
        return cls(model, "choices", b"\0".join(enc))

    def _handle(self) -> Any:
        if self._ptr == ffi.NULL:
            raise ValueError("the Constraint is closed")
        return self._ptr

    def close(self) -> None:
        """Drop this handle (samplers and requests using it keep their references)."""
        if self._ptr != ffi.NULL:
            lib.slim_constraint_free(self._ptr)
            self._ptr = ffi.NULL

    def __del__(self, _free: Any = lib.slim_constraint_free, _null: Any = ffi.NULL) -> None:
        if getattr(self, "_ptr", _null) != _null:
            _free(self._ptr)
            self._ptr = _null

    def __repr__(self) -> str:
        return f"slim.Constraint({self.kind})"

    # ---- driving it yourself ------------------------------------------------

    def start(self) -> int:
        """The state before any generated token."""
        return int(lib.slim_constraint_start(self._handle()))

    def advance(self, state: int, token: int) -> int:
        """The state after ``token``: -1 (dead: not allowed), -2 (done: an
        allowed end-of-generation token), else the next state."""
        return int(lib.slim_constraint_advance(self._handle(), state, token))

    def allowed(self, state: int) -> np.ndarray:
        """A bool array over the vocabulary: the tokens allowed in ``state``."""
        c = self._handle()
        n_vocab = int(lib.slim_constraint_n_vocab(c))
        words = np.zeros((n_vocab + 31) // 32, np.uint32)
        check(lib.slim_constraint_mask(c, state, ffi.from_buffer("uint32_t[]", words), words.size))
        bits = np.unpackbits(words.view(np.uint8), bitorder="little")
        return bits[:n_vocab].astype(bool)

    def accepting(self, state: int) -> bool:
        """True if the text so far is a complete match."""
        return bool(lib.slim_constraint_accepting(self._handle(), state))

    def forced(self, state: int) -> list[int]:
        """The tokens that must come next whatever is sampled (may be none)."""
        c = self._handle()
        n = ffi.new("size_t *")
        cap = 64
        while True:
            buf = ffi.new("slim_token[]", cap)
            st = lib.slim_constraint_forced(c, state, buf, cap, n)
            if st != lib.SLIM_ERR_BUFFER_TOO_SMALL:
                check(st)
                return list(ffi.unpack(buf, n[0]))
            cap = n[0]


def constraint_from(
    model: Model,
    constraint: Constraint | None = None,
    json_schema: JSONSchema | None = None,
    grammar: str | None = None,
    regex: str | None = None,
    choices: Sequence[str] | None = None,
    json_object: bool = False,
) -> Constraint | None:
    """The one constraint the keyword arguments name (None: no constraint)."""
    given = [
        k
        for k, v in dict(constraint=constraint, json_schema=json_schema, grammar=grammar,
                         regex=regex, choices=choices).items()
        if v is not None
    ] + (["json_object"] if json_object else [])
    if len(given) > 1:
        raise InvalidArgumentError(f"one constraint at a time: got {', '.join(given)}")
    if constraint is not None:
        return constraint
    if json_schema is not None:
        return Constraint.json_schema(model, json_schema)
    if grammar is not None:
        return Constraint.grammar(model, grammar)
    if regex is not None:
        return Constraint.regex(model, regex)
    if choices is not None:
        return Constraint.choices(model, choices)
    if json_object:
        return Constraint.json_object(model)
    return None


@dataclasses.dataclass(frozen=True)
class ScoreResult:
    """Model.score: per label its total log-probability after the prompt,
    the probabilities normalised over the labels, per-token log-probabilities,
    and the most likely label."""

    labels: list[str]
    logprobs: list[float]
    probs: list[float]
    token_logprobs: list[list[float]]
    argmax: int

    @property
    def label(self) -> str:
        """The most likely label."""
        return self.labels[self.argmax]

    def as_dict(self) -> dict[str, float]:
        """{label: probability}."""
        return dict(zip(self.labels, self.probs))


def score(ctx: Any, labels: Sequence[str], add_special: bool = False) -> ScoreResult:
    """slim_score on a context holding the prompt (the caller holds it)."""
    labels = [str(x) for x in labels]
    if not labels:
        raise InvalidArgumentError("score needs at least one label")
    cs = [ffi.new("char[]", x.encode("utf-8")) for x in labels]
    arr = ffi.new("char *[]", cs)
    sp = ffi.new("slim_score_params *", lib.slim_score_default_params())
    sp.tokenize_flags = lib.SLIM_TOKENIZE_ADD_BOS if add_special else 0
    res = ffi.new("slim_score_result[]", len(labels))
    out = ffi.new("slim_score_output *")
    out.struct_size = ffi.sizeof("slim_score_output")
    out.results = res
    cap = 64 * len(labels)
    per = ffi.new("float[]", cap)
    out.token_logprobs, out.token_cap = per, cap
    check(lib.slim_score(ctx, arr, len(labels), sp, out))
    if out.n_tokens > cap:  # longer labels than guessed: again with room
        cap = int(out.n_tokens)
        per = ffi.new("float[]", cap)
        out.token_logprobs, out.token_cap = per, cap
        check(lib.slim_score(ctx, arr, len(labels), sp, out))
    toks = [
        [float(per[r.first_token + j]) for j in range(r.n_tokens)] for r in res
    ]
    return ScoreResult(
        labels=labels,
        logprobs=[float(r.logprob) for r in res],
        probs=[float(r.prob) for r in res],
        token_logprobs=toks,
        argmax=int(out.argmax),
    )
