"""Alias history, promote and rollback on a real MLflow registry (the trained_project copy:
v1 holds `production`, v2 holds `staging`)."""

from __future__ import annotations

from typing import Any

import pytest

from workbench.errors import RegistryError, UsageError
from workbench.project import Project
from workbench.registry import versions as registry
from workbench.registry.versions import _stack, rollback_target
from workbench.store.db import Db

PROD = "production"


def _ev(action: str, to: int | None) -> dict[str, Any]:
    return {"action": action, "to_version": to}


def _audit(project: Project) -> list[dict[str, Any]]:
    return Db(project.logs).rows("SELECT * FROM audit ORDER BY ts")


def _mlflow_client(project: Project) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=project.tracking_uri, registry_uri=project.tracking_uri)


# ---------------------------------------------------------------- _stack (pure)


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ([], []),
        ([_ev("promote", 1)], [1]),
        ([_ev("promote", 1), _ev("promote", 2)], [1, 2]),
        ([_ev("promote", 1), _ev("promote", 1)], [1]),  # re-promoting the holder is no move
        ([_ev("promote", 1), _ev("promote", 2), _ev("rollback", 1)], [1]),
        ([_ev("set", 1), _ev("auto-promote", 2), _ev("promote", 3)], [1, 2, 3]),
        (
            [_ev("promote", 1), _ev("promote", 2), _ev("promote", 1), _ev("promote", 2)],
            [1, 2, 1, 2],
        ),
        (
            [
                *[_ev("promote", v) for v in (1, 2, 1, 2)],
                _ev("rollback", 1),
                _ev("rollback", 2),
            ],
            [1, 2],
        ),
        # a rollback after an outside move (1 -> 2 outside, back to 1) leaves one entry
        ([_ev("promote", 1), _ev("rollback", 1)], [1]),
        ([_ev("promote", None)], []),
    ],
)
def test_stack_replays_moves(history: list[dict[str, Any]], expected: list[int]) -> None:
    assert _stack(history) == expected


# ---------------------------------------------------------------- on the trained project


def test_trained_project_starts_with_v1_production_v2_staging(trained_project: Project) -> None:
    assert registry.aliases(trained_project) == {PROD: 1, "staging": 2}
    versions = registry.list_versions(trained_project)
    assert [v.version for v in versions] == [2, 1]
    assert versions[1].aliases == [PROD]
    assert all(v.run_id and v.metrics.get("holdout_auc", 0) > 0.5 for v in versions)
    hist = registry.alias_history(trained_project, PROD)
    assert [(h["action"], h["from_version"], h["to_version"]) for h in hist] == [
        ("promote", None, 1)
    ]


def test_promote_then_rollback_returns_to_previous(trained_project: Project) -> None:
    row = registry.promote(trained_project, 2, "v2 looks better")
    assert (row["from_version"], row["to_version"]) == (1, 2)
    assert registry.aliases(trained_project)[PROD] == 2
    assert rollback_target(trained_project, PROD) == (2, 1)

    row = registry.rollback(trained_project, "v2 misbehaves")
    assert row["action"] == "rollback"
    assert (row["from_version"], row["to_version"]) == (2, 1)
    assert registry.aliases(trained_project)[PROD] == 1
    assert registry.aliases(trained_project)["staging"] == 2  # other aliases untouched
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        rollback_target(trained_project, PROD)


def test_promote_chain_and_repeated_rollback(trained_project: Project) -> None:
    for v in (2, 1, 2):
        registry.promote(trained_project, v, f"to v{v}")
    assert registry.aliases(trained_project)[PROD] == 2
    walked = []
    for _ in range(3):
        walked.append(registry.rollback(trained_project, "undo")["to_version"])
        assert registry.aliases(trained_project)[PROD] == walked[-1]
    assert walked == [1, 2, 1]
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback(trained_project, "once more")
    assert registry.aliases(trained_project)[PROD] == 1


