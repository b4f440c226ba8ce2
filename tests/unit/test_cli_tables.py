"""Every CLI table fits the terminal legibly (workbench.cli.tables): each command's output
rendered at COLUMNS=80 and 120 (a real trained project, real drift of its data file, the
real print functions of canary status, performance, roles and migrate) has no line over the
width, no header cut, and every number whole."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from rich.console import Console
from rich.text import Text

from workbench.cli.main import main
from workbench.cli.tables import Col, layout, num, show
from workbench.project import Project

WIDTHS = (80, 120)


def _check(out: str, width: int) -> list[str]:
    """The lines of `out`, after asserting none is wider than `width` and no header (the line
    above a table's rule) is cut."""
    lines = out.splitlines()
    assert lines, "nothing printed"
    assert max(len(line) for line in lines) <= width, "\n".join(lines)
    for i, line in enumerate(lines):
        if set(line.strip()) == {"─"} and i:
            assert "…" not in lines[i - 1], f"a header is cut: {lines[i - 1]!r}"
    return lines


def _whole(out: str, *numbers: str) -> None:
    """Each number appears whole: not followed by an ellipsis or more digits."""
    for n in numbers:
        assert re.search(rf"(?<![\d.]){re.escape(n)}(?![\d…])", out), f"{n} is not whole in\n{out}"


def test_num_keeps_four_significant_digits() -> None:
    assert [num(v) for v in (0.000861234, 0.912345, 52.345, 1234.5, 123456.7)] == [
        "0.0008612",
        "0.9123",
        "52.34",
        "1234",  # 4 significant digits: 1234.5 rounds to even
        "123,457",
    ]
    assert [num(v) for v in (None, 3, 12_345, float("nan"), 0.0)] == [
        "-",
        "3",
        "12,345",
        "nan",
        "0",
    ]


def _render(cols: list[Col], rows: list[list[Any] | None], width: int, **kw: Any) -> str:
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    show(cols, rows, out=console, **kw)
    return console.export_text()


def test_text_is_cut_first_then_optional_columns_go_then_rows_go_vertical() -> None:
    cols = [
        Col("feature", cut=10),
        Col("score", right=True),
        Col("other", optional=True),
        Col("reason", cut=8),
    ]
    rows: list[list[Any] | None] = [
        ["distance_from_home_km", num(0.000861234), "ks 0.1 w 0.2", "x" * 60],
        None,  # a section rule
        ["b", num(12345.678), "chi2", Text("short", style="red")],
    ]
    wide = _render(cols, rows, 120)
    assert "x" * 60 in wide and "ks 0.1 w 0.2" in wide  # all of it fits at 120
    at80 = _check(_render(cols, rows, 80), 80)
    assert "distance_from_home_km" in at80[2] and "ks 0.1 w 0.2" in at80[2]
    assert at80[2].endswith("…") and "0.0008612" in at80[2]  # the reason is what gives
    at40 = _check(_render(cols, rows, 40), 40)
    assert "other" not in at40[0] and "(hidden at 40 columns: other;" in " ".join(at40)
    assert "0.0008612" in "\n".join(at40) and "12,346" in "\n".join(at40)
    at30 = _check(_render(cols, rows, 30), 30)  # too narrow for any table: key  value lines
    text = "\n".join(at30)
    assert "feature  distance_from_home_km" in text and "score    0.0008612" in text
    assert "other    ks 0.1 w 0.2" in text and "…" not in text  # nothing cut nor hidden
    assert layout(cols, [[Text(str(c)) for c in r] for r in rows if r], 30) is None


def test_a_table_is_as_wide_as_its_cells_not_the_terminal() -> None:
    out = _render([Col("a"), Col("bb", right=True)], [["x", "1"]], 120)
    assert [line.rstrip() for line in out.splitlines()] == ["a  bb", "─────", "x   1"]


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code in (0, 1), err
    return out


@pytest.mark.parametrize("width", WIDTHS)
def test_every_command_table_fits(
    trained_project: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    width: int,
) -> None:
    from workbench.registry import versions as registry

    monkeypatch.setenv("COLUMNS", str(width))
    root = str(trained_project.root)
    p = ["--project", root]
    main(["promote", "2", *p, "--reason", "a long reason " * 8])
    capsys.readouterr()
    versions = registry.list_versions(trained_project)
    metrics = [fmt_metric(v.metrics["holdout_auc"]) for v in versions]
    models = "\n".join(_check(_cli(capsys, "models", *p), width))
    _whole(models, *metrics)
    assert "production" in models and "staging" in models
    for cmd in ("history", "audit", "jobs", "runs"):
        out = "\n".join(_check(_cli(capsys, cmd, *p), width))
        assert (
            ("promote" in out)
            if cmd in ("history", "audit")
            else ("succeeded" in out or "FINISHED" in out)
        )
    runs = "\n".join(_check(_cli(capsys, "runs", *p), width))
    _whole(runs, *metrics)
    ids = [v.run_id[:8] for v in versions if v.run_id]
    _check(_cli(capsys, "compare", *ids, *p), width)
    data = str(trained_project.data_path)
    drift = "\n".join(_check(_cli(capsys, "drift", "--data", data, *p), width))
    from workbench.monitoring import checks

    result = checks.check(trained_project, data=data, record=False)
    _whole(drift, *(num(f.stats.get("psi")) for f in result.report.features))
    assert all(f.feature in drift for f in result.report.features)  # names whole at 80 too


def fmt_metric(value: float) -> str:
    from workbench.cli.common import fmt

    return fmt(value)


def _variant(**kw: Any) -> dict[str, Any]:
    base = {
        "versions": [1],
        "rps": 12345.6,
        "p50_ms": 1234.56,
        "p95_ms": 2345.67,
        "p99_ms": 34567.89,
        "error_rate": 0.1234,
        "prediction_mean": 0.123456,
        "prediction_hist": [60, 40],
        "hist_labels": ["class_long_name_1", "b"],
        "metrics": {"rmse": 52.123, "mae": 40.3456},
        "value_per_1k": 9500.0,
    }
    return base | kw


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_canary_status_fits(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, width: int, task: str
) -> None:
    from workbench.cli.serving import _print_status

    monkeypatch.setenv("COLUMNS", str(width))
    report = {
        "model": "fraud_detection",
        "state": {"generation": 7, "canary": {"version": 12, "traffic": 0.25}},
        "server": {"url": "http://127.0.0.1:8080", "job_id": "serve-1"},
        "production_version": 11,
        "task": {"type": task},
        "variants": {"production": _variant(versions=[11]), "canary": _variant(versions=[12])},
        "value": {"unit": "EUR"},
    }
    _print_status(report, 600)
    out = "\n".join(_check(capsys.readouterr().out, width))
    _whole(out, "12,346", "1,235", "2,346", "34,568", "12.34%", "rmse 52.12 · mae 40.35")
    assert "production" in out and "canary" in out and "variant" in out


@pytest.mark.parametrize("width", WIDTHS)
def test_performance_roles_and_migrate_fit(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    from workbench.cli.monitoring_performance import _print
    from workbench.cli.roles import _print_table
    from workbench.cli.store import _print as print_migrate
    from workbench.registry.migrate import Result

    monkeypatch.setenv("COLUMNS", str(width))
    point = {
        "start": datetime(2026, 12, 2, 14, 0, tzinfo=UTC).isoformat(),
        "count": 123456,
        "labelled": 12345,
        "estimated": {"auc": 0.912345, "accuracy": 0.97123},
        "realized": {"auc": 0.90012, "accuracy": 0.96543},
    }
    report = {
        "model": "fraud_detection",
        "version": 3,
        "task": "binary",
        "count": 123456,
        "labelled": 12345,
        "window": "24h",
        "estimable": True,
        "calibration": {"kind": "isotonic", "n": 2000},
        "series": [point, point],
        "estimated": point["estimated"],
        "realized": point["realized"],
        "metric": "auc",
        "reference": {"auc": 0.91},
        "drop": 0.002,
    }
    _print(report)
    _whole("\n".join(_check(capsys.readouterr().out, width)), "123,456", "12,345")
    users = ["alice@example.com", "bob@example.com", "carol@example.com"]
    _print_table(
        {
            "production": {
                "approvers": users,
                "required_approvals": 2,
                "requesters": users,
                "rollback": users[:1],
            }
        }
    )
    roles = "\n".join(_check(capsys.readouterr().out, width))
    assert all(u in roles for u in users)  # names are never cut: vertical if need be
    counts = [
        {"what": "metric points", "source": 1234567, "target": 1234567, "ok": True},
        {"what": "runs", "source": 150, "target": 149, "ok": False},
    ]
    target = "postgresql://mlflow:***@db.example.com:5432/mlflow"
    print_migrate(Result(target, False, {"runs": 1}, counts, "/tmp/map.json", "x = 1\n"))
    out = "\n".join(_check(capsys.readouterr().out, width))
    _whole(out, "1,234,567", "150", "149")
    assert "DIFFERS" in out


@pytest.mark.parametrize("width", WIDTHS)
def test_sql_on_a_terminal_fits_and_piped_keeps_every_column_whole(
    trained_project: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    width: int,
) -> None:
    query = "SELECT run_id, run_name, status, start_time, end_time FROM runs"
    p = ["--project", str(trained_project.root)]
    monkeypatch.setenv("COLUMNS", str(width))
    _cli(capsys, "sync", *p)  # the runs index, read by the `runs` view
    piped = _cli(capsys, "sql", query, *p)  # not a terminal: one line per row, however wide
    assert max(len(line) for line in piped.splitlines()) > 80
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich takes stdout for a terminal
    out = re.sub(r"\x1b\[[0-9;]*m", "", _cli(capsys, "sql", query, *p))
    lines = _check(out, width)
    ids = [line.split()[-1] for line in piped.splitlines()[3:] if line.strip()]
    text = "\n".join(lines)
    assert all(len(i) > 20 and i in text for i in ids) or width == 120
    assert "…" not in text or width == 120  # at 80: a record a block, nothing cut
