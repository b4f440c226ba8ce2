"""The registry half of `workbench store migrate`: registered models, their versions (the
same numbers, in order), aliases and the alias history.

A version's number is what the audit log, deployments and every teammate's command name, so
it must not change: versions are created in order, and a number the source lost (a deleted
version) is kept by creating a placeholder and deleting it. A target model that exists but
was not migrated from this store is refused (choose a --name-prefix), never merged into.

The alias history is Workbench's audit log, a Parquet log beside the store, which stays where
it is (`workbench history` reads it as before; it names versions by number, the same on both
sides). Its rows for each model are also written to the target, run ids mapped, as the
registered model's `workbench.audit` tag (JSON; split into `workbench.audit.2`, ... when long),
so a teammate on the team store can read the history too.
"""

from __future__ import annotations

import json
from typing import Any

from workbench.errors import DataError
from workbench.registry import migrate_source as src
from workbench.registry.migrate_runs import (
    AUDIT_TAG,
    AUDIT_TAG_CHARS,
    MIGRATED_TAG,
    OWN_TAGS,
    Mapping,
    Options,
)
from workbench.registry.migrate_target import _why


def copy_models(client: Any, source: src.Source, opts: Options, maps: Mapping) -> None:
    # MLflow's SQL registry resolves a `models:/m-...` source through the global tracking
    # URI, not the client's: point it at the target while versions are created.
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    for model in source.models:
        try:
            with _use_tracking_uri(opts.target):
                _copy_model(client, model, opts, maps)
        except DataError:
            raise
        except Exception as exc:
            raise DataError(
                f"copying model {model.name} failed: {_why(exc)} (run the command again: "
                "what was copied is kept)"
            ) from None


def _registered(client: Any, model: src.SourceModel, name: str, maps: Mapping) -> bool:
    """Get or create the target's model; True when it was created now."""
    from mlflow.exceptions import MlflowException

    try:
        found = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        tags = {k: maps.text(v) for k, v in model.tags.items() if not _own(k)}
        client.create_registered_model(
            name, tags={**tags, MIGRATED_TAG: model.name}, description=model.description
        )
        maps.count("registered models")
        return True
    if found.tags.get(MIGRATED_TAG) != model.name:
        raise DataError(
            f"the target already has a model {name} that was not migrated from this store "
            "(pass --name-prefix to copy under other names)"
        )
    return False


def _own(key: str) -> bool:
    return key in OWN_TAGS or key == AUDIT_TAG or key.startswith(AUDIT_TAG + ".")


def target_versions(client: Any, name: str) -> dict[int, Any]:
    found: dict[int, Any] = {}
    token = None
    while True:
        page = client.search_model_versions(
            f"name = '{_quoted(name)}'", max_results=200, page_token=token
        )
        for mv in page:
            found[int(mv.version)] = mv
        token = page.token
        if not token:
            return found


def _quoted(name: str) -> str:
    return name.replace("'", "\\'")


def _copy_model(client: Any, model: src.SourceModel, opts: Options, maps: Mapping) -> None:
    name = opts.prefix + model.name
    maps.models[model.name] = name
    _registered(client, model, name, maps)
    have = target_versions(client, name)
    top = max(have, default=0)
    for v in model.versions:
        if v.version in have:
            if have[v.version].tags.get(MIGRATED_TAG) != str(v.version):
                raise DataError(
                    f"the target's model {name} has a version {v.version} that was not "
                    "migrated from this store (pass --name-prefix to copy under other names)"
                )
            continue
        if v.version <= top:
            raise DataError(
                f"the target's model {name} is past version {v.version} already "
                f"(it has {top}): the version numbers cannot be kept"
            )
        while top + 1 < v.version:  # a deleted version's number: kept as a gap
            source = maps.source_uri(v.source)
            gap = client.create_model_version(name, source=source, model_id=_model_id(source))
            client.delete_model_version(name, gap.version)
            top = int(gap.version)
        _copy_version(client, name, v, maps)
        top = v.version
    for alias, number in sorted(model.aliases.items()):
        client.set_registered_model_alias(name, alias, str(number))
        maps.count("aliases")
    _write_audit(client, name, model, maps)


def _copy_version(client: Any, name: str, v: src.SourceVersion, maps: Mapping) -> None:
    run_id = maps.runs.get(v.run_id) if v.run_id else None
    if v.run_id and run_id is None:
        raise DataError(f"version {v.version} of {name}: its run {v.run_id} was not copied")
    tags = {k: maps.text(val) for k, val in v.tags.items() if k not in OWN_TAGS}
    source = maps.source_uri(v.source)
    made = client.create_model_version(
        name,
        source=source,
        run_id=run_id,
        tags={**tags, MIGRATED_TAG: str(v.version)},
        description=v.description,
        model_id=_model_id(source),
    )
    if int(made.version) != v.version:
        raise DataError(
            f"the target numbered version {v.version} of {name} as {made.version} "
            "(someone registered a version meanwhile?)"
        )
    maps.count("versions")


def _model_id(source: str) -> str | None:
    """The logged model a `models:/m-...` source names (a server requires it said)."""
    rest = source.removeprefix("models:/")
    return rest if rest != source and rest.startswith("m-") and "/" not in rest else None


def audit_rows(model: src.SourceModel, maps: Mapping) -> list[dict[str, Any]]:
    """The model's audit rows as the target keeps them: plain JSON, run ids mapped, the
    model named by its target name."""
    out = []
    for row in model.audit:
        plain = src.audit_json(row)
        plain["model"] = maps.models.get(model.name, model.name)
        out.append(json.loads(maps.text(json.dumps(plain, default=str, sort_keys=True))))
    return out


def _write_audit(client: Any, name: str, model: src.SourceModel, maps: Mapping) -> None:
    rows = audit_rows(model, maps)
    if not rows:
        return
    text = json.dumps(rows, sort_keys=True, separators=(",", ":"))
    parts = [text[i : i + AUDIT_TAG_CHARS] for i in range(0, len(text), AUDIT_TAG_CHARS)]
    for i, part in enumerate(parts, 1):
        client.set_registered_model_tag(name, AUDIT_TAG if i == 1 else f"{AUDIT_TAG}.{i}", part)
    client.set_registered_model_tag(name, f"{AUDIT_TAG}.parts", str(len(parts)))
    maps.count("audit rows", len(rows))


def read_audit(client: Any, name: str) -> list[dict[str, Any]]:
    """The alias history a migration wrote to the target's model (oldest first)."""
    tags = client.get_registered_model(name).tags
    parts = int(tags.get(f"{AUDIT_TAG}.parts", "1" if AUDIT_TAG in tags else "0"))
    text = "".join(
        tags.get(AUDIT_TAG if i == 1 else f"{AUDIT_TAG}.{i}", "") for i in range(1, parts + 1)
    )
    rows: list[dict[str, Any]] = json.loads(text) if text else []
    return rows
