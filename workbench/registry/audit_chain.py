"""The audit log's hash chain: each record carries `seq` (1, 2, 3...), `prev_hash` (the hash
of record seq-1) and `hash`, the hex sha256 of its canonical bytes (`canonical`). Changing,
inserting, removing or reordering a record breaks the chain; `verify` replays it in seq
order and names the first bad record. Removing the newest records leaves a shorter chain that
is still whole: only a head kept elsewhere (`verify(head=...)`) catches that.

Appending reads the previous head and writes the next record as one step for every writer:
- a local log: under an flock beside the log (`audit/_chain.lock`), with the head kept in
  `audit/_head.json` so an append never scans the log. The head is marked pending while the
  record is written, so a writer killed in between leaves the next one to find the real head
  by reading the log (verify never reads the head file).
- a log in S3 (`[logs] uri`): no lock spans machines, so a writer claims `seq` by creating
  `_chain/<seq>.json` with a conditional PUT (If-None-Match: *); the loser reads the winner's
  claim and tries the next seq. `_chain/head.json` is a hint of where to start.

Rows written before the chain existed (no hash) are legacy: the first chained record's
prev_hash is the `anchor` of them all, so they cannot change unnoticed either.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.project import LogsRoot
from workbench.store.parquet_log import COLUMNS, ParquetLog

#: The prev_hash of seq 1 when no legacy rows came before the chain.
GENESIS = "0" * 64
#: The fields a record's hash covers: every column but the hash itself.
CHAINED = tuple(name for name, _ in COLUMNS["audit"] if name != "hash")
HEAD_FILE = "_head.json"
LOCK_FILE = "_chain.lock"


def ts_text(value: Any) -> str | None:
    """A timestamp as ISO text in UTC with microseconds (naive means UTC, as Parquet has it)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return str(value.astimezone(UTC).isoformat(timespec="microseconds"))


def canonical(row: Mapping[str, Any], fields: Iterable[str] = CHAINED) -> bytes:
    """The bytes a record's hash covers: its fields as JSON, keys sorted, ts in UTC."""
    data = {f: ts_text(row.get(f)) if f == "ts" else row.get(f) for f in fields}
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(row: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(row)).hexdigest()


def anchor(legacy: Iterable[Mapping[str, Any]]) -> str:
    """The prev_hash of seq 1: GENESIS, or a hash of every unchained row (in any order)."""
    fields = [f for f in CHAINED if f not in ("seq", "prev_hash")]
    each = sorted(hashlib.sha256(canonical(r, fields)).hexdigest() for r in legacy)
    if not each:
        return GENESIS
    return hashlib.sha256("\n".join(each).encode()).hexdigest()


def seal(row: Mapping[str, Any], seq: int, prev_hash: str) -> dict[str, Any]:
    """`row` as record `seq` of the chain, after the record whose hash is `prev_hash`."""
    sealed = {k: v for k, v in row.items() if k not in ("seq", "prev_hash", "hash")}
    sealed.update(seq=seq, prev_hash=prev_hash)
    sealed["hash"] = digest(sealed)
    return sealed


def is_chained(row: Mapping[str, Any]) -> bool:
    return row.get("hash") is not None or row.get("seq") is not None


def read_rows(root: LogsRoot) -> list[dict[str, Any]]:
    """Every row of the audit log, as stored (S3: listed anew)."""
    from workbench.store.db import Db

    plog = ParquetLog(root, "audit")
    if plog.remote is not None:
        plog.remote.forget()
    with Db(root) as db:
        return db.rows("SELECT * FROM audit")


@dataclass(frozen=True)
class Head:
    seq: int  # 0: no chained record yet
    hash: str  # the prev_hash of the next record


def head_of(rows: list[dict[str, Any]]) -> Head:
    """The newest chained record of `rows`, or where seq 1 starts (read from the log)."""
    chained = [r for r in rows if is_chained(r) and r.get("seq") is not None]
    if not chained:
        return Head(0, anchor(r for r in rows if not is_chained(r)))
    last = max(chained, key=lambda r: int(r["seq"]))
    return Head(int(last["seq"]), str(last["hash"]))


# --- appending: a local log ----------------------------------------------------------------

