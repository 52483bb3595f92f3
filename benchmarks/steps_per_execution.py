"""Seconds per epoch with one batch per compiled call against train.steps_per_execution = "auto", through `run`.

    python benchmarks/steps_per_execution.py [--rounds 3]

Jobs: the digits MLP of benchmarks/digits_mlp.toml (30 epochs, batch 32); with ../shared/data/mnist.npz also the
MNIST MLP of benchmarks/overhead.py (batch 128) and the tanh CNN of specs/mnist_dp.toml without [privacy] (batch
256), 4 epochs each. Each round runs every job at 1 and at "auto" in this one process, alternating which goes first.
A job's figure is the median over rounds of its steady epoch (the median of history.csv's epoch_seconds without
the first epoch, which traces). Each job also checks that both settings end with the same test loss (the same
updates in the same order). A last job is a short run, the digits MLP for 1 epoch (45 steps, under
AUTO_MIN_STEPS, so "auto" is 1): its figure is the whole train_seconds at 1 against 16, what the threshold avoids.
The last line is ``steps_per_execution_speedup=<digits MLP: seconds at 1 / at auto>``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist.npz"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


SHORT = "digits MLP, 1 epoch"


def jobs() -> dict[str, dict]:
    """name: raw spec (dict), each small enough for a few rounds."""
    digits = tomllib.loads((ROOT / "benchmarks" / "digits_mlp.toml").read_text())
    out = {"digits MLP, batch 32": digits, SHORT: {**digits, "train": {**digits["train"], "epochs": 1}}}
    if MNIST.exists():
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from overhead import spec_text

        mlp = tomllib.loads(spec_text(4)[1])
        cnn = tomllib.loads((ROOT / "specs" / "mnist_dp.toml").read_text())
        cnn.pop("privacy")
        cnn["data"]["source"] = f"npz:{MNIST}"
        cnn["train"].update(epochs=4, batch_size=256, deterministic=False)
        cnn["train"].pop("callbacks", None)
        out["MNIST MLP, batch 128"] = mlp
        out["MNIST tanh CNN, batch 256"] = cnn
    return out


def steady_epoch(raw: dict, steps: int | str, reports: Path) -> tuple[float, float, int]:
    """(median epoch seconds after the first, or train_seconds for a 1-epoch run; test loss; the
    steps_per_execution that ran) of one run."""
    import pandas as pd

    from framework.spec.load import load_spec_input
    from framework.train.run import run_experiment

    raw = {**raw, "train": {**raw["train"], "steps_per_execution": steps, "verbose": 0}}
    result = run_experiment(load_spec_input(raw), reports)
    seconds = pd.read_csv(result.folder.path / "history.csv")["epoch_seconds"].tolist()[1:] or [result.metrics["train_seconds"]]
    return statistics.median(seconds), result.metrics["test_loss"], result.metrics["steps_per_execution"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from framework.quiet import import_tensorflow

    import_tensorflow()
    reports = Path(tempfile.mkdtemp(prefix="spe-"))
    times: dict = {}
    ran: dict = {}
    for round_ in range(args.rounds):
        for name, raw in jobs().items():
            compared = 16 if name == SHORT else "auto"  # the short run: what "auto" would cost if it did not pick 1
            order = (1, compared) if round_ % 2 == 0 else (compared, 1)
            losses = {}
            for steps in order:
                seconds, losses[steps], ran[name, steps] = steady_epoch(raw, steps, reports)
                times.setdefault((name, steps if steps == 1 else "other"), []).append(seconds)
            same = "same test loss" if losses[1] == losses[compared] else f"TEST LOSS DIFFERS {losses}"
            print(f"round {round_ + 1} {name:26s} 1: {times[name, 1][-1]:.3f} s  {compared}: "
                  f"{times[name, 'other'][-1]:.3f} s  ({same})", flush=True)
    print()
    speedups = {}
    for name in jobs():
        one, other = statistics.median(times[name, 1]), statistics.median(times[name, "other"])
        speedups[name] = one / other
        if name == SHORT:
            print(f"{name:26s} train_seconds {one:.3f} s at 1, {other:.3f} s at 16 (\"auto\" picks 1 for a run this "
                  f"short): {speedups[name]:.2f}x")
            continue
        print(f"{name:26s} steady epoch {one:.3f} s at 1, {other:.3f} s at auto ({ran[name, 'auto']} per call): "
              f"{speedups[name]:.2f}x")
    print(f"steps_per_execution_speedup={speedups['digits MLP, batch 32']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
