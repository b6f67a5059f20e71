#!/usr/bin/env python3
"""Fails when the crate's module graph has a cycle.

One node per file under src/. An edge A -> B is any path from A that names
B: `crate::b::…`, `super::b`, `self::b`, or `b::…` for a module `b` that A
declares (a parent calling into its child counts, so a child that imports
its parent back is a cycle too). `#[cfg(test)] mod … { }` blocks are left
out: test code may reach anywhere. Usage: module_cycles.py [SRC] [--edges]
"""
import os
import re
import sys

args = [a for a in sys.argv[1:] if not a.startswith("--")]
src = args[0] if args else "src"
show_edges = "--edges" in sys.argv

files = {}
for root, _, names in os.walk(src):
    for n in names:
        if n.endswith(".rs"):
            path = os.path.join(root, n)
            parts = os.path.relpath(path, src)[:-3].replace(os.sep, "/").split("/")
            if parts[-1] == "mod":
                parts = parts[:-1]
            if parts == ["lib"]:
                parts = []  # the crate root; main.rs stays a node of its own
            files[tuple(parts)] = path


def longest_file(mod_path):
    for i in range(len(mod_path), -1, -1):
        if tuple(mod_path[:i]) in files:
            return tuple(mod_path[:i])
    return None


def without_tests_and_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


edges = {m: set() for m in files}
for mod, path in files.items():
    text = without_tests_and_comments(open(path, encoding="utf-8").read())
    children = set(re.findall(r"\bmod\s+(\w+)\s*;", text))
    for m in re.finditer(r"(?<![\w:])(crate|super|self|\w+)((?:::\w+)*)(::\{[^}]*\})?", text):
        head, rest, group = m.group(1), [s for s in m.group(2).split("::") if s], m.group(3)
        if not rest and not group:
            continue
        if head == "crate":
            base = []
        elif head == "super":
            base = list(mod[:-1])
        elif head == "self":
            base = list(mod)
        elif head in children:
            base, rest = list(mod), [head] + rest
        else:
            continue
        tails = [rest]
        if group:
            tails = [rest + [s for s in item.strip().split("::")[:1] if s and s != "self"]
                     for item in group[3:-1].split(",")]
        for tail in tails:
            target = longest_file(base + tail)
            if target not in (None, mod, ()):
                edges[mod].add(target)


def name(m):
    return "/".join(m) or "lib"


index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on_stack.add(v)
    for w in edges[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on_stack:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        component = []
        while True:
            w = stack.pop()
            on_stack.discard(w)
            component.append(w)
            if w == v:
                break
        if len(component) > 1:
            cycles.append(sorted(component))


sys.setrecursionlimit(10000)
for v in sorted(files):
    if v not in index:
        visit(v)

if show_edges:
    for v in sorted(files):
        print(f"{name(v)} -> {', '.join(sorted(name(w) for w in edges[v]))}")
print(f"modules {len(files)}, imports {sum(len(e) for e in edges.values())}, cycles {len(cycles)}")
for c in cycles:
    print("  cycle: " + ", ".join(name(m) for m in c))
sys.exit(1 if cycles else 0)
