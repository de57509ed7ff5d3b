"""Exceptions: one class per slim_status, all under SlimError."""

from __future__ import annotations

from typing import NoReturn

from ._slim_cffi import ffi, lib

__all__ = [
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
    "error_class",
    "check",
]


class SlimError(Exception):
    """A slim call failed.  ``status`` is the slim_status value and
    ``message`` slim's own text (slim_last_error) naming what is wrong."""

    status: int = -1

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class InvalidArgumentError(SlimError, ValueError):
    """SLIM_ERR_INVALID_ARG: a bad argument (value out of range, unknown role, ...)."""

    status = lib.SLIM_ERR_INVALID_ARG


class NoMemoryError(SlimError, MemoryError):
    """SLIM_ERR_NOMEM: an allocation failed (e.g. a KV cache too large)."""

    status = lib.SLIM_ERR_NOMEM


class SlimIOError(SlimError, OSError):
    """SLIM_ERR_IO: open/read/mmap failed (missing file, a directory, ...)."""

    status = lib.SLIM_ERR_IO


class FormatError(SlimError):
    """SLIM_ERR_FORMAT: a malformed or truncated file."""

    status = lib.SLIM_ERR_FORMAT


class UnsupportedError(SlimError):
    """SLIM_ERR_UNSUPPORTED: valid, but not something slim runs (yet)."""

    status = lib.SLIM_ERR_UNSUPPORTED


class ContextFullError(SlimError):
    """SLIM_ERR_CONTEXT_FULL: no room left in the context's KV cache."""

    status = lib.SLIM_ERR_CONTEXT_FULL


class BackendError(SlimError):
    """SLIM_ERR_BACKEND: a compute backend failed (no usable GPU, ...)."""

    status = lib.SLIM_ERR_BACKEND


class AbortedError(SlimError):
    """SLIM_ERR_ABORTED: stopped by a callback."""

    status = lib.SLIM_ERR_ABORTED


class BufferTooSmallError(SlimError):
    """SLIM_ERR_BUFFER_TOO_SMALL: a caller buffer was too small."""

    status = lib.SLIM_ERR_BUFFER_TOO_SMALL


class InternalError(SlimError):
    """SLIM_ERR_INTERNAL: a bug in slim."""

    status = lib.SLIM_ERR_INTERNAL


class BusyError(SlimError):
    """SLIM_ERR_BUSY: a queue is full, or an object is still in use."""

    status = lib.SLIM_ERR_BUSY


_BY_STATUS: dict[int, type[SlimError]] = {
    c.status: c
    for c in (
        InvalidArgumentError,
        NoMemoryError,
        SlimIOError,
        FormatError,
        UnsupportedError,
        ContextFullError,
        BackendError,
        AbortedError,
        BufferTooSmallError,
        InternalError,
        BusyError,
    )
}


def error_class(status: int) -> type[SlimError]:
    """The exception class for a slim_status (SlimError for a value it does not know)."""
    return _BY_STATUS.get(int(status), SlimError)


def _raise(status: int, what: str | None = None) -> NoReturn:
    # A status slim never returns has no message of its own: the thread's
    # last message belongs to an earlier failure.
    known = int(status) in _BY_STATUS
    msg = ffi.string(lib.slim_last_error()).decode("utf-8", "replace") if known else ""
    if not msg:
        msg = ffi.string(lib.slim_status_string(status)).decode("utf-8", "replace")
    if what:
        msg = f"{what}: {msg}"
    cls = error_class(status)
    if cls is SlimError:
        raise SlimError(msg, status)
    raise cls(msg)


def check(status: int, what: str | None = None) -> None:
    """Raise the SlimError subclass for ``status`` (nothing for SLIM_OK), with
    slim_last_error()'s message.  Call it right after the failing call, on
    the same thread: the message is thread-local."""
    if status != lib.SLIM_OK:
        _raise(status, what)


for _c in (SlimError, *_BY_STATUS.values()):
    _c.__module__ = "slim"  # shown as slim.InvalidArgumentError in tracebacks
