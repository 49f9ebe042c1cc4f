#!/usr/bin/env python3
"""Print which of mepgate's packages each package imports, as the Markdown table that
docs/architecture.md carries (tests/test_architecture.py checks that the two agree).

    .venv/bin/python scripts/depgraph.py
"""

from __future__ import annotations

import grimp


def package_imports() -> dict[str, set[str]]:
    """Top-level package (or bottom module) -> the other ones it imports directly."""
    graph = grimp.build_graph("mepgate")
    out: dict[str, set[str]] = {}
    for module in graph.modules:
        parts = module.split(".")
        if len(parts) < 2 or parts[1].startswith("__"):
            continue
        top = parts[1]
        out.setdefault(top, set())
        for imported in graph.find_modules_directly_imported_by(module):
            other = imported.split(".")
            inside = len(other) >= 2 and other[0] == "mepgate"
            if inside and other[1] != top and not other[1].startswith("__"):
                out[top].add(other[1])
    return out


def table() -> str:
    rows = ["| package | imports from |", "|---|---|"]
    for name, imports in sorted(package_imports().items()):
        rows.append(f"| {name} | {', '.join(sorted(imports)) or '-'} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
