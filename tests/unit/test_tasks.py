"""Tasks: the config's [task], target encoding, metrics per task, and scoring any output."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from sklearn import metrics as skm

from workbench.config import parse_config
from workbench.errors import ConfigError, DataError
from workbench.tasks import METRICS, ModelTask, higher_is_better
from workbench.training.evaluation import evaluate
from workbench.training.scoring import ScoringError, as_task_output, scalar_output

BASE = '[project]\nname = "t"\n[data]\npath = "d.csv"\ntarget = "y"\nsplit = "random"\n'


def cfg(extra: str = ""):
    return parse_config(BASE + extra)


def test_each_task_has_its_default_metric() -> None:
    assert cfg().metric == "auc"
    assert cfg('[task]\ntype = "multiclass"\n').metric == "macro_f1"
    assert cfg('[task]\ntype = "regression"\n').metric == "rmse"
    assert cfg('[task]\ntype = "regression"\n[evaluation]\nmetric = "mae"\n').metric == "mae"


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ('[evaluation]\nmetric = "rmse"\n', "'rmse' is not a binary metric"),
        ('[task]\ntype = "regression"\n[evaluation]\nmetric = "auc"\n', "not a regression"),
        ('[task]\ntype = "regression"\n[gate.max_regression]\nholdout_logloss = 0.1\n', "gate"),
        ('[task]\ntype = "binary"\nclasses = ["a", "b", "c"]\n', "two classes"),
        ('[task]\ntype = "regression"\nclasses = [1, 2]\n', "no classes"),
        ('[task]\ntype = "multiclass"\npositive_class = "a"\n', "binary task"),
        ('[task]\ntype = "ranking"\n', "[task].type"),
    ],
)
def test_settings_that_do_not_fit_the_task_are_one_line(extra: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        cfg(extra)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_directions() -> None:
    assert higher_is_better("holdout_auc") and higher_is_better("macro_f1")
    assert higher_is_better("r2")
    for metric in ("holdout_rmse", "mae", "champion_holdout_logloss", "mape"):
        assert not higher_is_better(metric)


def test_classes_and_encoding() -> None:
    from workbench.data.target import classes_of, encode

    frame = pl.DataFrame({"y": ["no", "yes", "no", "yes"]})
    c = cfg()
    classes = classes_of(frame, c)
    assert classes == ["no", "yes"]
    assert encode(frame, c, classes)["y"].to_list() == [0, 1, 0, 1]
    flipped = cfg('[task]\npositive_class = "no"\n')
    assert classes_of(frame, flipped) == ["yes", "no"]
    assert encode(frame, flipped, ["yes", "no"])["y"].to_list() == [1, 0, 1, 0]
    with pytest.raises(DataError, match="a binary task needs 2"):
        classes_of(pl.DataFrame({"y": [1.5, 2.5, 3.5]}), c)
    multi = cfg('[task]\ntype = "multiclass"\n')
    with pytest.raises(DataError, match="row 2: 'z' is not one of the classes"):
        encode(pl.DataFrame({"y": ["a", "b", "z"]}), multi, ["a", "b"])
    with pytest.raises(DataError, match="must be numeric"):
        encode(pl.DataFrame({"y": ["a"]}), cfg('[task]\ntype = "regression"\n'), [])


def test_metrics_agree_with_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    p = rng.dirichlet([1, 1, 1], 300)
    got = evaluate("multiclass", y, p)
    assert set(got) == set(METRICS["multiclass"])
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, p.argmax(1)))
    assert got["macro_f1"] == pytest.approx(skm.f1_score(y, p.argmax(1), average="macro"))
    assert got["logloss"] == pytest.approx(skm.log_loss(y, p))
    v = rng.normal(10, 2, 300)
    pred = v + rng.normal(0, 1, 300)
    reg = evaluate("regression", v, pred)
    assert reg["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(v, pred)))
    assert reg["mae"] == pytest.approx(skm.mean_absolute_error(v, pred))
    assert reg["r2"] == pytest.approx(skm.r2_score(v, pred))
    assert reg["mape"] == pytest.approx(skm.mean_absolute_percentage_error(v, pred))
    yb = rng.integers(0, 2, 300)
    pb = rng.random(300)
    assert evaluate("binary", yb, pb)["auc"] == pytest.approx(skm.roc_auc_score(yb, pb))


def test_outputs_are_checked_per_task() -> None:
    binary, multi = ModelTask("binary"), ModelTask("multiclass", ["a", "b", "c"])
    two_cols = np.array([[0.8, 0.2], [0.1, 0.9]])
    assert as_task_output(binary, two_cols, 2).tolist() == [0.2, 0.9]
    with pytest.raises(ScoringError, match="hard labels"):
        as_task_output(binary, np.array([0, 1, 1, 0]), 4)
    with pytest.raises(ScoringError, match="returns labels"):
        as_task_output(multi, np.array(["a", "b"], dtype=object), 2)
    with pytest.raises(ScoringError, match="3 class probabilities"):
        as_task_output(multi, two_cols, 2)
    p = np.array([[0.2, 0.5, 0.3], [0.7, 0.2, 0.1]])
    assert scalar_output(multi, as_task_output(multi, p, 2)).tolist() == [1.0, 0.0]


def test_model_task_round_trip(tmp_path) -> None:
    task = ModelTask("multiclass", ["billing", "tech"], 0.5, "queue")
    task.save(tmp_path)
    again = ModelTask.load(tmp_path)
    assert again == task
    assert again.index_of("tech") == 1 and again.index_of("nope") is None
    assert ModelTask.load(tmp_path / "none") == ModelTask()  # an old model: binary 0/1


def test_resources_gpus_wins_over_docker_gpus() -> None:
    assert cfg().gpus == 0
    assert cfg("[docker]\ngpus = 2\n").gpus == 2
    assert cfg("[docker]\ngpus = 2\n[resources]\ngpus = 1\n").gpus == 1
    assert cfg('[resources]\ngpus = "all"\n').gpus == "all"
    with pytest.raises(ConfigError, match=r"\[resources\].gpus"):
        cfg("[resources]\ngpus = -1\n")
