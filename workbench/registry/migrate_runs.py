"""The runs half of `workbench store migrate` (see migrate.py): experiments, runs and
MLflow 3 logged models copied through MLflow's client, and what an earlier attempt copied found
again by the `workbench.migrated_from` tag each copy carries.

A run is created with `workbench.migration_incomplete` and loses it as its last step; a rerun
deletes a run that still has it and copies that run again. Params, tags and metric points go
in `log_batch` calls of MLflow's limits (100 params and 100 tags, 1000 metric points).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import UsageError, WorkbenchError
from workbench.project import Project
from workbench.registry import migrate_source as src
from workbench.registry import migrate_target as tgt

MIGRATED_TAG = "workbench.migrated_from"
INCOMPLETE_TAG = "workbench.migration_incomplete"
AUDIT_TAG = "workbench.audit"
#: Tags this migration adds; the counts leave them out on the target's side.
OWN_TAGS = (MIGRATED_TAG, INCOMPLETE_TAG)
METRICS_PER_BATCH = 1000  # MLflow's log_batch limits
PARAMS_TAGS_PER_BATCH = 100
AUDIT_TAG_CHARS = 90_000  # a registry tag holds 100k characters: longer histories are split
_HEX = re.compile(r"\b[0-9a-f]{32}\b|\bm-[0-9a-f]{32}\b")


@dataclass
class Options:
    target: str
    artifacts_destination: str | None = None
    prefix: str = ""
    dry_run: bool = False
    every: int = 50  # a progress line per this many runs
    echo: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr))


@dataclass
class Mapping:
    """Old id -> new id, as copied or found in the target."""

    runs: dict[str, str] = field(default_factory=dict)
    logged_models: dict[str, str] = field(default_factory=dict)
    uris: dict[str, str] = field(default_factory=dict)  # artifact location prefixes
    experiments: dict[str, str] = field(default_factory=dict)  # source name -> target id
    models: dict[str, str] = field(default_factory=dict)  # source name -> target name
    copied: dict[str, int] = field(default_factory=dict)  # what this attempt wrote

    def text(self, value: str) -> str:
        """`value` with every old run id, logged model id and artifact location replaced."""
        for old, new in self.uris.items():
            value = value.replace(old, new)

        def swap(m: re.Match[str]) -> str:
            hit = m.group(0)
            return self.runs.get(hit) or self.logged_models.get(hit) or hit

        return _HEX.sub(swap, value)

    def source_uri(self, uri: str) -> str:
        if uri.startswith("models:/") and uri[8:] in self.logged_models:
            return f"models:/{self.logged_models[uri[8:]]}"
        if uri.startswith("runs:/"):
            run, _, rest = uri[6:].partition("/")
            return f"runs:/{self.runs.get(run, run)}/{rest}"
        return self.text(uri)

    def count(self, what: str, n: int = 1) -> None:
        self.copied[what] = self.copied.get(what, 0) + n


def mapping_path(project: Project, target: str) -> Path:
    digest = hashlib.sha256(tgt.masked(target).encode()).hexdigest()[:12]
    return project.store / "migrations" / f"{digest}.json"


def check_options(opts: Options) -> None:
    kind = tgt.kind(opts.target)
    if kind == "database" and not opts.artifacts_destination:
        raise UsageError(
            f"--to {tgt.masked(opts.target)}: a database has no artifact store; pass "
            "--artifacts-destination s3://bucket/prefix (with MLFLOW_S3_ENDPOINT_URL for a "
            "non-AWS S3) or a folder every teammate can read"
        )
    if opts.every < 1:
        raise UsageError(f"--progress-every must be 1 or more (got {opts.every})")


# --- the target's existing copies ------------------------------------------------------------


def _search_runs(client: Any, exp_ids: list[str]) -> list[Any]:
    from mlflow.entities import ViewType

    found: list[Any] = []
    token = None
    while exp_ids:
        page = client.search_runs(
            exp_ids,
            filter_string=f"tags.`{MIGRATED_TAG}` != ''",
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=1000,
            page_token=token,
        )
        found += list(page)
        token = page.token
        if not token:
            break
    return found


def existing(client: Any, source: src.Source, opts: Options, maps: Mapping) -> None:
    """Find what an earlier attempt copied (runs, logged models), and drop its half copies."""
    names = sorted(
        {r.experiment for r in source.runs} | {m.experiment for m in source.logged_models}
    )
    for name in names:
        exp = client.get_experiment_by_name(opts.prefix + name)
        if exp is not None:
            maps.experiments[name] = exp.experiment_id
    wanted = {r.run_id for r in source.runs}
    for run in _search_runs(client, list(maps.experiments.values())):
        old = run.data.tags.get(MIGRATED_TAG)
        if old not in wanted:
            continue
        if INCOMPLETE_TAG in run.data.tags or old in maps.runs:
            if not opts.dry_run:
                client.delete_run(run.info.run_id)  # cut short (or a twin): copied again
            continue
        maps.runs[old] = run.info.run_id
        old_uri = next(r.artifact_uri for r in source.runs if r.run_id == old)
        if old_uri:
            maps.uris[old_uri] = run.info.artifact_uri
    _existing_models(client, source, opts, maps)


def _existing_models(client: Any, source: src.Source, opts: Options, maps: Mapping) -> None:
    if not source.logged_models or not maps.experiments:
        return
    wanted = {m.model_id: m for m in source.logged_models}
    token = None
    while True:
        page = client.search_logged_models(
            list(maps.experiments.values()), max_results=100, page_token=token
        )
        for model in page:
            old = model.tags.get(MIGRATED_TAG)
            if old not in wanted:
                continue
            made_by = wanted[old].source_run_id
            orphan = made_by is not None and model.source_run_id != maps.runs.get(made_by)
            if orphan or (str(model.status) != "READY" and wanted[old].status == 2):
                if not opts.dry_run:
                    client.delete_logged_model(model.model_id)
                continue
            maps.logged_models[old] = model.model_id
            maps.uris[wanted[old].artifact_location] = model.artifact_location
        token = page.token
        if not token:
            return


# --- experiments, runs, logged models -----------------------------------------------------


def _experiment(client: Any, name: str, opts: Options, maps: Mapping) -> str:
    if name in maps.experiments:
        return maps.experiments[name]
    target = opts.prefix + name
    exp = client.get_experiment_by_name(target)
    if exp is None:
        location = None
        if opts.artifacts_destination:
            slug = re.sub(r"[^A-Za-z0-9._-]+", "-", target).strip("-") or "experiment"
            location = f"{opts.artifacts_destination.rstrip('/')}/{slug}"
        exp_id = client.create_experiment(target, artifact_location=location)
        maps.count("experiments")
    else:
        exp_id = exp.experiment_id
    maps.experiments[name] = exp_id
    return str(exp_id)


def _upload(upload: Callable[[str, str], None], new_id: str, location: str | None) -> int:
    folder = src.local_dir(location)
    if folder is None or not folder.is_dir() or not any(folder.iterdir()):
        return 0
    upload(new_id, str(folder))
    return sum(1 for p in folder.rglob("*") if p.is_file())


def _copy_logged_model(
    client: Any, model: src.SourceLoggedModel, run_id: str | None, opts: Options, maps: Mapping
) -> None:
    from mlflow.entities import LoggedModelStatus

    exp_id = _experiment(client, model.experiment, opts, maps)
    tags = {k: maps.text(v) for k, v in model.tags.items() if k not in OWN_TAGS}
    if "mlflow.modelVersions" in tags:
        tags["mlflow.modelVersions"] = _renamed_versions(tags["mlflow.modelVersions"], opts)
    made = client.create_logged_model(
        exp_id,
        name=model.name,
        source_run_id=run_id,
        tags={**tags, MIGRATED_TAG: model.model_id},
        params=model.params or None,
        model_type=model.model_type,
    )
    maps.count(
        "artifact files",
        _upload(client.log_model_artifacts, made.model_id, model.artifact_location),
    )
    client.finalize_logged_model(made.model_id, LoggedModelStatus.from_int(int(model.status)))
    maps.logged_models[model.model_id] = made.model_id
    maps.uris[model.artifact_location] = made.artifact_location
    maps.count("logged models")


def _renamed_versions(value: str, opts: Options) -> str:
    try:
        listed = json.loads(value)
        return json.dumps([{**v, "name": opts.prefix + v["name"]} for v in listed])
    except (ValueError, TypeError, KeyError):
        return value


def _copy_run(
    client: Any, run: src.SourceRun, source: src.Source, opts: Options, maps: Mapping
) -> None:
    from mlflow.entities import Metric, Param, RunTag

    exp_id = _experiment(client, run.experiment, opts, maps)
    first = {MIGRATED_TAG: run.run_id, INCOMPLETE_TAG: "1"}
    user_added = bool(run.user) and "mlflow.user" not in run.tags
    if run.user:
        first["mlflow.user"] = run.tags.get("mlflow.user", run.user)
    made = client.create_run(exp_id, start_time=run.start_time, tags=first, run_name=run.name)
    new_id = made.info.run_id
    maps.runs[run.run_id] = new_id
    if run.artifact_uri:
        maps.uris[run.artifact_uri] = made.info.artifact_uri
    for model in source.logged_models:
        if model.source_run_id == run.run_id and model.model_id not in maps.logged_models:
            _copy_logged_model(client, model, new_id, opts, maps)
    tags = [RunTag(k, maps.text(v)) for k, v in run.tags.items() if k not in OWN_TAGS]
    params = [Param(k, v) for k, v in run.params.items()]
    for i in range(0, max(len(tags), len(params)), PARAMS_TAGS_PER_BATCH):
        chunk = slice(i, i + PARAMS_TAGS_PER_BATCH)
        client.log_batch(new_id, params=params[chunk], tags=tags[chunk])
    metrics = [
        Metric(key, value, ts, step, model_id=_model_of(run, maps, key, value, ts, step))
        for key, value, ts, step in run.metrics
    ]
    for i in range(0, len(metrics), METRICS_PER_BATCH):
        client.log_batch(new_id, metrics=metrics[i : i + METRICS_PER_BATCH])
    _copy_inputs(client, run, new_id, maps)
    maps.count("artifact files", _upload(client.log_artifacts, new_id, run.artifact_uri))
    if run.status in ("RUNNING", "SCHEDULED"):
        client.update_run(new_id, status=run.status)
    else:
        client.set_terminated(new_id, status=run.status, end_time=run.end_time)
    if user_added:
        client.delete_tag(new_id, "mlflow.user")
    client.delete_tag(new_id, INCOMPLETE_TAG)
    maps.count("runs")
    maps.count("metric points", len(metrics))


def _model_of(
    run: src.SourceRun, maps: Mapping, key: str, value: float, ts: int, step: int
) -> str | None:
    old = run.metric_models.get((key, ts, step, value))
    return maps.logged_models.get(old) if old else None


def _copy_inputs(client: Any, run: src.SourceRun, new_id: str, maps: Mapping) -> None:
    from mlflow.entities import Dataset, DatasetInput, InputTag, LoggedModelInput, LoggedModelOutput

    datasets = [
        DatasetInput(
            Dataset(d.name, d.digest, d.source_type, d.source, d.schema, d.profile),
            [InputTag(k, v) for k, v in d.tags.items()],
        )
        for d in run.datasets
    ]
    models = [
        LoggedModelInput(maps.logged_models[m]) for m in run.model_inputs if m in maps.logged_models
    ]
    if datasets or models:
        client.log_inputs(new_id, datasets=datasets or None, models=models or None)
    outputs = [
        LoggedModelOutput(maps.logged_models[m], step)
        for m, step in run.model_outputs
        if m in maps.logged_models
    ]
    if outputs:
        client.log_outputs(new_id, outputs)


def copy_runs(client: Any, source: src.Source, opts: Options, maps: Mapping) -> None:
    todo = [r for r in source.runs if r.run_id not in maps.runs]
    if len(todo) < len(source.runs):
        opts.echo(f"{len(source.runs) - len(todo)} run(s) already in the target: skipped")
    for i, run in enumerate(todo, 1):
        try:
            _copy_run(client, run, source, opts, maps)
        except WorkbenchError:
            raise
        except Exception as exc:
            raise WorkbenchError(
                f"copying run {run.run_id} failed: {tgt._why(exc)} (run the command again: "
                "what was copied is kept)"
            ) from None
        if i % opts.every == 0 or i == len(todo):
            opts.echo(f"runs: {i}/{len(todo)} copied")
    for model in source.logged_models:  # those no copied run produced
        if model.model_id not in maps.logged_models:
            _copy_logged_model(client, model, maps.runs.get(model.source_run_id or ""), opts, maps)
