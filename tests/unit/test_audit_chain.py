"""The audit log's hash chain on real Parquet files: records written through the real append,
then tampered with by pyarrow the way an attacker with write access to the files would, and
`verify` naming the first bad record; legacy rows, compaction, a killed writer, and several
processes appending at once."""

from __future__ import annotations

import itertools
import multiprocessing as mp
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.project import LogsRoot
from workbench.registry import audit, audit_chain, audit_verify
from workbench.registry.audit_chain import seal
from workbench.store.parquet_log import SCHEMAS, ParquetLog

ACTIONS = ("promote", "rollback", "deploy", "canary.start", "canary.promote", "serve.start")


def _write(root: LogsRoot, n: int = 6, start: int = 0) -> list[dict[str, Any]]:
    return [
        audit_chain.append(
            root, audit.make_row(ACTIONS[i % 6], "fraud", "production", i, i + 1, f"r{i}")
        )
        for i in range(start, start + n)
    ]


@pytest.fixture
def root(tmp_path: Path) -> LogsRoot:
    return LogsRoot(tmp_path / "logs")


@pytest.fixture
def written(root: LogsRoot) -> list[dict[str, Any]]:
    return _write(root)


def _stored(root: LogsRoot) -> tuple[Path, list[dict[str, Any]]]:
    """Compact the log into one file; that file and its rows (ordered by seq)."""
    plog = ParquetLog(root, "audit")
    plog.compact()
    (path,) = plog.files()
    rows = pq.read_table(path, partitioning=None).to_pylist()
    return path, sorted(rows, key=lambda r: r["seq"] or 0)


def _rewrite(path: Path, rows: list[dict[str, Any]]) -> None:
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMAS["audit"]), path)


def _problem(root: LogsRoot, head: str | None = None) -> audit_verify.Problem:
    report = audit_verify.verify(root, head)
    assert report.problem is not None, report
    return report.problem


def test_an_intact_chain_verifies_and_survives_compaction(
    root: LogsRoot, written: list[dict[str, Any]]
) -> None:
    assert [r["seq"] for r in written] == [1, 2, 3, 4, 5, 6]
    assert written[0]["prev_hash"] == audit_chain.GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(written))
    report = audit_verify.verify(root)
    assert report.ok and report.records == 6 and report.unchained == 0
    assert (report.head, report.head_seq) == (written[-1]["hash"], 6)
    assert ParquetLog(root, "audit").compact() == 6
    assert audit_verify.verify(root).ok
    assert audit_verify.verify(root, written[-1]["hash"]).after_given_head == 0
    assert audit_verify.verify(root, written[3]["hash"][:10]).after_given_head == 2


def test_a_changed_field_is_named(root: LogsRoot, written: list[dict[str, Any]]) -> None:
    path, rows = _stored(root)
    rows[2]["reason"] = "nothing to see"
    _rewrite(path, rows)
    p = _problem(root)
    assert (p.kind, p.seq, p.action) == ("changed", 3, "deploy")
    assert "do not match its hash" in p.detail


def test_a_changed_field_with_its_hash_recomputed_is_caught_by_the_next(
    root: LogsRoot, written: list[dict[str, Any]]
) -> None:
    path, rows = _stored(root)
    rows[2] = seal({**rows[2], "to_version": 99}, 3, rows[2]["prev_hash"])
    _rewrite(path, rows)
    p = _problem(root)
    assert (p.kind, p.seq, p.action) == ("changed", 3, "deploy")
    assert "seq 4 does not follow it" in p.detail


def test_an_inserted_record_is_named(root: LogsRoot, written: list[dict[str, Any]]) -> None:
    path, rows = _stored(root)
    forged = seal({**rows[3], "action": "forged", "reason": "x"}, 4, rows[2]["hash"])
    _rewrite(path, [*rows, forged])
    p = _problem(root)
    assert (p.kind, p.seq, p.action) == ("inserted", 4, "forged")
    # inserted with the rest renumbered (and rehashed): seq 5 chains past it
    later = [seal(r, r["seq"] + 1, "") for r in rows[3:]]
    prev = forged["hash"]
    for i, r in enumerate(later):
        later[i] = seal(r, r["seq"], rows[2]["hash"] if i == 0 else prev)
        prev = later[i]["hash"]
    _rewrite(path, [*rows[:3], forged, *later])
    p = _problem(root)
    assert (p.kind, p.seq, p.action) == ("inserted", 4, "forged")


