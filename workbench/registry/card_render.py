"""A model card's facts (`card.gather`) as Markdown in Hugging Face's format (a YAML front
matter with `model-index`, then sections), as a self-contained HTML page, or as JSON.

Every value from the logs or the user (reasons, names, params) is escaped for where it goes:
Markdown table cells lose their pipes and line breaks; the HTML page is rendered by
markdown-it-py with raw HTML disabled, so `<script>` in a reason shows as text.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

#: Hugging Face's task names for the project's task.
HF_TASKS = {
    "binary": ("tabular-classification", "Binary classification"),
    "multiclass": ("tabular-classification", "Multiclass classification"),
    "regression": ("tabular-regression", "Regression"),
}


def front_matter(facts: dict[str, Any]) -> dict[str, Any]:
    """The YAML header: HF's `model-index` with the holdout metrics, `library_name`, `tags`."""
    use, data, ev = facts["intended_use"], facts["training_data"], facts["evaluation"]
    task_type, task_name = HF_TASKS.get(use["task"], ("tabular-classification", use["task"]))
    dataset: dict[str, Any] = {"type": "tabular", "name": data.get("dataset") or "training data"}
    if data.get("digest"):
        dataset["revision"] = data["digest"]
    dataset["split"] = "holdout"
    metrics = [
        {"type": key.removeprefix("holdout_"), "value": value, "name": f"holdout {key[8:]}"}
        for key, value in ev["holdout"].items()
        if value is not None
    ]
    trainer = facts["training"].get("trainer") or "workbench"
    header: dict[str, Any] = {
        "library_name": trainer,
        "tags": ["workbench", task_type, use["task"], *([trainer] if trainer else [])],
        "model-index": [
            {
                "name": f"{facts['model']} v{facts['version']}",
                "results": [
                    {
                        "task": {"type": task_type, "name": task_name},
                        "dataset": dataset,
                        "metrics": metrics,
                    }
                ],
            }
        ],
    }
    if facts.get("license"):
        header["license"] = facts["license"]
    return header


def render_md(facts: dict[str, Any], header: bool = True) -> str:
    """The card as Markdown; `header=False` leaves out the YAML front matter (for a viewer)."""
    parts = []
    if header:
        import yaml

        text = yaml.safe_dump(front_matter(facts), sort_keys=False, allow_unicode=True)
        parts.append(f"---\n{text}---\n")
    aliases = ", ".join(facts["aliases"]) or "no alias"
    parts.append(f"# Model card: {_inline(facts['model'])} v{facts['version']} ({aliases})\n")
    if facts["project"]["description"]:
        parts.append(_inline(facts["project"]["description"]) + "\n")
    parts.append(
        f"Registered {facts['registered_at'] or '-'}; card generated {facts['generated_at']}.\n"
    )
    for section in (_use, _data, _training, _evaluation, _monitoring, _value, _history):
        parts.append(section(facts))
    return "\n".join(p for p in parts if p)


def render_json(facts: dict[str, Any]) -> str:
    return json.dumps({**facts, "front_matter": front_matter(facts)}, indent=2, default=str)


def render_html(facts: dict[str, Any]) -> str:
    """A self-contained page: the Markdown body rendered (raw HTML off, so escaped), the
    front matter shown as escaped YAML."""
    import yaml
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    body = md.render(render_md(facts, header=False))
    header = yaml.safe_dump(front_matter(facts), sort_keys=False, allow_unicode=True)
    title = html.escape(f"Model card: {facts['model']} v{facts['version']}")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{_CSS}</style></head><body>\n{body}\n"
        f"<details><summary>Metadata (YAML front matter)</summary><pre>{html.escape(header)}"
        "</pre></details>\n</body></html>\n"
    )


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.45}table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;"
    "padding:.2rem .5rem;text-align:left}code,pre{background:#f4f4f4}"
)


# --- sections -----------------------------------------------------------------------------


