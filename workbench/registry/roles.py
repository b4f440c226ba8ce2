"""Who may approve, request and roll back each alias: the `[governance.aliases.*]` roles, read
straight from workbench.toml, edited in place (`workbench roles grant|revoke`, comments and
formatting kept), and every change audited.

A change made by hand is audited too, the next time a command reads the governance config:
the [governance] section last seen is remembered in the store (`governance.json`, its
sha256 and its content), and `note_external_role_changes()` writes one `roles.external` row
(details: before, after) when the file's section differs. `workbench roles`, promote and
approve call it before they read the roles. In read-only mode it notices but writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from workbench import readonly
from workbench.config import CONFIG_FILE
from workbench.errors import ConfigError, UsageError
from workbench.project import Project
from workbench.registry import audit

#: --role -> the key of [governance.aliases.NAME] it edits.
ROLES: dict[str, str] = {"approver": "approvers", "requester": "requesters", "rollback": "rollback"}
#: Roles where an empty list means anyone (so revoking the last name widens, not narrows).
EMPTY_IS_ANYONE = ("requesters", "rollback")
STATE_FILE = "governance.json"

_HEADER = re.compile(r"^\s*\[(?!\[)(.+?)\]\s*(#.*)?$")
_ANY_HEADER = re.compile(r"^\s*\[")
_USER = re.compile(r"^[^\s,\"'#\[\]]+$")


# --- reading -------------------------------------------------------------------------------


def config_path(project: Project) -> Path:
    return project.root / CONFIG_FILE


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None


def governance(project: Project) -> dict[str, Any]:
    """The [governance] section as written in workbench.toml ({} when there is none)."""
    path = config_path(project)
    section = _parse(path.read_text(encoding="utf-8"), str(path)).get("governance", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [governance] must be a table")
    return section


def alias_roles(section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per alias: approvers, requesters, rollback (lists) and required_approvals (or None)."""
    aliases = section.get("aliases", {})
    out: dict[str, dict[str, Any]] = {}
    for alias, table in sorted(aliases.items() if isinstance(aliases, dict) else []):
        table = table if isinstance(table, dict) else {}
        roles: dict[str, Any] = {key: list(table.get(key, [])) for key in ROLES.values()}
        roles["required_approvals"] = table.get("required_approvals")
        out[alias] = roles
    return out


# --- hand edits: the section last seen -----------------------------------------------------


