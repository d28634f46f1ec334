#!/usr/bin/env python3
"""The crate's layering rules, checked from the source (CI runs this; see
docs/architecture.md, "Layers").

A module is a file under src/. An edge A -> B is any path in A's code (a `use`, or a
qualified path such as `crate::runtime::cpu::claim`, `super::message::Response` or, from
a module with a child `queue`, `queue::State`) that names B, resolved to the longest
module prefix; `mod` declarations are not edges. Rules:

1. nothing under src/sys imports from builder, guard, runtime, heap, sync, http, output,
   env, toggle, trace or session (platform code reports up through callbacks and
   return values);
2. nothing under src/sync imports from heap;
3. no import cycles of any length between modules (parents and children included).

    scripts/layers.py          # check; prints each violation, exits 1 if any
    scripts/layers.py --graph  # print the module graph
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
FORBIDDEN_FROM_SYS = {"builder", "guard", "runtime", "heap", "sync", "http", "output",
                      "env", "toggle", "trace", "session", "kind", "report", "criterion"}


def modules():
    """Module path (tuple) -> file."""
    out = {}
    for dirpath, _, files in os.walk(ROOT):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), ROOT)
            parts = rel[:-3].split(os.sep)
            if parts[0] == "bin":
                continue
            if parts[-1] in ("mod", "lib"):
                parts = parts[:-1]
            out[tuple(parts)] = os.path.join(dirpath, f)
    return out


def strip(src):
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    src = re.sub(r"//[^\n]*", "", src)
    src = re.sub(r'"(\\.|[^"\\])*"', '""', src)
    return src


def use_paths(src):
    """Every path the code names: expanded `use` trees and inline `a::b::c` paths (those
    from `crate`, `super` or `self`, and relative ones: `queue::State` in a module with a
    child `queue`; `resolve` drops the paths that name no module of the crate)."""
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", src):
        paths.extend(expand(m.group(1).replace("\n", " ")))
    body = re.sub(r"\buse\s+[^;]+;", "", src)
    for m in re.finditer(r"(?<![\w:])(\w+(?:\s*::\s*\w+)+)", body):
        paths.append([p.strip() for p in m.group(1).split("::")])
    return paths


def expand(tree, prefix=()):
    tree = tree.strip()
    if "{" not in tree:
        out = []
        for item in split_top(tree):
            item = re.sub(r"\s+as\s+\w+$", "", item.strip())
            if item:
                out.append(list(prefix) + [p.strip() for p in item.split("::") if p.strip()])
        return out
    i = tree.index("{")
    head = [p.strip() for p in tree[:i].split("::") if p.strip()]
    inner = tree[i + 1:tree.rindex("}")]
    out = []
    for item in split_top(inner):
        out.extend(expand(item, tuple(prefix) + tuple(head)))
    return out


def split_top(s):
    depth, cur, out = 0, "", []
    for c in s:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if c == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += c
    out.append(cur)
    return [x for x in out if x.strip()]


def resolve(path, here, mods):
    """The module a path names, or None (external crates, std)."""
    if not path:
        return None
    if path[0] == "crate":
        base, rest = (), path[1:]
    elif path[0] in ("super", "self"):
        base = here
        rest = path
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
    elif tuple(here) + (path[0],) in mods:
        # A relative path from a child module's name (Rust 2018 paths): `queue::State`
        # in `push`, or `use queue::State;`.
        base, rest = here, path
    else:
        return None
    best = None
    for n in range(len(rest) + 1):
        cand = tuple(base) + tuple(rest[:n])
        if cand in mods:
            best = cand
    return best


def graph():
    mods = modules()
    edges = {m: set() for m in mods}
    for m, f in mods.items():
        src = strip(open(f).read())
        # Inline test modules are part of the file but only its tests: leave them out.
        src = re.split(r"#\[cfg\(test\)\]\s*mod\s+tests", src)[0]
        for p in use_paths(src):
            t = resolve(p, m, mods)
            if t is not None and t != m and t != ():
                edges[m].add(t)
    return mods, edges


def name(m):
    return "::".join(m) if m else "crate"


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return out


def main():
    mods, edges = graph()
    if "--graph" in sys.argv:
        for m in sorted(edges):
            print(f"{name(m)} -> {', '.join(sorted(name(t) for t in edges[m]))}")
        return 0
    bad = []
    for m, ts in edges.items():
        for t in ts:
            if m[:1] == ("sys",) and t[0] in FORBIDDEN_FROM_SYS:
                bad.append(f"{name(m)} imports {name(t)}: src/sys holds platform code only")
            if m[:1] == ("sync",) and t[0] == "heap":
                bad.append(f"{name(m)} imports {name(t)}: src/sync must not depend on heap")
    for comp in cycles(edges):
        bad.append("import cycle: " + " <-> ".join(name(m) for m in comp))
    for b in sorted(bad):
        print(b)
    if bad:
        print(f"layers: {len(bad)} violation(s)")
        return 1
    print(f"layers: {len(mods)} modules, no violations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
