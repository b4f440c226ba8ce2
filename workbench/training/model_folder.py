"""MLflow models Workbench did not train: found in a run, fetched to a local folder, checked
against the project's features, scored per task, and made ready to serve.

Used by the script trainer (the model a user's command logged in the job's run) and by
`workbench register` (a model logged anywhere). `prepare` gives the saved folder a
signature (serving needs one) and, for a classifier, the pyfunc loader in
`workbench_task_pyfunc.py` (shipped in the model's `code/`), so `mlflow.pyfunc.load_model`
and the server answer probabilities as Workbench's own models do; the model keeps its flavours.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import UsageError, WorkbenchError
from workbench.plugins import TrainedModel
from workbench.tasks import ModelTask, is_classification
from workbench.training import workbench_task_pyfunc as task_pyfunc
from workbench.training.scoring import flavours, load_scorer

if TYPE_CHECKING:
    import pandas as pd

LOADER = Path(task_pyfunc.__file__)


class ModelInputsError(WorkbenchError):
    """A model's inputs do not match the project's features (exit 1)."""


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# --- finding and fetching ---------------------------------------------------------------


def find_run_model(client: Any, run_id: str) -> str | None:
    """The URI of the newest model logged in run `run_id`: a logged model linked to the run
    (MLflow 3's `log_model`, autolog), else a run artifact folder holding an `MLmodel`."""
    import mlflow

    run = client.get_run(run_id)
    found = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run_id}'",
        output_format="list",
    )
    ready = [m for m in found if str(getattr(m, "status", "READY")).upper().endswith("READY")]
    if ready:
        newest = max(ready, key=lambda m: m.creation_timestamp or 0)
        return str(newest.artifact_location)
    top = client.list_artifacts(run_id)
    if any(a.path == "MLmodel" for a in top):
        return f"runs:/{run_id}"
    for folder in (a for a in top if a.is_dir):
        if any(a.path.endswith("/MLmodel") for a in client.list_artifacts(run_id, folder.path)):
            return f"runs:/{run_id}/{folder.path}"
    return None


