#!/usr/bin/env python3
"""Checks two rules of the code's shape over crates/*/src, outside test modules:

- no function is longer than --max-fn-lines lines (default 120);
- no module cycle inside a crate: modules A and B where A names something of B and B
  names something of A, directly or through others (a `mod.rs` re-exporting a file
  counts as using it; a re-export is followed to the module that defines the item).

Rust source is read as text (comments and string literals blanked, braces matched), not
parsed: enough for this codebase's style, not a general Rust front end. Prints what
breaks a rule and exits 1; exits 0 when both hold.
"""

import argparse
import re
import sys
from pathlib import Path

ITEM = r"\b(?:struct|enum|fn|trait|type|const|static|mod|union)\s+{}\b"


def blank(src):
    """`src` with comments, strings and char literals replaced by blanks (lines kept)."""
    out, i, n = [], 0, len(src)
    while i < n:
        if src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
            continue
        if src.startswith("/*", i):
            j = src.find("*/", i) + 2
            out.append("\n" * src.count("\n", i, j))
            i = j
            continue
        raw = re.match(r'r(#*)"', src[i : i + 8])
        if raw and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            end = '"' + raw.group(1)
            j = src.find(end, i + len(raw.group(0))) + len(end)
            out.append('""' + "\n" * src.count("\n", i, j))
            i = j
            continue
        if src[i] == '"':
            j = i + 1
            while src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            out.append('""' + "\n" * src.count("\n", i, j))
            i = j + 1
            continue
        if src[i] == "'":
            ch = re.match(r"'(\\.[^']*|[^\\'])'", src[i : i + 12])
            if ch:
                out.append("' '")
                i += len(ch.group(0))
                continue
        out.append(src[i])
        i += 1
    return "".join(out)


def block_end(text, open_brace):
    """Index of the brace closing the one at `open_brace`."""
    depth = 0
    for k in range(open_brace, len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return len(text) - 1


def without_tests(text):
    """`text` with every `#[cfg(test)]` module body blanked (lines kept)."""
    for m in reversed(list(re.finditer(r"#\[cfg\(test\)\]\s*(?:pub\s+)?mod\s+\w+\s*\{", text))):
        end = block_end(text, m.end() - 1)
        text = text[: m.start()] + "\n" * text.count("\n", m.start(), end) + text[end + 1 :]
    return text


def function_lengths(text):
    """(lines, name, first line) of each function in `text`."""
    for m in re.finditer(r"\bfn\s+(\w+)[^;{]*\{", text):
        first = text.count("\n", 0, m.start())
        last = text.count("\n", 0, block_end(text, m.end() - 1))
        yield last - first + 1, m.group(1), first + 1


class Crate:
    """The modules of one crate's src folder and the paths each names."""

    def __init__(self, src):
        self.src = src
        self.text, self.file = {}, {}
        for f in sorted(src.rglob("*.rs")):
            parts = list(f.relative_to(src).with_suffix("").parts)
            if parts[-1] in ("lib", "main", "mod"):
                parts.pop()
            self.text[tuple(parts)] = without_tests(blank(f.read_text()))
            self.file[tuple(parts)] = f
        self.reexports = {}
        for mod, text in self.text.items():
            for m in re.finditer(r"pub(?:\([^)]*\))?\s+use\s+([\w:]+?)::(\{[^}]*\}|\w+|\*)\s*;", text):
                base, path = self.start(mod, m.group(1).split("::"))
                for name in m.group(2).strip("{}").split(","):
                    name = name.strip()
                    if name:
                        key = name.split(" as ")[-1].strip().split("::")[-1]
                        self.reexports.setdefault((mod, key), []).append((base, path + name.split(" as ")[0].split("::")))

    def start(self, mod, path):
        """Where a path written in `mod` starts from, and the rest of it."""
        base = mod
        if path[0] == "crate":
            base, path = (), path[1:]
        elif path[0] == "self":
            path = path[1:]
        while path and path[0] == "super":
            base, path = base[:-1], path[1:]
        return base, path

    def resolve(self, base, path, depth=0):
        """The module that defines what `path` (from module `base`) names."""
        full = list(base) + path
        for k in range(len(full), -1, -1):
            mod = tuple(full[:k])
            if mod not in self.text:
                continue
            if k == len(full) or depth > 8:
                return mod
            name = full[k]
            if re.search(ITEM.format(name), self.text[mod]):
                return mod
            for b, p in self.reexports.get((mod, name), []) + self.reexports.get((mod, "*"), []):
                if p[-1] == "*":
                    target = self.resolve(b, p[:-1], depth + 1)
                    if target in self.text and re.search(ITEM.format(name), self.text[target]):
                        return target
                elif p[-1] == name:
                    return self.resolve(b, p, depth + 1)
            return mod
        return ()

    def edges(self):
        """Module -> the other modules of the crate it names."""
        graph = {mod: set() for mod in self.text}
        for mod, text in self.text.items():
            used = []
            for m in re.finditer(r"(?<![\w:])(crate|super|self|\w+)((?:::\w+)*)(?:::\{([^{}]*)\})?", text):
                head, rest, group = m.group(1), m.group(2).split("::")[1:], m.group(3)
                if not rest and group is None:
                    continue
                if head not in ("crate", "super", "self") and mod + (head,) not in self.text:
                    continue
                path = [head] + rest
                used += [path + g.strip().split(" ")[0].split("::") for g in group.split(",") if g.strip()] if group else [path]
            for path in used:
                base, rest = self.start(mod, path)
                target = self.resolve(base, [p for p in rest if p != "self"])
                if target != mod and target != ():
                    graph[mod].add(target)
        return graph


def cycles(graph):
    """The strongly connected sets of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("."), help="the workspace")
    ap.add_argument("--max-fn-lines", type=int, default=120)
    args = ap.parse_args()
    srcs = sorted(args.root.glob("crates/*/src"))
    if not srcs:
        sys.exit(f"error: no crates/*/src under {args.root}")
    bad, functions, modules = 0, 0, 0
    for src in srcs:
        crate = Crate(src)
        modules += len(crate.text)
        for mod, text in crate.text.items():
            for lines, name, first in function_lengths(text):
                functions += 1
                if lines > args.max_fn_lines:
                    where = f"{crate.file[mod].relative_to(args.root)}:{first}"
                    print(f"{where}: fn {name} is {lines} lines (at most {args.max_fn_lines})")
                    bad += 1
        for comp in cycles(crate.edges()):
            names = ", ".join("::".join(m) or "(crate root)" for m in comp)
            print(f"{src.relative_to(args.root)}: module cycle: {names}")
            bad += 1
    print(f"{len(srcs)} crates, {modules} modules, {functions} functions: {bad} problems")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
