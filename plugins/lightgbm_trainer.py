"""The default trainer: LightGBM binary classification with early stopping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.plugins import TrainContext, TrainedModel

DEFAULTS: dict[str, Any] = {
    "objective": "binary",
    "metric": ["auc", "binary_logloss"],
    "num_iterations": 200,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "verbosity": -1,
    "seed": 42,
    "num_threads": 0,
}
LOADER = Path(__file__).with_name("workbench_lightgbm_pyfunc.py")


class LightGBMTrainer:
    kind = "trainer"
    name = "lightgbm"

    def train(self, ctx: TrainContext) -> TrainedModel:
        import lightgbm as lgb
        import pandas as pd

        params = {**DEFAULTS, **ctx.params}
        early = params.pop("early_stopping_rounds", None)
        total = int(params.pop("num_iterations", params.pop("n_estimators", 200)))

        def prepare(frame: pd.DataFrame, categories: dict[str, list[str]] | None) -> pd.DataFrame:
            frame = frame.copy()
            for col in ctx.categorical:
                values = frame[col].astype("object")
                frame[col] = (
                    pd.Categorical(values, categories=categories[col])
                    if categories
                    else pd.Categorical(values)
                )
            return frame

        x_train = prepare(ctx.train[ctx.features], None)
        cats = {c: list(x_train[c].cat.categories) for c in ctx.categorical}
        x_valid = prepare(ctx.valid[ctx.features], cats)
        dtrain = lgb.Dataset(
            x_train, ctx.train[ctx.target], categorical_feature=ctx.categorical or "auto"
        )
        dvalid = lgb.Dataset(x_valid, ctx.valid[ctx.target], reference=dtrain)

        def report(env: Any) -> None:
            scores = {
                f"{name}_{metric}".replace("binary_", ""): float(value)
                for name, metric, value, _ in env.evaluation_result_list
            }
            ctx.on_iteration(env.iteration + 1, total, scores)

        callbacks: list[Any] = [report]
        if early:
            callbacks.append(lgb.early_stopping(int(early), verbose=False))
        booster = lgb.train(
            params,
            dtrain,
            num_boost_round=total,
            valid_sets=[dtrain, dvalid],
            valid_names=["train", "valid"],
            callbacks=callbacks,
        )

        def predict(frame: pd.DataFrame) -> Any:
            return booster.predict(prepare(frame[ctx.features], cats))

        def save(path: Path, signature: Any, input_example: pd.DataFrame) -> None:
            import mlflow
            import mlflow.lightgbm
            import numpy
            import yaml

            mlflow.lightgbm.save_model(
                booster,
                str(path),
                signature=signature,
                input_example=input_example,
                code_paths=[str(LOADER)],
                # Explicit requirements: MLflow's inference would load the model with the stock
                # LightGBM pyfunc (which cannot score string categoricals) in a subprocess.
                pip_requirements=[
                    f"mlflow=={mlflow.__version__}",
                    f"lightgbm=={lgb.__version__}",
                    f"pandas=={pd.__version__}",
                    f"numpy=={numpy.__version__}",
                ],
            )
            # The stock pyfunc of the LightGBM flavor cannot score string categoricals; point
            # the pyfunc flavor at our loader (shipped in code/) and keep the lightgbm flavor.
            mlmodel = path / "MLmodel"
            spec = yaml.safe_load(mlmodel.read_text())
            pyfunc = spec["flavors"]["python_function"]
            pyfunc["loader_module"] = LOADER.stem
            pyfunc["code"] = "code"
            mlmodel.write_text(yaml.safe_dump(spec, sort_keys=False))

        importance = dict(
            zip(booster.feature_name(), map(float, booster.feature_importance("gain")), strict=True)
        )
        return TrainedModel(
            predict=predict,
            save_mlflow_model=save,
            best_iteration=booster.best_iteration or booster.current_iteration(),
            feature_importance=importance,
            flavor="lightgbm",
        )
