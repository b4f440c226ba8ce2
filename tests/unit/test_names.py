"""Names that become aliases or parts of paths: one rule each, one-line errors, no escape."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.errors import UsageError
from workbench.names import alias_problem, check_alias, check_label, check_name, inside


@pytest.mark.parametrize("alias", ["production", "staging", "champion_2", "blue-green", "x"])
def test_aliases_mlflow_takes(alias: str) -> None:
    assert alias_problem(alias) is None
    assert check_alias(alias) == alias


@pytest.mark.parametrize(
    ("alias", "why"),
    [
        ("latest", "reserved"),
        ("LATEST", "reserved"),
        ("v2", "version"),
        ("V10", "version"),
        ("a b", "letters, digits"),
        ("a/b", "letters, digits"),
        ("", "empty"),
        ("é", "letters, digits"),  # MLflow's \w is Unicode, but its REST paths are not
        ("x" * 256, "255"),
    ],
)
def test_aliases_mlflow_refuses(alias: str, why: str) -> None:
    problem = alias_problem(alias)
    assert problem is not None and why in problem
    with pytest.raises(UsageError, match=r"^--alias: "):
        check_alias(alias)


@pytest.mark.parametrize("name", ["serve-1a2b", "train_20261201", "job.1", "A", "x" * 128])
def test_safe_names(name: str) -> None:
    assert check_name(name, "--job-id") == name


@pytest.mark.parametrize(
    "name",
    ["../../../x", "..", ".", ".hidden", "-rf", "a/b", "a\\b", "a\x00b", "a\nb", "", "x" * 129],
)
def test_unsafe_names(name: str) -> None:
    with pytest.raises(UsageError) as info:
        check_name(name, "--job-id")
    message = str(info.value)
    assert message.startswith("--job-id: ") and "\n" not in message


def test_inside_keeps_paths_in_their_folder(tmp_path: Path) -> None:
    base = tmp_path / "jobs"
    base.mkdir()
    assert inside(base, "a.log") == (base / "a.log").resolve()
    for escape in ("../x.log", "../../etc/passwd", "/etc/passwd"):
        with pytest.raises(UsageError, match="resolves outside"):
            inside(base, escape)
    (base / "link").symlink_to(tmp_path)  # a symlink out of the folder is caught too
    with pytest.raises(UsageError, match="resolves outside"):
        inside(base, "link", "x.log")


def test_labels() -> None:
    assert check_label("my run 1", "--run-name") == "my run 1"
    for bad in ("", "a\nb", "a\x1bb", "x" * 251):
        with pytest.raises(UsageError, match=r"^--run-name: "):
            check_label(bad, "--run-name")
