"""Seconds per epoch with one batch per compiled call against train.steps_per_execution = "auto", through `run`.

    python benchmarks/steps_per_execution.py [--rounds 3]

Jobs: the digits MLP of benchmarks/digits_mlp.toml (30 epochs, batch 32); with ../shared/data/mnist.npz also the
MNIST MLP of benchmarks/overhead.py (batch 128) and the tanh CNN of specs/mnist_dp.toml without [privacy] (batch
256), 4 epochs each. Each round runs every job at 1 and at "auto" in this one process, alternating which goes first.
A job's figure is the median over rounds of its steady epoch (the median of history.csv's epoch_seconds without
the first epoch, which traces). Each job also checks that both settings end with the same test loss (the same
updates in the same order). The last line is ``steps_per_execution_speedup=<digits MLP: seconds at 1 / at auto>``.
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


def jobs() -> dict[str, dict]:
    """name: raw spec (dict), each small enough for a few rounds."""
    out = {"digits MLP, batch 32": tomllib.loads((ROOT / "benchmarks" / "digits_mlp.toml").read_text())}
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
    """(median epoch seconds after the first, test loss, the steps_per_execution that ran) of one run."""
    import pandas as pd

    from framework.spec.load import load_spec_input
    from framework.train.run import run_experiment

    raw = {**raw, "train": {**raw["train"], "steps_per_execution": steps, "verbose": 0}}
    result = run_experiment(load_spec_input(raw), reports)
    seconds = pd.read_csv(result.folder.path / "history.csv")["epoch_seconds"].tolist()[1:]
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
            order = (1, "auto") if round_ % 2 == 0 else ("auto", 1)
            losses = {}
            for steps in order:
                seconds, losses[steps], ran[name, steps] = steady_epoch(raw, steps, reports)
                times.setdefault((name, steps), []).append(seconds)
            same = "same test loss" if losses[1] == losses["auto"] else f"TEST LOSS DIFFERS {losses}"
            print(f"round {round_ + 1} {name:26s} 1: {times[name, 1][-1]:.3f} s  auto: {times[name, 'auto'][-1]:.3f} s"
                  f"  ({same})", flush=True)
    print()
    speedups = {}
    for name in jobs():
        one, auto = statistics.median(times[name, 1]), statistics.median(times[name, "auto"])
        speedups[name] = one / auto
        print(f"{name:26s} steady epoch {one:.3f} s at 1, {auto:.3f} s at auto ({ran[name, 'auto']} per call): "
              f"{speedups[name]:.2f}x")
    print(f"steps_per_execution_speedup={speedups['digits MLP, batch 32']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
