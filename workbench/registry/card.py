"""Model cards: the facts about one registered version, gathered from where they are kept.

`gather(project, version)` returns a plain, JSON-ready dict (rendered by `card_render`):
what the model is for and what lies outside what it saw (the config, the task, the drift
reference profile stored beside the model: each feature's training range and categories), the
training data (the run's dataset input and digest; the time range and a validation report
when the project's data is still that snapshot), the training (trainer, params, resources,
GPU-seconds, duration, commit), the evaluation (holdout metrics, what the gate compared),
monitoring and history (the logs, through DuckDB: `card_logs`). The version's run is read
through MLflow's client (never on a TUI paint path: the Models screen gathers in a worker).
Nothing here writes; `card_store` keeps the rendered card with the version's run.
"""

from __future__ import annotations

import json
import math
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.errors import RegistryError
from workbench.project import Project
from workbench.registry import card_logs, card_value
from workbench.store import backends, tracking
from workbench.store.db import Db
from workbench.store.mlflow_tables import StoreModelVersion
from workbench.tasks import METRICS, bare_metric, higher_is_better

#: The card's format, kept in the JSON so a reader can tell versions of it apart.
FORMAT = "workbench-model-card/1"
#: The artifact folder of the version's run that holds the card.
ARTIFACT_DIR = "model_card"
_IMPORTED_TAG = "workbench.imported_from"  # pipeline.adopt.IMPORTED_TAG (a layer above)
#: The pipeline's validation summary on the run (pipeline.flow.VALIDATION_TAG, a layer above).
VALIDATION_TAG = "workbench.validation"
NOT_VALIDATED = "not validated (trained outside the pipeline)"


def resolve(project: Project, ref: str | int) -> StoreModelVersion:
    """The registered version `ref` names: a number (`2`, `v2`) or an alias (`production`);
    RegistryError naming the versions or aliases there are, like `workbench promote`."""
    name = project.config.model_name
    versions = backends.reader_for(project, registry=True).read_model_versions(name)
    text = str(ref).strip()
    number = text[1:] if text[:1] in ("v", "V") and text[1:].isdigit() else text
    if number.isdigit():
        found = next((v for v in versions if v.version == int(number)), None)
        if found is None:
            listed = ", ".join(str(v.version) for v in sorted(versions, key=lambda v: v.version))
            raise RegistryError(
                f"model {name!r} has no version {int(number)} (versions: {listed or 'none'})"
            )
        return found
    by_alias = {a: v for v in versions for a in v.aliases}
    if text not in by_alias:
        known = ", ".join(sorted(by_alias)) or "none"
        raise RegistryError(f"model {name!r} has no version or alias {text!r} (aliases: {known})")
    return by_alias[text]


def gather(project: Project, ref: str | int, db: Db | None = None) -> dict[str, Any]:
    """Every fact of the card of version `ref` (see the module doc)."""
    mv = resolve(project, ref)
    run = _run(project, mv.run_id)
    profile = _profile(project, mv.run_id)
    with Db.borrow(db, project.logs_root) as use:
        data = _training_data(project, run, use)
        facts = _facts(project, mv, run, profile, data)
        facts["monitoring"] = card_logs.monitoring(project, mv.version, facts["evaluation"], use)
        facts["history"] = card_logs.history(project, mv.version, use)
        facts["value"] = card_value.value(project, mv.version, run, use)
    cleaned: dict[str, Any] = clean(facts)
    return cleaned


