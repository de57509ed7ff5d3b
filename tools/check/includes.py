#!/usr/bin/env python3
"""Checks that lib/'s #include lines point down the layers and form no cycle.

Layers, lowest first (DESIGN.md): a file may include its own layer's headers
and those of lower layers, never a higher one.  Within a layer (and within a
folder) the file graph must have no cycle.  Prints each violation; exit 1 if
any.  Usage: python3 tools/check/includes.py [ROOT]
"""
import os
import re
import sys

# The layer of each folder under lib/ (".": a file directly in lib/, the top).
LAYERS = {
    "core": 0,
    "quant": 1,
    "format": 2,
    "backend": 3,
    "tokenizer": 4,
    "model": 5,
    "constrain": 6,
    "runtime": 7,
    ".": 8,
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(rel):
    top = rel.split("/")[0] if "/" in rel else "."
    return LAYERS.get(top)


def resolve(root, src, name):
    """The lib/-relative path an #include "name" in src refers to, or None."""
    for base in (os.path.dirname(src), ""):
        cand = os.path.normpath(os.path.join(base, name))
        if os.path.isfile(os.path.join(root, "lib", cand)):
            return cand
    return None


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    files = []
    for d, _, names in os.walk(os.path.join(root, "lib")):
        for n in names:
            if n.endswith((".c", ".h")):
                files.append(os.path.relpath(os.path.join(d, n), os.path.join(root, "lib")))
    graph = {}
    bad = []
    for f in sorted(files):
        text = open(os.path.join(root, "lib", f), encoding="utf-8", errors="replace").read()
        graph[f] = []
        lf = layer_of(f)
        if lf is None:
            bad.append(f"{f}: lib/{f.split('/')[0]}/ has no layer in tools/check/includes.py")
            continue
        for name in INCLUDE.findall(text):
            dep = resolve(root, f, name)
            if dep is None:
                continue
            graph[f].append(dep)
            ld = layer_of(dep)
            if ld is not None and ld > lf:
                bad.append(f"lib/{f} includes lib/{dep}: up from {f.split('/')[0] if '/' in f else 'lib'} "
                           f"to {dep.split('/')[0]}")
    # Cycles between headers and the files that include them: a header's
    # implementation file is the header's own, so the graph is over modules
    # (a .c and its .h are one node).
    def mod(p):
        return p[:-2]

    mgraph = {}
    for f, deps in graph.items():
        mgraph.setdefault(mod(f), set()).update(mod(d) for d in deps if mod(d) != mod(f))
    state = {}
    stack = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(mgraph.get(n, ())):
            if state.get(m) == 1:
                cyc = stack[stack.index(m):] + [m]
                bad.append("include cycle: " + " -> ".join("lib/" + c for c in cyc))
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(mgraph):
        if n not in state:
            visit(n)
    for b in bad:
        print(b)
    print(f"includes: {len(files)} files, {sum(len(v) for v in graph.values())} includes, {len(bad)} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