def test_rollback_with_no_earlier_version_is_a_clear_error(trained_project: Project) -> None:
    audit_before = len(_audit(trained_project))
    with pytest.raises(RegistryError) as info:
        registry.rollback(trained_project, "try")
    msg = str(info.value)
    assert "nothing to roll back to" in msg
    assert "'production'" in msg and "version 1" in msg
    assert info.value.exit_code == 1
    assert registry.aliases(trained_project)[PROD] == 1
    assert len(_audit(trained_project)) == audit_before  # a refused move leaves no audit row


def test_rollback_of_an_alias_that_is_not_set(trained_project: Project) -> None:
    with pytest.raises(RegistryError, match="'canary' is not set"):
        registry.rollback(trained_project, "try", alias="canary")


def test_alias_moved_outside_workbench_is_rolled_back_from(trained_project: Project) -> None:
    _mlflow_client(trained_project).set_registered_model_alias(
        trained_project.config.model_name, PROD, "2"
    )
    assert registry.aliases(trained_project)[PROD] == 2
    assert rollback_target(trained_project, PROD) == (2, 1)
    row = registry.rollback(trained_project, "the UI move was a mistake")
    assert (row["from_version"], row["to_version"]) == (2, 1)
    assert registry.aliases(trained_project)[PROD] == 1
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        rollback_target(trained_project, PROD)


def test_alias_moved_back_outside_workbench(trained_project: Project) -> None:
    """Workbench moved 1 -> 2; a script moved it back to 1: rollback undoes the script's move."""
    registry.promote(trained_project, 2, "try v2")
    _mlflow_client(trained_project).set_registered_model_alias(
        trained_project.config.model_name, PROD, "1"
    )
    assert rollback_target(trained_project, PROD) == (1, 2)


def test_alias_deleted_outside_workbench(trained_project: Project) -> None:
    registry.promote(trained_project, 2, "try v2")
    _mlflow_client(trained_project).delete_registered_model_alias(
        trained_project.config.model_name, PROD
    )
    with pytest.raises(RegistryError, match="is not set"):
        rollback_target(trained_project, PROD)


def test_every_move_writes_an_audit_row(
    trained_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH_USER", "alice")
    before = len(_audit(trained_project))
    registry.promote(trained_project, 2, "  better auc  ")
    registry.rollback(trained_project, "latency regression")
    rows = _audit(trained_project)[before:]
    assert [
        (r["action"], r["model"], r["alias"], r["from_version"], r["to_version"], r["reason"])
        for r in rows
    ] == [
        ("promote", "fraud_detection", PROD, 1, 2, "better auc"),
        ("rollback", "fraud_detection", PROD, 2, 1, "latency regression"),
    ]
    for r in rows:
        assert r["actor"].startswith("alice@")
        assert r["ts"] is not None
    assert rows[0]["ts"] <= rows[1]["ts"]
    # the alias history is the same moves, oldest first
    hist = registry.alias_history(trained_project, PROD)
    assert [h["to_version"] for h in hist] == [1, 2, 1]
    assert hist[-1]["actor"].startswith("alice@")


def test_promote_other_alias_keeps_its_own_history(trained_project: Project) -> None:
    registry.promote(trained_project, 2, "canary v2", alias="canary")
    assert registry.aliases(trained_project) == {PROD: 1, "staging": 2, "canary": 2}
    assert [h["alias"] for h in registry.alias_history(trained_project, "canary")] == ["canary"]
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback(trained_project, "x", alias="canary")


@pytest.mark.parametrize("reason", ["", "   ", "\n"])
def test_empty_reason_is_rejected(trained_project: Project, reason: str) -> None:
    before = len(_audit(trained_project))
    with pytest.raises(UsageError, match="reason is required"):
        registry.promote(trained_project, 2, reason)
    registry.promote(trained_project, 2, "real reason")
    with pytest.raises(UsageError, match="reason is required"):
        registry.rollback(trained_project, reason)
    assert registry.aliases(trained_project)[PROD] == 2
    assert len(_audit(trained_project)) == before + 1


def test_unknown_version_is_rejected_listing_existing(trained_project: Project) -> None:
    with pytest.raises(RegistryError) as info:
        registry.promote(trained_project, 7, "typo")
    msg = str(info.value)
    assert "no version 7" in msg
    assert "versions: 2, 1" in msg
    assert registry.aliases(trained_project)[PROD] == 1
