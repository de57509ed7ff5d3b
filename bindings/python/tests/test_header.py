"""The binding against include/slim.h: a failing test when they disagree.

The header is parsed independently of the binding's own extraction
(slim/_cdef.py): the C preprocessor, then pycparser.  A C probe compiled
against the header prints every struct's size and field offsets, every
enumerator and every integer/string macro; the installed binding (built from
whatever header it saw at install time) must match all of it, and the two
must declare the same functions with the same parameter and result types.
A mutated header is checked too, to show that the comparison catches a
difference."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import slim
from slim import ffi, lib

from conftest import ROOT

pycparser = pytest.importorskip("pycparser")
from pycparser import c_ast, c_generator  # noqa: E402

HEADER = ROOT / "include" / "slim.h"

# Only the names matter for the parse; layout comes from the real compiler.
STUB_STDDEF = "typedef unsigned long size_t;\n"
STUB_STDINT = "".join(
    f"typedef {c} {n};\n"
    for n, c in [
        ("int8_t", "signed char"),
        ("uint8_t", "unsigned char"),
        ("int16_t", "short"),
        ("uint16_t", "unsigned short"),
        ("int32_t", "int"),
        ("uint32_t", "unsigned int"),
        ("int64_t", "long long"),
        ("uint64_t", "unsigned long long"),
    ]
)


def parse_header(header: Path, work: Path) -> dict[str, Any]:
    """Structs (fields in order, with type text), enumerators, functions
    (parameter and result type text) and function-pointer typedefs."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("needs a C compiler")
    stubs = work / "stubs"
    stubs.mkdir(exist_ok=True)
    (stubs / "stddef.h").write_text(STUB_STDDEF)
    (stubs / "stdint.h").write_text(STUB_STDINT)
    pre = subprocess.run(
        [cc, "-E", "-P", "-nostdinc", "-I", str(stubs), str(header)],
        check=True, capture_output=True, text=True,
    ).stdout
    ast = pycparser.CParser().parse(pre, str(header))
    gen = c_generator.CGenerator()

    def tstr(t: c_ast.Node) -> str:
        t = copy.deepcopy(t)
        for n in _walk(t):
            if isinstance(n, c_ast.TypeDecl):
                n.declname = None
        return gen.visit(c_ast.Typename(None, [], None, t))

    out: dict[str, Any] = {"structs": {}, "enums": [], "functions": {}, "fnptrs": {}}
    for node in ast.ext:
        t = node.type
        inner = t.type if isinstance(t, c_ast.TypeDecl) else None
        if isinstance(inner, c_ast.Struct) and inner.decls is not None and isinstance(node, c_ast.Typedef):
            out["structs"][node.name] = [(d.name, tstr(d.type)) for d in inner.decls]
        if isinstance(inner, c_ast.Enum) and inner.values is not None:
            out["enums"] += [e.name for e in inner.values.enumerators]
        if isinstance(node, c_ast.Decl) and isinstance(t, c_ast.FuncDecl):
            params = [] if t.args is None else list(t.args.params)
            if len(params) == 1 and tstr(params[0].type) == "void":
                params = []
            out["functions"][node.name] = (tstr(t.type), [tstr(p.type) for p in params])
        if isinstance(node, c_ast.Typedef) and isinstance(t, c_ast.PtrDecl) and isinstance(
            t.type, c_ast.FuncDecl
        ):
            out["fnptrs"][node.name] = tstr(t)
    out["macros"] = re.findall(
        r"^\s*#\s*define\s+(SLIM_(?!API\b|H\b)\w+)\s+\S", header.read_text(), re.M
    )
    return out


def _walk(n: c_ast.Node):
    yield n
    for _, c in n.children():
        yield from _walk(c)


def probe(c_build, parsed: dict[str, Any], include: Path, name: str) -> dict[str, Any]:
    """Compile and run a C program printing the header's layout and constants."""
    lines = ['#include <stdio.h>', '#include <stddef.h>', f'#include "{include / "slim.h"}"',
             "int main(void) {"]
    for s, fields in parsed["structs"].items():
        lines.append(f'printf("size {s} %zu\\n", sizeof({s}));')
        for f, _ in fields:
            lines.append(f'printf("offset {s}.{f} %zu\\n", offsetof({s}, {f}));')
    for e in parsed["enums"]:
        lines.append(f'printf("enum {e} %lld\\n", (long long){e});')
    hdr = (include / "slim.h").read_text()
    for m in parsed["macros"]:
        if re.search(rf'#\s*define\s+{m}\s+"', hdr):
            lines.append(f'printf("string {m} %s\\n", {m});')
        else:
            lines.append(f'printf("int {m} %lld\\n", (long long)({m}));')
    lines += ["return 0;", "}"]
    exe = c_build(name, "\n".join(lines) + "\n")
    res: dict[str, Any] = {}
    for line in subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.splitlines():
        kind, key, val = line.split(" ", 2)
        res[f"{kind} {key}"] = val
    return res


