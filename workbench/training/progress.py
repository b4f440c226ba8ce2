"""Progress from your own training code (the script trainer's command).

    from workbench.training import report_progress

    for i in range(1, epochs + 1):
        ...
        report_progress(i, epochs, loss=loss, valid_auc=auc)

prints one `@wb {"event": "progress", "iteration": i, "total": epochs, "metrics": {...}}`
line (the job protocol of `workbench.jobs.events`); the script trainer turns it into the
job's progress bar and logs the metrics in the run at step `i`. Printing that line yourself
works the same; outside a Workbench job it is just a line on stdout.
"""

from __future__ import annotations

from workbench.jobs import events


def report_progress(iteration: int, total: int, **metrics: float) -> None:
    """Say that `iteration` of `total` is done, with the metrics at that point."""
    events.emit_event(
        events.Progress(int(iteration), int(total), {k: float(v) for k, v in metrics.items()})
    )
