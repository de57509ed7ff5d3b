#!/usr/bin/env python3
"""Checks that lib/'s .c files call each other without a cycle.

The include check (includes.py) sees headers; this one sees the calls: from
the built objects (`nm`), which file defines and which uses each global
symbol of the library (the SLIM_HIDDEN ones and the public slim_*), so an
edge A -> B means "A calls or reads something B defines".  Every strongly
connected set of more than one file is a cycle: printed with the symbols on
its edges; so is every call up the layers (includes.py's LAYERS: a file
using what a higher layer defines, which a header declared lower can hide
from includes.py); exit 1 if there is either.  In the run-time dispatch build the CPU
kernels' files are read from the baseline level's objects.
Usage: python3 tools/check/symbols.py [BUILD_DIR]   (default: build)
"""
import os
import subprocess
import sys

from includes import layer_of


def objects(build):
    """{lib/....c: object path} for every library object the build holds."""
    found = {}
    for base in (os.path.join(build, "level-baseline"), build):
        top = os.path.join(base, "lib")
        for d, _, names in os.walk(top):
            for n in names:
                if n.endswith(".o"):
                    src = os.path.relpath(os.path.join(d, n[:-2] + ".c"), base)
                    if os.path.isfile(src):  # not a removed file's stale object
                        found.setdefault(src, os.path.join(d, n))
    return found


def nm(path, *flags):
    out = subprocess.run(["nm", "-P", *flags, path], check=True, capture_output=True, text=True)
    return [line.split() for line in out.stdout.splitlines() if line.strip()]


def cycles(graph):
    """Tarjan's strongly connected components of more than one node."""
    index, low, on, stack, comps = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    objs = objects(build)
    if not objs:
        print(f"symbols: no library objects under {build}/lib (build first)")
        return 1
    defined, used = {}, {}
    for src, obj in objs.items():
        for f in nm(obj, "--defined-only", "-g"):
            defined.setdefault(f[0], src)
        used[src] = {f[0] for f in nm(obj, "-u")}
    graph, why = {}, {}
    for src, syms in used.items():
        graph.setdefault(src, set())
        for s in syms:
            dst = defined.get(s)
            if dst and dst != src:
                graph[src].add(dst)
                why.setdefault((src, dst), []).append(s)
    comps = cycles(graph)
    for comp in comps:
        print("symbol cycle among " + ", ".join(comp) + ":")
        for a in comp:
            for b in comp:
                if (a, b) in why:
                    print(f"  {a} -> {b}: {', '.join(sorted(why[(a, b)]))}")
    up = []
    for (a, b), syms in sorted(why.items()):
        la, lb = layer_of(a[len("lib/"):]), layer_of(b[len("lib/"):])
        if la is not None and lb is not None and lb > la:
            up.append(f"  {a} -> {b}: {', '.join(sorted(syms))}")
    if up:
        print("calls up the layers:")
        print("\n".join(up))
    edges = sum(len(v) for v in graph.values())
    print(f"symbols: {len(objs)} objects, {edges} file-to-file uses, {len(comps)} cycles, "
          f"{len(up)} calls up")
    return 1 if comps or up else 0


if __name__ == "__main__":
    sys.exit(main())
