"""`workbench register MODEL_URI`: adopt a model trained elsewhere as a version of the
project's model.

The model (`runs:/...`, `models:/...`, a local MLflow model folder, or a run a plain MLflow
script logged into the project's store) is fetched, its inputs checked against the
project's features (its signature, else a dry run on 5 holdout rows), scored on the
project's holdout as the task needs (a classifier through its probabilities), given its
drift profile and task file, and logged as a new run of the project's experiment the way a
training job logs one (params, dataset input, holdout metrics, the `model` artifact); that
run's model becomes a new registered version, audited. From there it is a version like any
other: promote, serve, canary, drift and monitor work on it.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.data import snapshot as data_mod
from workbench.data import target as target_mod
from workbench.errors import UsageError
from workbench.project import Project
from workbench.registry import versions as registry
from workbench.store import tracking
from workbench.tasks import ModelTask
from workbench.training import job, model_folder
from workbench.training.evaluation import evaluate
from workbench.training.scoring import as_task_output

#: The tag of an adopted model's run: the URI it came from.
IMPORTED_TAG = "workbench.imported_from"
TRAINER = "imported"
_RUN_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class AdoptResult:
    model: str
    version: int
    run_id: str
    model_uri: str
    imported_from: str
    flavor: str
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _source(client: Any, uri: str) -> str:
    """Where the model is: a bare run id or `runs:/<id>` names the model logged in that run."""
    text = uri.strip()
    if _RUN_ID.fullmatch(text):
        text = f"runs:/{text}"
    if text.startswith("runs:/"):
        run_id, _, sub = text.removeprefix("runs:/").strip("/").partition("/")
        if not sub:
            from mlflow.exceptions import MlflowException

            try:
                found = model_folder.find_run_model(client, run_id)
            except MlflowException as exc:
                first = (str(exc).strip().splitlines() or [""])[0]
                raise UsageError(f"{uri}: no such run in the project's store ({first})") from None
            if found is None:
                raise UsageError(f"{uri}: the run logged no model")
            return found
    return text


def _source_params(client: Any, uri: str) -> dict[str, Any]:
    """The params of the run that logged the model, when the URI says which run it is."""
    run_id = None
    try:
        if uri.startswith("runs:/"):
            run_id = uri.removeprefix("runs:/").strip("/").partition("/")[0]
        elif uri.startswith("models:/m-"):
            run_id = client.get_logged_model(uri.removeprefix("models:/").strip("/")).source_run_id
        elif _RUN_ID.fullmatch(uri.strip()):
            run_id = uri.strip()
        return dict(client.get_run(run_id).data.params) if run_id else {}
    except Exception:  # the run is elsewhere or gone: the model is adopted without its params
        return {}


def adopt(project: Project, uri: str, reason: str = "") -> AdoptResult:
    """Fetch, check, evaluate, log and register the model at `uri` (see the module doc)."""
    if not uri.strip():
        raise UsageError("MODEL_URI is empty")
    cfg = project.config
    frame = data_mod.load_frame(project.data_path)
    snapshot = data_mod.digest(project.data_path)
    classes = target_mod.classes_of(frame, cfg)
    task = ModelTask(cfg.task.type, classes, cfg.evaluation.threshold, cfg.data.target)
    parts = data_mod.split(target_mod.encode(frame, cfg, classes), cfg)
    holdout_x = data_mod.to_model_frame(parts.holdout, cfg)

    tracking.setup(project)
    import mlflow

    client = mlflow.MlflowClient()
    what = f"the model at {uri}"
    with tempfile.TemporaryDirectory(prefix="workbench-register-") as tmp:
        local = model_folder.fetch(_source(client, uri), Path(tmp), project.tracking_uri)
        columns = model_folder.check_inputs(local, cfg.features, what)
        model = model_folder.trained_model(local, task, columns)
        if columns is None:
            model_folder.dry_run(model.predict, holdout_x.head(5), what)
        output = as_task_output(task, model.predict(holdout_x), len(holdout_x), what)
        scores = evaluate(
            task.type, parts.holdout[cfg.data.target].to_numpy(), output, task.threshold
        )
        metrics = {f"holdout_{k}": v for k, v in scores.items()}
        params = {**_source_params(client, uri), "imported_from": uri}
        with mlflow.start_run(run_name=f"registered {uri}"[:250], tags={IMPORTED_TAG: uri}) as run:
            job.log_inputs(project, TRAINER, params, parts, snapshot, task)
            mlflow.log_metrics(metrics)
            model_uri = job.log_model(project, model, parts, holdout_x, output, snapshot, run, task)
    run_id = run.info.run_id
    note = reason.strip() or f"registered from {uri}"
    # registry.register audits it ("register", with run_id and model_uri)
    version = registry.register(
        project, run_id, model_uri, description=note, imported_from=uri, metrics=metrics
    )
    return AdoptResult(cfg.model_name, version, run_id, model_uri, uri, model.flavor, metrics)
