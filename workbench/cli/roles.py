"""Roles: `workbench roles [--json]` lists who may approve, request and roll back each alias
([governance.aliases.*] in workbench.toml); `roles grant` and `roles revoke` edit that
section in place (comments kept) and write a `roles.grant`/`roles.revoke` audit row."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from workbench.cli.common import (
    Commands,
    Group,
    fmt,
    load_project,
    print_json,
    project_option,
)

if TYPE_CHECKING:
    pass

commands = Commands()
_ROLE_CHOICE = click.Choice(["approver", "requester", "rollback"])


@click.group(
    "roles",
    cls=Group,
    invoke_without_command=True,
    help="who may approve, request and roll back each alias ([governance.aliases.*])",
    short_help="who may approve, request and roll back each alias ([governance.aliases.*])",
    subcommand_metavar="[grant|revoke] [ARGS]...",
)
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
@project_option
@click.pass_context
def roles(ctx: click.Context, as_json: bool) -> int:
    if ctx.invoked_subcommand is not None:
        return 0
    from workbench.registry import roles as core

    project = load_project()
    external = core.note_external_role_changes(project)
    table = core.alias_roles(core.governance(project))
    if as_json:
        print_json({"aliases": table, "external_change": external is not None})
        return 0
    if external is not None:
        print("[governance] was edited by hand since it was last audited (audited: roles.external)")
    if not table:
        print("no [governance.aliases.*] roles in workbench.toml: anyone may move any alias")
        return 0
    _print_table(table)
    return 0


def _print_table(table: dict[str, dict[str, Any]]) -> None:
    from workbench.cli.tables import Col, show

    def names(users: list[str], empty: str) -> str:
        return ", ".join(users) if users else empty

    cols = [Col("alias"), Col("approvers"), Col("needs", right=True)]
    cols += [Col("requesters"), Col("rollback")]
    rows = [
        [
            alias,
            names(r["approvers"], "-"),
            fmt(r["required_approvals"]),
            names(r["requesters"], "(anyone)"),
            names(r["rollback"], "(anyone)"),
        ]
        for alias, r in table.items()
    ]
    show(cols, rows)


def _change(user: str, alias: str, role: str, reason: str, grant: bool, anyone: bool) -> int:
    from workbench.registry import roles as core

    project = load_project()
    row = core.change(project, user, alias, role, reason, grant=grant, allow_anyone=anyone)
    key = core.ROLES[role]
    if row is None:
        print(f"{user} already in [governance.aliases.{alias}] {key}: nothing changed")
    else:
        verb = "added to" if grant else "removed from"
        print(f"{user} {verb} [governance.aliases.{alias}] {key} (audited: {row['action']})")
    return 0


def _role_options(f: Any) -> Any:
    f = click.option("--reason", required=True, help="why (kept in the audit log)")(f)
    f = click.option("--role", required=True, type=_ROLE_CHOICE, help="which role")(f)
    f = click.option("--alias", required=True, help="the alias, e.g. production")(f)
    f = click.argument("user")(f)
    return f


@roles.action("grant", "give USER a role on an alias (edits workbench.toml; audited)")
@_role_options
def grant(user: str, alias: str, role: str, reason: str) -> int:
    return _change(user, alias, role, reason, grant=True, anyone=False)


@roles.action("revoke", "take a role on an alias from USER (edits workbench.toml; audited)")
@_role_options
@click.option(
    "--allow-anyone",
    is_flag=True,
    help="allow removing the last requester/rollback name (an empty list lets anyone)",
)
def revoke(user: str, alias: str, role: str, reason: str, allow_anyone: bool) -> int:
    return _change(user, alias, role, reason, grant=False, anyone=allow_anyone)


commands.items.append(roles)
