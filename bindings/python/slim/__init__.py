"""slim: Python binding of the slim inference library (C API in include/slim.h).

    import slim
    m = slim.Model("models/gemma-3-270m-q4_k_m.gguf")
    print(m.generate("The capital of France is", max_tokens=8))

Model loads a GGUF file or a Hugging Face directory and owns one context;
Engine runs many requests at once (threads, futures, asyncio) on the
batched engine;
errors raise SlimError subclasses carrying slim's message; every call into
the library releases the GIL.  ``slim.ffi`` / ``slim.lib`` are the cffi
binding of the whole C API, for what the classes do not cover.
"""

from __future__ import annotations

import enum
from typing import Any, Callable, Optional

from ._errors import (
    AbortedError,
    BackendError,
    BufferTooSmallError,
    BusyError,
    ContextFullError,
    FormatError,
    InternalError,
    InvalidArgumentError,
    NoMemoryError,
    SlimError,
    SlimIOError,
    UnsupportedError,
    check,
    error_class,
)
from ._model import Completion, LoRA, Message, Model, ModelInfo, TensorInfo
from ._engine import Engine, EngineResult, EngineStats, Request
from ._constrain import Constraint, ScoreResult
from ._slim_cffi import ffi, lib

__version__ = "0.1.0"

__all__ = [
    "Model",
    "Engine",
    "Request",
    "EngineResult",
    "EngineStats",
    "Constraint",
    "ScoreResult",
    "LoRA",
    "Completion",
    "ModelInfo",
    "TensorInfo",
    "Message",
    "Status",
    "LogLevel",
    "SlimError",
    "InvalidArgumentError",
    "NoMemoryError",
    "SlimIOError",
    "FormatError",
    "UnsupportedError",
    "ContextFullError",
    "BackendError",
    "AbortedError",
    "BufferTooSmallError",
    "InternalError",
    "BusyError",
    "check",
    "error_class",
    "version",
    "status_string",
    "set_log_callback",
    "ffi",
    "lib",
]

# The status and log-level enums, built from the header's own values.
Status = enum.IntEnum(  # type: ignore[misc]
    "Status", {k[len("SLIM_") :]: v for k, v in ffi.typeof("slim_status").relements.items()}
)
Status.__doc__ = "slim_status values (Status.OK, Status.ERR_IO, ...)."
LogLevel = enum.IntEnum(  # type: ignore[misc]
    "LogLevel", {k[len("SLIM_LOG_") :]: v for k, v in ffi.typeof("slim_log_level").relements.items()}
)
LogLevel.__doc__ = "slim_log_level values (LogLevel.ERROR ... LogLevel.DEBUG)."


def version() -> str:
    """The version of the linked library (slim_version_string)."""
    return ffi.string(lib.slim_version_string()).decode()


def status_string(status: int) -> str:
    """slim's short text for a status ("invalid argument", ...)."""
    return ffi.string(lib.slim_status_string(int(status))).decode()


_log_fn: Optional[Callable[[Any, str], object]] = None


@ffi.def_extern()
def _slim_py_log(level: int, message: object, user: object) -> None:
    fn = _log_fn
    if fn is not None:
        fn(LogLevel(level), ffi.string(message).decode("utf-8", "replace"))  # type: ignore[arg-type]


def set_log_callback(
    fn: Optional[Callable[[Any, str], object]], max_level: int = lib.SLIM_LOG_INFO
) -> None:
    """Route slim's log messages (model loaded, context created) to
    ``fn(level, message)`` for levels up to ``max_level``; None: silent (the
    default).  Process-wide: set it once at start-up."""
    global _log_fn
    _log_fn = fn
    if fn is None:
        lib.slim_set_log_callback(ffi.NULL, ffi.NULL, int(max_level))
    else:
        lib.slim_set_log_callback(lib._slim_py_log, ffi.NULL, int(max_level))