def _digest(section: dict[str, Any]) -> str:
    body = json.dumps(section, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def _state_path(project: Project) -> Path:
    return project.store / STATE_FILE


def _seen(project: Project) -> dict[str, Any] | None:
    try:
        state = json.loads(_state_path(project).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and "sha256" in state else None


def remember(project: Project, section: dict[str, Any]) -> None:
    """Remember `section` as the audited [governance] (after a roles command wrote it)."""
    path = _state_path(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"sha256": _digest(section), "section": section}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(body, indent=2, sort_keys=True, default=str) + "\n", "utf-8")
    os.replace(tmp, path)


def note_external_role_changes(project: Project) -> dict[str, Any] | None:
    """If [governance] changed since it was last audited (by hand: no roles command did it),
    write one `roles.external` audit row (details: before, after) and return it; else None.

    Never seen before, an empty section is remembered quietly and a non-empty one is
    recorded (before = {}): it came into being unaudited. Read-only: nothing is written, the
    row that would be is returned."""
    current = governance(project)
    seen = _seen(project)
    if seen is None and not current:
        if not readonly.enabled():
            remember(project, current)
        return None
    if seen is not None and seen["sha256"] == _digest(current):
        return None
    before = seen.get("section", {}) if seen is not None else {}
    reason = "[governance] in workbench.toml changed by hand since it was last audited"
    if readonly.enabled():
        return audit.make_row(
            "roles.external", project.config.model_name, None, None, None, reason,
            before=before, after=current,
        )  # fmt: skip
    row = audit.record(
        project, "roles.external", project.config.model_name, None, None, None, reason,
        before=before, after=current,
    )  # fmt: skip
    remember(project, current)
    return row


# --- editing workbench.toml ----------------------------------------------------------------


def _table_path(header_inner: str) -> tuple[str, ...] | None:
    """`governance.aliases."prod"` -> ("governance", "aliases", "prod"), via tomllib."""
    try:
        node: Any = tomllib.loads(f"[{header_inner}]\n")
    except tomllib.TOMLDecodeError:
        return None
    parts: list[str] = []
    while isinstance(node, dict) and len(node) == 1:
        key, node = next(iter(node.items()))
        parts.append(key)
    return tuple(parts)


def _comment_at(line: str) -> int | None:
    """Where a line's comment starts (a `#` outside any string), or None."""
    quote = None
    i = 0
    while i < len(line):
        ch = line[i]
        if quote is not None:
            if quote == '"' and ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return i
        i += 1
    return None


def _find_table(lines: list[str], path: tuple[str, ...]) -> tuple[int, int] | None:
    """The table's header line and the line after its last (the next header, or the end)."""
    for i, raw in enumerate(lines):
        head = _HEADER.match(raw)
        if head and _table_path(head.group(1)) == path:
            end = next((j for j in range(i + 1, len(lines)) if _ANY_HEADER.match(lines[j])), None)
            return i, len(lines) if end is None else end
    return None


def _value_span(lines: list[str], start: int, end: int) -> int:
    """The last line of the `key = value` starting at `start` (a multi-line array)."""
    for j in range(start, end):
        try:
            tomllib.loads("\n".join(lines[start : j + 1]))
        except tomllib.TOMLDecodeError:
            continue
        return j
    return start


def set_list_text(text: str, alias: str, key: str, values: list[str]) -> str:
    """workbench.toml's text with `[governance.aliases.ALIAS] KEY = values`: the key's line(s)
    replaced (its trailing comment kept), or added at the end of the table, or the table
    appended. Every other line is kept as it was."""
    from workbench.data.toml_text import toml_key, toml_value

    assignment = f"{key} = {toml_value(values)}"
    lines = text.splitlines()
    found = _find_table(lines, ("governance", "aliases", alias))
    if found is None:
        tail = "" if not lines or not lines[-1].strip() else "\n"
        header = f"[governance.aliases.{toml_key(alias)}]"
        return text.rstrip("\n") + "\n" + tail + header + "\n" + assignment + "\n"
    head, end = found
    key_line = re.compile(rf"^(\s*)(?:{re.escape(key)}|\"{re.escape(key)}\")\s*=")
    for i in range(head + 1, end):
        match = key_line.match(lines[i])
        if match:
            last = _value_span(lines, i, end)
            at = _comment_at(lines[last])
            new = match.group(1) + assignment
            if at is not None:  # the comment kept, at its column when the value fits
                new = f"{new:<{at}}" if len(new) < at and last == i else new + "  "
                new += lines[last][at:]
            lines[i : last + 1] = [new]
            return "\n".join(lines) + "\n"
    body_end = head + 1
    for i in range(head + 1, end):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            body_end = i + 1
    lines.insert(body_end, assignment)
    return "\n".join(lines) + "\n"


# --- grant and revoke -----------------------------------------------------------------------


def _check_user(user: str) -> str:
    user = user.strip()
    if not _USER.match(user):
        raise UsageError(f"user {user!r}: a bare user name (no spaces, quotes, commas)")
    return user


def _role_key(role: str) -> str:
    if role not in ROLES:
        raise UsageError(f"--role {role}: one of {', '.join(ROLES)}")
    return ROLES[role]


def _write_config(project: Project, text: str, expected: dict[str, Any]) -> None:
    """Write workbench.toml's new text if it parses to `expected` [governance] and loads."""
    from workbench.config import Config, parse_config

    path = config_path(project)
    parsed = _parse(text, str(path))
    if parsed.get("governance", {}) != expected:
        raise ConfigError(
            f"{path}: left unchanged, [governance] is written in a form `workbench roles` "
            "cannot edit (an inline table or dotted keys?); edit it by hand"
        )
    if "governance" in Config.model_fields:  # once Config parses [governance]
        parse_config(text, str(path))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def change(
    project: Project,
    user: str,
    alias: str,
    role: str,
    reason: str,
    *,
    grant: bool,
    allow_anyone: bool = False,
) -> dict[str, Any] | None:
    """Grant (or revoke) `role` on `alias` to `user`: workbench.toml edited, the new section
    remembered, one `roles.grant`/`roles.revoke` audit row (returned). None when there was
    nothing to do (already granted)."""
    if not reason.strip():
        raise UsageError("--reason must not be empty")
    user, key = _check_user(user), _role_key(role)
    note_external_role_changes(project)  # a hand edit before this one is its own row
    section = governance(project)
    names = list(alias_roles(section).get(alias, {}).get(key, []))
    if grant and user in names:
        return None
    if not grant:
        if user not in names:
            raise UsageError(f"{user} is not in [governance.aliases.{alias}] {key}")
        names.remove(user)
        if not names and key in EMPTY_IS_ANYONE and not allow_anyone:
            raise UsageError(
                f"{user} is the last of [governance.aliases.{alias}] {key}, and an empty list "
                "lets anyone; pass --allow-anyone to mean that"
            )
    else:
        names.append(user)
    expected = json.loads(json.dumps(section))  # a deep copy
    table = expected.setdefault("aliases", {}).setdefault(alias, {})
    table[key] = names
    path = config_path(project)
    text = set_list_text(path.read_text(encoding="utf-8"), alias, key, names)
    _write_config(project, text, expected)
    remember(project, expected)
    action = "roles.grant" if grant else "roles.revoke"
    row = audit.make_row(action, project.config.model_name, alias, None, None, reason)
    details = {"user": user, "alias": alias, "role": role}
    return audit.append(project, {**row, "details": json.dumps(details, sort_keys=True)})
