"""Training time per trainer on the same generated binary sample.

Each trainer (lightgbm, xgboost, sklearn) trains through its plugin's `train(ctx)` on the
same 50,000 rows (the fraud_detection sample's generator: numbers and one categorical
column), 200 rounds each (sklearn: HistGradientBoostingClassifier, max_iter 200), early
stopping off. Prints one line per trainer: seconds, the ratio to LightGBM's time, and the
validation AUC (so a fast trainer that learned nothing shows).

    python benchmarks/trainers.py [--rows 50000] [--rounds 200] [--repeat 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbench import plugins
from workbench.config import parse_config
from workbench.data import snapshot as data_mod
from workbench.training.evaluation import evaluate

TRAINERS = ("lightgbm", "xgboost", "sklearn")


def rounds_param(trainer: str, rounds: int) -> dict[str, Any]:
    return {
        "lightgbm": {"num_iterations": rounds},
        "xgboost": {"n_estimators": rounds},
        "sklearn": {"max_iter": rounds, "early_stopping": False},
    }[trainer]


def sample(rows: int) -> tuple[Any, Any, Any]:
    """(config, train, valid) of the fraud_detection sample, generated with `rows` rows."""
    from workbench_samples.fraud_detection import generate

    text = (Path(generate.__file__).parent / "workbench.toml").read_text()
    config = parse_config(text)
    frame = generate.generate(rows, seed=7)
    from workbench.data import target as target_mod

    classes = target_mod.classes_of(frame, config)
    parts = data_mod.split(target_mod.encode(frame, config, classes), config)
    return config, parts.train.to_pandas(), parts.valid.to_pandas()


def train_once(
    trainer: str, config: Any, train: Any, valid: Any, rounds: int
) -> tuple[float, float]:
    ctx = plugins.TrainContext(
        config=config,
        params=rounds_param(trainer, rounds),
        features=config.features,
        categorical=data_mod.categorical_features(config),
        target=config.data.target,
        train=train,
        valid=valid,
        on_iteration=lambda *_: None,
    )
    plugin = plugins.load("trainer", trainer)
    started = time.perf_counter()
    model = plugin.train(ctx)
    seconds = time.perf_counter() - started
    auc = evaluate("binary", valid[config.data.target].to_numpy(), model.predict(valid))["auc"]
    return seconds, auc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs per trainer")
    args = parser.parse_args()
    report(args.rows, args.rounds, args.repeat)


def report(rows: int, rounds: int, repeat: int = 1) -> None:
    """One line per trainer: its training time on the same sample, as a ratio to LightGBM's."""
    config, train, valid = sample(rows)
    print(f"{rows:,} rows ({len(train):,} train), {rounds} rounds, binary")
    base: float | None = None
    for trainer in TRAINERS:
        runs = [train_once(trainer, config, train, valid, rounds) for _ in range(repeat)]
        seconds, auc = min(runs)
        base = base or seconds
        ratio = seconds / base
        print(f"{trainer:<9} {seconds:7.2f} s  {ratio:5.2f}x lightgbm  valid AUC {auc:.4f}")


if __name__ == "__main__":
    main()