def _use(facts: dict[str, Any]) -> str:
    use = facts["intended_use"]
    project = facts["project"]
    lines = ["## Intended use and limits\n"]
    what = project["description"] or f"the {project['name']} project"
    task = {"binary": "binary classification", "multiclass": "multiclass classification"}
    lines.append(
        f"- **Purpose**: {_inline(what)} (project `{_code(project['name'])}`)\n"
        f"- **Task**: {task.get(use['task'], use['task'])} of `{_code(use['target'])}`"
    )
    if use.get("classes"):
        lines.append(f"- **Classes**: {_inline(', '.join(map(str, use['classes'])))}")
    if use.get("threshold") is not None:
        positive = (use.get("classes") or ["the positive class"])[-1]
        lines.append(
            f"- **Output**: the probability of class {_inline(str(positive))}; "
            f"the label at threshold {use['threshold']}"
        )
    lines.append(f"\n### Features ({len(use['features'])})\n")
    lines.append(
        _table(
            ["feature", "type", "allowed (config)", "seen in training"],
            [[f["name"], f["type"], _allowed(f), _seen(f)] for f in use["features"]],
        )
    )
    lines.append("\n### Out of scope\n")
    lines.extend(f"- {_inline(text)}" for text in use["out_of_scope"])
    lines.append(
        "- anything the description above does not name; predictions are for the "
        "population the training data came from"
    )
    return "\n".join(lines) + "\n"


def _data(facts: dict[str, Any]) -> str:
    data = facts["training_data"]
    rows = data["rows"]
    lines = ["## Training data\n"]
    lines.append(
        f"- **Dataset**: {_inline(data.get('dataset') or '-')} "
        f"(`{_code(data.get('source') or '-')}`)"
    )
    lines.append(f"- **Digest**: `{_code(data.get('digest') or '-')}`")
    lines.append(
        f"- **Rows**: {_n(rows.get('total'))} ({_n(rows.get('train'))} train, "
        f"{_n(rows.get('valid'))} validation, {_n(rows.get('holdout'))} holdout; "
        f"{data['split']} split)"
    )
    span = data.get("time_range")
    if span:
        lines.append(
            f"- **Time range** (`{_code(span['column'])}`): {span['start']} to {span['end']}"
        )
    current = data.get("current_data") or {}
    if current.get("note"):
        lines.append(f"- **Note**: {_inline(current['note'])}")
    lines.append("\n### Schema\n")
    lines.append(
        _table(
            ["column", "type", "role", "required"],
            [
                [c["name"], c["type"], c["role"], "yes" if c["required"] else "no"]
                for c in data["schema"]
            ],
        )
    )
    lines.append("\n### Validation\n")
    lines.append(_validation(data.get("validation")))
    return "\n".join(lines) + "\n"


def _validation(report: dict[str, Any] | None) -> str:
    if not report:
        return "No validation report is available for this snapshot."
    if report.get("error"):
        return f"Validation could not run: {_inline(report['error'])}"
    if report.get("status"):
        return f"{_inline(report['status']).capitalize()}."
    verdict = "passed" if report["passed"] else "failed"
    text = (
        f"{verdict.capitalize()}: {report['checks']} checks on {_n(report['rows'])} rows, "
        f"{report['failures']} failure(s), {report['warnings']} warning(s) "
        f"({_inline(report.get('note', ''))})."
    )
    if report.get("problems"):
        text += "\n\n" + _table(
            ["check", "column", "status", "detail"],
            [[p["name"], p["column"] or "-", p["status"], p["detail"]] for p in report["problems"]],
        )
    return text


