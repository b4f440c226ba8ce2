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

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlparse

from workbench.errors import WorkbenchError
from workbench.serving.signature import ModelError, Signature, read_mlmodel, signature_from_mlmodel
from workbench.store import mlflow_tables as mlflow_store
from workbench.tasks import ModelTask

if TYPE_CHECKING:
    from workbench.project import Project

#: Below this many rows the booster scores on one thread (thread start-up dominates otherwise).
SMALL_BATCH = 1000
#: Signature types the fast path can put in a float matrix as LightGBM's pandas path would.
_NUMERIC = frozenset({"double", "float", "long", "integer", "boolean"})


class Predictor(Protocol):
    version: int
    model_dir: Path
    signature: Signature
    task: ModelTask

    def predict(self, records: list[dict[str, Any]]) -> list[Any]:
        """binary/regression: a float per record; multiclass: a list of K probabilities."""
        ...


# -- locating a registered version --------------------------------------------------------------


def model_dir_for(project: Project, version: int) -> Path:
    """The local directory (holding `MLmodel`) of registered version `version` of the
    project's model. Reads MLflow's SQLite store directly; never imports mlflow."""
    name = project.config.model_name
    versions = mlflow_store.read_model_versions(project.mlflow_db, name)
    mv = next((v for v in versions if v.version == version), None)
    if mv is None:
        raise ModelError(f"model {name} has no version {version}")
    path = _resolve_source(project.mlflow_db, mv.source, f"model {name} version {version}")
    if not (path / "MLmodel").is_file():
        raise ModelError(f"model {name} version {version}: no MLmodel file in {path}")
    return path


#: (store, model, version) -> its task: a version's model folder never changes.
_TASKS: dict[tuple[str, str, int], ModelTask] = {}


def task_of(project: Project, version: int) -> ModelTask:
    """The task of registered version `version` (its `workbench_task.json`); cached."""
    key = (str(project.mlflow_db), project.config.model_name, version)
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


def _resolve_source(db: Path, source: str | None, what: str) -> Path:
    if not source:
        raise ModelError(f"{what} has no source")
    if source.startswith("models:/"):
        model_id = source[len("models:/") :].strip("/")
        if not model_id.startswith("m-") or "/" in model_id:
            raise ModelError(f"{what}: source {source} is not a logged model (models:/m-<id>)")
        location = mlflow_store.logged_model_location(db, model_id)
        if location is None:
            raise ModelError(f"{what}: logged model {model_id} is not in {db}")
        return _local_path(location, what)
    if source.startswith("runs:/"):
        run_id, _, sub = source[len("runs:/") :].partition("/")
        artifact_uri = mlflow_store.run_artifact_uri(db, run_id)
        if artifact_uri is None:
            raise ModelError(f"{what}: run {run_id} is not in {db}")
        return _local_path(artifact_uri, what) / sub
    return _local_path(source, what)


def _local_path(uri: str, what: str) -> Path:
    """A file: URI or a plain path as a local Path; anything remote is an error."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and uri[1:3] in (":\\", ":/")):
        return Path(uri)  # a plain path (or a Windows drive letter)
    raise ModelError(f"{what} is stored at {uri}, which is not a local path")


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

    def predict(self, records: list[dict[str, Any]]) -> list[Any]:
        n = len(records)
        if n == 0:
            return []
        plan = self._plan
        # None -> NaN in np.array(dtype=float); categories missing from the map -> None -> NaN.
        rows = [
            [rec.get(name) if codes is None else codes.get(rec.get(name)) for name, codes in plan]
            for rec in records
        ]
        matrix = self._np.array(rows, dtype=self._dtype)
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

    def predict(self, records: list[dict[str, Any]]) -> list[Any]:
        if not records:
            return []
        import pandas as pd

        columns = [f.name for f in self.signature.inputs]
        frame = pd.DataFrame.from_records(records, columns=columns)
        return self._score(frame).tolist()  # type: ignore[no-any-return]
