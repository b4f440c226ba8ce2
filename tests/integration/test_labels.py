"""`workbench labels ingest`: labels joined to logged predictions by request id."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from workbench.cli.main import main
from workbench.project import Project
from workbench.serving.prediction_log import PredictionLogger
from workbench.store.db import Db


def test_labels_join_predictions_by_request_id(
    sample_project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with PredictionLogger(sample_project.logs) as logger:
        for i in range(4):
            logger.log(f"r{i}", "fraud", 1, "production", {"amount": i}, i / 10, 1.0)
    first = tmp_path / "labels.csv"
    pl.DataFrame({"request_id": ["r0", "r1", "r2"], "label": [0, 1, 0]}).write_csv(first)
    root = str(sample_project.root)
    assert main(["--project", root, "labels", "ingest", str(first)]) == 0
    assert "ingested 3 label(s)" in capsys.readouterr().out
    later = tmp_path / "later.parquet"  # a corrected label for r2 wins
    pl.DataFrame({"request_id": ["r2"], "label": [1.0]}).write_parquet(later)
    assert main(["--project", root, "labels", "ingest", str(later)]) == 0
    joined = Db(sample_project.logs).rows(
        "SELECT p.request_id, l.label FROM predictions p LEFT JOIN labels l USING (request_id) "
        "ORDER BY p.request_id"
    )
    assert [(r["request_id"], r["label"]) for r in joined] == [
        ("r0", 0.0),
        ("r1", 1.0),
        ("r2", 1.0),
        ("r3", None),
    ]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ({"request_id": ["a"], "y": [1]}, "missing column(s) label"),
        ({"request_id": ["a", None], "label": [1, 0]}, "1 row(s) with no request_id"),
        ({"request_id": ["a", "b"], "label": ["1", "yes"]}, "label='yes'"),
    ],
)
def test_bad_label_files_are_one_line_and_ingest_nothing(
    sample_project: Project,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    frame: dict[str, list[object]],
    message: str,
) -> None:
    path = tmp_path / "bad.csv"
    pl.DataFrame(frame).write_csv(path)
    assert main(["--project", str(sample_project.root), "labels", "ingest", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(path) in err[0]
    assert Db(sample_project.logs).rows("SELECT count(*) AS n FROM labels") == [{"n": 0}]