def _training(facts: dict[str, Any]) -> str:
    t = facts["training"]
    res = t["resources"]
    lines = ["## Training\n"]
    lines.append(f"- **Trainer**: {_inline(t.get('trainer') or '-')}")
    if t.get("imported_from"):
        lines.append(f"- **Imported from**: `{_code(t['imported_from'])}`")
    lines.append(
        f"- **Run**: `{_code(t.get('run_id') or '-')}` ({_inline(t.get('run_name') or '-')})"
        f", job `{_code(t.get('job_id') or '-')}`, started {t.get('started_at') or '-'}"
    )
    lines.append(
        f"- **Duration**: {_secs(t.get('duration_s'))} (training {_secs(t.get('train_seconds'))})"
    )
    lines.append(f"- **GPU-seconds**: {_secs(t.get('gpu_seconds')).removesuffix(' s')}")
    lines.append(
        f"- **Resources**: gpus {res['gpus']}, cpus {res['cpus'] or '-'}, "
        f"memory {_inline(str(res['memory'] or '-'))}"
    )
    system = res.get("system_metrics") or {}
    if system:
        shown = ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(system.items())[:6])
        lines.append(f"- **System (last sample)**: {_inline(shown)}")
    commit = t.get("git_commit")
    branch = f" on {_inline(t['git_branch'])}" if t.get("git_branch") else ""
    lines.append(
        f"- **Git commit**: `{_code(commit)}`{branch}" if commit else "- **Git commit**: -"
    )
    if t["params"]:
        lines.append("\n### Params\n")
        lines.append(_table(["param", "value"], [[k, v] for k, v in t["params"].items()]))
    return "\n".join(lines) + "\n"


def _evaluation(facts: dict[str, Any]) -> str:
    ev = facts["evaluation"]
    gate = ev["gate"]
    champion = gate.get("champion") or {}
    lines = ["## Evaluation\n"]
    head = ["metric", "holdout"] + (
        [f"production then (v{gate['champion_version']})"] if "champion_version" in gate else []
    )
    body = []
    for key, value in ev["holdout"].items():
        row = [
            key.removeprefix("holdout_") + (" (gate)" if key == ev["metric"] else ""),
            _fmt(value),
        ]
        if "champion_version" in gate:
            row.append(_fmt(champion.get(key)))
        body.append(row)
    lines.append(_table(head, body) if body else "No holdout metrics were logged.")
    lines.append("\n### Gate\n")
    if gate.get("decision"):
        lines.append(f"**{_inline(gate['decision'])}**: {_inline(gate.get('reason', ''))}")
    else:
        lines.append(_inline(gate.get("reason") or "No gate decision is recorded."))
    if gate.get("delta") is not None:
        lines.append(f"\nDelta on {gate['metric']}: {gate['delta']:+.4f}.")
    if ev.get("segments"):
        lines.append("\n### Segments\n")
        lines.append(_table(["segment", "metrics"], [[k, v] for k, v in ev["segments"].items()]))
    return "\n".join(lines) + "\n"


def _monitoring(facts: dict[str, Any]) -> str:
    mon = facts["monitoring"]
    drift, live = mon["drift"], mon["live"]
    lines = ["## Monitoring\n"]
    if drift:
        lines.append(
            f"- **Drift**: {drift['status']} at the last of {drift['checks']} check(s) "
            f"({drift['last_at']}, {_inline(str(drift['source']))}, "
            f"window {_inline(str(drift['window']))}, "
            f"{drift['features_checked']} inputs)"
        )
        for f in drift["flagged"]:
            lines.append(
                f"  - {_inline(f['feature'])}: {f['status']} ({f['test']} {_fmt(f['score'])})"
            )
    else:
        lines.append("- **Drift**: never checked")
    lines.append(
        f"- **Predictions**: {_n(live['predictions'])} served ({_n(live['succeeded'])} succeeded)"
        + (f", {live['first_at']} to {live['last_at']}" if live["predictions"] else "")
    )
    lines.append(
        f"- **Labels received**: {_n(live['labelled'])}"
        + (f" (last {live['last_label_at']})" if live["labelled"] else "")
    )
    metric = live.get("metric")
    if metric:
        lines.append(
            f"- **Live {_inline(metric['name'])}**: {_fmt(metric['current'])} on "
            f"{_n(metric['labelled'])} labelled rows (holdout {_fmt(metric['holdout'])}, "
            f"worse by {_fmt(metric['worsening'])}: {metric['status']}; {metric['at']})"
        )
    else:
        lines.append("- **Live metric**: none yet (no drift check with labels)")
    return "\n".join(lines) + "\n"


