"""A shared Parquet log in S3-compatible object storage, for many writers on many machines.

Layout under `s3://bucket/prefix/<log>/`:

    date=YYYY-MM-DD/part-<time>-<uuid>.parquet      one object per append (one PUT each)
    date=YYYY-MM-DD/compact-<time>-<uuid>.parquet   merged by a compaction
    _gen/<n, 20 digits>.json                        the compaction generations

An append is one PUT of a uniquely named object: S3 shows an object whole or not at all, so no
reader sees half a file, a writer killed mid-append leaves nothing (an unfinished upload is
invisible), and writers never wait for each other. Which files are live is decided by the
newest generation, `{"compacted": [...], "retired": [{"path", "at"}]}`: every `part-` object
not retired, plus the `compact-` objects the generation names. A compaction merges a
partition's live files into a new `compact-` object (invisible until named) and publishes
generation n+1 with a conditional PUT (If-None-Match: *), so of two compactions only one wins
(the loser deletes its merged object): a reader sees the parts or the merged file, never both
and never neither. Retired objects are deleted a grace period later, as on local disk.

Listing a log (a LIST, a GET of the generation) costs tens of ms, so a process reuses its
listing for `[logs] refresh_s` (2 s): the TUI, the monitor and `Db.cursor()` pay it once per
window, not per query. The listing is the process's (shared by every S3Log of that log), its
own appends are added to it at once and its compactions drop it, so a process always sees its
own writes, and other writers' within the window. A listing that old is still readable because
retired objects are kept RETIRE_GRACE_S, at least ten times the longest window (MAX_REFRESH_S).
Should a reader outlive even that, the query fails on a vanished object and `Db` lists anew
and runs it again (see `vanished`). Whether the bucket exists is asked once per process.
The contents of small live files are kept in memory once read (s3_cache.py: objects never
change), so a repeated query reads only the files it has not seen.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from workbench.errors import ConfigError, DataError
from workbench.project import LogsRoot
from workbench.store import s3_cache

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

#: A partition with this many live files is merged when a compaction runs. Chosen by
#: measurement (benchmarks/shared_logs.py compact_at, S3 20 ms away): every live file adds
#: ~14 ms to each query (a Db open + count: 90 ms over 1 file, 250 over 16, 450 over 32,
#: 1,000 over 64), while a compaction rewrites the partition's day so far, a fixed cost (0.35 s
#: for a 200k-row day) plus ~22 ms a file: per append, 0.35/N s + 22 ms. 16 keeps queries
#: interactive (~0.25 s at worst) for ~44 ms of background work per append (in the writer's
#: thread: the prediction logger buffers meanwhile); 32 halves that extra work but doubles
#: every query; below 8 the day's rewrite dominates. (On loopback S3 a file costs ~2.7 ms;
#: the local log keeps 32: a local file costs no round trip.)
COMPACT_AT = 16
#: An append starts a compaction with this chance: about one compaction per COMPACT_AT
#: appends across all writers (more would race and waste their merges; see the benchmark).
COMPACT_CHANCE = 1 / COMPACT_AT
#: Seconds a retired object stays for queries that listed it already.
RETIRE_GRACE_S = 120.0
#: Generations kept behind the newest one (readers that listed an older one retry).
KEEP_GENERATIONS = 16
#: The longest `[logs] refresh_s`: a listing reused that long must still name only objects
#: that exist, so retired ones must outlive it by far (config.LogsSection says 12 too).
MAX_REFRESH_S = RETIRE_GRACE_S / 10
assert MAX_REFRESH_S >= 2.0 and MAX_REFRESH_S * 10 <= RETIRE_GRACE_S, "grace << refresh_s"
ENDPOINT_ENVS = ("AWS_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL")


@dataclass(frozen=True)
class Snapshot:
    """The live files of a log at one moment, and the generation that decided them."""

    gen: int
    state: dict[str, Any]
    live: tuple[str, ...]  # bucket/key paths, sorted
    parts: dict[str, float]  # every listed data object -> its mtime (epoch seconds)
    gens: tuple[int, ...]
    sizes: dict[str, int]  # every listed data object -> its size in bytes


def endpoint(root: LogsRoot) -> str | None:
    names = (root.endpoint_env,) if root.endpoint_env else ENDPOINT_ENVS
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    if root.endpoint_env:
        raise ConfigError(f"[logs] endpoint_env: ${root.endpoint_env} is not set")
    return None


_clients: dict[tuple[str | None, str], Any] = {}
_clients_lock = threading.Lock()

# This process's listings: (endpoint, bucket/prefix/log) -> (snapshot, monotonic time the
# LIST began). A write bumps the log's epoch, so that a listing begun before it (which may
# miss the write) is not stored over the one the write updated.
_listings: dict[tuple[str | None, str], tuple[Snapshot, float]] = {}
_epochs: dict[tuple[str | None, str], int] = {}
_listings_lock = threading.Lock()
_buckets: set[tuple[str | None, str]] = set()  # buckets found, once per process


def forget_listings() -> None:
    """Drop every cached listing (the next read lists each log anew)."""
    with _listings_lock:
        for key in _listings:
            _epochs[key] = _epochs.get(key, 0) + 1
        _listings.clear()


def vanished(exc: BaseException) -> bool:
    """Whether a query failed reading an S3 object through a log's Arrow dataset: an object
    gone since the listing (a listing older than the grace period, a file deleted by hand),
    or a read that failed on the way; either way worth one new listing and one more try.
    DuckDB reports it as InvalidInputException "reading the stream registered as
    '_src_<log>' failed: IOError: ...": "Path does not exist '<path>'" when the scan asks
    the object's size first, "AWS Error ... during GetObject operation" when it knows the
    size from the listing (as `dataset` builds it). Reproduced in
    tests/integration/test_s3_log_cache.py."""
    text = str(exc)
    return "reading the stream registered as '_src_" in text and "IOError" in text


def filesystem(root: LogsRoot) -> pafs.S3FileSystem:
    import pyarrow.fs as pafs

    url = endpoint(root)
    key = (url, "fs")
    with _clients_lock:
        if key not in _clients:
            opts: dict[str, Any] = {
                "region": os.environ.get("AWS_DEFAULT_REGION")
                or os.environ.get("AWS_REGION")
                or "us-east-1",
                "connect_timeout": 5.0,
                "request_timeout": 30.0,
                "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=2),
            }
            if url:
                scheme, _, host = url.partition("://")
                opts.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
            _clients[key] = pafs.S3FileSystem(**opts)
        return _clients[key]


def client(root: LogsRoot) -> Any:
    """A boto3 S3 client (for the conditional PUT pyarrow does not offer)."""
    url = endpoint(root)
    with _clients_lock:
        if (url, "boto3") not in _clients:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise ConfigError(
                    "[logs] uri = s3://... needs boto3 (pip install 'workbench-mlops[team]')"
                ) from None
            cfg = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2})
            _clients[(url, "boto3")] = boto3.client("s3", endpoint_url=url, config=cfg)
        return _clients[(url, "boto3")]


def put_new(root: LogsRoot, path: str, body: bytes) -> bool:
    """PUT `bucket/key` only if no object is there (If-None-Match: *): False when one is."""
    import botocore.exceptions

    bucket, _, key = path.partition("/")
    try:
        client(root).put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
            return False
        raise
    return True


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _schema(log: str) -> pa.Schema:
    from workbench.store.parquet_log import SCHEMAS

    return SCHEMAS[log]


class S3Log:
    """One log (`predictions`, `audit`, ...) under `<uri>/<name>/`."""

    def __init__(self, root: LogsRoot, name: str) -> None:
        assert root.uri is not None
        self.root = root
        self.name = name
        self.uri = f"{root.uri}/{name}"
        self.base = self.uri.removeprefix("s3://")  # bucket/prefix/name, as pyarrow names it
        if not 0 <= root.refresh_s <= MAX_REFRESH_S:
            raise ConfigError(f"[logs] refresh_s: must be 0 to {MAX_REFRESH_S:g} seconds")
        self._key = (endpoint(root), self.base)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except (ConfigError, DataError):
            raise
        except Exception as exc:  # pyarrow's OSError, botocore's errors: one line
            where = endpoint(self.root) or "the default AWS endpoint"
            raise DataError(f"logs {self.uri} ({where}): {what}: {_one_line(exc)}") from None

    # Reading ------------------------------------------------------------------------------
    def snapshot(self, max_age: float | None = None) -> Snapshot:
        """The live files: this process's listing if younger than `max_age` seconds
        (default `[logs] refresh_s`), else a new one."""
        age = self.root.refresh_s if max_age is None else max_age
        with _listings_lock:
            cached = _listings.get(self._key)
            epoch = _epochs.get(self._key, 0)
        if cached is not None and time.monotonic() - cached[1] <= age:
            return cached[0]
        began = time.monotonic()
        snap = self._list()
        with _listings_lock:
            if _epochs.get(self._key, 0) == epoch:
                _listings[self._key] = (snap, began)
        return snap

    def listed(self) -> bool:
        """Whether this process holds a listing of the log young enough to reuse."""
        with _listings_lock:
            cached = _listings.get(self._key)
        return cached is not None and time.monotonic() - cached[1] <= self.root.refresh_s

    def forget(self) -> None:
        """Drop this process's listing of the log (after a write it cannot describe)."""
        with _listings_lock:
            _epochs[self._key] = _epochs.get(self._key, 0) + 1
            _listings.pop(self._key, None)

    def _added(self, path: str, size: int) -> None:
        """This process appended `path`: its listing shows it at once."""
        with _listings_lock:
            _epochs[self._key] = _epochs.get(self._key, 0) + 1
            cached = _listings.get(self._key)
            if cached is not None:
                snap, began = cached
                live = tuple(sorted((*snap.live, path)))
                parts = {**snap.parts, path: time.time()}
                sizes = {**snap.sizes, path: size}
                _listings[self._key] = (replace(snap, live=live, parts=parts, sizes=sizes), began)

    def _list(self) -> Snapshot:
        import pyarrow.fs as pafs

        fs = filesystem(self.root)
        for attempt in range(3):
            with self._errors("cannot list"):
                infos = fs.get_file_info(
                    pafs.FileSelector(self.base, recursive=True, allow_not_found=True)
                )
            if not infos:  # an empty log, or no bucket at all (a typo must not read as empty)
                self._check_bucket()
            gens: list[int] = []
            parts: dict[str, float] = {}
            sizes: dict[str, int] = {}
            for info in infos:
                rel = info.path[len(self.base) + 1 :]
                if rel.startswith("_gen/") and rel.endswith(".json"):
                    gens.append(int(rel[5:-5]))
                elif rel.endswith(".parquet") and info.type == pafs.FileType.File:
                    parts[info.path] = info.mtime.timestamp() if info.mtime else 0.0
                    sizes[info.path] = info.size
            gen = max(gens, default=0)
            try:
                state = self._read_gen(gen)
            except FileNotFoundError:  # deleted behind us: KEEP_GENERATIONS newer ones exist
                if attempt == 2:
                    raise DataError(f"logs {self.uri}: generations change too fast") from None
                continue
            retired = {e["path"] for e in state["retired"]}
            live = [p for p in parts if p.rsplit("/", 1)[-1].startswith("part-")]
            live = [p for p in live if p not in retired] + list(state["compacted"])
            gens.sort()
            return Snapshot(gen, state, tuple(sorted(live)), parts, tuple(gens), sizes)
        raise AssertionError("unreachable")

    def _check_bucket(self) -> None:
        import pyarrow.fs as pafs

        bucket = self.base.split("/", 1)[0]
        if (self._key[0], bucket) in _buckets:
            return
        with self._errors("cannot look up the bucket"):
            found = filesystem(self.root).get_file_info(bucket).type != pafs.FileType.NotFound
        if not found:
            where = endpoint(self.root) or "the default AWS endpoint"
            raise DataError(f"logs {self.uri} ({where}): no bucket {bucket!r}")
        _buckets.add((self._key[0], bucket))

    def _gen_path(self, gen: int) -> str:
        return f"{self.base}/_gen/{gen:020d}.json"

    def _read_gen(self, gen: int) -> dict[str, Any]:
        if gen == 0:
            return {"compacted": [], "retired": []}
        fs = filesystem(self.root)
        with self._errors(f"cannot read generation {gen}"):
            try:
                with fs.open_input_stream(self._gen_path(gen)) as fh:
                    data = json.loads(fh.read())
            except FileNotFoundError:
                raise
            except OSError as exc:
                if "NoSuchKey" in str(exc) or "does not exist" in str(exc):
                    raise FileNotFoundError(gen) from None
                raise
        return {"compacted": list(data["compacted"]), "retired": list(data["retired"])}

    def uris(self) -> list[str]:
        return [f"s3://{p}" for p in self.snapshot().live]

    def dataset(self, snap: Snapshot, schema: pa.Schema) -> pads.Dataset:
        """An Arrow dataset over the live files of `snap` with the `date` partition column
        (DuckDB scans it with projection and filter pushdown). Small files come from this
        process's cache of their contents (s3_cache.py: read once, as they never change);
        the others are lazy fragments, each file's size from the listing (the scan then
        skips a HEAD per file: ~45% of a query over 20 files 20 ms away)."""
        import pyarrow as pa
        import pyarrow.dataset as pads

        fmt = pads.ParquetFileFormat()
        fs = filesystem(self.root)
        full = schema.append(pa.field("date", pa.string()))

        def lazy(paths: list[str]) -> pads.FileSystemDataset:
            frags = []
            for path in paths:
                folder = path[len(self.base) + 1 :].rsplit("/", 1)[0]
                keys = dict(seg.partition("=")[::2] for seg in folder.split("/") if "=" in seg)
                where = pads.field("date") == keys.get("date")
                size = snap.sizes.get(path)
                frags.append(
                    fmt.make_fragment(path, fs, partition_expression=where, file_size=size)
                )
            return pads.FileSystemDataset(frags, full, fmt, fs)

        with self._errors("cannot open"):
            tables, rest = s3_cache.split(
                self._key[0], self.base, snap.live, snap.sizes, lambda p: lazy([p]).to_table()
            )
            if not tables:
                return lazy(rest)
            held = pads.InMemoryDataset(pa.concat_tables(tables))
            return pads.UnionDataset(full, [held, lazy(rest)]) if rest else held

    # Writing ------------------------------------------------------------------------------
    def append(self, table: pa.Table, partition: Mapping[str, str]) -> str:
        """One PUT of a new object; sometimes a compaction after it."""
        folder = "/".join(f"{k}={v}" for k, v in partition.items())
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = f"{self.base}/{folder}/part-{stamp}-{uuid.uuid4().hex[:12]}.parquet"
        with self._errors("cannot write"):
            size = self._put(path, table)
        self._added(path, size)
        if random.random() < COMPACT_CHANCE:
            # The rows are in: a failed compaction must not fail the append (a caller that
            # retried it would write them twice). The next one tries again.
            with contextlib.suppress(DataError):
                self.compact(min_files=COMPACT_AT)
        return f"s3://{path}"

    def compact(self, min_files: int = 2) -> int:
        """Merge each partition holding `min_files` live files or more into one object and
        publish the next generation. Returns how many files were merged (0 when another
        compaction published first: its generation stands, ours is dropped)."""
        try:
            return self._compact(min_files)
        finally:  # published or not, this process's listing may be behind: list anew
            self.forget()

    def _compact(self, min_files: int) -> int:
        import pyarrow.dataset as pads

        snap = self.snapshot(max_age=0)  # the newest generation, or our publish loses
        now = time.time()
        fs = filesystem(self.root)
        state = snap.state
        expired = [e["path"] for e in state["retired"] if now - e["at"] > RETIRE_GRACE_S]
        by_part: dict[str, list[str]] = {}
        for p in snap.live:
            by_part.setdefault(p.rsplit("/", 1)[0], []).append(p)
        merged: list[str] = []
        written: list[str] = []
        for folder, paths in sorted(by_part.items()):
            if len(paths) < max(2, min_files):
                continue
            with self._errors("cannot compact"):
                # One dataset: its fragments are fetched in parallel (500 GETs one after
                # another took ~10x longer); every file has the log's schema.
                # The log's schema, not the first file's: files from before a column was
                # added (the audit chain's) must not drop it from the newer ones.
                table = pads.dataset(
                    paths, schema=_schema(self.name), filesystem=fs, format="parquet"
                ).to_table()
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
                out = f"{folder}/compact-{stamp}-{uuid.uuid4().hex[:12]}.parquet"
                self._put(out, table)
            written.append(out)
            merged += paths
        orphans = self._orphans(snap, now)
        if not written and not expired and not orphans:
            return 0
        self._delete(expired + orphans)
        gone = set(merged)
        new_state = {
            "compacted": [p for p in state["compacted"] if p not in gone] + written,
            "retired": [e for e in state["retired"] if e["path"] not in set(expired)]
            + [{"path": p, "at": now} for p in merged],
        }
        if not self._publish(snap.gen + 1, new_state):
            self._delete(written)  # never named by a generation: no reader can see them
            return 0
        old = [g for g in snap.gens if g < snap.gen + 1 - KEEP_GENERATIONS]
        self._delete([self._gen_path(g) for g in old])
        return len(merged)

    def put_aside(self, name: str, body: bytes) -> str:
        """`body` as `_quarantine/<name>` beside the log, in one PUT (whole or not at all, like
        an append; the listing reads only .parquet objects and _gen/). Returns its URI."""
        bucket, _, prefix = self.base.partition("/")
        with self._errors("cannot write the quarantine"):
            client(self.root).put_object(
                Bucket=bucket, Key=f"{prefix}/_quarantine/{name}", Body=body
            )
        return f"{self.uri}/_quarantine/{name}"

    def _put(self, path: str, table: pa.Table) -> int:
        """The whole file in one PUT (built in memory: a batch is small, and one PUT is all
        or nothing where a multipart upload killed midway leaves parts behind)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        body = sink.getvalue().to_pybytes()
        bucket, _, key = path.partition("/")
        client(self.root).put_object(Bucket=bucket, Key=key, Body=body)
        return len(body)

    def _orphans(self, snap: Snapshot, now: float) -> list[str]:
        """Merged objects no generation named (a compaction lost, or was killed), once old
        enough that their compaction is surely over."""
        named = set(snap.state["compacted"]) | {e["path"] for e in snap.state["retired"]}
        return [
            p
            for p, mtime in snap.parts.items()
            if p.rsplit("/", 1)[-1].startswith("compact-")
            and p not in named
            and now - mtime > RETIRE_GRACE_S
        ]

    def _publish(self, gen: int, state: dict[str, Any]) -> bool:
        """PUT generation `gen` only if no one has (If-None-Match: *)."""
        body = json.dumps({**state, "gen": gen, "at": time.time()}).encode()
        with self._errors(f"cannot publish generation {gen}"):
            return put_new(self.root, self._gen_path(gen), body)

    def _delete(self, paths: list[str]) -> None:
        by_bucket: dict[str, list[str]] = {}
        for p in paths:
            bucket, _, key = p.partition("/")
            by_bucket.setdefault(bucket, []).append(key)
        with self._errors("cannot delete retired files"):
            for bucket, keys in by_bucket.items():
                for i in range(0, len(keys), 1000):
                    objects = [{"Key": k} for k in keys[i : i + 1000]]
                    answer = client(self.root).delete_objects(
                        Bucket=bucket, Delete={"Objects": objects, "Quiet": True}
                    )
                    if answer.get("Errors"):  # kept retired: the next compaction retries
                        raise OSError(f"{answer['Errors'][0].get('Message', 'delete failed')}")
