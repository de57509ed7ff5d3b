#!/usr/bin/env python3
"""The public structs' and enums' layout against the ABI baseline (tools/check/api.sh).

abidiff's suppression for struct_size-versioned structs ("members inserted at the end")
hides every change to such a struct once one member has been appended, a retyped or
moved member included. This check closes that hole: for each struct and enum of
include/slim.h in the baseline, every member must still exist with the same name, offset
and type (types compared by their spelled-out names, as the two files number types
differently), structs may only grow at the end and only when they start with
struct_size, and every enumerator keeps its value.

usage: abi_layout.py BASELINE.abi NOW.abi   (abidw output); exit 1 with a report on a change
"""
import sys
import xml.etree.ElementTree as ET


def load(path):
    root = ET.parse(path).getroot()
    by_id, structs, enums = {}, {}, {}
    for el in root.iter():
        tid = el.get("id")
        if tid:
            by_id[tid] = el
        if el.get("filepath", "").endswith("include/slim.h") and el.get("name"):
            if el.tag == "class-decl" and el.get("is-declaration-only") != "yes":
                structs[el.get("name")] = el
            elif el.tag == "enum-decl":
                enums[el.get("name")] = el
    return by_id, structs, enums


def spell(by_id, tid, depth=0):
    el = by_id.get(tid)
    if el is None or depth > 8:
        return "?"
    tag, inner = el.tag, el.get("type-id")
    if tag in ("type-decl", "class-decl", "enum-decl", "union-decl", "typedef-decl"):
        return el.get("name") or tag
    if tag == "pointer-type-def":
        return spell(by_id, inner, depth + 1) + "*"
    if tag == "qualified-type-def":
        return ("const " if el.get("const") == "yes" else "") + spell(by_id, inner, depth + 1)
    if tag == "array-type-def":
        sub = el.find("subrange")
        n = sub.get("length") if sub is not None else "?"
        return "%s[%s]" % (spell(by_id, el.get("element-type-id"), depth + 1), n)
    if tag == "function-type":
        return "fn"
    return tag


def members(by_id, el):
    out = []
    for dm in el.findall("data-member"):
        v = dm.find("var-decl")
        out.append((v.get("name"), int(dm.get("layout-offset-in-bits")),
                    spell(by_id, v.get("type-id"))))
    return out


def main():
    base_ids, base_structs, base_enums = load(sys.argv[1])
    now_ids, now_structs, now_enums = load(sys.argv[2])
    bad = []
    for name, b in sorted(base_structs.items()):
        n = now_structs.get(name)
        if n is None:
            bad.append("struct %s: gone" % name)
            continue
        bm, nm = members(base_ids, b), members(now_ids, n)
        for i, m in enumerate(bm):
            if i >= len(nm) or nm[i] != m:
                got = "%s (offset %d bits, %s)" % nm[i] if i < len(nm) else "nothing"
                bad.append("struct %s: member %s (offset %d bits, %s) is now %s" % (name, *m, got))
                break
        bsize, nsize = int(b.get("size-in-bits", 0)), int(n.get("size-in-bits", 0))
        versioned = bool(bm) and bm[0][0] == "struct_size"
        if nsize < bsize or (nsize > bsize and not versioned):
            bad.append("struct %s: %d bits, was %d%s" % (name, nsize, bsize, "" if versioned else
                       " (not versioned by struct_size: it may not grow)"))
    for name, b in sorted(base_enums.items()):
        n = now_enums.get(name)
        if n is None:
            bad.append("enum %s: gone" % name)
            continue
        now_vals = {e.get("name"): e.get("value") for e in n.findall("enumerator")}
        for e in b.findall("enumerator"):
            if now_vals.get(e.get("name")) != e.get("value"):
                bad.append("enum %s: %s = %s is now %s" % (name, e.get("name"), e.get("value"),
                                                          now_vals.get(e.get("name"), "gone")))
    for line in bad:
        print("  " + line)
    print("layout: %d structs, %d enums of slim.h checked against the baseline, %d changes" % (
        len(base_structs), len(base_enums), len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
