"""The model card kept with its version: `model_card/model_card.md` and `model_card.json`,
artifacts of the version's run, written when the version is registered and rewritten after
every alias move that concerns it.

Best-effort throughout: a card that cannot be written prints one warning line on stderr and
never fails the registration or the move. Moves made under the registry lock only note the
versions they touched (`after_move`); the cards are written once the outermost lock is
released (`flush`, called by `alias_moves.locked`), so a slow artifact store never holds up
another process's promotion.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

from workbench.project import Project

_pending = threading.local()
#: The artifact files, relative to the run's artifact root.
MD_PATH = "model_card/model_card.md"
JSON_PATH = "model_card/model_card.json"


def write(project: Project, version: int) -> float:
    """Gather, render and log the card of `version` with its run; the seconds it took."""
    from workbench.registry import card, card_render
    from workbench.store import tracking

    started = time.perf_counter()
    facts = card.gather(project, version)
    run_id = facts["training"].get("run_id")
    if not run_id:
        raise ValueError(f"v{version} has no run to keep its card with")
    with tempfile.TemporaryDirectory(prefix="workbench-card-") as tmp:
        folder = Path(tmp)
        (folder / "model_card.md").write_text(card_render.render_md(facts), encoding="utf-8")
        (folder / "model_card.json").write_text(card_render.render_json(facts), encoding="utf-8")
        tracking.client(project).log_artifacts(run_id, tmp, artifact_path=card.ARTIFACT_DIR)
    return time.perf_counter() - started


def refresh(project: Project, version: int) -> bool:
    """`write`, never raising: a failure is one warning line on stderr."""
    try:
        write(project, version)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        print(f"workbench: warning: model card of v{version} not written: {first}", file=sys.stderr)
        return False
    return True


def after_move(project: Project, *versions: int | None) -> None:
    """Note the versions an alias move touched; `flush` writes their cards."""
    queued: dict[str, tuple[Project, set[int]]] = _pending.__dict__.setdefault("queued", {})
    key = str(project.root)
    entry = queued.setdefault(key, (project, set()))
    entry[1].update(v for v in versions if v is not None)


def flush() -> None:
    """Write the cards noted on this thread (called once the registry lock is released)."""
    queued: dict[str, tuple[Project, set[int]]] = _pending.__dict__.get("queued") or {}
    while queued:
        _, (project, versions) = queued.popitem()
        for version in sorted(versions):
            refresh(project, version)
