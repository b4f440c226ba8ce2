"""`workbench init DIR --data FILE --target COL` through the real CLI on scikit-learn's bundled
datasets (binary breast cancer with spaces in its column names, multiclass wine, regression
diabetes) as CSV and Parquet: init infers, writes a commented workbench.toml, and
`workbench validate` then passes on the same file. A messy CSV goes through init and validate
without a traceback; `validate --json` prints JSON even when the data fails."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import polars as pl
import pytest

from tests.helpers import run_cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    from sklearn import datasets as sk

    loaders = {
        "cancer": sk.load_breast_cancer,
        "wine": sk.load_wine,
        "diabetes": sk.load_diabetes,
    }
    return {name: pl.from_pandas(load(as_frame=True).frame) for name, load in loaders.items()}


CASES = [
    ("cancer", "csv", "binary"),
    ("cancer", "parquet", "binary"),
    ("wine", "csv", "multiclass"),
    ("wine", "parquet", "multiclass"),
    ("diabetes", "csv", "regression"),
    ("diabetes", "parquet", "regression"),
]


@pytest.mark.parametrize(("name", "fmt", "task"), CASES)
def test_init_from_data_then_validate_passes(
    datasets: dict[str, pl.DataFrame],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    fmt: str,
    task: str,
) -> None:
    source = tmp_path / f"{name}.{fmt}"
    frame = datasets[name]
    frame.write_csv(source) if fmt == "csv" else frame.write_parquet(source)
    root = tmp_path / "proj"
    code, out, err = run_cli(capsys, "init", str(root), "--data", str(source), "--target", "target")
    assert code == 0, out + err
    assert out.startswith(f"task: {task} (target 'target' is ")
    assert "validate: passed" in out
    assert (root / "data" / source.name).is_file() and not (
        root / "data" / source.name
    ).is_symlink()
    text = (root / "workbench.toml").read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    assert raw["task"]["type"] == task and raw["data"]["split"] == "random"
    assert set(raw["schema"]) == set(frame.columns)
    if name == "cancer":
        assert '[schema."mean radius"]' in text  # a name with a space, quoted
    assert text.count("\n# ") > 10  # commented
    code, out, err = run_cli(capsys, "validate", "--project", str(root))
    assert code == 0, out + err
    assert "passed" in out


def test_a_given_task_that_does_not_fit_is_one_line(
    datasets: dict[str, pl.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "diabetes.parquet"
    datasets["diabetes"].write_parquet(source)
    root = tmp_path / "proj"
    argv = ["init", str(root), "--data", str(source), "--target", "target", "--task", "binary"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert "distinct values; a binary task needs 2 — use --task regression" in err
    assert not (root / "workbench.toml").exists()


def test_link_symlinks_and_an_existing_config_is_kept(
    datasets: dict[str, pl.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "wine.csv"
    datasets["wine"].write_csv(source)
    root = tmp_path / "proj"
    argv = ["init", str(root), "--data", str(source), "--target", "target", "--link"]
    code, out, err = run_cli(capsys, *argv, "--name", "my-wine")
    assert code == 0, out + err
    assert (root / "data" / "wine.csv").is_symlink()
    assert tomllib.loads((root / "workbench.toml").read_text())["project"]["name"] == "my-wine"
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "already exists (use --force" in err


MESSY = """\
customer id,signup date,active,amount,visits,comment,empty,const,city,y
{rows}"""


def _messy_rows(n: int) -> str:
    rows = []
    for i in range(n):
        date = f"2023-{i % 12 + 1:02d}-{i % 28 + 1:02d}" if i % 5 else f"{i % 28 + 1:02d}/06/2023"
        amount = ["N/A", "NA", "null", "", "-"][i % 5] if i % 10 == 0 else f"{(i * 7.3) % 200:.2f}"
        visits = "" if i % 9 == 0 else str(i % 11)
        active = ["yes", "no", "true", "false"][i % 4]
        city = ["Paris", "Lyon", "Nice"][i % 3]
        y = ["churn", "stay"][(i * 7) % 3 == 0]
        rows.append(
            f"C{i:05d},{date},{active},{amount},{visits},note {i} {i * 7919},,same,{city},{y}"
        )
    return "\n".join(rows) + "\n"


def test_messy_csv_through_init_and_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "customers.csv"
    source.write_text(MESSY.format(rows=_messy_rows(400)), encoding="utf-8")
    root = tmp_path / "proj"
    code, out, err = run_cli(capsys, "init", str(root), "--data", str(source), "--target", "y")
    assert code == 0, out + err
    assert "task: binary (target 'y' is text with 2 distinct values)" in out
    assert "note: id column: 'customer id'" in out
    assert "note: timestamp: 'signup date'" in out
    assert "note: column 'empty' left out of [schema]: every value is missing" in out
    assert "note: column 'const' left out" in out and "note: column 'comment' left out" in out
    raw = tomllib.loads((root / "workbench.toml").read_text())
    assert raw["data"]["split"] == "time" and raw["data"]["id_column"] == "customer id"
    assert raw["schema"]["active"] == {"type": "bool"}
    assert raw["schema"]["visits"]["type"] == "int" and raw["schema"]["visits"]["max_missing"]
    code, out, err = run_cli(capsys, "validate", "--project", str(root))
    assert code == 0, out + err

    # The same file with bad values: a per-column report naming them, exit 1, no traceback.
    data = root / "data" / "customers.csv"
    lines = data.read_text().splitlines()
    for i in (5, 6, 30):
        cells = lines[i].split(",")
        cells[3] = "abc" if i != 30 else "12x"  # amount: 'abc', 'abc', '12x'
        cells[8] = "Lyon "  # city: not an allowed category
        lines[i] = ",".join(cells)
    data.write_text("\n".join(lines) + "\n")
    code, out, err = run_cli(capsys, "validate", "--project", str(root))
    assert code == 1
    assert "FAIL" in out and "amount" in out and "city" in out  # a per-column report
    code, out, err = run_cli(capsys, "validate", "--json", "--project", str(root))
    assert code == 1
    report = json.loads(out)
    assert report["passed"] is False
    failed = {(c["check"], c["column"]) for c in report["checks"] if c["status"] == "fail"}
    assert failed == {("type", "amount"), ("allowed", "city")}
    (amount,) = [c for c in report["checks"] if c["check"] == "type" and c["column"] == "amount"]
    assert amount["detail"] == (
        "declared float but 3 of 400 values (0.75%) are not numbers: '12x', 'abc'"
    )


def test_validate_json_prints_json_when_the_data_cannot_be_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "workbench.toml").write_text(
        '[project]\nname = "p"\n[data]\npath = "data/none.csv"\ntarget = "y"\nsplit = "random"\n'
    )
    code, out, err = run_cli(capsys, "validate", "--json", "--project", str(root))
    assert code == 1
    report = json.loads(out)
    assert report["passed"] is False and "data file not found" in report["error"]
    assert "data file not found" in err


def test_schema_infer_prints_the_schema_block(
    datasets: dict[str, pl.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "cancer.csv"
    datasets["cancer"].write_csv(source)
    code, out, err = run_cli(capsys, "schema", "infer", str(source), "--target", "target")
    assert code == 0, err
    schema = tomllib.loads(out)["schema"]
    assert schema["mean radius"]["type"] == "float"
    assert schema["target"] == {"type": "int", "min": 0, "max": 1, "outliers": False}
    assert "task: binary" in err
    code, out, err = run_cli(capsys, "schema", "infer", str(tmp_path / "missing.csv"))
    assert code == 1 and "data file not found" in err