def _value(facts: dict[str, Any]) -> str:
    """`[monitoring.value]` per 1,000 predictions, live and on the holdout ("" when unset)."""
    value = facts.get("value")
    if not value:
        return ""
    unit = _inline(value.get("unit") or "")
    at = f" at threshold {value['threshold']}" if value.get("threshold") is not None else ""
    lines = [f"## Business value\n\nValue per 1,000 predictions (`[monitoring.value]`){at}:\n"]
    names = {"live": "Live", "holdout": "Holdout at training", "champion": "Production at the gate"}
    for key, name in names.items():
        got = value.get(key)
        if got is None:
            continue
        if got["value_per_1k"] is None:
            lines.append(f"- **{name}**: none ({_inline(got.get('why') or '-')})")
            continue
        figure = f"{got['value_per_1k']:+,.2f} {unit}".strip()
        lines.append(f"- **{name}**: {figure} over {_n(got['n'])} rows ({_inline(got['source'])})")
    return "\n".join(lines) + "\n"


def _history(facts: dict[str, Any]) -> str:
    h = facts["history"]
    lines = ["## History\n", "### Alias moves\n"]
    lines.append(_events(h["alias_moves"]) or "None.")
    lines.append("\n### Approvals\n")
    lines.append(_events(h["approvals"]) or "None recorded.")
    lines.append("\n### Deployments\n")
    lines.append(_events(h["deployments"]) or "None recorded.")
    state = h.get("deployment_state")
    if state:
        what = (
            "pinned as production"
            if state["pinned_production"]
            else (f"canary at {_fmt(state['canary_traffic'])} of traffic")
        )
        lines.append(
            f"\nNow {what} (deployment generation {state['generation']}, "
            f"{_inline(str(state['updated_by']))}: {_inline(str(state['reason']))})."
        )
    return "\n".join(lines) + "\n"


def _events(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    return _table(
        ["when (UTC)", "action", "alias", "move", "who", "reason"],
        [
            [
                str(r["ts"])[:19].replace("T", " "),
                r["action"],
                r["alias"] or "-",
                f"v{r['from_version'] or '-'} → v{r['to_version'] or '-'}",
                r["actor"],
                r["reason"] or "",
            ]
            for r in rows
        ],
    )


# --- escaping and formatting --------------------------------------------------------------


def _table(head: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(_cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    out.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    return "\n".join(out)


def _cell(value: Any) -> str:
    text = "-" if value is None else str(value)
    return _inline(text).replace("|", "\\|") or " "


def _inline(text: Any) -> str:
    """One line of text, safe in Markdown: no line breaks; the marks that would make
    emphasis, code, links or HTML escaped (an underscore inside a word is left alone)."""
    flat = " ".join(str(text).split())
    for mark in ("\\", "`", "*", "[", "]", "<", ">"):
        flat = flat.replace(mark, "\\" + mark)
    return _EDGE_UNDERSCORE.sub(r"\\_", flat)


_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def _code(text: Any) -> str:
    return " ".join(str(text).split()).replace("`", "'")


def _allowed(f: dict[str, Any]) -> str:
    if f.get("allowed"):
        return ", ".join(map(str, f["allowed"]))
    lo, hi = f.get("min"), f.get("max")
    if lo is None and hi is None:
        return "-"
    if hi is None:
        return f">= {_num(lo)}"
    return f"<= {_num(hi)}" if lo is None else f"{_num(lo)} to {_num(hi)}"


def _seen(f: dict[str, Any]) -> str:
    if f.get("seen_categories"):
        return f"{f['seen_categories']} categories"
    if f.get("seen_min") is None:
        return "-"
    return f"{_num(f['seen_min'])} to {_num(f['seen_max'])}"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e5 else f"{value:.4g}"
    return str(value)


def _num(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "-"


def _secs(value: Any) -> str:
    return f"{value:.1f} s" if isinstance(value, int | float) else "-"
