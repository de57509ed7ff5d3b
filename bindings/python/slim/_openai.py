"""OpenAI-shaped helpers with llama-cpp-python's signatures and result dicts,
so that code written for ``llama_cpp.Llama`` runs on ``slim.Model`` by
changing the import: ``create_completion`` (and ``__call__``) and
``create_chat_completion``, with ``stream=True`` iterators of chunks."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Union, cast

from ._errors import InvalidArgumentError

if TYPE_CHECKING:
    from ._model import Completion, Model

__all__ = ["OpenAIMixin"]

JSON = Dict[str, Any]

# llama-cpp-python options slim does not implement: accepted at their neutral
# value only, so that calls written for llama_cpp.Llama keep working.
_NEUTRAL: dict[str, Any] = {
    "suffix": None,
    "typical_p": 1.0,
    "tfs_z": 1.0,
    "mirostat_mode": 0,
    "mirostat_tau": 5.0,
    "mirostat_eta": 0.1,
    "stopping_criteria": None,
    "logits_processor": None,
    "logit_bias": None,
    "functions": None,
    "function_call": None,
    "tools": None,
    "tool_choice": None,
}


def _constraint_args(grammar: Any = None, response_format: Any = None) -> dict[str, Any]:
    """llama-cpp-python's ``grammar`` (GBNF text, or a LlamaGrammar-like
    object holding it) and ``response_format`` ({"type": "json_object"
    [, "schema": ...]} as llama-cpp-python, {"type": "json_schema",
    "json_schema": {"schema": ...}} as OpenAI) as slim's constraint arguments."""
    out: dict[str, Any] = {}
    if grammar is not None:
        text = grammar if isinstance(grammar, str) else getattr(grammar, "_grammar", None)
        if not isinstance(text, str):
            raise InvalidArgumentError("grammar: give GBNF text")
        out["grammar"] = text
    if response_format is not None:
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind == "json_object":
            if response_format.get("schema") is not None:
                out["json_schema"] = response_format["schema"]
            else:
                out["json_object"] = True
        elif kind == "json_schema":
            spec = response_format.get("json_schema") or {}
            if spec.get("schema") is None:
                raise InvalidArgumentError("response_format json_schema: no 'schema'")
            out["json_schema"] = spec["schema"]
        elif kind != "text":
            raise InvalidArgumentError(f"response_format {response_format!r} is not supported")
    if len(out) > 1:
        raise InvalidArgumentError("grammar and response_format: one constraint at a time")
    return out


def _check_neutral(extra: dict[str, Any]) -> None:
    for k, v in extra.items():
        if k not in _NEUTRAL:
            raise TypeError(f"unexpected keyword argument {k!r}")
        if v != _NEUTRAL[k]:
            raise InvalidArgumentError(f"{k}={v!r} is not supported by slim (only {_NEUTRAL[k]!r})")


def _message_text(i: int, m: Any) -> dict[str, str]:
    """An OpenAI message as slim's {role, content}: text parts joined."""
    content = m.get("content")
    if content is None:
        content = ""
    elif not isinstance(content, str):
        parts = []
        for p in content:
            if p.get("type") != "text":
                raise InvalidArgumentError(f"message {i}: only text content parts are supported")
            parts.append(p["text"])
        content = "".join(parts)
    return {"role": m.get("role"), "content": content}


