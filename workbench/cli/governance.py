"""Approvals of alias moves ([governance]): `approvals`, `approve`, `reject`.
`workbench promote` asks for approval when the alias needs it (see registry/approvals.py)."""

from __future__ import annotations

from datetime import datetime

import click

from workbench.cli.common import Commands, console, load_project, print_json

commands = Commands()


def _age(created: datetime, now: datetime) -> str:
    seconds = max(0, int((now - created).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


@commands.command(
    "approvals",
    "approval requests of alias moves (pending ones; --all: every one)",
    json=True,
    epilog="[governance.aliases.<alias>] required_approvals = N turns `workbench promote` "
    "into a request that N approvers (not the requester) approve with `workbench approve`.",
)
@click.option("--all", "all_states", is_flag=True, help="also executed, rejected, expired ones")
def approvals(all_states: bool, as_json: bool) -> int:
    from workbench.registry import approvals as appr

    project = load_project()
    found = appr.requests(project, all_states=all_states)
    if as_json:
        print_json([r.to_dict() for r in found])
        return 0
    if not found:
        which = "" if all_states else "pending "
        print(f"no {which}approval requests for {project.config.model_name}")
        return 0
    from rich.table import Table

    now = appr.now()
    table = Table(
        "id", "alias", "version", "requester", "age", "approvals", "state", "reason",
        title=f"approval requests of {project.config.model_name}",
    )  # fmt: skip
    for r in found:
        table.add_row(
            r.id,
            r.alias,
            f"v{r.from_version or '-'} -> v{r.version}",
            r.requester,
            _age(r.created, now),
            f"{len(r.approvals)}/{r.required}"
            + (f" ({', '.join(r.approvers)})" if r.approvals else ""),
            r.state,
            r.reason,
        )
    console().print(table)
    return 0


@commands.command("approve", "approve a pending request; the last approval needed moves the alias")
@click.argument("request_id", metavar="ID")
@click.option("--reason", required=True, help="why (kept in the audit log)")
def approve(request_id: str, reason: str) -> int:
    from workbench.registry import approvals as appr

    project = load_project()
    decision = appr.approve(project, request_id, reason)
    print(decision.line())
    return 0


@commands.command("reject", "close a pending request without moving the alias")
@click.argument("request_id", metavar="ID")
@click.option("--reason", required=True, help="why (kept in the audit log)")
def reject(request_id: str, reason: str) -> int:
    from workbench.registry import approvals as appr

    project = load_project()
    req = appr.reject(project, request_id, reason)
    print(f"{req.id} rejected by {req.closed_by}: v{req.version} stays off {req.alias}")
    return 0
