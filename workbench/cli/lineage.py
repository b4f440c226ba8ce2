"""`workbench lineage THING`: where a dataset, run, version, alias, job or prediction came
from and what came of it (a tree, JSON, or OpenLineage RunEvents as JSON lines)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from workbench.cli.common import Commands, load_project, print_json
from workbench.errors import UsageError

commands = Commands()

EPILOG = """\
\b
THING: a model version (3, v3, fraud_detection/3, models:/fraud_detection/3), an alias
(production, @production), a job id (training or serving), a run id, a dataset digest or
data file, a drift check id, or a request id from the prediction log. Ids may be prefixes.
\b
--openlineage writes OpenLineage RunEvents, one JSON object a line (to --out FILE or stdout);
Marquez takes each line as a POST to /api/v1/lineage:
  workbench lineage production --openlineage --out lineage.jsonl
  while read -r ev; do curl -sf -H 'Content-Type: application/json' -d "$ev" \\
    http://localhost:5000/api/v1/lineage; done < lineage.jsonl
"""


@commands.command(
    "lineage", "where THING came from and what came of it (data, runs, versions, serving)",
    json=True, epilog=EPILOG,
)  # fmt: skip
@click.argument("thing", metavar="THING", help="a version, alias, run, job, dataset or request id")
@click.option(
    # default: graph.DEPTH, not imported to parse the arguments
    "--depth", type=int, default=5, show_default=True, metavar="N",
    help="hops from THING in each direction",
)  # fmt: skip
@click.option("--openlineage", is_flag=True, help="print OpenLineage RunEvents (JSON lines)")
@click.option("--out", metavar="FILE", help="with --openlineage: write the events to FILE")
def lineage(thing: str, depth: int, openlineage: bool, out: str | None, as_json: bool) -> int:
    from workbench.lineage import graph
    from workbench.lineage import openlineage as ol
    from workbench.lineage.text import render

    if out and not openlineage:
        raise UsageError("--out goes with --openlineage")
    if depth < 0:
        raise UsageError(f"--depth must be 0 or more (got {depth})")
    project = load_project()
    lin = graph.build(project, thing, depth=depth)
    if openlineage:
        text = ol.write_lines(lin, project.config.project.name)
        if out:
            try:
                Path(out).write_text(text, encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"{out}: cannot write: {exc.strerror or exc}") from None
            print(f"{text.count(chr(10))} OpenLineage event(s) written to {out}", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return 0
    if as_json:
        print_json(lin.to_dict())
        return 0
    sys.stdout.write(render(lin))
    return 0
