"""Every public name of the package is used by some test, and has a
docstring and type hints."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import slim

CLASSES = [slim.Model, slim.Completion, slim.LoRA, slim.Engine, slim.Request, slim.Constraint, slim.ScoreResult]
INHERITED_OK = {"__init__", "__enter__", "__exit__", "__repr__", "__iter__", "__call__"}


def public_members() -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for name in slim.__all__:
        out.append((name, getattr(slim, name)))
    for cls in CLASSES:
        for name, obj in vars(cls).items():
            if not name.startswith("_"):
                out.append((f"{cls.__name__}.{name}", obj))
    for name, obj in vars(slim.Model.__mro__[1]).items():  # the OpenAI helpers
        if not name.startswith("_") and name not in ("completion", "apply_chat_template"):
            out.append((f"Model.{name}", obj))
    return out


def test_every_public_name_is_tested() -> None:
    src = "\n".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py") if p.name != "test_api.py")
    missing = []
    for qual, _ in public_members():
        name = qual.rsplit(".", 1)[-1]
        n = re.escape(name)
        if not re.search(rf"(\.|\bslim\.){n}\b|\b{n}\(|import [^\n]*\b{n}\b", src):
            missing.append(qual)
    assert missing == []


def test_docstrings_and_hints() -> None:
    bad = []
    for qual, obj in public_members():
        fn = obj.fget if isinstance(obj, property) else obj
        if inspect.isfunction(fn):
            if not (fn.__doc__ or "").strip():
                bad.append(f"{qual}: no docstring")
            hints = fn.__annotations__
            params = [p for p in inspect.signature(fn).parameters if p not in ("self", "cls")]
            if "return" not in hints or any(p not in hints for p in params):
                bad.append(f"{qual}: missing type hints")
        elif inspect.isclass(fn) and not (fn.__doc__ or "").strip():
            bad.append(f"{qual}: no docstring")
    assert bad == []
