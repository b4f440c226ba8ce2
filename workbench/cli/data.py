"""The data: `validate` (exit 2 for a config problem, 1 when the data fails)."""

from __future__ import annotations

from workbench.cli.common import Commands, console, load_project, print_json

commands = Commands()


@commands.command("validate", "validate the data snapshot (exit 1 when it fails)", json=True)
def validate(as_json: bool) -> int:
    """Exit 2 for a config problem (one line naming the key), 1 when the data fails."""
    from workbench.config import CONFIG_FILE
    from workbench.data.validation import check_config, render_report
    from workbench.pipeline import flow

    project = load_project()
    check_config(project.config, str(project.root / CONFIG_FILE))  # before reading the data
    report = flow.validate(project)
    if as_json:
        print_json(report.to_dict())
    else:
        con = console()
        con.print(render_report(report))
        verdict = "[green]passed[/]" if report.passed else "[red]FAILED[/]"
        con.print(
            f"{project.data_path.name}: {report.rows:,} rows, {verdict}: "
            f"{len(report.failures)} failure(s), {len(report.warnings)} warning(s)"
        )
    return 0 if report.passed else 1
