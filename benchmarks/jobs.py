"""Docker jobs: start latency with a cached image, and container vs local training time.

Prints, for the fraud_detection sample (50,000 rows, 150 iterations):
- the time from asking for a training job to its container running (goal < 1 s), cached image;
- the total time of the same training in a container and as a local process.

    python benchmarks/jobs.py [--base-image workbench-base:bookworm] [--repeat 3]

Needs a Docker engine and a base image (`workbench image bootstrap` makes one).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from workbench import plugins
from workbench.demo import samples
from workbench.jobs import control as jobs
from workbench.jobs import docker_engine, images
from workbench.project import Project

START_GOAL_S = 1.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-image", default="workbench-base:bookworm")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rows", type=int, default=50_000)
    args = ap.parse_args()

    client = docker_engine.connect()
    root = Path(tempfile.mkdtemp(prefix="wb-bench-jobs-")) / "proj"
    samples.init(root, "fraud_detection", rows=args.rows)
    ca = next(
        (
            os.environ[k]
            for k in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
            if os.environ.get(k) and Path(os.environ[k]).is_file()
        ),
        None,
    )
    with open(root / "workbench.toml", "a") as fh:
        fh.write(f'\n[docker]\nbase_image = "{args.base_image}"\n')
        if ca:
            fh.write(f'ca_bundle = "{ca}"\n')
    project = Project.load(root)

    t = time.perf_counter()
    tag = images.ensure_job_image(project, client, on_line=lambda _l: None)
    print(f"job image {tag}: ready in {time.perf_counter() - t:.1f} s (built or found)")
    t = time.perf_counter()
    images.ensure_job_image(project, client, on_line=lambda _l: None)
    print(
        f"job image up-to-date check (hash of the context + lookup): "
        f"{(time.perf_counter() - t) * 1000:.0f} ms"
    )

    docker, local = plugins.load("runner", "docker"), plugins.load("runner", "local")
    starts, totals = [], {"docker": [], "local": []}
    for _ in range(args.repeat):
        for runner in (docker, local):
            asked = time.perf_counter()
            out = jobs.run_training(project, runner)
            total = time.perf_counter() - asked
            assert out.ok, out.reason
            totals[runner.name].append(total)
            if runner.name == "docker":
                starts.append(_start_latency(project, out.job_id))
    start = statistics.median(starts)
    print(
        f"ask -> container running, cached image (median of {len(starts)}): {start:.3f} s "
        f"(goal {START_GOAL_S:.0f} s: {start / START_GOAL_S:.2f}x of budget)"
    )
    d, loc = statistics.median(totals["docker"]), statistics.median(totals["local"])
    print(
        f"training, total (median of {args.repeat}): container {d:.2f} s, local process "
        f"{loc:.2f} s (container / local = {d / loc:.2f}x)"
    )
    for c in client.containers.list(all=True, filters={"label": f"workbench.project_root={root}"}):
        c.remove(force=True)
    return 0


def _start_latency(project: Project, job_id: str) -> float:
    """From the job's first record (asked) to its `running` record (container started)."""
    from workbench.store.db import Db

    rows = Db(project.logs).rows(
        "SELECT status, ts FROM jobs_events WHERE job_id = ? ORDER BY ts", [job_id]
    )
    asked = next(r["ts"] for r in rows if r["status"] == "starting")
    running = next(r["ts"] for r in rows if r["status"] == "running")
    return (running - asked).total_seconds()


if __name__ == "__main__":
    raise SystemExit(main())
