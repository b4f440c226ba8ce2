"""The alias history agrees with itself and with MLflow: racing promotes from many processes
make a chain, moves made with the plain MLflow client are recorded as moves by `mlflow`, a
move killed between MLflow and the audit log is finished, bad aliases are one line (exit 2).
Everything against the trained project's real MLflow SQLite store and Parquet audit log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import audit_rows, mlflow_client
from workbench.cli.main import main
from workbench.errors import RegistryError
from workbench.project import Project
from workbench.registry import alias_moves
from workbench.registry import versions as registry

pytestmark = pytest.mark.integration

PROD = "production"


def _assert_chain(history: list[dict[str, Any]]) -> None:
    """Per alias, every move starts where the one before it ended."""
    last: dict[str, int | None] = {}
    for i, ev in enumerate(history):
        if ev["alias"] in last:
            assert ev["from_version"] == last[ev["alias"]], (i, ev, history[max(0, i - 2) : i])
        last[ev["alias"]] = ev["to_version"]


def _third_version(project: Project) -> int:
    v1 = next(v for v in registry.list_versions(project) if v.version == 1)
    assert v1.run_id and v1.source
    return registry.register(project, v1.run_id, v1.source, description="a third version")


def _python(code: str, tmp_path: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    script = tmp_path / f"script-{len(list(tmp_path.glob('script-*')))}.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "WORKBENCH_USER": "tester"},
        check=False,
    )


# ---------------------------------------------------------------- racing promotes

RACE = """
import multiprocessing as mp
import sys

import mlflow  # imported once here; each forked child opens the store itself
import mlflow.store.model_registry.sqlalchemy_store  # noqa: F401
from workbench.registry import versions as registry
from workbench.project import Project

ROOT, N = {root!r}, {n}


def one(i, barrier, codes):
    project = Project.load(ROOT)
    barrier.wait()
    try:
        if i % 6 == 5:
            registry.rollback(project, f"race rollback {{i}}")
        else:
            registry.promote(project, 1 + i % 3, f"race promote {{i}}")
        codes[i] = 0
    except Exception as exc:
        print(f"child {{i}}: {{type(exc).__name__}}: {{exc}}", file=sys.stderr)
        codes[i] = 1


