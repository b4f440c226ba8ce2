"""The audit log: `audit` (the newest rows), `audit verify` (the hash chain), `audit head`."""

from __future__ import annotations

import click

from workbench.cli.common import (
    Commands,
    Group,
    fmt,
    load_project,
    print_json,
    project_option,
)
from workbench.errors import DataError

commands = Commands()


@click.group(
    "audit",
    cls=Group,
    invoke_without_command=True,
    subcommand_metavar="[ACTION] [ARGS]...",
    help="the audit log (newest first); `audit verify` checks its hash chain",
    short_help="the audit log; verify its hash chain",
)
@click.option("--limit", type=int, default=100, help="how many rows (100)")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
@project_option
@click.pass_context
def audit(ctx: click.Context, limit: int, as_json: bool) -> int:
    if ctx.invoked_subcommand is not None:
        return 0
    from workbench.store.db import Db

    project = load_project()
    with Db(project.logs_root) as db:
        rows = db.rows("SELECT * FROM audit ORDER BY ts DESC LIMIT ?", [limit])
    if as_json:
        print_json(rows)
        return 0
    from workbench.cli.tables import Col, show

    cols = [
        Col("when (UTC)"),
        Col("who", cut=10),
        Col("action"),
        Col("model", optional=True, cut=12),
        Col("alias"),
        Col("from", right=True),
        Col("to", right=True),
        Col("reason", cut=16),
    ]
    cells = [
        [
            r["ts"].strftime("%Y-%m-%d %H:%M"),
            r["actor"],
            r["action"],
            r["model"],
            r["alias"] or "-",
            fmt(r["from_version"]),
            fmt(r["to_version"]),
            " ".join(str(r["reason"] or "").split()),
        ]
        for r in rows
    ]
    show(cols, cells)
    return 0


commands.items.append(audit)
assert isinstance(audit, Group)


@audit.action("verify", "replay the hash chain; exit 1 naming the first bad record", json=True)
@click.option(
    "--head",
    "head",
    metavar="HASH",
    help="a head kept from earlier (`workbench audit head`): it must still be in the chain",
)
def verify(head: str | None, as_json: bool) -> int:
    from workbench.registry import audit_verify

    project = load_project()
    report = audit_verify.verify(project.logs_root, head)
    if as_json:
        print_json(report.to_dict())
        return 0 if report.ok else 1
    if report.problem is not None:
        print(f"audit chain broken at {report.problem.line()}")
        return 1
    line = f"audit chain intact: {report.records} records"
    if report.head:
        line += f", head {report.head[:12]}… (seq {report.head_seq})"
    if report.unchained:
        line += f"; {report.unchained} unchained records from before the chain"
    if report.after_given_head is not None:
        line += f"; {report.after_given_head} record(s) follow the given head"
    print(line)
    return 0


@audit.action("head", "the newest record's hash (keep it to check removals later)", json=True)
def head(as_json: bool) -> int:
    from workbench.registry import audit_chain

    project = load_project()
    rows = audit_chain.read_rows(project.logs_root)
    chained = [r for r in rows if audit_chain.is_chained(r) and r.get("seq") is not None]
    if not chained:
        raise DataError(f"audit log in {project.logs}: no chained record yet")
    last = max(chained, key=lambda r: int(r["seq"]))
    if as_json:
        ts = audit_chain.ts_text(last["ts"])
        print_json({"seq": last["seq"], "hash": last["hash"], "ts": ts, "action": last["action"]})
        return 0
    print(last["hash"])
    return 0