def fetch(uri: str, dst: Path, tracking_uri: str) -> Path:
    """A local copy of the model at `uri` (a local folder, file:, runs:/, models:/ ...) under
    `dst`; the folder holding its `MLmodel`. UsageError (one line) when there is none."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(uri)
    dst.mkdir(parents=True, exist_ok=True)
    if parsed.scheme in ("", "file"):
        local = Path(unquote(parsed.path)) if parsed.scheme else Path(uri).expanduser()
        if not (local / "MLmodel").is_file():
            raise UsageError(f"{uri}: not an MLflow model folder (no MLmodel file)")
        return Path(shutil.copytree(local, dst / "model"))
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    try:
        path = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=str(dst), tracking_uri=tracking_uri
            )
        )
    except (MlflowException, OSError) as exc:
        raise UsageError(f"{uri}: cannot fetch the model ({_first_line(exc)})") from None
    if not (path / "MLmodel").is_file():
        raise UsageError(f"{uri}: not an MLflow model (no MLmodel file in what it names)")
    return path


# --- inputs -----------------------------------------------------------------------------


def input_columns(model_dir: Path) -> list[str] | None:
    """The column names the model takes: its signature's, else a scikit-learn model's
    `feature_names_in_`; None when the model does not say."""
    from mlflow.models import Model

    signature = Model.load(str(model_dir / "MLmodel")).signature
    if (
        signature is not None
        and signature.inputs is not None
        and signature.inputs.has_input_names()
    ):
        return [str(n) for n in signature.inputs.input_names()]
    if "sklearn" in flavours(model_dir):
        try:
            import mlflow.sklearn

            names = getattr(mlflow.sklearn.load_model(str(model_dir)), "feature_names_in_", None)
        except Exception:  # not loadable here: no names known
            names = None
        if names is not None:
            return [str(n) for n in names]
    return None


def _names(columns: list[str]) -> str:
    shown = ", ".join(repr(c) for c in columns[:5])
    return shown + (f" and {len(columns) - 5} more" if len(columns) > 5 else "")


def check_inputs(
    model_dir: Path, features: list[str], what: str = "the model", strict: bool = True
) -> list[str] | None:
    """The model's input columns (None: unknown), or ModelInputsError in one line naming the
    missing (project features it does not take; only when `strict`) and extra (inputs the
    project does not have) columns."""
    columns = input_columns(model_dir)
    if columns is None:
        return None
    missing = [f for f in features if f not in columns] if strict else []
    extra = [c for c in columns if c not in features]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {_names(missing)} (project features it does not take)")
        if extra:
            parts.append(f"extra {_names(extra)} (inputs the project does not have)")
        raise ModelInputsError(
            f"{what}'s inputs do not match the project's features: {'; '.join(parts)}"
        )
    return columns


def dry_run(scorer: Any, example: pd.DataFrame, what: str = "the model") -> None:
    """Score a few rows; any failure is one ModelInputsError line."""
    from workbench.training.scoring import ScoringError

    try:
        scorer(example)
    except ScoringError:
        raise
    except Exception as exc:  # the model's own error, whatever its kind
        raise ModelInputsError(
            f"{what} cannot score {len(example)} holdout rows with the project's features "
            f"({type(exc).__name__}: {_first_line(exc)})"
        ) from None


# --- scoring and saving -----------------------------------------------------------------


def main_flavour(model_dir: Path) -> str:
    found = [f for f in flavours(model_dir) if f != "python_function"]
    return found[0] if found else "python_function"


def prepare(model_dir: Path, task: ModelTask, signature: Any = None) -> None:
    """Make a copied model folder ready to serve: its own input signature kept (else the
    given one's inputs), outputs as the task gives them, and the task loader in front of a
    classifier's pyfunc (its original loader and predict function kept beside)."""
    from mlflow.models import Model, ModelSignature

    mlmodel = model_dir / "MLmodel"
    model = Model.load(str(mlmodel))
    own = model.signature
    if signature is not None:
        inputs = own.inputs if own is not None and own.inputs is not None else signature.inputs
        outputs = signature.outputs
        if not is_classification(task.type) and own is not None and own.outputs is not None:
            outputs = own.outputs
        model.signature = ModelSignature(inputs=inputs, outputs=outputs)
    pyfunc = model.flavors.get("python_function")
    if not isinstance(pyfunc, dict):
        raise WorkbenchError(f"{model_dir}: the model has no python_function flavour to serve")
    if is_classification(task.type) and pyfunc.get("loader_module") != LOADER.stem:
        code = str(pyfunc.get("code") or "code")
        (model_dir / code).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(LOADER, model_dir / code / LOADER.name)
        pyfunc[task_pyfunc.INNER_LOADER] = pyfunc.get("loader_module")
        pyfunc["loader_module"] = LOADER.stem
        pyfunc["code"] = code
        if "predict_fn" in pyfunc:
            pyfunc[task_pyfunc.INNER_PREDICT_FN] = pyfunc.pop("predict_fn")
    model.save(str(mlmodel))


def trained_model(model_dir: Path, task: ModelTask, columns: list[str] | None) -> TrainedModel:
    """A TrainedModel over a fetched model folder: scored through `load_scorer` (columns
    put in the model's order when it names them), saved as a prepared copy of the folder."""
    scorer = load_scorer(model_dir, task)

    def predict(frame: pd.DataFrame) -> Any:
        if columns and set(columns) <= set(frame.columns):
            frame = frame[columns]
        return scorer(frame)

    def save(dst: Path, signature: Any, example: pd.DataFrame) -> None:
        shutil.copytree(model_dir, dst)
        prepare(dst, task, signature)

    return TrainedModel(predict=predict, save_mlflow_model=save, flavor=main_flavour(model_dir))
