"""Columnar batches on a real server: the same answers and the same prediction-log rows as
the same records, and the same 422s."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_serving import Server, predict_rows, start_server
from workbench.project import Project
from workbench.serving.predictors import load_predictor, model_dir_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(_trained_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("columnar") / "proj"
    shutil.copytree(_trained_template, root)
    server = start_server(Project.load(root))
    yield server
    server.stop()


def test_columns_answer_and_log_as_records_do(served: Server) -> None:
    records = served.records[:300]
    cols = list(records[0])
    rows = [[r[c] for c in cols] for r in records]
    expected = load_predictor(model_dir_for(served.project, 1), 1).predict(records)
    answers = {}
    for name, body in (
        ("records", records),
        ("dataframe_split", {"dataframe_split": {"columns": cols, "data": rows}}),
        ("plain", {"columns": cols, "data": rows}),
        ("inputs", {"inputs": {c: [r[c] for r in records] for c in cols}}),
    ):
        status, answer = served.call("POST", "/predict", body)
        assert status == 200, (name, answer)
        assert answer["predictions"] == pytest.approx(expected, abs=1e-12), name
        assert len(set(answer["request_ids"])) == len(records)
        answers[name] = answer
    assert answers["plain"]["labels"] == answers["records"]["labels"]

    served.stop()  # flushes the log
    logged = {}
    for name, answer in answers.items():
        ids = ", ".join(f"'{rid}'" for rid in answer["request_ids"])
        rows_ = predict_rows(served.project, f"request_id IN ({ids})")
        assert len(rows_) == len(records), name
        by_id = {r["request_id"]: r for r in rows_}
        logged[name] = [by_id[rid] for rid in answer["request_ids"]]
    keep = ("features", "output", "status", "numeric", "categorical", "laid_out", "version")
    want = [{k: r[k] for k in keep} for r in logged["records"]]
    assert all(r["laid_out"] for r in logged["records"])  # the typed lists are there
    for name in ("dataframe_split", "plain", "inputs"):
        assert [{k: r[k] for k in keep} for r in logged[name]] == want, name


@pytest.fixture
def live(_trained_template: Path, tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "proj"
    shutil.copytree(_trained_template, root)
    server = start_server(Project.load(root))
    yield server
    server.stop()


def test_a_bad_value_in_columns_is_the_records_422(live: Server) -> None:
    records = [dict(r) for r in live.records[:20]]
    records[7]["amount"] = "lots"
    cols = list(records[0])
    status, want = live.call("POST", "/predict", records)
    assert status == 422 and want["error"].startswith("records[7].amount: expected a number")
    split = {"columns": cols, "data": [[r[c] for c in cols] for r in records]}
    for body in ({"dataframe_split": split}, split):
        status, got = live.call("POST", "/predict", body)
        assert status == 422
        assert got == want
