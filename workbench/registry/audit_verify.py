"""Replaying the audit chain (audit_chain.py) in seq order, naming the first record that was
changed, inserted, removed or reordered; with a head kept elsewhere, also records removed
from the end. Reads every row from the Parquet files (never the head file)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from workbench.errors import UsageError
from workbench.project import LogsRoot
from workbench.registry.audit_chain import anchor, digest, is_chained, read_rows, ts_text


@dataclass(frozen=True)
class Problem:
    """The first bad record: what happened to it (`kind`) and how it shows (`detail`)."""

    kind: str  # changed | inserted | removed | reordered
    seq: int | None
    ts: str | None
    action: str | None
    detail: str

    def line(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "a record without seq"
        when = (self.ts or "?").replace("T", " ")[:19]
        return f"{where} ({when} UTC, {self.action or '?'}): {self.kind}: {self.detail}"


@dataclass
class Report:
    records: int  # chained records
    unchained: int  # rows from before the chain
    head: str | None = None  # the newest chained record's hash
    head_seq: int | None = None
    problem: Problem | None = None
    given_head: str | None = None
    after_given_head: int | None = None  # records newer than --head

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def _problem(row: dict[str, Any], kind: str, detail: str) -> Problem:
    seq = row.get("seq")
    return Problem(
        kind, None if seq is None else int(seq), ts_text(row.get("ts")), row.get("action"), detail
    )


def _order(row: dict[str, Any]) -> tuple[int, str]:
    seq = row.get("seq")
    return (-1 if seq is None else int(seq), ts_text(row.get("ts")) or "")


def check(rows: list[dict[str, Any]]) -> Report:
    """The chain of `rows` (in any order), replayed by seq."""
    legacy = [r for r in rows if not is_chained(r)]
    chained = sorted((r for r in rows if is_chained(r)), key=_order)
    report = Report(records=len(chained), unchained=len(legacy))
    if chained:
        report.head, report.head_seq = chained[-1].get("hash"), chained[-1].get("seq")
    report.problem = _walk(chained, anchor(legacy), len(legacy))
    return report


def _walk(chained: list[dict[str, Any]], start: str, n_legacy: int) -> Problem | None:
    by_hash = {r["hash"]: r for r in chained if r.get("hash")}
    seqs = sorted({int(r["seq"]) for r in chained if r.get("seq") is not None})
    prev_hash, expected, prev_row = start, 1, None
    for i, row in enumerate(chained):
        if row.get("seq") is None:
            return _problem(row, "changed", "its seq was removed")
        seq = int(row["seq"])
        twins = [r for r in chained[i:] if r.get("seq") == seq]
        if len(twins) > 1 or seq < expected:
            return _duplicate(twins or [row], prev_hash, chained[i + len(twins) :])
        if seq > expected:
            gone = f"seq {expected}" + (f" to {seq - 1}" if seq - 1 > expected else "")
            after = f"follows seq {expected - 1}" if expected > 1 else "starts the chain"
            return _problem(row, "removed", f"{gone} missing (seq {seq} {after})")
        if not row.get("hash") or digest(row) != row["hash"]:
            moved = next(
                (s for s in seqs if s != seq and digest({**row, "seq": s}) == row.get("hash")), None
            )
            if moved is None:
                return _problem(row, "changed", "its fields do not match its hash")
            skipped = _skipped(row, prev_row, by_hash)
            return skipped or _problem(row, "reordered", f"it was written as seq {moved}")
        if row.get("prev_hash") != prev_hash:
            return _broken_link(row, prev_row, prev_hash, chained[i + 1 :], by_hash, n_legacy)
        prev_hash, expected, prev_row = row["hash"], seq + 1, row
    return None


def _duplicate(twins: list[dict[str, Any]], prev_hash: str, later: list[dict[str, Any]]) -> Problem:
    """Records sharing one seq: the genuine one is the one the next record follows (else the
    intact one that follows the record before); the first other one was inserted."""
    nxt = later[0] if later else None
    genuine = next(
        (r for r in twins if nxt is not None and nxt.get("prev_hash") == r.get("hash")), None
    )
    if genuine is None:
        genuine = next(
            (r for r in twins if r.get("prev_hash") == prev_hash and digest(r) == r.get("hash")),
            None,
        )
    forged = next((r for r in twins if r is not genuine), twins[0])
    seq = forged.get("seq")
    return _problem(
        forged, "inserted", f"seq {seq} appears {len(twins)} times; this one is not chained"
    )


def _skipped(
    row: dict[str, Any], prev_row: dict[str, Any] | None, by_hash: dict[str, dict[str, Any]]
) -> Problem | None:
    """`row` chains to a record older than `prev_row`: the records between were inserted."""
    target = by_hash.get(row.get("prev_hash") or "")
    if prev_row is None or target is None or target is prev_row:
        return None
    if int(target.get("seq") or 0) >= int(prev_row["seq"]):
        return None
    first = next(
        (r for r in by_hash.values() if r.get("prev_hash") == target["hash"] and r is not row),
        prev_row,
    )
    return _problem(first, "inserted", f"seq {row['seq']} chains to seq {target['seq']}, not to it")


def _broken_link(
    row: dict[str, Any],
    prev_row: dict[str, Any] | None,
    prev_hash: str,
    later: list[dict[str, Any]],
    by_hash: dict[str, dict[str, Any]],
    n_legacy: int,
) -> Problem:
    """`row` is intact but does not follow the record before it: say which record is bad."""
    if prev_row is None:
        what = f"the {n_legacy} unchained record(s)" if n_legacy else "no unchained record"
        return _problem(
            row, "changed", f"the chain began after other unchained records than {what} now there"
        )
    successor = next((q for q in later if q.get("prev_hash") == prev_hash), None)
    if successor is not None:
        return _problem(
            row,
            "reordered",
            f"seq {successor['seq']} holds the record written after seq {prev_row['seq']}",
        )
    skipped = _skipped(row, prev_row, by_hash)
    if skipped is not None:
        return skipped
    return _problem(
        prev_row,
        "changed",
        f"seq {row['seq']} does not follow it: it was changed and its hash recomputed "
        "(or a record after it was removed and the rest renumbered)",
    )


def _find_head(chained: list[dict[str, Any]], given: str) -> dict[str, Any] | None:
    text = given.strip().lower()
    if len(text) < 8:
        raise UsageError(f"--head {given!r}: give the hash, or at least its first 8 characters")
    found = [r for r in chained if str(r.get("hash") or "").startswith(text)]
    if len(found) > 1 and any(r.get("hash") == text for r in found):
        found = [r for r in found if r.get("hash") == text]
    if len({r.get("hash") for r in found}) > 1:
        raise UsageError(f"--head {given!r} is the start of several hashes: give more of it")
    return found[0] if found else None


def verify(root: LogsRoot, head: str | None = None) -> Report:
    """The chain of the audit log under `root`; `head`: a hash kept from earlier (`audit
    head`), which must still be in the chain (else records were removed from its end)."""
    if head is not None and len(head.strip()) < 8:
        raise UsageError(f"--head {head!r}: give the hash, or at least its first 8 characters")
    rows = read_rows(root)
    report = check(rows)
    if head is None or report.problem is not None:
        return report
    chained = sorted((r for r in rows if is_chained(r)), key=_order)
    found = _find_head(chained, head)
    report.given_head = head
    if found is None:
        last = chained[-1] if chained else {"action": None}
        end = f"seq {report.head_seq}" if chained else "no chained record"
        report.problem = _problem(
            last,
            "removed",
            f"the head {head[:12]}... is not in the chain (it ends at {end}): "
            "records after this one were removed",
        )
        return report
    report.after_given_head = int(report.head_seq or 0) - int(found["seq"])
    return report
