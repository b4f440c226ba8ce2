"""`workbench demo`: a sample project with two trained versions, one in production."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.config import CONFIG_FILE
from workbench.demo import samples
from workbench.jobs.control import resolve_runner
from workbench.jobs.observer import JobObserver
from workbench.pipeline import flow as pipeline
from workbench.project import Project
from workbench.registry import versions as registry


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

    steps = JobObserver(on_step=step)

    have = registry.list_versions(project)
    if not have:
        echo(f"training a first model on the {runner.name} runner")
        first = pipeline.run(project, runner, steps)
        registry.promote(project, first.version, "demo: first model", alias="production")
        have = registry.list_versions(project)
    if len(have) < 2:
        echo("training a challenger with a higher learning rate")
        pipeline.run(
            project,
            runner,
            steps,
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
    metric = f"holdout_{project.config.metric}"
    print(f"demo project: {root}")
    for v in versions:
        print(
            f"  v{v.version:<3} {', '.join(v.aliases) or '-':<22} {metric}="
            f"{v.metrics.get(metric, float('nan')):.4f}  run {v.run_id}"
        )
    print(f"open it: workbench --project {root}")
    return 0


# --- the second act: serving, drift, retraining, a canary ------------------------------------


def _post(url: str, path: str, body: Any) -> Any:
    import urllib.request

    req = urllib.request.Request(
        url + path, json.dumps(body).encode(), {"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:  # loopback
        return json.loads(resp.read())


def _traffic(url: str, frame: Any, features: list[str], target: str, prefix: str) -> int:
    """Send the rows as predictions in batches of 250, then their labels (delayed truth)."""
    rows = frame.select([*features, target]).to_dicts()
    labels = []
    for start in range(0, len(rows), 250):
        chunk = rows[start : start + 250]
        records = [
            {**{k: r[k] for k in features}, "request_id": f"{prefix}-{start + i}"}
            for i, r in enumerate(chunk)
        ]
        _post(url, "/predict", records)
        labels += [
            {"request_id": f"{prefix}-{start + i}", "label": r[target]} for i, r in enumerate(chunk)
        ]
    _post(url, "/labels", {"labels": labels})
    return len(rows)


def second_act(
    root: Path, echo: Callable[[str], None] = print, port: int | None = None
) -> dict[str, Any]:
    """Serve production, send clean then drifted traffic (with labels), let the monitor see
    the drift, retrain on the newest data and start the candidate as a canary."""
    import importlib
    import socket

    import polars as pl

    from workbench.monitoring import monitor
    from workbench.serving import deployments
    from workbench.serving import process as server_process

    project = Project.load(root)
    cfg = project.config
    if port is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
    running = deployments.read_server(project)
    if running:
        url, job = str(running["url"]), str(running.get("job_id"))
        echo(f"act 2: the server already runs at {url}")
    else:
        echo("act 2: serving production over HTTP")
        job, url, _ = server_process.start_detached(project, "127.0.0.1", port, timeout=600)
        echo(f"  serving at {url} (job {job}; stop it: workbench stop {job})")
    clean = pl.read_parquet(project.data_path).sort(cfg.data.timestamp or pl.first()).tail(1_500)
    sent = _traffic(url, clean, cfg.features, cfg.data.target, "demo-clean")
    echo(f"  sent {sent:,} ordinary requests, then their labels")
    generator = importlib.import_module("workbench_samples.fraud_detection.generate")
    drifted = generator.generate(3_000, seed=11, drift=True)
    sent = _traffic(url, drifted, cfg.features, cfg.data.target, "demo-drift")
    echo(f"  sent {sent:,} requests from a world that moved on (bigger amounts, crypto exchanges)")

    # The newest data joins the snapshot, and the business now accepts crypto exchanges:
    # the schema learns the category, so validation lets the retraining through.
    newest = project.data_path.parent / "transactions-later.parquet"
    generator.generate(20_000, seed=12, drift=True).write_parquet(newest)
    _allow_category(project, "merchant_category", "crypto_exchange")
    echo(f"  newest data: {newest.name}; schema now allows merchant_category 'crypto_exchange'")

    project = Project.load(root)
    _wait_logged(project, "demo-drift-%", sent)
    echo("  monitor: checking drift and performance")
    outcome = monitor.check_once(
        project, on_step=lambda n, s, d: echo(f"    {n:<9} {s}: {d}") if s != "running" else None
    )
    echo(f"  monitor: {outcome.reason}")
    if outcome.candidate:
        canary = " and started it as a canary" if outcome.canary else ""
        echo(f"  retrained: v{outcome.candidate} registered{canary}")
        # a little traffic so the canary shows up in the stats
        _traffic(url, drifted.head(1_000), cfg.features, cfg.data.target, "demo-canary")
    if outcome.error:
        echo(f"  retraining failed: {outcome.error}")
    echo(
        "  next: press 7 (Drift) and 5 (Deployments) in the TUI, then promote (p) or roll back "
        "(r) the canary; or `workbench canary promote --reason ...`"
    )
    return {"url": url, "job": job, "monitor": outcome.to_dict()}


def _wait_logged(project: Project, pattern: str, n: int, timeout_s: float = 15.0) -> None:
    """Wait until the server's prediction log holds the requests sent (it writes every
    second, on its own thread)."""
    import time

    from workbench.store.db import Db

    deadline = time.monotonic() + timeout_s
    with Db(project.logs) as db:
        while time.monotonic() < deadline:
            sql = "SELECT count(*) AS n FROM predictions WHERE request_id LIKE ?"
            if db.rows(sql, [pattern])[0]["n"] >= n:
                return
            time.sleep(0.2)


def _allow_category(project: Project, column: str, value: str) -> None:
    """Add `value` to `[schema.column].allowed` and point `[data].path` at every file in the
    data folder, editing workbench.toml as text (comments stay)."""
    import re

    path = project.root / CONFIG_FILE
    text = path.read_text()
    spec = project.config.schema_.get(column)
    if spec is not None and spec.allowed is not None and value not in spec.allowed:
        pattern = re.compile(rf"(\[schema\.{re.escape(column)}\][^\[]*?allowed\s*=\s*\[)", re.S)
        text = pattern.sub(lambda m: f'{m.group(1)}\n    "{value}",', text, count=1)
    data_path = project.config.data.path
    if "*" not in data_path:
        folder = str(Path(data_path).parent)
        glob = "*.parquet" if folder in ("", ".") else f"{folder}/*.parquet"
        text = text.replace(f'path = "{data_path}"', f'path = "{glob}"', 1)
    path.write_text(text)
