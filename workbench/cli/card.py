"""`workbench card VERSION`: the model card of a registered version (or of an alias)."""

from __future__ import annotations

from pathlib import Path

import click

from workbench.cli.common import Commands, load_project
from workbench.errors import UsageError

commands = Commands()


@commands.command(
    "card",
    "a version's model card (Hugging Face format): use, data, training, evaluation, history",
    epilog="VERSION: a version number (2, v2) or an alias (production). The card is built "
    "from the version's run, the config and the logs; the one kept with the version's run "
    "(model_card/model_card.md) is rewritten at registration and after every alias move.",
)
@click.argument("version", metavar="VERSION")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "html", "json"]),
    default="md",
    show_default=True,
    help="Markdown with a YAML front matter, a self-contained HTML page, or JSON",
)
@click.option("--out", type=click.Path(dir_okay=False), help="write it to FILE, not stdout")
def card(version: str, fmt: str, out: str | None) -> int:
    from workbench.registry import card as card_mod
    from workbench.registry import card_render

    project = load_project()
    facts = card_mod.gather(project, version)
    render = {
        "md": card_render.render_md,
        "html": card_render.render_html,
        "json": card_render.render_json,
    }[fmt]
    text = render(facts)
    if out is None:
        click.echo(text, nl=not text.endswith("\n"))
        return 0
    path = Path(out)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write: {exc.strerror or exc}") from None
    print(f"model card of {facts['model']} v{facts['version']} written to {path}")
    return 0
