"""A registered model's Workbench files, made on first use when it came in without them.

Every model Workbench trains or adopts (`workbench register`, the script trainer) is logged
with `workbench_task.json` and `drift_profile.json` beside it. A version registered by a plain
MLflow call into the project's store (`mlflow.sklearn.log_model(...,
registered_model_name=...)`) has neither: the first Workbench command that needs them
(promote, deploy, serve, drift, the monitor, the gate) writes them into the version's model
folder: the project's task (classes from `[task]` or the data), and a reference profile of the
training rows with the model's own predictions on the holdout, scored as the task needs
(`training.scoring`). Once written, every reader finds them where it finds them for any model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.data import snapshot as data_mod
from workbench.data import target as target_mod
from workbench.drift import PROFILE_FILE
from workbench.errors import UsageError
from workbench.project import Project
from workbench.tasks import TASK_FILE, ModelTask


def profile_of(project: Project, parts: Any, task: ModelTask, output: Any, source: str) -> Any:
    """The reference profile: the training rows' features, the holdout's predictions."""
    from workbench.drift.profile import build_profile
    from workbench.training.scoring import scalar_output

    cfg = project.config
    return build_profile(
        parts.train.select(cfg.features),
        cfg.features,
        set(data_mod.categorical_features(cfg)),
        predictions=scalar_output(task, output),
        prediction_kind="categorical" if task.type == "multiclass" else "numeric",
        source=source,
    )


def complete(project: Project, model_dir: Path, version: int, profile: bool = True) -> ModelTask:
    """The task of the model in `model_dir`, after writing whatever of its task file and
    (with `profile`) its reference profile it lacks: once, under a lock; nothing to do for
    Workbench's own models. Serving asks for the task only: scoring the holdout is drift's
    business, and a model that fails on it must still be served (and rolled back)."""
    model_dir = Path(model_dir)
    task_file, profile_file = model_dir / TASK_FILE, model_dir / PROFILE_FILE

    def done() -> bool:
        return task_file.is_file() and (profile_file.is_file() or not profile)

    if done():
        return ModelTask.load(model_dir)
    from workbench.store.tracking import file_lock

    with file_lock(project.store / "locks" / "reference.lock"):
        if done():  # another process made them
            return ModelTask.load(model_dir)
        return _make(project, model_dir, version, task_file, profile_file if profile else None)


def _make(
    project: Project, model_dir: Path, version: int, task_file: Path, profile_file: Path | None
) -> ModelTask:
    from workbench.training.scoring import ScoringError, load_scorer

    cfg = project.config
    what = f"version {version} has no reference profile, and making one failed"
    frame = data_mod.load_frame(project.data_path, cfg.schema_)
    classes = target_mod.classes_of(frame, cfg)
    if task_file.is_file():
        task = ModelTask.load(model_dir)
    else:
        task = ModelTask(cfg.task.type, classes, cfg.evaluation.threshold, cfg.data.target)
    if profile_file is not None and not profile_file.is_file():
        parts = data_mod.split(target_mod.encode(frame, cfg, classes), cfg)
        holdout_x = data_mod.to_model_frame(parts.holdout, cfg)
        try:
            output = load_scorer(model_dir, task)(holdout_x)
        except ScoringError as exc:
            raise UsageError(f"{what}: {exc}") from None
        except Exception as exc:  # the model itself failed on the project's rows
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UsageError(
                f"{what} cannot score the project's data ({type(exc).__name__}: {first})"
            ) from None
        digest = data_mod.digest(project.data_path)
        source = f"training rows of snapshot {digest} (built on first use)"
        profile = profile_of(project, parts, task, output, source)
        try:
            profile.save(profile_file)  # atomic: a reader never sees half a profile
        except OSError as exc:
            raise UsageError(f"cannot write {profile_file} beside the model: {exc}") from None
    if not task_file.is_file():
        try:
            task.save(model_dir)
        except OSError as exc:
            raise UsageError(f"cannot write {task_file} beside the model: {exc}") from None
    return task