def test_a_removed_record_is_named(root: LogsRoot, written: list[dict[str, Any]]) -> None:
    path, rows = _stored(root)
    _rewrite(path, rows[:2] + rows[3:])
    p = _problem(root)
    assert (p.kind, p.seq) == ("removed", 4)
    assert "seq 3 missing (seq 4 follows seq 2)" in p.detail


def test_swapped_records_are_named(root: LogsRoot, written: list[dict[str, Any]]) -> None:
    path, rows = _stored(root)
    rows[2]["seq"], rows[3]["seq"] = 4, 3
    _rewrite(path, rows)
    p = _problem(root)
    assert (p.kind, p.seq, p.action) == ("reordered", 3, "canary.start")
    assert "written as seq 4" in p.detail
    # swapped and both rehashed (each keeps its prev_hash)
    a = seal(rows[3], 3, rows[3]["prev_hash"])
    b = seal(rows[2], 4, rows[2]["prev_hash"])
    _rewrite(path, [*rows[:2], a, b, *rows[4:]])
    p = _problem(root)
    assert (p.kind, p.seq) == ("reordered", 3)


def test_the_newest_record_removed_is_caught_only_with_the_head(
    root: LogsRoot, written: list[dict[str, Any]]
) -> None:
    path, rows = _stored(root)
    _rewrite(path, rows[:-1])
    assert audit_verify.verify(root).ok  # a shorter chain is still a chain
    p = _problem(root, written[-1]["hash"])
    assert (p.kind, p.seq) == ("removed", 5)
    assert "is not in the chain" in p.detail


def test_a_consistent_rewrite_is_caught_only_with_the_head(
    root: LogsRoot, written: list[dict[str, Any]]
) -> None:
    path, rows = _stored(root)
    prev = rows[0]["hash"]
    forged = [rows[0]]
    for r in rows[1:]:
        forged.append(seal({**r, "actor": "mallory@host"}, r["seq"], prev))
        prev = forged[-1]["hash"]
    _rewrite(path, forged)
    assert audit_verify.verify(root).ok
    assert _problem(root, written[-1]["hash"]).kind == "removed"
    assert audit_verify.verify(root, written[0]["hash"]).ok  # still there: the first record


def test_legacy_rows_are_counted_and_anchored(root: LogsRoot) -> None:
    legacy = [audit.make_row("promote", "fraud", "production", None, i, "old") for i in (1, 2)]
    ParquetLog(root, "audit").append(legacy)
    written = _write(root, 3)
    assert written[0]["prev_hash"] == audit_chain.anchor(legacy) != audit_chain.GENESIS
    report = audit_verify.verify(root)
    assert report.ok and (report.records, report.unchained) == (3, 2)
    assert ParquetLog(root, "audit").compact() >= 2  # old and new files merge
    assert audit_verify.verify(root).ok
    path, rows = _stored(root)
    old = [r for r in rows if r["seq"] is None]
    old[0]["reason"] = "changed"
    _rewrite(path, rows)
    p = _problem(root)
    assert (p.kind, p.seq) == ("changed", 1)
    assert "unchained" in p.detail


def test_a_writer_killed_mid_append_leaves_the_next_one_to_find_the_head(
    root: LogsRoot, written: list[dict[str, Any]]
) -> None:
    head = root.local / "audit" / audit_chain.HEAD_FILE
    head.write_text('{"seq": 7, "hash": "ab", "pending": true}')  # never written to the log
    (row,) = _write(root, 1, start=6)
    assert (row["seq"], row["prev_hash"]) == (7, written[-1]["hash"])
    head.unlink()
    assert _write(root, 1, start=7)[0]["seq"] == 8
    assert audit_verify.verify(root).ok


def _appender(local: str, w: int, n: int, go: Any) -> None:
    go.wait()
    for i in range(n):
        audit_chain.append(
            LogsRoot(Path(local)), audit.make_row("set", "fraud", f"w{w}", None, i, f"{w}/{i}")
        )


def test_processes_appending_at_once_make_one_chain(root: LogsRoot) -> None:
    writers, each = 4, 8
    ctx = mp.get_context("fork")
    go = ctx.Event()
    procs = [
        ctx.Process(target=_appender, args=(str(root.local), w, each, go)) for w in range(writers)
    ]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    report = audit_verify.verify(root)
    assert report.ok, report.problem
    assert report.records == writers * each
    rows = audit_chain.read_rows(root)
    assert sorted(r["reason"] for r in rows) == sorted(
        f"{w}/{i}" for w in range(writers) for i in range(each)
    )
