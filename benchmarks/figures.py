"""Time the figures every classification run draws: learning curves, the confusion matrix, calibration.png.

    python benchmarks/figures.py [--rounds 9]

The inputs are the digits MLP job's (30 epochs, 10 classes, 360 test examples). The first round (matplotlib's
import and font set-up) is left out; the median of the rest is printed as ``run_figures_seconds=``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from framework.reports import calibration, plots


def draw(folder: Path, history: pd.DataFrame, labels: np.ndarray, probabilities: np.ndarray) -> float:
    start = time.perf_counter()
    plots.learning_curves(history, folder / plots.CURVES, title="digits_mlp-2026-11-30-120000")
    plots.confusion_matrix(labels, probabilities.argmax(axis=1), [str(i) for i in range(10)], folder / plots.CONFUSION)
    plots.reliability_diagram(calibration.reliability_bins(probabilities, labels),
                              calibration.expected_calibration_error(probabilities, labels), folder / plots.CALIBRATION,
                              entropy=float(calibration.predictive_entropy(probabilities).mean()))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    epochs = np.arange(30)
    history = pd.DataFrame({"epoch": epochs, "loss": 2 / (1 + epochs), "accuracy": 1 - 0.5 / (1 + epochs),
                            "val_loss": 2.2 / (1 + epochs), "val_accuracy": 1 - 0.6 / (1 + epochs)})
    labels = rng.integers(0, 10, 360)
    probabilities = rng.dirichlet(np.ones(10) * 0.3, 360)
    with tempfile.TemporaryDirectory() as folder:
        times = [draw(Path(folder), history, labels, probabilities) for _ in range(args.rounds + 1)]
    print(f"first round (with matplotlib's import): {times[0]:.3f} s; later rounds: "
          + " ".join(f"{t:.3f}" for t in times[1:]))
    print(f"run_figures_seconds={statistics.median(times[1:]):.3f}")


if __name__ == "__main__":
    main()