def compare(parsed: dict[str, Any], probed: dict[str, Any]) -> list[str]:
    """Every difference between the header (parsed + probed) and the binding."""
    bad: list[str] = []
    for s, fields in parsed["structs"].items():
        try:
            ct = ffi.typeof(s)
        except ffi.error:
            bad.append(f"struct {s} missing from the binding")
            continue
        bfields = ct.fields
        if [f for f, _ in fields] != [f for f, _ in bfields]:
            bad.append(f"{s}: fields {[f for f, _ in fields]} vs binding {[f for f, _ in bfields]}")
            continue
        if int(probed[f"size {s}"]) != ffi.sizeof(s):
            bad.append(f"sizeof({s}) {probed[f'size {s}']} vs binding {ffi.sizeof(s)}")
        for (f, ty), (_, bf) in zip(fields, bfields):
            if int(probed[f"offset {s}.{f}"]) != bf.offset:
                bad.append(f"offsetof({s}, {f}) {probed[f'offset {s}.{f}']} vs binding {bf.offset}")
            if ffi.typeof(ty) is not bf.type:
                bad.append(f"{s}.{f}: type {ty} vs binding {bf.type.cname}")
    for e in parsed["enums"]:
        if not hasattr(lib, e):
            bad.append(f"enumerator {e} missing from the binding")
        elif int(probed[f"enum {e}"]) != getattr(lib, e):
            bad.append(f"{e} = {probed[f'enum {e}']} vs binding {getattr(lib, e)}")
    for m in parsed["macros"]:
        if f"int {m}" in probed:
            if getattr(lib, m, None) != int(probed[f"int {m}"]):
                bad.append(f"macro {m} = {probed[f'int {m}']} vs binding {getattr(lib, m, None)}")
    hfuncs = parsed["functions"]
    bfuncs = {n for n in dir(lib) if n.startswith("slim_") and callable(getattr(lib, n))}
    for n in sorted(bfuncs - set(hfuncs)):
        bad.append(f"function {n} in the binding, not in the header")
    for n, (res, params) in hfuncs.items():
        if n not in bfuncs:
            bad.append(f"function {n} missing from the binding")
            continue
        ft = ffi.typeof(getattr(lib, n))
        want = [ffi.typeof(p) for p in params]
        if ffi.typeof(res) is not ft.result or tuple(want) != ft.args:
            got = f"{ft.result.cname}({', '.join(a.cname for a in ft.args)})"
            bad.append(f"{n}: header {res}({', '.join(params)}) vs binding {got}")
    for n, ty in parsed["fnptrs"].items():
        if ffi.typeof(n) is not ffi.typeof(ty):
            bad.append(f"typedef {n}: header {ty} vs binding {ffi.typeof(n).cname}")
    return bad


@pytest.fixture(scope="module")
def header_facts(c_build, tmp_path_factory):
    if not HEADER.is_file():
        pytest.skip("include/slim.h not found (run from a slim checkout)")
    work = tmp_path_factory.mktemp("hdr")
    parsed = parse_header(HEADER, work)
    return parsed, probe(c_build, parsed, HEADER.parent, "probe")


def test_header_matches_binding(header_facts) -> None:
    parsed, probed = header_facts
    # The parse found what the header holds (guards against an empty parse).
    assert {"slim_model_params", "slim_context_params", "slim_sampler_params",
            "slim_generate_params", "slim_model_info", "slim_tensor_info",
            "slim_generate_stats", "slim_chat_message"} <= set(parsed["structs"])
    assert len(parsed["functions"]) >= 40
    assert compare(parsed, probed) == []


def test_library_version_matches_header(header_facts) -> None:
    _, probed = header_facts
    assert slim.version() == probed["string SLIM_VERSION_STRING"]
    assert lib.slim_version_number() == int(probed["int SLIM_VERSION_NUMBER"])


def test_comparison_catches_a_changed_header(c_build, tmp_path) -> None:
    """A field added in the middle of a params struct, a parameter's type
    changed, a new function and an enumerator renumbered: each is reported."""
    text = HEADER.read_text()
    text = text.replace("    int32_t n_threads;", "    int32_t n_threads;\n    int32_t n_new;", 1)
    text = text.replace("slim_context_n_ctx(const slim_context *ctx)",
                        "slim_context_n_ctx(const slim_context *ctx, int64_t extra)", 1)
    text = text.replace("SLIM_API void slim_sampler_reset(",
                        "SLIM_API int slim_new_fn(void);\nSLIM_API void slim_sampler_reset(", 1)
    text = text.replace("SLIM_ERR_INTERNAL = 10", "SLIM_ERR_INTERNAL = 11", 1)
    inc = tmp_path / "include"
    inc.mkdir()
    (inc / "slim.h").write_text(text)
    parsed = parse_header(inc / "slim.h", tmp_path)
    bad = compare(parsed, probe(c_build, parsed, inc, "probe_mut"))
    joined = "\n".join(bad)
    assert "slim_context_params: fields" in joined
    assert "slim_context_n_ctx: header" in joined
    assert "function slim_new_fn missing" in joined
    assert "SLIM_ERR_INTERNAL = 11" in joined
    assert len(bad) == 4, joined
