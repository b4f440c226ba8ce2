"""`workbench demo`: a sample project with two trained versions, one in production; its
second act serves production, sends clean then drifted traffic with labels, and lets the
monitor retrain. Every sample works: the labels sent are the target's own values (a class
name, a 0/1 label, a number of minutes), as a client would send them."""

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

DEFAULT_SAMPLE = "fraud_detection"


def prepare(
    target: Path | None,
    echo: Callable[[str], None] = print,
    rows: int = 50_000,
    sample: str = DEFAULT_SAMPLE,
) -> Path:
    """Create (or reuse) a demo project and make sure it has a production and a staging model.
    An existing project in `target` is reused whatever `sample` says."""
    if not (target is not None and (target / CONFIG_FILE).exists()):
        samples.load_generator(sample)  # an unknown sample fails before anything is created
    root = target or Path(tempfile.mkdtemp(prefix="workbench-demo-"))
    if not (root / CONFIG_FILE).exists():
        echo(f"creating the {sample} sample in {root}")
        samples.init(root, sample, rows=rows)
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
    """POST JSON to the demo's server; an HTTP error is one line with the server's reason."""
    import urllib.error
    import urllib.request

    from workbench.errors import WorkbenchError

    req = urllib.request.Request(
        url + path, json.dumps(body).encode(), {"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # loopback
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        reason = _reason(exc)
        raise WorkbenchError(f"demo: POST {path} to {url}: HTTP {exc.code}: {reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise WorkbenchError(f"demo: POST {path} to {url}: {exc}") from None


def _reason(exc: Any) -> str:
    """The `error` of a JSON error body, else its first line."""
    try:
        text = exc.read().decode("utf-8", "replace")
    except OSError:
        return str(exc.reason)
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"]).splitlines()[0][:300]
    lines = text.strip().splitlines() or [str(exc.reason)]
    return str(lines[0])[:300]


def _traffic(url: str, frame: Any, features: list[str], target: str, prefix: str) -> int:
    """Send the rows as predictions in batches of 250, then their labels (delayed truth): the
    target's values as they are in the data (class names, 0/1, numbers)."""
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
    the drift, retrain on the newest data and start the candidate as a canary.

    The project must be one of the samples (by its `[project].name`): the drifted traffic
    comes from that sample's generator. A server this act started is stopped again when the
    act fails; on success it keeps running (the TUI shows its traffic)."""
    from workbench.errors import WorkbenchError
    from workbench.jobs.control import stop_job

    project = Project.load(root)
    generator = _generator_of(project)
    url, job, started = _serve(project, port, echo)
    try:
        outcome = _drift_and_retrain(project, generator, url, echo)
    except WorkbenchError:
        if started:
            echo(f"  act 2 failed: stopping the server it started (job {job})")
            stop_job(project, job)
        raise
    echo(
        "  next: press 7 (Drift) and 5 (Deployments) in the TUI, then promote (p) or roll back "
        "(r) the canary; or `workbench canary promote --reason ...`"
    )
    return {"url": url, "job": job, "monitor": outcome}


def _serve(
    project: Project, port: int | None, echo: Callable[[str], None]
) -> tuple[str, str, bool]:
    """The server's url and job, and whether this call started it."""
    import socket

    from workbench.serving import deployments
    from workbench.serving import process as server_process

    running = deployments.read_server(project)
    if running:
        url, job = str(running["url"]), str(running.get("job_id"))
        echo(f"act 2: the server already runs at {url}")
        return url, job, False
    if port is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
    echo("act 2: serving production over HTTP")
    job, url, _ = server_process.start_detached(project, "127.0.0.1", port, timeout=600)
    echo(f"  serving at {url} (job {job}; stop it: workbench stop {job})")
    return url, job, True


def _drift_and_retrain(
    project: Project, generator: Any, url: str, echo: Callable[[str], None]
) -> dict[str, Any]:
    """Clean then drifted traffic with labels, the newest data, the monitor's round."""
    import polars as pl

    from workbench.monitoring import monitor

    cfg = project.config
    snapshot = pl.read_parquet(project.data_path)
    clean = snapshot.sort(cfg.data.timestamp or pl.first()).tail(1_500)
    sent = _traffic(url, clean, cfg.features, cfg.data.target, "demo-clean")
    echo(f"  sent {sent:,} ordinary requests, then their labels")
    drifted = generator.generate(3_000, seed=11, drift=True)
    sent = _traffic(url, drifted, cfg.features, cfg.data.target, "demo-drift")
    story = samples.drift_story(generator)
    echo(f"  sent {sent:,} requests from a world that moved on" + (f" ({story})" if story else ""))

    # The newest data joins the snapshot, and the business now accepts what the drift brought
    # (fraud: crypto exchanges; tickets: a new product): the schema learns the new values,
    # so validation lets the retraining through.
    newest = _newest_path(project)
    # as much new data as 40% of the snapshot (20,000 rows for the demo's 50,000), so the
    # retraining's time-split holdout is all new world
    later = generator.generate(
        min(20_000, max(1_000, snapshot.height * 2 // 5)), seed=12, drift=True
    )
    later.write_parquet(newest)
    allowed = samples.new_values(cfg, later)
    _allow_values(project, allowed)
    shown = "; ".join(f"{c} {', '.join(repr(v) for v in vs)}" for c, vs in allowed.items())
    echo(f"  newest data: {newest.name}" + (f"; schema now allows {shown}" if shown else ""))

    project = Project.load(project.root)
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
    return outcome.to_dict()


def _wait_logged(project: Project, pattern: str, n: int, timeout_s: float = 15.0) -> None:
    """Wait until the server's prediction log holds the requests sent (it writes every
    second, on its own thread)."""
    import time

    from workbench.store.db import Db

    deadline = time.monotonic() + timeout_s
    with Db(project.logs_root) as db:
        while time.monotonic() < deadline:
            sql = "SELECT count(*) AS n FROM predictions WHERE request_id LIKE ?"
            if db.rows(sql, [pattern])[0]["n"] >= n:
                return
            time.sleep(0.2)


def _generator_of(project: Project) -> Any:
    """The generator of the sample this project was made from (its `[project].name`)."""
    from workbench.errors import UsageError

    name = project.config.project.name
    if name not in samples.available():
        raise UsageError(
            f"{project.root / CONFIG_FILE}: [project].name {name!r} is not a sample "
            f"({', '.join(samples.available())}): the demo's second act needs one"
        )
    return samples.load_generator(name)


def _newest_path(project: Project) -> Path:
    """Where the newest (drifted) data goes: beside the snapshot, `<stem>-later.parquet`."""
    data = Path(project.config.data.path)
    folder = (project.root / data).parent
    if "*" in data.name:  # a second act before this one pointed the data at the folder
        earlier = sorted(folder.glob("*-later.parquet"))
        return earlier[0] if earlier else folder / f"{project.config.project.name}-later.parquet"
    return folder / f"{data.stem}-later.parquet"


def _allow_values(project: Project, new: dict[str, list[Any]]) -> None:
    """Add the values to each `[schema.column].allowed` and point `[data].path` at every file
    in the data folder, editing workbench.toml as text (comments stay)."""
    import re

    path = project.root / CONFIG_FILE
    text = path.read_text()
    for column, values in new.items():
        spec = project.config.schema_.get(column)
        if spec is None or spec.allowed is None:
            continue
        added = "".join(f"\n    {json.dumps(str(v))}," for v in values if v not in spec.allowed)
        found = re.search(rf"\[schema\.{re.escape(column)}\][^\[]*?allowed\s*=\s*\[", text, re.S)
        if found and added:
            text = text[: found.end()] + added + text[found.end() :]
    data_path = project.config.data.path
    if "*" not in data_path:
        folder = str(Path(data_path).parent)
        glob = "*.parquet" if folder in ("", ".") else f"{folder}/*.parquet"
        text = text.replace(f'path = "{data_path}"', f'path = "{glob}"', 1)
    path.write_text(text)
