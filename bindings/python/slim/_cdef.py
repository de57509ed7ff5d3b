"""Turn include/slim.h into declarations cffi's cdef() accepts.

The binding has no hand-written copy of slim's structs or prototypes: the
build reads the header itself and hands cffi its declarations with the
preprocessor lines, comments, ``SLIM_API`` and the ``extern "C"`` guard taken
out.  Object-like ``#define``s with a plain integer or string value are kept
(cffi's ``#define NAME 123`` form); computed ones are rewritten as integers.
This module uses only the standard library: setup.py imports it by path.
"""

from __future__ import annotations

import re

__all__ = ["header_to_cdef", "define_constants"]

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_INT = re.compile(r"^\(?\s*(0[xX][0-9a-fA-F]+|\d+)[uUlL]*\s*\)?$")
_STR = re.compile(r'^"([^"\\]*)"$')
_CAST = re.compile(r"\(\s*(?:slim_\w+|u?int(?:8|16|32|64)_t|int|unsigned|long|size_t)\s*\)(?=\s*[-\d(])")


def _logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined."""
    return text.replace("\\\n", " ").split("\n")


def define_constants(header: str) -> dict[str, int | str]:
    """Object-like macros of the header whose value is an integer, a string,
    or an integer expression of earlier ones (SLIM_VERSION_NUMBER)."""
    text = _COMMENT.sub(" ", header)
    out: dict[str, int | str] = {}
    for line in _logical_lines(text):
        m = re.match(r"\s*#\s*define\s+([A-Za-z_]\w*)\s+(.+?)\s*$", line)
        if not m or "(" in m.group(1):
            continue
        name, value = m.group(1), m.group(2)
        # A cast to an integer type, ((slim_constraint_state)-1): the value is the number.
        value = _CAST.sub("", value)
        if mi := _INT.match(value):
            out[name] = int(mi.group(1), 0)
        elif ms := _STR.match(value):
            out[name] = ms.group(1)
        elif re.fullmatch(r"[\sA-Za-z_0-9()+*-]+", value):
            # An arithmetic expression of integer macros defined above it.
            expr = re.sub(
                r"[A-Za-z_]\w*",
                lambda t: str(out[t.group(0)]) if isinstance(out.get(t.group(0)), int) else "?",
                value,
            )
            if "?" not in expr and re.fullmatch(r"[\s\d()+*-]+", expr):
                out[name] = int(eval(expr, {"__builtins__": {}}))  # digits and + - * only
    return out


def header_to_cdef(header: str) -> str:
    """The declarations of slim.h as cdef() text (see the module docstring)."""
    text = _COMMENT.sub(" ", header)
    kept: list[str] = []
    # One entry per open #if: True where the block is C++ only (extern "C").
    stack: list[bool] = []
    for line in _logical_lines(text):
        s = line.strip()
        if s.startswith("#"):
            d = s[1:].strip()
            if d.startswith("if"):
                stack.append("__cplusplus" in d)
            elif d.startswith("endif"):
                stack.pop()
            continue  # every directive goes: include guard, includes, macros
        if not any(stack) and s:
            kept.append(line.rstrip())
    body = re.sub(r"\bSLIM_API\b\s*", "", "\n".join(kept))
    defines = [f"#define {k} {v}" for k, v in define_constants(header).items() if isinstance(v, int)]
    return body + "\n" + "\n".join(defines) + "\n"  # cffi's #define form is integer-only
