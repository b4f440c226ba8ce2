"""What the built-in trainers do to a model folder MLflow just saved."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def use_loader(
    path: Path, loader: Path, edit: Callable[[dict[str, Any]], None] | None = None
) -> None:
    """Point the model's python_function flavour at `loader` (shipped in its `code/` folder,
    so plain `mlflow.pyfunc.load_model` scores raw records without Workbench); `edit` may
    change the other flavours of the same MLmodel document."""
    import yaml

    mlmodel = path / "MLmodel"
    doc = yaml.safe_load(mlmodel.read_text())
    pyfunc = doc["flavors"]["python_function"]
    pyfunc["loader_module"] = loader.stem
    pyfunc["code"] = "code"
    if edit is not None:
        edit(doc["flavors"])
    mlmodel.write_text(yaml.safe_dump(doc, sort_keys=False))
