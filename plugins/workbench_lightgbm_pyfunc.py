"""pyfunc loader for LightGBM models that Workbench logs.

Shipped inside each model's `code/` folder, so `mlflow.pyfunc.load_model` works without
Workbench installed. It scores raw records: columns are taken by the names the model was
trained on (`feature_columns.json` beside `model.lgb`; the booster itself knows positional
names), string columns are cast to the categories the booster was trained with (unseen
values become missing, which LightGBM handles). Returns the positive-class probability
(binary), the class probabilities (multiclass) or the value (regression).
"""

from __future__ import annotations

import json
import os
from typing import Any


class _LightGBMScorer:
    def __init__(self, booster: Any, columns: list[str] | None = None) -> None:
        self.booster = booster
        self.names = booster.feature_name()
        self.features = columns if columns and len(columns) == len(self.names) else self.names
        self.categories = booster.pandas_categorical or []

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        import pandas as pd

        frame = pd.DataFrame(data)
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ValueError(f"missing feature column(s): {', '.join(map(str, missing))}")
        frame = frame[self.features].copy()
        frame.columns = self.names
        cat_cols = [
            c
            for c in self.names
            if frame[c].dtype == object
            or isinstance(frame[c].dtype, pd.CategoricalDtype)
            or pd.api.types.is_string_dtype(frame[c].dtype)
        ]
        for col, cats in zip(cat_cols, self.categories, strict=False):
            frame[col] = pd.Categorical(frame[col].astype("object"), categories=cats)
        return self.booster.predict(frame)

    def get_raw_model(self) -> Any:
        return self.booster


def _load_pyfunc(path: str) -> _LightGBMScorer:
    import lightgbm as lgb

    model_file = path if os.path.isfile(path) else os.path.join(path, "model.lgb")
    columns_file = os.path.join(os.path.dirname(model_file), "feature_columns.json")
    columns = None
    if os.path.isfile(columns_file):
        with open(columns_file, encoding="utf-8") as fh:
            columns = json.load(fh)
    return _LightGBMScorer(lgb.Booster(model_file=model_file), columns)
