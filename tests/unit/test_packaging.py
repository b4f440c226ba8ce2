"""The distribution installs what is in the tree, under its own names (issue 10): the folders
screens/, plugins/, sample_projects/ become workbench_tui, workbench_plugins and
workbench_samples, so no other distribution's `screens` or `plugins` collides with them."""

from __future__ import annotations

import importlib
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = CONFIG["tool"]["setuptools"]


def _folder(package: str) -> Path:
    """Where setuptools takes `package` from, by the package-dir mapping."""
    head, *rest = package.split(".")
    base = SETUPTOOLS["package-dir"].get(head, head)
    return ROOT / base / Path(*rest) if rest else ROOT / base


def test_every_package_folder_is_installed() -> None:
    listed = set(SETUPTOOLS["packages"])
    for name in SETUPTOOLS["packages"]:
        assert (_folder(name) / "__init__.py").is_file(), name
    reverse = {v: k for k, v in SETUPTOOLS["package-dir"].items()}
    for top in ("workbench", "screens", "plugins", "sample_projects"):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top).parts
            name = ".".join([reverse.get(top, top), *rel])
            assert name in listed, f"{init.parent} is a package but not in [tool.setuptools]"


def test_no_generic_top_level_names_are_installed() -> None:
    tops = {name.split(".")[0] for name in SETUPTOOLS["packages"]}
    assert tops == {"workbench", "workbench_tui", "workbench_plugins", "workbench_samples"}


def test_entry_points_load_under_the_installed_names() -> None:
    for group in ("workbench.plugins", "workbench.ui"):
        eps = list(entry_points(group=group))
        assert eps, group
        for ep in eps:
            assert ep.value.split(".")[0] in ("workbench_plugins", "workbench_tui"), ep.value
            assert ep.load() is not None


def test_installed_names_import() -> None:
    for name in ("workbench_tui.app", "workbench_plugins.local_runner",
                 "workbench_samples.fraud_detection.generate"):  # fmt: skip
        module = importlib.import_module(name)
        assert module.__file__ is not None