class OpenAIMixin:
    """create_completion / create_chat_completion for slim.Model."""

    def _model(self) -> Model:
        return cast("Model", self)

    def _logprobs_dict(self, c: Completion, start: int) -> JSON:
        """llama-cpp-python's completion logprobs: each token's text, its offset
        in the text (from ``start``, the prompt's length), its logprob, and the
        most likely tokens' logprobs with the chosen token's added."""
        m = self._model()
        tokens, offsets, pos = [], [], start
        for piece in c.pieces:
            text = piece.decode("utf-8", "replace")
            tokens.append(text)
            offsets.append(pos)
            pos += len(text)
        n = len(tokens)
        top = []
        for tok, lp, d in zip(tokens, c.token_logprobs, c.top_logprobs[:n]):
            entry = {m.token_to_piece(t).decode("utf-8", "replace"): v for t, v in d.items()}
            entry[tok] = lp
            top.append(entry)
        return {
            "tokens": tokens,
            "text_offset": offsets,
            "token_logprobs": c.token_logprobs[:n],
            "top_logprobs": top,
        }

    def create_completion(
        self,
        prompt: Union[str, List[int]],
        max_tokens: int | None = 16,
        temperature: float = 0.8,
        top_p: float = 0.95,
        min_p: float = 0.05,
        logprobs: int | None = None,
        echo: bool = False,
        stop: Union[str, List[str], None] = None,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        repeat_penalty: float = 1.0,
        top_k: int = 40,
        stream: bool = False,
        seed: int | None = None,
        model: str | None = None,
        grammar: Any = None,
        **llama_cpp_options: Any,
    ) -> Union[JSON, Iterator[JSON]]:
        """A text completion as llama_cpp.Llama.create_completion returns it:
        {"id", "object": "text_completion", "created", "model", "choices":
        [{"text", "index", "logprobs", "finish_reason"}], "usage"}, or with
        ``stream=True`` an iterator of such chunks (no usage) ending with one
        that carries the finish_reason.  ``max_tokens`` None or <= 0 runs to the
        end of the context; ``logprobs`` N adds llama-cpp-python's logprobs
        dict; ``echo`` puts the prompt text before the completion;
        ``grammar`` (GBNF text) constrains it."""
        _check_neutral(llama_cpp_options)
        if max_tokens is not None and max_tokens <= 0:
            max_tokens = None
        c = self._model().completion(
            prompt,
            max_tokens,
            temperature=temperature,
            top_p=top_p,
            min_p=min_p,
            top_k=top_k,
            frequency_penalty=frequency_penalty,
            presence_penalty=presence_penalty,
            repeat_penalty=repeat_penalty,
            seed=seed,
            stop=stop,
            logprobs=logprobs,
            **_constraint_args(grammar),
        )
        head = {
            "id": f"cmpl-{uuid.uuid4()}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model or self._model().path,
        }
        ptext = prompt if isinstance(prompt, str) else self._model().detokenize(prompt)
        prefix = ptext if echo else ""
        if stream:
            return self._completion_chunks(c, head, prefix)
        text = prefix + c.text()
        choice = {
            "text": text,
            "index": 0,
            "logprobs": self._logprobs_dict(c, len(ptext)) if logprobs is not None else None,
            "finish_reason": _finish(c.finish_reason),
        }
        return dict(head, choices=[choice], usage=_usage(c))

    def _completion_chunks(self, c: Completion, head: JSON, prefix: str) -> Iterator[JSON]:
        def chunk(text: str, finish: str | None) -> JSON:
            return dict(
                head,
                choices=[{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
            )

        if prefix:
            yield chunk(prefix, None)
        for piece in c:
            yield chunk(piece, None)
        yield chunk("", _finish(c.finish_reason))

    def __call__(self, prompt: Union[str, List[int]], **kwargs: Any) -> Union[JSON, Iterator[JSON]]:
        """create_completion(prompt, ...), as llama_cpp.Llama's __call__."""
        return self.create_completion(prompt, **kwargs)

    def create_chat_completion(
        self,
        messages: List[Any],
        temperature: float = 0.2,
        top_p: float = 0.95,
        top_k: int = 40,
        min_p: float = 0.05,
        stream: bool = False,
        stop: Union[str, List[str], None] = None,
        seed: int | None = None,
        max_tokens: int | None = None,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        repeat_penalty: float = 1.0,
        model: str | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        template: str | None = None,
        grammar: Any = None,
        response_format: Any = None,
        **llama_cpp_options: Any,
    ) -> Union[JSON, Iterator[JSON]]:
        """A chat completion as llama_cpp.Llama.create_chat_completion returns
        it: {"id": "chatcmpl-...", "object": "chat.completion", "created",
        "model", "choices": [{"index", "message": {"role": "assistant",
        "content"}, "logprobs", "finish_reason"}], "usage"}, or with
        ``stream=True`` "chat.completion.chunk"s whose deltas are
        {"role": "assistant"}, then {"content": piece}..., then {} with the
        finish_reason.  The prompt is the model's chat template (``template``
        overrides it: a family name or a template text); text content only.
        ``logprobs=True`` gives the chosen tokens' logprobs with
        ``top_logprobs`` alternatives each (as OpenAI; llama-cpp-python gives
        none unless top_logprobs is set too).  Streams carry no logprobs.
        ``response_format`` {"type": "json_object"} (with "schema": as
        llama-cpp-python) or {"type": "json_schema", "json_schema": {"schema":
        ...}} (as OpenAI), or ``grammar`` (GBNF), constrain the reply."""
        _check_neutral(llama_cpp_options)
        msgs = [_message_text(i, m) for i, m in enumerate(messages)]
        m = self._model()
        text = m.apply_chat_template(msgs, template, True)
        if max_tokens is not None and max_tokens <= 0:
            max_tokens = None
        want_lp = bool(logprobs) or top_logprobs is not None
        c = m.completion(
            text,
            max_tokens,
            temperature=temperature,
            top_p=top_p,
            min_p=min_p,
            top_k=top_k,
            frequency_penalty=frequency_penalty,
            presence_penalty=presence_penalty,
            repeat_penalty=repeat_penalty,
            seed=seed,
            stop=stop,
            add_special=True,
            parse_special=True,
            logprobs=(top_logprobs or 0) if want_lp else None,
            **_constraint_args(grammar, response_format),
        )
        head = {
            "id": f"chatcmpl-{uuid.uuid4()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model or m.path,
        }
        if stream:
            return self._chat_chunks(c, dict(head, object="chat.completion.chunk"))
        content = c.text()
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "logprobs": self._chat_logprobs(c) if want_lp else None,
            "finish_reason": _finish(c.finish_reason),
        }
        return dict(head, choices=[choice], usage=_usage(c))

    def _chat_logprobs(self, c: Completion) -> JSON:
        d = self._logprobs_dict(c, 0)
        content = [
            {
                "token": tok,
                "logprob": lp,
                "bytes": None,
                "top_logprobs": [{"token": t, "logprob": v, "bytes": None} for t, v in top.items()],
            }
            for tok, lp, top in zip(d["tokens"], d["token_logprobs"], d["top_logprobs"])
        ]
        return {"content": content, "refusal": None}

    def _chat_chunks(self, c: Completion, head: JSON) -> Iterator[JSON]:
        def chunk(delta: JSON, finish: str | None) -> JSON:
            return dict(
                head,
                choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            )

        yield chunk({"role": "assistant"}, None)
        for piece in c:
            yield chunk({"content": piece}, None)
        yield chunk({}, _finish(c.finish_reason))


def _finish(reason: str | None) -> str | None:
    """OpenAI's finish_reason for slim.Engine's ("eos", "context") and Model's."""
    return {"eos": "stop", "context": "length"}.get(reason or "", reason)


def _usage(c: Completion) -> JSON:
    return {
        "prompt_tokens": c.n_prompt,
        "completion_tokens": c.n_generated,
        "total_tokens": c.n_prompt + c.n_generated,
    }