if __name__ == "__main__":
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(N)
    codes = ctx.Array("i", [-1] * N)
    procs = [ctx.Process(target=one, args=(i, barrier, codes)) for i in range(N)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(150)
    print(list(codes))
    sys.exit(0 if all(c == 0 for c in codes) and all(p.exitcode == 0 for p in procs) else 1)
"""


def test_racing_promotes_from_many_processes_make_a_chain(
    trained_project: Project, tmp_path: Path
) -> None:
    project = trained_project
    assert _third_version(project) == 3
    # Production's stack five deep first, so the 4 rollbacks always have a version to go back
    # to, whichever order the lock serves the racers in (a rollback winning first was a flake).
    warmup = [2, 3, 1, 2]
    for v in warmup:
        registry.promote(project, v, "warm-up")
    n = 24  # 20 promotes, 4 rollbacks, each its own process, released together
    root = str(project.root)
    cli = [  # and two through the real command, racing the rest
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workbench",
                "promote",
                str(v),
                "--reason",
                "cli",
                "--project",
                root,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "WORKBENCH_USER": "tester"},
        )
        for v in (2, 3)
    ]
    proc = _python(RACE.format(root=str(project.root), n=n), tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for p in cli:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "Traceback" not in err

    history = registry.alias_history(project, PROD)
    # the first promote, the warm-up, then every racer once
    assert len(history) == 1 + len(warmup) + n + len(cli)
    assert sum(h["reason"].startswith("race rollback") for h in history) == 4
    assert not [h for h in history if h["actor"] == alias_moves.EXTERNAL_ACTOR]
    _assert_chain(history)
    _assert_chain(registry.alias_history(project))
    # MLflow ends where the last audit row says, seen through the plain client too
    assert registry.aliases(project)[PROD] == history[-1]["to_version"]
    mv = mlflow_client(project).get_model_version_by_alias(project.config.model_name, PROD)
    assert int(mv.version) == history[-1]["to_version"]
    assert not (project.store / "locks" / "registry.pending.json").exists()


# ---------------------------------------------------------------- moves outside Workbench


def _history_json(capsys: pytest.CaptureFixture[str], project: Project, *extra: str) -> Any:
    capsys.readouterr()
    assert main(["history", "--project", str(project.root), "--json", *extra]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return json.loads(out)


def test_a_move_with_the_plain_mlflow_client_shows_in_history(
    trained_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project = trained_project
    name = project.config.model_name
    mlflow_client(project).set_registered_model_alias(name, PROD, "2")

    moves = _history_json(capsys, project, "--alias", PROD)
    assert [(m["action"], m["from_version"], m["to_version"]) for m in moves] == [
        ("promote", None, 1),
        ("external", 1, 2),
    ]
    found = moves[-1]
    assert found["actor"] == "mlflow"
    assert found["reason"].startswith("moved outside Workbench (found on ")
    # found once: reading again records nothing new
    assert len(_history_json(capsys, project)) == len(_history_json(capsys, project))
    assert sum(r["action"] == "external" for r in audit_rows(project)) == 1

    # rollback's stack follows: back to 1, the version before the outside move
    row = registry.rollback(project, "undo the script")
    assert (row["from_version"], row["to_version"]) == (2, 1)

    # an alias removed outside is recorded too, and the next promote starts from nothing
    mlflow_client(project).delete_registered_model_alias(name, PROD)
    moves = _history_json(capsys, project, "--alias", PROD)
    assert (moves[-1]["action"], moves[-1]["from_version"], moves[-1]["to_version"]) == (
        "external",
        1,
        None,
    )
    assert moves[-1]["reason"].startswith("removed outside Workbench")
    row = registry.promote(project, 2, "back in service")
    assert (row["from_version"], row["to_version"]) == (None, 2)
    # a brand-new alias set outside
    mlflow_client(project).set_registered_model_alias(name, "shadow", "1")
    everything = _history_json(capsys, project)
    assert ("shadow", "external", None, 1) in [
        (m["alias"], m["action"], m["from_version"], m["to_version"]) for m in everything
    ]
    _assert_chain(everything)


def test_a_promote_after_an_outside_move_chains_from_it(trained_project: Project) -> None:
    project = trained_project
    mlflow_client(project).set_registered_model_alias(project.config.model_name, PROD, "2")
    row = registry.promote(project, 1, "back to v1")
    assert (row["from_version"], row["to_version"]) == (2, 1)
    history = registry.alias_history(project, PROD)
    assert [h["action"] for h in history] == ["promote", "external", "promote"]
    _assert_chain(history)


KILL_BETWEEN = """
import os
import signal
import sys

from workbench.registry import audit
from workbench.registry import versions as registry
from workbench.project import Project

real = audit.append
AFTER = {after!r}


def append(project, row):
    if row["action"] == "promote":
        if AFTER:  # the audit row is written; the write-ahead file is left behind
            real(project, row)
        os.kill(os.getpid(), signal.SIGKILL)  # MLflow has moved
    return real(project, row)


audit.append = append
registry.promote(Project.load({root!r}), 2, "killed half way")
"""


@pytest.mark.parametrize("after", [False, True], ids=["before-audit", "after-audit"])
def test_a_move_killed_between_mlflow_and_the_audit_log_is_finished(
    trained_project: Project, tmp_path: Path, after: bool
) -> None:
    project = trained_project
    proc = _python(KILL_BETWEEN.format(root=str(project.root), after=after), tmp_path)
    assert proc.returncode == -9, proc.stderr
    assert registry.aliases(project)[PROD] == 2  # MLflow moved
    assert (project.store / "locks" / "registry.pending.json").exists()

    history = registry.alias_history(project, PROD)
    assert [(h["action"], h["from_version"], h["to_version"]) for h in history] == [
        ("promote", None, 1),
        ("promote", 1, 2),  # the move as it was meant, not an `external` one
    ]
    assert history[-1]["reason"] == "killed half way"
    assert history[-1]["actor"].startswith("tester@")
    assert not (project.store / "locks" / "registry.pending.json").exists()
    assert len(registry.alias_history(project, PROD)) == 2


# ---------------------------------------------------------------- bad aliases, MLflow errors


@pytest.mark.parametrize("alias", ["latest", "LATEST", "v2", "a b", "a/b", ""])
@pytest.mark.parametrize("command", ["promote", "rollback", "history"])
def test_an_alias_mlflow_refuses_is_one_line_exit_2(
    trained_project: Project, capsys: pytest.CaptureFixture[str], command: str, alias: str
) -> None:
    argv = [command, *(["1"] if command == "promote" else [])]
    argv += ["--project", str(trained_project.root), "--alias", alias]
    argv += [] if command == "history" else ["--reason", "x"]
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("workbench: error: --alias: "), err
    assert registry.aliases(trained_project) == {PROD: 1, "staging": 2}


def test_an_mlflow_exception_from_a_registry_write_is_one_line(trained_project: Project) -> None:
    client = mlflow_client(trained_project)
    with pytest.raises(RegistryError) as info:
        alias_moves.mlflow_call(client.set_registered_model_alias, "no_such_model", "x", "1")
    assert len(str(info.value).splitlines()) == 1
    assert str(info.value).startswith("MLflow refused the change: ")
    assert info.value.exit_code == 1