_thread_lock = threading.Lock()  # flock excludes other processes; this, our own threads


@contextmanager
def _flocked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with _thread_lock, open(folder / LOCK_FILE, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_head(folder: Path) -> Head | None:
    """The head file, unless missing, unreadable or left pending by a killed writer."""
    try:
        data = json.loads((folder / HEAD_FILE).read_text())
        if data.get("pending"):
            return None
        return Head(int(data["seq"]), str(data["hash"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_head(folder: Path, head: Head, pending: bool = False) -> None:
    tmp = folder / f".{HEAD_FILE}.{uuid.uuid4().hex}.tmp"
    try:
        tmp.write_text(json.dumps({"seq": head.seq, "hash": head.hash, "pending": pending}))
        os.replace(tmp, folder / HEAD_FILE)
    finally:
        tmp.unlink(missing_ok=True)


def _append_local(root: LogsRoot, plog: ParquetLog, row: Mapping[str, Any]) -> dict[str, Any]:
    folder = plog.folder
    with _flocked(folder):
        head = _read_head(folder) or head_of(read_rows(root))
        sealed = seal(row, head.seq + 1, head.hash)
        new = Head(sealed["seq"], sealed["hash"])
        _write_head(folder, new, pending=True)
        try:
            plog.append([sealed])
        except BaseException:
            _write_head(folder, head)
            raise
        _write_head(folder, new)
    return sealed


# --- appending: a log in S3 ------------------------------------------------------------------

_s3_heads: dict[str, Head] = {}  # this process's last known head of each S3 audit log


def _claim_key(base: str, seq: int) -> str:
    return f"{base}/_chain/{seq:020d}.json"


def _s3_body(sealed: Mapping[str, Any]) -> bytes:
    return json.dumps({**sealed, "ts": ts_text(sealed.get("ts"))}, sort_keys=True).encode()


def _s3_get(root: LogsRoot, path: str) -> dict[str, Any] | None:
    import botocore.exceptions

    from workbench.store import s3_log

    bucket, _, key = path.partition("/")
    try:
        answer = s3_log.client(root).get_object(Bucket=bucket, Key=key)
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code", "") in ("NoSuchKey", "404"):
            return None
        raise
    data: dict[str, Any] = json.loads(answer["Body"].read())
    return data


def _s3_start(root: LogsRoot, base: str) -> Head | None:
    """Where to start claiming: this process's head, else the head hint (None: seq 1)."""
    if base in _s3_heads:
        return _s3_heads[base]
    hint = _s3_get(root, f"{base}/_chain/head.json")
    return Head(int(hint["seq"]), str(hint["hash"])) if hint else None


def _append_s3(root: LogsRoot, plog: ParquetLog, row: Mapping[str, Any]) -> dict[str, Any]:
    from workbench.store import s3_log

    assert plog.remote is not None
    remote = plog.remote
    base = remote.base
    with remote._errors("cannot append to the audit chain"):
        head = _s3_start(root, base)
        while True:
            if head is None:  # seq 1 chains to the legacy rows: read them once
                head = head_of([r for r in read_rows(root) if not is_chained(r)])
            sealed = seal(row, head.seq + 1, head.hash)
            if s3_log.put_new(root, _claim_key(base, sealed["seq"]), _s3_body(sealed)):
                break
            taken = _s3_get(root, _claim_key(base, head.seq + 1))
            if taken is not None:  # else deleted meanwhile: try that seq again
                head = Head(int(taken["seq"]), str(taken["hash"]))
        new = Head(sealed["seq"], sealed["hash"])
        _s3_heads[base] = new
    plog.append([sealed])
    with remote._errors("cannot write the audit chain's head"):
        bucket, _, key = f"{base}/_chain/head.json".partition("/")
        body = json.dumps({"seq": new.seq, "hash": new.hash}).encode()
        s3_log.client(root).put_object(Bucket=bucket, Key=key, Body=body)
    return sealed


def append(root: LogsRoot, row: Mapping[str, Any]) -> dict[str, Any]:
    """Write `row` as the next record of the chain; returns it sealed (seq, prev_hash, hash)."""
    plog = ParquetLog(root, "audit")
    if plog.remote is not None:
        return _append_s3(root, plog, row)
    return _append_local(root, plog, row)
