"""Approvals of alias moves ([governance]): `approvals`, `approve`, `reject`.
`workbench promote` asks for approval when the alias needs it (see registry/approvals.py)."""

from __future__ import annotations

import shutil

import click

from workbench.cli.common import Commands, load_project, print_json

commands = Commands()


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
    now = appr.now()
    # Fits the terminal (80 columns and up): fixed cells kept whole, the reason cut to fit.
    heads = ("id", "move", "by", "age", "ok", "state")
    rows = [
        (
            r.id,
            f"{r.alias} v{r.from_version or '-'}→v{r.version}",
            r.requester,
            r.age(now),
            f"{len(r.approvals)}/{r.required}"
            + (f" {','.join(r.approvers)}" if r.approvals else ""),
            r.state,
            " ".join(r.reason.split()),
        )
        for r in found
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(heads)]
    room = max(12, shutil.get_terminal_size((80, 24)).columns - sum(widths) - 2 * len(widths))

    def line(cells: tuple[str, ...]) -> str:
        fixed = "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False))
        reason = cells[-1] if len(cells[-1]) <= room else cells[-1][: room - 1] + "…"
        return f"{fixed}  {reason}".rstrip()

    print(f"approval requests of {project.config.model_name}")
    print(line((*heads, "reason")))
    for row in rows:
        print(line(row))
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
