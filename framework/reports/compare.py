"""Compare runs: what differed in their specs, their metrics side by side with deltas, their curves on one figure."""

from __future__ import annotations

import time
from pathlib import Path

from framework.errors import RunError
from framework.reports import plots
from framework.reports import run_folder as rf
from framework.reports.table import differing_columns, load, metric_columns


def compare_runs(folders: list[Path], output: Path | None = None):
    """Returns (spec differences, metrics with deltas against the first run, PNG path)."""
    import pandas as pd

    folders = [Path(f) for f in folders]
    for folder in folders:
        if not (folder / rf.METRICS).exists() or not (folder / rf.RESOLVED).exists():
            raise RunError("is not a run folder (no metrics.json or resolved.json)", path=str(folder))
    frame = load(*folders)
    if len(frame) != len(folders):
        raise RunError("some run folders could not be read; see the notes above", path=", ".join(map(str, folders)))
    runs = list(frame["run"])
    keys = differing_columns(frame)
    specs = frame.set_index("run")[keys].T if keys else pd.DataFrame(columns=runs)
    specs.index.name = "spec key"

    metrics_cols = [c for c in metric_columns(frame.columns) if frame[c].dtype.kind in "fi"]
    metrics_cols += [c for c in ("params", "epochs", "train_seconds", "epsilon") if c in frame.columns]
    metrics = frame.set_index("run")[metrics_cols].T
    metrics.index.name = "metric"
    base = metrics[runs[0]]
    for run in runs[1:]:
        metrics[f"Δ {run}"] = metrics[run] - base

    histories = {}
    for folder, run in zip(folders, runs):
        if (folder / rf.HISTORY).exists():
            histories[run] = pd.read_csv(folder / rf.HISTORY)
    output = Path(output) if output else folders[0].parent / f"compare-{time.strftime('%Y%m%d-%H%M%S')}.png"
    plots.compare_curves(histories, output)
    return specs.reset_index(), metrics.reset_index(), output
