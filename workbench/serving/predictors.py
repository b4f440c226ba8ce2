"""Loading a registered model version for serving, and scoring validated records.

Two predictors:

- `LightGBMPredictor`, the fast path for Workbench's own LightGBM models (and any MLflow model
  with a `lightgbm` flavor stored as native `model.lgb`): the booster is scored directly on a
  float64 matrix built in the booster's feature order, with string categories mapped to the
  codes of the categories it was trained with (`booster.pandas_categorical`). This is exactly
  what the model's pyfunc loader (`plugins/workbench_lightgbm_pyfunc.py`, shipped in the model's
  `code/` folder) does through pandas, minus pandas: tens of microseconds per request instead of
  milliseconds. Unseen categories and nulls become NaN (missing), as they do there.
- `PyfuncPredictor`, for any other model: scored through `workbench.training.scoring.load_scorer`
  (an sklearn-API classifier's `predict_proba` with its classes lined up, else the pyfunc
  output checked for the task).

Both follow the model's task (`workbench_task.json` beside it, `ModelTask`): `predict` returns
one float per record (binary: the positive-class probability; regression: the value), or for
multiclass one list of class probabilities per record, in the task's class order.

mlflow, lightgbm, numpy and pandas are imported inside functions only: `workbench`'s CLI must
start without them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlparse

from workbench.errors import WorkbenchError
from workbench.serving.columnar import Columns
from workbench.serving.signature import ModelError, Signature, read_mlmodel, signature_from_mlmodel
from workbench.store import backends
from workbench.tasks import ModelTask

if TYPE_CHECKING:
    from workbench.project import Project
    from workbench.store.reader import StoreReader

#: Below this many rows the booster scores on one thread (thread start-up dominates otherwise).
SMALL_BATCH = 1000
#: Signature types the fast path can put in a float matrix as LightGBM's pandas path would.
_NUMERIC = frozenset({"double", "float", "long", "integer", "boolean"})


class Predictor(Protocol):
    version: int
    model_dir: Path
    signature: Signature
    task: ModelTask

    def predict(self, records: Sequence[dict[str, Any]]) -> list[Any]:
        """binary/regression: a float per record; multiclass: a list of K probabilities."""
        ...


# -- locating a registered version --------------------------------------------------------------


def model_dir_for(project: Project, version: int) -> Path:
    """The local directory (holding `MLmodel`) of registered version `version` of the
    project's model. Read through the store's reader (never imports mlflow) for a model whose
    artifacts are local; one stored remotely (mlflow-artifacts:/, s3://, ...) is downloaded
    once into `.workbench/cache/models/<name>/<version>/` and loaded from there."""
    name = project.config.model_name
    what = f"model {name} version {version}"
    cached = _cache_dir(project, name, version)
    if not project.is_embedded_store and (cached / "MLmodel").is_file():
        return cached  # a registered version's model never changes: no store read needed
    reader = backends.reader_for(project, registry=True)
    versions = reader.read_model_versions(name)
    mv = next((v for v in versions if v.version == version), None)
    if mv is None:
        raise ModelError(f"model {name} has no version {version}")
    uri = _resolve_source(backends.reader_for(project), mv.source, what)
    path = _local_path(uri) or _download(project, uri, cached)
    if not (path / "MLmodel").is_file():
        raise ModelError(f"{what}: no MLmodel file in {path}")
    return path


def _cache_dir(project: Project, name: str, version: int) -> Path:
    return project.store / "cache" / "models" / name / str(version)


#: (store, model, version) -> its task: a version's model folder never changes.
_TASKS: dict[tuple[str, str, int], ModelTask] = {}


def task_of(project: Project, version: int) -> ModelTask:
    """The task of registered version `version` (its `workbench_task.json`); cached."""
    key = (project.registry_uri, project.config.model_name, version)
    task = _TASKS.get(key)
    if task is None:
        from workbench.errors import WorkbenchError
        from workbench.training.reference import complete

        try:  # a version registered by plain MLflow gets its task and profile now
            task = complete(project, model_dir_for(project, version), version, profile=False)
        except (ValueError, WorkbenchError) as exc:
            raise ModelError(str(exc)) from None
        _TASKS[key] = task
    return task


def _resolve_source(reader: StoreReader, source: str | None, what: str) -> str:
    """The artifact URI (or path) of a version's model, logged models and runs:/ resolved."""
    if not source:
        raise ModelError(f"{what} has no source")
    if source.startswith("models:/"):
        model_id = source[len("models:/") :].strip("/")
        if not model_id.startswith("m-") or "/" in model_id:
            raise ModelError(f"{what}: source {source} is not a logged model (models:/m-<id>)")
        location = reader.logged_model_location(model_id)
        if location is None:
            raise ModelError(f"{what}: logged model {model_id} is not in {reader.location}")
        return location
    if source.startswith("runs:/"):
        run_id, _, sub = source[len("runs:/") :].partition("/")
        artifact_uri = reader.run_artifact_uri(run_id)
        if artifact_uri is None:
            raise ModelError(f"{what}: run {run_id} is not in {reader.location}")
        return artifact_uri.rstrip("/") + ("/" + sub if sub else "")
    return source


def _local_path(uri: str) -> Path | None:
    """A file: URI or a plain path as a local Path; None for anything remote."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and uri[1:3] in (":\\", ":/")):
        return Path(uri)  # a plain path (or a Windows drive letter)
    return None


def _download(project: Project, uri: str, dst: Path) -> Path:
    """Download the model at remote `uri` into `dst`, atomically (a temporary folder beside
    it, renamed): a server that dies mid-way leaves no half model to load next time."""
    import shutil
    import tempfile

    from workbench.store import tracking

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        tracking.setup(project)  # the store's URIs and credentials, for mlflow-artifacts:/
        import mlflow

        try:
            with tracking.remote_errors(project):
                got = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp))
        except Exception as exc:  # any artifact store's failure, as the server's one line
            if isinstance(exc, WorkbenchError):
                raise ModelError(str(exc)) from None
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise ModelError(f"cannot download {uri}: {first}") from None
        folder = Path(got)
        if folder != tmp:  # the model's own folder inside tmp
            folder = folder.rename(tmp.with_name(tmp.name + "m"))
            shutil.rmtree(tmp)
            tmp = folder
        try:
            os.replace(tmp, dst)
        except OSError:  # another process put it there first
            if not (dst / "MLmodel").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dst


# -- loading -----------------------------------------------------------------------------------


def load_predictor(model_dir: Path, version: int) -> Predictor:
    """The fast LightGBM predictor when the model allows it, else MLflow's pyfunc."""
    model_dir = Path(model_dir)
    spec = read_mlmodel(model_dir)
    signature = signature_from_mlmodel(spec, model_dir / "MLmodel")
    try:
        task = ModelTask.load(model_dir)
    except ValueError as exc:
        raise ModelError(str(exc)) from None
    flavors = spec.get("flavors") if isinstance(spec.get("flavors"), dict) else {}
    lgb_flavor = flavors.get("lightgbm") if flavors else None
    if isinstance(lgb_flavor, dict):
        data = lgb_flavor.get("data")
        if isinstance(data, str) and data.endswith(".lgb") and (model_dir / data).is_file():
            fast = LightGBMPredictor.try_load(model_dir / data, model_dir, version, signature, task)
            if fast is not None:
                return fast
    return PyfuncPredictor(model_dir, version, signature, task)


class LightGBMPredictor:
    """Scores a native LightGBM booster on a float matrix; see the module docstring."""

    flavor = "lightgbm"

    def __init__(
        self,
        booster: Any,
        model_dir: Path,
        version: int,
        signature: Signature,
        plan: list[tuple[str, dict[Any, float] | None]],
        dtype: Any,
        task: ModelTask | None = None,
    ) -> None:
        self.version = version
        self.model_dir = model_dir
        self.signature = signature
        self.task = task or ModelTask()
        self.features = [name for name, _ in plan]
        self._booster = booster
        self._plan = plan
        self._dtype = dtype
        import numpy as np

        self._np = np

    @classmethod
    def try_load(
        cls,
        model_file: Path,
        model_dir: Path,
        version: int,
        signature: Signature,
        task: ModelTask | None = None,
    ) -> LightGBMPredictor | None:
        """The fast predictor, or None when it could not score exactly like the pyfunc
        (a feature the signature lacks or types as non-numeric, outputs per row that do not
        fit the task, categories that do not line up)."""
        import lightgbm as lgb
        import numpy as np

        task = task or ModelTask()
        try:
            booster = lgb.Booster(model_file=str(model_file))
        except lgb.basic.LightGBMError as exc:
            raise ModelError(f"{model_file}: not a LightGBM model ({exc})") from None
        # A multiclass booster scores (n, K), K = its trees per iteration; the others (n,).
        per_row = len(task.classes) if task.type == "multiclass" else 1
        if booster.num_model_per_iteration() != per_row:
            return None
        types = {f.name: f.type for f in signature.inputs}
        features: list[str] = booster.feature_name()
        columns = _feature_columns(model_file.parent)
        if columns is not None:  # trained on positional names; the real ones are kept here
            if len(columns) != len(features):
                return None
            features = columns
        categories: list[list[Any]] = list(booster.pandas_categorical or [])
        plan: list[tuple[str, dict[Any, float] | None]] = []
        cats = iter(categories)
        used = 0
        for name in features:
            ftype = types.get(name)
            if ftype == "string":
                # The pyfunc casts string columns, in feature order, to the trained categories.
                values = next(cats, None)
                if values is None:
                    return None
                used += 1
                plan.append((name, {v: float(code) for code, v in enumerate(values)}))
            elif ftype in _NUMERIC:
                plan.append((name, None))
            else:
                return None
        if used != len(categories):
            return None
        # LightGBM's pandas path converts to np.result_type(column dtypes..., float32):
        # float32 only when every column is float32 or bool; categorical codes make float64.
        only32 = all(types[name] in ("float", "boolean") for name in features)
        dtype = np.float32 if only32 else np.float64
        return cls(booster, model_dir, version, signature, plan, dtype, task)

    def predict(self, records: Sequence[dict[str, Any]]) -> list[Any]:
        n = len(records)
        if n == 0:
            return []
        plan = self._plan
        np = self._np
        if isinstance(records, Columns):  # a columnar batch: the matrix a column at a time
            matrix = np.empty((n, len(plan)), dtype=self._dtype)
            for j, (name, codes) in enumerate(plan):
                column = records.column(name)
                matrix[:, j] = column if codes is None else [codes.get(v) for v in column]
            return self._score(matrix, n)
        # None -> NaN in np.array(dtype=float); categories missing from the map -> None -> NaN.
        rows = [
            [rec.get(name) if codes is None else codes.get(rec.get(name)) for name, codes in plan]
            for rec in records
        ]
        return self._score(np.array(rows, dtype=self._dtype), n)

    def _score(self, matrix: Any, n: int) -> list[Any]:
        if n < SMALL_BATCH:
            out = self._booster.predict(matrix, num_threads=1)
        else:
            out = self._booster.predict(matrix)
        return out.tolist()  # type: ignore[no-any-return]


def _feature_columns(folder: Path) -> list[str] | None:
    import json

    path = folder / "feature_columns.json"
    if not path.is_file():
        return None
    try:
        names = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return [str(n) for n in names] if isinstance(names, list) else None


class PyfuncPredictor:
    """Any MLflow model, scored per its task through `workbench.training.scoring.load_scorer`
    on a pandas DataFrame of the records."""

    flavor = "pyfunc"

    def __init__(
        self, model_dir: Path, version: int, signature: Signature, task: ModelTask | None = None
    ) -> None:
        from workbench.training.scoring import load_scorer

        self.version = version
        self.model_dir = model_dir
        self.signature = signature
        self.task = task or ModelTask()
        try:
            self._score = load_scorer(model_dir, self.task)
        except WorkbenchError as exc:  # the scorer's one line, as the server's ModelError
            raise ModelError(str(exc)) from None

    def predict(self, records: Sequence[dict[str, Any]]) -> list[Any]:
        if not records:
            return []
        import pandas as pd

        columns = [f.name for f in self.signature.inputs]
        if isinstance(records, Columns):
            frame = pd.DataFrame({name: records.column(name) for name in columns})
        else:
            frame = pd.DataFrame.from_records(records, columns=columns)
        return self._score(frame).tolist()  # type: ignore[no-any-return]