def _facts(
    project: Project,
    mv: StoreModelVersion,
    run: dict[str, Any],
    profile: dict[str, Any] | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    cfg = project.config
    return {
        "format": FORMAT,
        "generated_at": _iso(datetime.now(UTC)),
        "model": cfg.model_name,
        "version": mv.version,
        "aliases": sorted(mv.aliases),
        "registered_at": _iso_ms(mv.created_ms),
        "description": mv.description or "",
        "project": {"name": cfg.project.name, "description": cfg.project.description},
        "intended_use": _intended_use(project, run, profile, data),
        "training_data": data,
        "training": _training(project, run, mv),
        "evaluation": _evaluation(project, run, mv),
    }


# --- the run ------------------------------------------------------------------------------


def _run(project: Project, run_id: str | None) -> dict[str, Any]:
    """The version's run as plain data (empty when the version has no run in this store)."""
    if not run_id:
        return {}
    from mlflow.exceptions import MlflowException

    try:
        run = tracking.client(project).get_run(run_id)
    except MlflowException:
        return {"run_id": run_id, "missing": True}
    inputs = []
    for item in run.inputs.dataset_inputs if run.inputs else []:
        ds = item.dataset
        inputs.append(
            {
                "name": ds.name,
                "digest": ds.digest,
                "source": _json_or_text(ds.source),
                "schema": _json_or_text(ds.schema),
                "profile": _json_or_text(ds.profile),
                "context": next((t.value for t in item.tags if t.key == "mlflow.data.context"), ""),
            }
        )
    return {
        "run_id": run_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "start_ms": run.info.start_time,
        "end_ms": run.info.end_time,
        "user": run.info.user_id,
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
        "tags": dict(run.data.tags),
        "inputs": inputs,
    }


def _profile(project: Project, run_id: str | None) -> dict[str, Any] | None:
    """The drift reference profile stored beside the model (model/drift_profile.json): the
    training rows' ranges and categories per feature. None when there is none."""
    if not run_id:
        return None
    try:
        with tempfile.TemporaryDirectory(prefix="workbench-card-") as tmp:
            local = tracking.client(project).download_artifacts(
                run_id, "model/drift_profile.json", tmp
            )
            loaded: dict[str, Any] = json.loads(Path(local).read_text())
            return loaded
    except Exception:  # an adopted model without one, a store that lost it: no ranges
        return None


# --- sections -----------------------------------------------------------------------------


def _intended_use(
    project: Project, run: dict[str, Any], profile: dict[str, Any] | None, data: dict[str, Any]
) -> dict[str, Any]:
    cfg = project.config
    classes = run.get("params", {}).get("classes")
    listed = (profile or {}).get("features") or []
    ranges: dict[str, Any] = {str(f.get("name")): f for f in listed if isinstance(f, dict)}
    features = []
    for name in cfg.features:
        spec = cfg.schema_.get(name)
        seen = ranges.get(name) or {}
        features.append(
            {
                "name": name,
                "type": spec.type if spec else "?",
                "min": spec.min if spec else None,
                "max": spec.max if spec else None,
                "allowed": spec.allowed if spec else None,
                "seen_min": seen.get("min"),
                "seen_max": seen.get("max"),
                "seen_missing": seen.get("missing"),
                "seen_categories": len(seen.get("categories") or []) or None,
            }
        )
    return {
        "task": cfg.task.type,
        "target": cfg.data.target,
        "classes": _json_or_text(classes) if classes else None,
        "threshold": cfg.evaluation.threshold if cfg.task.type == "binary" else None,
        "features": features,
        "out_of_scope": _out_of_scope(project, ranges, data),
    }


def _out_of_scope(project: Project, ranges: dict[str, Any], data: dict[str, Any]) -> list[str]:
    """What the model never saw, derived from its training rows' profile and the data."""
    cfg = project.config
    out = []
    if not ranges:
        return ["no training profile is stored with this model: its input ranges are unknown"]
    numeric = [n for n in cfg.features if (ranges.get(n) or {}).get("kind") == "numeric"]
    if numeric:
        out.append(
            f"values of {', '.join(numeric)} outside the ranges seen in training (the features "
            "table): the model never saw them (a tree model answers as at the nearest edge)"
        )
    for name in cfg.features:
        seen = ranges.get(name) or {}
        cats = seen.get("categories") or []
        if seen.get("kind") == "categorical" and cats:
            spec = cfg.schema_.get(name)
            unseen = [c for c in (spec.allowed or []) if str(c) not in cats] if spec else []
            text = f"{name} values other than the {len(cats)} seen in training"
            if unseen:
                text += f" (allowed but never seen: {', '.join(map(str, unseen[:8]))})"
            out.append(text)
    never = [n for n in cfg.features if n in ranges and not ranges[n].get("missing")]
    if never:
        out.append(f"missing values in {', '.join(never)} (never missing in training)")
    span = data.get("time_range")
    if span and span.get("end"):
        out.append(
            f"data from after {span['end']} (the newest row of the snapshot): the world it "
            "describes may have changed since"
        )
    return out


def _training_data(project: Project, run: dict[str, Any], db: Db) -> dict[str, Any]:
    params = run.get("params", {})
    tags = run.get("tags", {})
    training = next((i for i in run.get("inputs", []) if i["context"] == "training"), None)
    digest = tags.get("workbench.data_digest") or params.get("data_digest")
    rows = {k: _int(params.get(f"rows_{k}")) for k in ("train", "valid", "holdout")}
    known = [n for n in rows.values() if n is not None]
    out: dict[str, Any] = {
        "digest": digest,
        "dataset": training["name"] if training else None,
        "source": (training["source"] or {}).get("uri") if training else None,
        "rows": {**rows, "total": sum(known) if known else None},
        "split": project.config.data.split,
        "schema": _schema(project, training),
        "time_range": None,
        "validation": None,
        "current_data": None,
    }
    recorded = _recorded_validation(project, run)
    if recorded is not None:
        out["time_range"] = recorded.pop("time_range", None)
        out["validation"] = recorded
    elif _outside_pipeline(run, db):
        out["validation"] = {"status": NOT_VALIDATED}
    else:  # a run from before the pipeline recorded its validation
        out.update(_snapshot_checks(project, digest))
    return out


def _recorded_validation(project: Project, run: dict[str, Any]) -> dict[str, Any] | None:
    """The validation the pipeline kept on the run (its tag; the problems from the whole
    report, its artifact, when it can be read), or None when the run has none."""
    try:
        summary = json.loads(run.get("tags", {}).get(VALIDATION_TAG) or "null")
    except ValueError:
        return None
    if not isinstance(summary, dict):
        return None
    problems = [
        {"name": w.partition(" ")[0], "column": None, "status": "warn", "detail": w}
        for w in summary.get("first_warnings") or []
    ]
    report = _artifact_json(project, run["run_id"], str(summary.get("report") or ""))
    if report is not None:
        checks = [c for c in report.get("checks") or [] if c.get("status") != "pass"]
        problems = [
            {"name": c.get("check"), "column": c.get("column"), "status": c.get("status"),
             "detail": c.get("detail")}
            for c in checks
        ]  # fmt: skip
    span = summary.get("time_range")
    return {
        "passed": summary.get("passed"),
        "rows": summary.get("rows"),
        "columns": summary.get("columns"),
        "checks": summary.get("checks"),
        "failures": summary.get("failures"),
        "warnings": summary.get("warnings"),
        "problems": problems,
        "note": f"recorded by the pipeline before training ({summary.get('report')})",
        "time_range": span if isinstance(span, dict) else None,
    }


def _artifact_json(project: Project, run_id: str, path: str) -> dict[str, Any] | None:
    if not path:
        return None
    try:
        with tempfile.TemporaryDirectory(prefix="workbench-card-") as tmp:
            local = tracking.client(project).download_artifacts(run_id, path, tmp)
            loaded = json.loads(Path(local).read_text())
    except Exception:  # a store that lost it: the tag's summary is still there
        return None
    return loaded if isinstance(loaded, dict) else None


def _outside_pipeline(run: dict[str, Any], db: Db) -> bool:
    """Did a plain `workbench train` make the run? Its job's record says `pipeline: false`
    (older records say nothing: those runs are taken as from before validation was kept)."""
    job_id = run.get("tags", {}).get("workbench.job_id")
    if not job_id:
        return False
    try:
        rows = db.rows("SELECT args FROM jobs WHERE job_id = ? ORDER BY ts DESC LIMIT 1", [job_id])
        args = json.loads(rows[0]["args"] or "{}") if rows else {}
    except Exception:  # no jobs log yet, an unreadable row: nothing known
        return False
    return isinstance(args, dict) and args.get("pipeline") is False


def _schema(project: Project, training: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The training input's columns as MLflow recorded them, with the config's roles."""
    cfg = project.config
    roles = {cfg.data.target: "target", cfg.data.timestamp: "time", cfg.data.id_column: "id"}
    roles.update({name: "dropped" for name in cfg.data.drop})
    spec = (training or {}).get("schema") or {}
    cols = spec.get("mlflow_colspec") if isinstance(spec, dict) else None
    if not cols:
        cols = [{"name": n, "type": s.type, "required": True} for n, s in cfg.schema_.items()]
    return [
        {
            "name": c.get("name"),
            "type": c.get("type"),
            "required": c.get("required", True),
            "role": roles.get(c.get("name"), "feature"),
        }
        for c in cols
    ]


def _snapshot_checks(project: Project, digest: str | None) -> dict[str, Any]:
    """For a run from before the pipeline kept its validation: the time range and a
    validation report of the training snapshot, when the project's data file is still it
    (same digest)."""
    from workbench.data import snapshot as data_mod
    from workbench.errors import WorkbenchError

    try:
        now = data_mod.digest(project.data_path)
    except WorkbenchError as exc:
        return {"current_data": {"digest": None, "note": str(exc)}}
    if digest is None or now != digest:
        note = "the project's data changed since training: no time range or validation report"
        return {"current_data": {"digest": now, "same": False, "note": note}}
    from workbench.data.validation import validate_frame

    cfg = project.config
    out: dict[str, Any] = {"current_data": {"digest": now, "same": True}}
    try:
        frame = data_mod.load_frame(project.data_path, cfg.schema_)
        report = validate_frame(frame, cfg)
    except WorkbenchError as exc:
        out["validation"] = {"error": str(exc)}
        return out
    checks = [c for c in report.to_dict()["checks"] if c["status"] != "pass"]
    out["validation"] = {
        "passed": report.passed,
        "rows": report.rows,
        "columns": report.columns,
        "checks": len(report.checks),
        "failures": len(report.failures),
        "warnings": len(report.warnings),
        "problems": [{k: c.get(k) for k in ("name", "column", "status", "detail")} for c in checks],
        "note": "checked again on the same snapshot (digest matches)",
    }
    ts = cfg.data.timestamp
    if ts and ts in frame.columns and frame.height:
        col = frame.get_column(ts)
        out["time_range"] = {"column": ts, "start": _iso(col.min()), "end": _iso(col.max())}
    return out


def _training(project: Project, run: dict[str, Any], mv: StoreModelVersion) -> dict[str, Any]:
    cfg = project.config
    params = dict(run.get("params", {}))
    tags = run.get("tags", {})
    metrics = run.get("metrics", {})
    trainer = tags.get("workbench.trainer") or params.get("trainer")
    info = {"trainer", "data_digest", "rows_train", "rows_valid", "rows_holdout", "features"}
    start, end = run.get("start_ms"), run.get("end_ms")
    system = {
        k.removeprefix("system/"): v
        for k, v in metrics.items()
        if k.startswith(("system/cpu", "system/system_memory", "system/gpu"))
    }
    return {
        "run_id": run.get("run_id") or mv.run_id,
        "run_name": run.get("run_name"),
        "trainer": trainer,
        "imported_from": tags.get(_IMPORTED_TAG),
        "params": {k: v for k, v in sorted(params.items()) if k not in info | {"task", "classes"}},
        "resources": {
            "gpus": cfg.gpus,
            "cpus": cfg.resources.cpus or cfg.docker.cpus,
            "memory": cfg.resources.memory or cfg.docker.memory,
            "system_metrics": system,
        },
        "job_id": tags.get("workbench.job_id"),
        "gpu_seconds": metrics.get("gpu_seconds"),
        "train_seconds": metrics.get("train_seconds"),
        "duration_s": (end - start) / 1000 if start and end else None,
        "started_at": _iso_ms(start),
        "git_commit": tags.get("mlflow.source.git.commit"),
        "git_branch": tags.get("mlflow.source.git.branch"),
        "user": run.get("user"),
        "model_uri": mv.source,
    }


def _evaluation(project: Project, run: dict[str, Any], mv: StoreModelVersion) -> dict[str, Any]:
    cfg = project.config
    metrics = run.get("metrics", {})
    holdout = {k: v for k, v in sorted(metrics.items()) if k.startswith("holdout_")}
    order = {m: i for i, m in enumerate(METRICS[cfg.task.type])}
    holdout = dict(sorted(holdout.items(), key=lambda kv: order.get(bare_metric(kv[0]), 99)))
    champion = {k.removeprefix("champion_"): v for k, v in metrics.items() if k.startswith("champ")}
    champ_version = champion.pop("version", None)
    key = f"holdout_{cfg.metric}"
    gate: dict[str, Any] = {"metric": key, "higher_is_better": higher_is_better(cfg.metric)}
    text = mv.description or ""
    if text.startswith("gate "):
        decision, _, reason = text.removeprefix("gate ").partition(": ")
        gate.update(decision=decision, reason=reason)
    elif run.get("tags", {}).get(_IMPORTED_TAG):
        gate.update(decision=None, reason=f"registered from elsewhere, no gate ran ({text})")
    if champ_version is not None:
        gate["champion_version"] = int(champ_version)
        gate["champion"] = {k: v for k, v in champion.items() if k in holdout}
        if key in holdout and key in champion:
            gate["delta"] = holdout[key] - champion[key]
    return {"metric": key, "holdout": holdout, "gate": gate, "segments": None}


# --- values -------------------------------------------------------------------------------


def clean(value: Any) -> Any:
    """JSON-ready: NaN and infinities as None, datetimes as ISO text, tuples as lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, datetime):
        return _iso(value)
    return value


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return str(value.isoformat(timespec="seconds"))
    return str(value)


def _iso_ms(ms: int | None) -> str | None:
    return _iso(datetime.fromtimestamp(ms / 1000, UTC)) if ms else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _num(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _json_or_text(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text
