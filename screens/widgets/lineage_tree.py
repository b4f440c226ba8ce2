"""The lineage graph as a Textual Tree: the upstream chain above the root (farthest first:
dataset, job, run), the root highlighted, its downstream nested below it (alias moves,
approvals, deployments, serving, drift checks, retraining, the next version). One line per
node: a kind tag, the title, a short time and the edge's label. Every line's data is its
node's key, so every line opens its node's details.

Only the model (plain data) is imported: building the graph is the screen's worker's job."""

from __future__ import annotations

import json
from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widgets import Tree
from workbench_tui.formatting import ellipsize

if TYPE_CHECKING:
    from textual.widgets.tree import TreeNode

    from workbench.lineage.model import Lineage, Node

#: A short tag per node kind, and its colour.
TAGS: dict[str, tuple[str, str]] = {
    "dataset": ("DATA", "cyan"),
    "job": ("JOB", "blue"),
    "run": ("RUN", "magenta"),
    "version": ("VER", "green"),
    "alias": ("ALIAS", "yellow"),
    "approval": ("APPR", "yellow"),
    "deployment": ("DEPLOY", "green"),
    "serving": ("SERVE", "green"),
    "drift": ("DRIFT", "red"),
    "retrain": ("RETRAIN", "red"),
    "request": ("REQ", "cyan"),
}
TAG_WIDTH = 8  # the longest tag and a space
TITLE_WIDTH = 44


def short_time(ts: datetime | None) -> str:
    if ts is None:
        return ""
    return ts.strftime("%m-%d %H:%M") if isinstance(ts, datetime) else str(ts)[5:16]


def node_label(node: Node, *, root: bool = False, edge: str = "", seen: bool = False) -> Text:
    """One tree line: tag, title, time, the edge's label (dim); the root bold and reversed."""
    tag, colour = TAGS.get(node.kind, (node.kind.upper()[:TAG_WIDTH], "white"))
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{tag} ".ljust(TAG_WIDTH), style=f"bold {colour}")
    title = ellipsize(" ".join(node.title.split()), TITLE_WIDTH)
    text.append(("◆ " if root else "") + title, style="bold reverse" if root else "")
    when = short_time(node.ts)
    if when:
        text.append(f"  {when}", style="dim")
    if edge:
        text.append(f"  {edge}", style="dim italic")
    if seen:
        text.append("  (shown above)", style="dim")
    return text


def upstream_levels(lineage: Lineage) -> list[tuple[int, Node]]:
    """Every node upstream of the root with its distance from it, farthest first."""
    distance: dict[str, int] = {}
    queue = deque([(lineage.root, 0)])
    while queue:
        key, d = queue.popleft()
        for parent in lineage.upstream(key):
            if parent.key != lineage.root and parent.key not in distance:
                distance[parent.key] = d + 1
                queue.append((parent.key, d + 1))
    nodes = [(d, lineage.nodes[k]) for k, d in distance.items()]
    return sorted(nodes, key=lambda item: (-item[0], _ts_key(item[1])))


def _ts_key(node: Node) -> str:
    return node.ts.isoformat() if node.ts is not None else ""


def _edge_label(lineage: Lineage, src: str, dst: str) -> str:
    return next((e.label for e in lineage.edges if e.src == src and e.dst == dst and e.label), "")


class LineageTree(Tree[str]):
    """The tree of one Lineage. `show(lineage)` fills it; `cursor_to_root()` selects the root."""

    DEFAULT_CSS = """
    LineageTree { background: $surface; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("lineage", **kwargs)
        self.show_root = False
        self.auto_expand = False  # enter shows details; space folds a branch
        self.guide_depth = 3
        self.root_node: TreeNode[str] | None = None
        self.root_line = 0  # the root's line: after the upstream lines (each one line)

    def show(self, lineage: Lineage) -> TreeNode[str] | None:
        """Fill the tree from `lineage`; return the root node's line (None if it is missing)."""
        self.clear()
        self.root_node = None
        root = lineage.nodes.get(lineage.root)
        if root is None:
            return None
        placed: set[str] = {root.key}
        upstream = upstream_levels(lineage)
        self.root_line = len(upstream)
        for _, node in upstream:
            below = [c.key for c in lineage.downstream(node.key)]
            edge = _edge_label(lineage, node.key, below[0]) if below else ""
            self.root.add_leaf(node_label(node, edge=f"↓ {edge}" if edge else ""), data=node.key)
            placed.add(node.key)
        self.root_node = self.root.add(node_label(root, root=True), data=root.key, expand=True)
        self._add_downstream(lineage, root.key, self.root_node, placed)
        self.root_node.allow_expand = bool(self.root_node.children)
        rest = [n for k, n in lineage.nodes.items() if k not in placed]
        if rest:
            other = self.root.add(Text("related", style="dim"), expand=True)
            for node in sorted(rest, key=_ts_key):
                other.add_leaf(node_label(node), data=node.key)
        return self.root_node

    def cursor_to_root(self) -> None:
        if self.root_node is not None:
            self.move_cursor_to_line(self.root_line)  # builds the lines if not yet drawn

    def _add_downstream(
        self, lineage: Lineage, key: str, parent: TreeNode[str], placed: set[str]
    ) -> None:
        children = sorted(lineage.downstream(key), key=_ts_key)
        for child in children:
            edge = _edge_label(lineage, key, child.key)
            if child.key in placed:  # reached twice (a diamond, a cycle): one line, no branch
                parent.add_leaf(node_label(child, edge=edge, seen=True), data=child.key)
                continue
            placed.add(child.key)
            if lineage.downstream(child.key):
                branch = parent.add(node_label(child, edge=edge), data=child.key, expand=True)
                self._add_downstream(lineage, child.key, branch, placed)
                branch.allow_expand = bool(branch.children)
            else:
                parent.add_leaf(node_label(child, edge=edge), data=child.key)


def detail_rows(node: Node) -> list[tuple[str, str]]:
    """A node's details as (key, value) rows: key, kind, title and time first."""
    rows = [("key", node.key), ("kind", node.kind), ("title", node.title)]
    if node.ts is not None:
        ts = node.ts
        when = ts.isoformat(sep=" ", timespec="seconds") if isinstance(ts, datetime) else str(ts)
        rows.append(("time", when))
    for name, value in node.details.items():
        rows.append((str(name), _cell(value)))
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        text = value
    elif isinstance(value, dict | list | tuple):
        text = json.dumps(value, default=str, separators=(", ", ": "))
    else:
        text = str(value)
    return ellipsize(" ".join(text.split()), 400)
