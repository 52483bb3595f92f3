"""Time the figures every classification run draws: learning curves, the confusion matrix, calibration.png.

    python benchmarks/figures.py [--rounds 9]

The inputs are the digits MLP job's (30 epochs, 10 classes, 360 test examples). The figures place their axes by
measured margins (``plots._set_margins``); each round also draws them with matplotlib's ``tight_layout`` in that
place, the two taking turns. The first round (matplotlib's import and font set-up) is left out; the medians of the
rest are printed as ``run_figures_seconds=`` and ``tight_layout_seconds=``. A generative run's samples.png (100 8x8
samples, a labelled row per class) is timed the same way: ``sample_grid_seconds=``. Run from an older tree (with
``PYTHONPATH`` set to it) the script times that tree's figures.
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
    measured = getattr(plots, "_set_margins", None)  # absent in trees older than the measured margins

    def tight_layout(fig, **_margins):
        fig.tight_layout()

    times = {"measured margins": [], "tight_layout": [], "sample grid": []}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds + 1):
            for name, layout in (("measured margins", measured), ("tight_layout", tight_layout)):
                if measured is not None:
                    plots._set_margins = layout
                times[name].append(draw(Path(folder), history, labels, probabilities))
            start = time.perf_counter()
            plots.sample_grid(rng.uniform(size=(100, 8, 8)), Path(folder) / plots.SAMPLES, [str(i) for i in range(10)], 10)
            times["sample grid"].append(time.perf_counter() - start)
    if measured is not None:
        plots._set_margins = measured
    for name, values in times.items():
        print(f"{name}: first round (with matplotlib's import) {values[0]:.3f} s; later rounds "
              + " ".join(f"{t:.3f}" for t in values[1:]))
    print(f"tight_layout_seconds={statistics.median(times['tight_layout'][1:]):.3f}")
    print(f"sample_grid_seconds={statistics.median(times['sample grid'][1:]):.3f}")
    print(f"run_figures_seconds={statistics.median(times['measured margins'][1:]):.3f}")


if __name__ == "__main__":
    main()
