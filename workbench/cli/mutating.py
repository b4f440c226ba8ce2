"""Which commands change the project: the one classification `--read-only` goes by.

Every command path of the click tree (`promote`, `canary traffic`, `store migrate`) is in
exactly one of the two sets; tests/unit/test_readonly.py walks the real tree and fails on a
path in neither, so a new command has to be classed here. In read-only mode a mutating
command (or one not classed, to be safe) is refused before it runs, with one line and exit 1;
`--help` always works (click answers it while parsing, before anything runs).

"Changes the project" means: the registry (versions, aliases), the audit log, jobs, servers and
deployments, images, the store, workbench.toml, or a log a reader relies on. Writing a
derived local cache (the runs index, a job's settled status) is not a change: it only
records, from the source of truth, what already happened.
"""

from __future__ import annotations

import click

from workbench import readonly

#: Commands refused in read-only mode, and why each one changes the project.
_MUTATING: dict[str, str] = {
    "init": "creates a project (workbench.toml, data)",
    "demo": "creates a project, trains and registers models",
    "train": "starts a training job: a run, maybe a version",
    "sweep": "starts a sweep job: runs, maybe a version",
    "pipeline run": "trains, gates and registers a version",
    "register": "registers a new model version",
    "promote": "moves an alias (and writes the audit log)",
    "rollback": "moves an alias back (and writes the audit log)",
    "stop": "stops a running job",
    "image bootstrap": "builds a base image",
    "image build": "builds the project's job image",
    "serve": "starts an inference server",
    "deploy": "starts a deployment (canary or production)",
    "canary traffic": "changes the canary's traffic share",
    "canary promote": "moves the production alias to the canary",
    "canary rollback": "drops the canary",
    "labels ingest": "adds labels to the label log",
    "monitor": "records drift checks and may retrain and deploy",
    "store migrate": "copies the store to a team's MLflow (and --switch edits workbench.toml)",
    # issue 13
    "approve": "approves a request (and may move an alias)",
    "reject": "rejects a request",
    "roles grant": "edits [governance] in workbench.toml",
    "roles revoke": "edits [governance] in workbench.toml",
}

#: Commands that only read, and why (where it is not plain).
_READING: dict[str, str] = {
    "validate": "reads the data snapshot",
    "schema infer": "prints a [schema] block",
    "runs": "reads the runs index (refreshing a local cache of the MLflow store)",
    "compare": "reads runs",
    "sync": "refreshes the runs index, a local cache derived from the MLflow store",
    "models": "lists versions",
    "history": "lists alias moves",
    "audit": "lists the audit log",
    "whoami": "asks the store who you are",
    "jobs": "lists jobs (settling one that ended unobserved records what happened)",
    "logs": "prints a job's log",
    "canary status": "reads the prediction log",
    "drift": "computes drift; in read-only mode the check is not recorded in the drift log",
    "sql": "runs read-only SQL over the logs",
    # issue 13
    "approvals": "lists approval requests",
    "audit verify": "checks the audit log's hash chain",
    "audit head": "prints the audit log's head hash",
    "lineage": "builds a lineage graph (OpenLineage events go to a file or stdout)",
    "card": "renders a model card (--out writes a file outside the project)",
    "roles": "lists [governance] roles (a hand edit noticed is still audited, except read-only)",
    # issue 14
    "segments": "reads the prediction and label logs (and fairness.json beside the model)",
    "performance": "estimates the metric (CBPE) from the logs; may write a missing "
    "calibration.json beside the model, derived from the holdout",
    "skew": "joins the prediction log with a data file and the training profile",
}

MUTATING_COMMANDS: frozenset[str] = frozenset(_MUTATING)
READING_COMMANDS: frozenset[str] = frozenset(_READING)
#: Why each command is classed as it is.
WHY: dict[str, str] = {**_MUTATING, **_READING}


def command_path(ctx: click.Context) -> str:
    """`canary traffic` for `workbench canary traffic ...` (the root's own name left out)."""
    names: list[str] = []
    while ctx.parent is not None:
        names.append(ctx.info_name or ctx.command.name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


def check(path: str) -> None:
    """Refuse `path` in read-only mode unless it is a reading command (an unclassed one is
    refused too: better a refusal than a change)."""
    if path and readonly.enabled() and path not in READING_COMMANDS:
        readonly.refuse(f"`workbench {path}`")
