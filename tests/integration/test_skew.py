"""Training-serving skew end to end: a trained project served on loopback, a transform bug
injected at serving (`amount` in cents, x100, in every other request), the prediction log
flushed within one logging window, then `workbench skew` must flag exactly `amount`, with
the share of bugged rows, in feature skew and in distribution skew, and nothing else."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.helpers import cli_json, run_cli
from tests.integration.test_serving import Server, start_server
from workbench.project import Project
from workbench.store.db import Db

ROWS = 400
LOG_INTERVAL_S = 0.5


@dataclass
class Skewed:
    project: Project
    server: Server
    offline: Path
    bugged: int  # rows whose served amount differs from the offline one
    sent: int


def _requests(frame: pl.DataFrame, features: list[str]) -> Iterator[tuple[int, Any]]:
    """(rows bugged, body) per request: 10 single records, then batches of 30 in the three
    batch formats; every other request has its amounts in cents (a zero stays the same)."""
    rows = frame.select(["transaction_id", *features]).to_dicts()
    chunks = [rows[i : i + 1] for i in range(10)]
    chunks += [rows[i : i + 30] for i in range(10, len(rows), 30)]
    for n, chunk in enumerate(chunks):
        bugged = 0
        if n % 2 == 1:
            bugged = sum(1 for r in chunk if r["amount"])
            chunk = [{**r, "amount": r["amount"] * 100} for r in chunk]
        chunk = [{**r, "customer_id": f"c-{i % 7}"} for i, r in enumerate(chunk)]
        if n < 10:
            yield bugged, chunk[0]
        elif n % 3 == 0:
            yield bugged, chunk
        elif n % 3 == 1:
            yield bugged, {"dataframe_records": chunk}
        else:
            columns = list(chunk[0])
            data = [[r[c] for c in columns] for r in chunk]
            yield bugged, {"dataframe_split": {"columns": columns, "data": data}}


def _logged(project: Project, where: str = "passthrough IS NOT NULL") -> list[dict[str, Any]]:
    with Db(project.logs) as db:
        return db.rows(f"SELECT * FROM predictions WHERE {where}")


@pytest.fixture(scope="module")
def skewed(_trained_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Skewed]:
    root = tmp_path_factory.mktemp("skew") / "proj"
    shutil.copytree(_trained_template, root)
    config = root / "workbench.toml"
    extra = f'\n[serving]\npassthrough = ["customer_id"]\nlog_interval_s = {LOG_INTERVAL_S}\n'
    config.write_text(config.read_text() + extra)
    project = Project.load(root)
    frame = pl.read_parquet(project.data_path).sample(ROWS, seed=7)
    offline = root / "offline.parquet"
    frame.write_parquet(offline)  # the offline features, e.g. the next training's file
    server = start_server(project)
    try:
        bugged = sent = 0
        for rows_bugged, body in _requests(frame, project.config.features):
            status, answer = server.call("POST", "/predict", body)
            assert status == 200, answer
            sent += len(answer.get("request_ids", [answer.get("request_id")]))
            bugged += rows_bugged
        started = time.monotonic()
        while len(_logged(project)) < sent and time.monotonic() - started < 10:
            time.sleep(0.1)
        waited = time.monotonic() - started
        assert len(_logged(project)) == sent, "the log was not flushed"
        assert waited < LOG_INTERVAL_S + 2.0  # one logging window (plus a loaded machine)
        yield Skewed(project, server, offline, bugged, sent)
    finally:
        server.stop()


def test_skew_flags_exactly_the_bugged_feature(
    skewed: Skewed, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(skewed.project.root)
    report = cli_json(
        capsys, "skew", "--data", str(skewed.offline), "--key", "transaction_id", code=1
    )
    assert report["served"] == skewed.sent == ROWS
    assert report["joined"] == ROWS and report["asof"] == "ts"
    by_name = {f["feature"]: f for f in report["features"]}
    assert set(by_name) == set(skewed.project.config.features)
    amount = by_name.pop("amount")
    assert amount["alert"] is True
    assert amount["mismatches"] == skewed.bugged
    assert amount["share"] == pytest.approx(skewed.bugged / ROWS)
    assert 0.4 < amount["share"] < 0.6
    example = amount["examples"][0]
    assert float(example["served"]) == pytest.approx(float(example["offline"]) * 100)
    assert [f for f in by_name.values() if f["mismatches"]] == []
    dist = {d["feature"]: d for d in report["distribution"]["features"]}
    assert dist["amount"]["measure"] == "js" and dist["amount"]["alert"] is True
    assert dist["merchant_category"]["measure"] == "linf"
    assert [d["feature"] for d in dist.values() if d["alert"]] == ["amount"]
    assert [a.split(":")[0] for a in report["alerts"]] == ["amount", "amount"]
    code, out, _ = run_cli(capsys, "skew", "--data", str(skewed.offline), "--key", "transaction_id")
    assert code == 1 and "amount" in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_passthrough_is_returned_logged_and_never_reaches_the_model(skewed: Skewed) -> None:
    server = skewed.server
    record = dict(server.records[0])
    status, plain = server.call("POST", "/predict", record)
    assert status == 200 and "passthrough" not in plain
    tagged = {**record, "transaction_id": "probe-1", "customer_id": 17}
    status, answer = server.call("POST", "/predict", tagged)
    assert status == 200
    assert answer["passthrough"] == {"transaction_id": "probe-1", "customer_id": 17}
    assert answer["prediction"] == plain["prediction"]  # the model never saw the fields
    status, batch = server.call("POST", "/predict", [record, tagged])
    assert status == 200
    assert batch["passthrough"] == [None, {"transaction_id": "probe-1", "customer_id": 17}]
    status, bad = server.call("POST", "/predict", {**record, "customer_id": "x" * 300})
    assert status == 422 and bad["error"].startswith("customer_id: longer than 256")
    deadline = time.monotonic() + 10
    where = f"request_id = '{answer['request_id']}'"
    while not _logged(skewed.project, where) and time.monotonic() < deadline:
        time.sleep(0.1)
    (row,) = _logged(skewed.project, where)
    assert row["passthrough"] == '{"transaction_id":"probe-1","customer_id":17}'
    assert "transaction_id" not in row["features"] and "customer_id" not in row["features"]


def test_skew_s_one_line_errors(
    skewed: Skewed,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(skewed.project.root)
    offline = pl.read_parquet(skewed.offline)
    args = ["skew", "--data", str(skewed.offline)]
    code, _, err = run_cli(capsys, *args, "--key", "nope")
    assert code == 2 and err.strip().endswith(
        "--key nope: no such column in " + str(skewed.offline)
    )
    code, _, err = run_cli(capsys, *args, "--key", "card_age_days")
    assert code == 2 and "no prediction of the last 24h carried it" in err
    other = tmp_path / "other.parquet"
    offline.with_columns(pl.lit("none").alias("transaction_id")).write_parquet(other)
    code, _, err = run_cli(capsys, "skew", "--data", str(other), "--key", "transaction_id")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert f"rows in the last 24h, {ROWS} rows in" in err and "transaction_id" in err
