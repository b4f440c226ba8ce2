"""`workbench demo`: a sample project with two trained versions, one in production."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from workbench import pipeline, registry, samples
from workbench.config import CONFIG_FILE
from workbench.jobs import resolve_runner
from workbench.project import Project


def prepare(target: Path | None, echo: Callable[[str], None] = print, rows: int = 50_000) -> Path:
    """Create (or reuse) a demo project and make sure it has a production and a staging model."""
    root = target or Path(tempfile.mkdtemp(prefix="workbench-demo-"))
    if not (root / CONFIG_FILE).exists():
        echo(f"creating the fraud_detection sample in {root}")
        samples.init(root, "fraud_detection", rows=rows)
    project = Project.load(root)
    runner = resolve_runner(project)

    def step(name: str, status: str, detail: str) -> None:
        if status != "running":
            echo(f"  {name:<9} {status}: {detail}")

    have = registry.list_versions(project)
    if not have:
        echo(f"training a first model on the {runner.name} runner")
        first = pipeline.run(project, runner, on_step=step)
        registry.promote(project, first.version, "demo: first model", alias="production")
        have = registry.list_versions(project)
    if len(have) < 2:
        echo("training a challenger with a higher learning rate")
        pipeline.run(
            project,
            runner,
            on_step=step,
            run_name="challenger",
            params={"learning_rate": 0.1, "num_leaves": 15},
        )
    return root


def summary(root: Path, as_json: bool = False) -> int:
    project = Project.load(root)
    versions = registry.list_versions(project)
    data = {
        "project": str(root),
        "model": project.config.model_name,
        "aliases": registry.aliases(project),
        "versions": [v.to_dict() for v in versions],
    }
    if as_json:
        print(json.dumps(data, indent=2, default=str))
        return 0
    metric = f"holdout_{project.config.evaluation.metric}"
    print(f"demo project: {root}")
    for v in versions:
        print(
            f"  v{v.version:<3} {', '.join(v.aliases) or '-':<22} {metric}="
            f"{v.metrics.get(metric, float('nan')):.4f}  run {v.run_id}"
        )
    print(f"open it: workbench --project {root}")
    return 0
