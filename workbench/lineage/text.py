"""A lineage as plain text in 80 columns: the upstream tree above the root, the downstream
tree below it, one line per node (kind, title, when); a node met twice is shown once and
marked `(above)` after; a node whose neighbours passed the fan-out cap ends with a line
`… N more left out`."""

from __future__ import annotations

from collections.abc import Callable

from workbench.lineage.model import Lineage, Node

WIDTH = 80


def _when(node: Node) -> str:
    return node.ts.strftime("%Y-%m-%d %H:%M") if node.ts else ""


def line(prefix: str, node: Node, note: str = "", width: int = WIDTH) -> str:
    when = _when(node)
    head = f"{prefix}{node.kind:<10} "
    room = width - len(head) - len(when) - 1 - len(note)
    title = node.title if len(node.title) <= room else node.title[: max(room - 1, 0)] + "…"
    body = f"{head}{title}{note}"
    return f"{body:<{width - len(when)}}{when}" if when else body


def _tree(
    lin: Lineage, key: str, step: Callable[[str], list[Node]], seen: set[str], indent: str
) -> list[str]:
    out: list[str] = []
    kids = step(key)
    more = lin.left_out.get(key, 0) if kids else 0
    for i, node in enumerate(kids):
        last = i == len(kids) - 1 and not more
        branch, pad = ("└─ ", "   ") if last else ("├─ ", "│  ")
        if node.key in seen:
            out.append(line(indent + branch, node, " (above)"))
            continue
        seen.add(node.key)
        out.append(line(indent + branch, node))
        out += _tree(lin, node.key, step, seen, indent + pad)
    if more:
        out.append(f"{indent}└─ … {more:,} more, left out (the fan-out cap keeps the newest)")
    return out


def render(lin: Lineage, width: int = WIDTH) -> str:
    root = lin.nodes[lin.root]
    up = _tree(lin, root.key, lambda k: lin.upstream(k), {root.key}, "")
    down = _tree(lin, root.key, lambda k: lin.downstream(k), {root.key}, "")
    lines = ["upstream (what it came from):"] + (up or ["   (nothing)"])
    lines.append(line("", root, "  <- this", width))
    lines += ["downstream (what came of it):"] + (down or ["   (nothing)"])
    return "\n".join(lines) + "\n"
