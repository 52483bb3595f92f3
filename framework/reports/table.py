"""Run folders -> one pandas DataFrame, a row per run.

Columns are the run's metrics (``status``, ``test_accuracy``, ``params``, ...)
and its resolved spec flattened to key paths (``train.optimizer.learning_rate``,
``model.layers[0].filters``)::

    from framework.reports import load
    df = load("reports")
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterable

from framework.errors import FrameworkError, did_you_mean
from framework.reports import run_folder as rf

# Layer types in order; the default view shows it instead of per-layer keys when architectures differ.
ARCHITECTURE = "model.architecture"

# Metric columns shown first, in this order, when present.
LEAD_COLUMNS = ["run", "name", "status", "seed"]
TRAILING_COLUMNS = ["params", "teacher_params", "epochs", "best_epoch", "train_seconds", "examples_per_second", "jit_compile", "augmentation", "epsilon"]


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{'train': {'optimizer': {'learning_rate': 0.01}}} -> {'train.optimizer.learning_rate': 0.01}."""
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            if key.startswith("_"):
                continue
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(data, list) and any(isinstance(v, (dict, list)) for v in data):
        for i, value in enumerate(data):
            out.update(flatten(value, f"{prefix}[{i}]"))
    elif isinstance(data, list):
        out[prefix] = json.dumps(data)
    elif data is not None:
        out[prefix] = data
    return out


TRIAL_RUNS = "trials"  # a tune folder's run folders, one per trial (tune/search.py)


def _is_run(path: Path) -> bool:
    return (path / rf.METRICS).exists() or (path / rf.RESOLVED).exists()


def find_run_folders(paths: Iterable[str | Path]) -> list[Path]:
    """Run folders named directly, or one level below the folders named; a tune folder brings its trials."""
    found: list[Path] = []
    for path in map(Path, paths):
        if _is_run(path):
            candidates = [path]
        elif path.is_dir():
            candidates = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        else:
            continue
        for candidate in candidates:
            found.append(candidate)
            trials = candidate / TRIAL_RUNS
            if trials.is_dir():
                found.extend(sorted(p for p in trials.iterdir() if p.is_dir() and _is_run(p)))
    return found


def read_run(folder: Path) -> dict[str, Any] | None:
    """One row, or None (with a note on stderr) for a folder that is not a readable run."""
    try:
        metrics = rf.read_json(folder / rf.METRICS)
        resolved = rf.read_json(folder / rf.RESOLVED)
    except FileNotFoundError as exc:
        print(f"note: skipping {folder}: no {Path(exc.filename).name}, not a complete run folder", file=sys.stderr)
        return None
    except (OSError, ValueError) as exc:
        print(f"note: skipping {folder}: unreadable ({exc})", file=sys.stderr)
        return None
    if not isinstance(metrics, dict) or not isinstance(resolved, dict):
        print(f"note: skipping {folder}: metrics.json or resolved.json is not an object", file=sys.stderr)
        return None
    from framework.errors import RunError
    from framework.spec.upgrade import upgrade

    try:  # runs of older versions line up with today's keys
        resolved = upgrade({k: v for k, v in resolved.items() if k != "_overrides"}, str(folder / rf.RESOLVED))
    except RunError as exc:
        print(f"note: skipping {folder}: {exc}", file=sys.stderr)
        return None
    row = flatten(resolved)
    layers = (resolved.get("model") or {}).get("layers") or []
    row[ARCHITECTURE] = " > ".join(str(l.get("type") or f"reuse:{l.get('reuse')}") for l in layers if isinstance(l, dict))
    row.update({k: v for k, v in metrics.items() if not isinstance(v, (dict, list))})
    row["run"] = folder.name
    row["path"] = str(folder)
    return row


def load(*paths: str | Path):
    """A DataFrame with one row per run found under ``paths`` (default: ``reports``)."""
    import pandas as pd

    rows = [row for row in map(read_run, find_run_folders(paths or ("reports",))) if row is not None]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame[_ordered_columns(frame.columns)]


def metric_columns(columns: Iterable[str]) -> list[str]:
    return [
        c for c in columns
        if c.startswith(("test_", "val_", "best_", "teacher_test_")) and c not in ("best_epoch", "best_trial")
    ]


def _ordered_columns(columns) -> list[str]:
    columns = list(columns)
    lead = [c for c in LEAD_COLUMNS if c in columns]
    metrics = metric_columns(columns)
    trailing = [c for c in TRAILING_COLUMNS if c in columns]
    rest = [c for c in columns if c not in set(lead + metrics + trailing)]
    return lead + metrics + trailing + rest


# Top-level spec keys without a dot, which a run's metrics repeat.
SPEC_TOP_LEVEL = ("name", "seed", "description", "plugins")


def spec_columns(frame) -> list[str]:
    """Flattened spec keys: nested ones contain a '.' or '['."""
    return [c for c in frame.columns if ("." in c or "[" in c or c in SPEC_TOP_LEVEL) and c != "path"]


def differing_columns(frame) -> list[str]:
    """Spec keys whose values differ between the rows."""
    out = []
    for column in spec_columns(frame):
        values = frame[column].map(lambda v: json.dumps(v, sort_keys=True, default=str))
        if values.nunique(dropna=False) > 1:
            out.append(column)
    return out


def default_view(frame, columns: list[str] | None = None):
    """What ``report`` shows: the run, its status and metrics, and only the spec keys that differ."""
    if frame.empty:
        return frame
    if columns:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise FrameworkError(
                f"unknown column '{missing[0]}'{did_you_mean(missing[0], frame.columns)}", path="--columns"
            )
        return frame[columns]
    keep = [c for c in LEAD_COLUMNS if c in frame.columns] + metric_columns(frame.columns)
    keep += [c for c in TRAILING_COLUMNS if c in frame.columns]
    differing = differing_columns(frame)
    if ARCHITECTURE in differing:  # different layer stacks: per-layer keys would not line up
        differing = [c for c in differing if not c.startswith("model.layers[")]
    else:
        differing = [c for c in differing if c != ARCHITECTURE]
    keep += differing
    return frame[list(dict.fromkeys(keep))]


def render(frame, fmt: str) -> str:
    if frame.empty:
        return "no runs found\n" if fmt == "table" else ""
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        return frame.to_json(orient="records", indent=2) + "\n"
    if fmt == "markdown":
        return _display(frame).to_markdown(index=False) + "\n"
    return _display(frame).to_string(index=False) + "\n"


def _display(frame):
    """Numbers to 4 significant digits and blanks for missing values, for people to read."""
    def cell(value):
        if value is None or (isinstance(value, float) and value != value):
            return ""
        if isinstance(value, float):
            return _number(value)
        return value

    return frame.astype(object).map(cell)


def _number(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"


def where(frame, expression: str):
    """Rows matching a pandas query; dotted spec keys may be written with or without backticks."""
    import re

    quoted = expression
    for column in sorted((c for c in frame.columns if re.search(r"[.\[\]]", c)), key=len, reverse=True):
        quoted = re.sub(rf"(?<![`\w]){re.escape(column)}(?![`\w])", f"`{column}`", quoted)
    try:
        return frame.query(quoted, engine="python")
    except Exception as exc:
        raise FrameworkError(f"cannot filter with {expression!r}: {type(exc).__name__}: {exc}", path="--where") from None


def group(frame, keys: list[str]):
    """Mean, std and count of every test metric per value of ``keys`` (e.g. over repeated seeds)."""
    missing = [k for k in keys if k not in frame.columns]
    if missing:
        raise FrameworkError(f"unknown column '{missing[0]}'{did_you_mean(missing[0], frame.columns)}", path="--group-by")
    measured = metric_columns(frame.columns) + [c for c in ("train_seconds", "epsilon") if c in frame.columns]
    metrics = [c for c in measured if frame[c].dtype.kind in "fi"]
    grouped = frame.groupby(keys, dropna=False)
    out = grouped.size().rename("runs").to_frame()
    for metric in metrics:
        out[f"{metric}_mean"] = grouped[metric].mean()
        out[f"{metric}_std"] = grouped[metric].std(ddof=1)
    return out.reset_index()


def group_display(grouped):
    """``test_accuracy_mean`` and ``_std`` merged into one 'mean ± std' column, for people to read."""
    out = grouped[[c for c in grouped.columns if not c.endswith(("_mean", "_std"))]].copy()
    for column in grouped.columns:
        if column.endswith("_mean"):
            metric = column[: -len("_mean")]
            std = grouped[f"{metric}_std"]
            out[metric] = [
                f"{_number(m)} ± {_number(s)}" if s == s else _number(m) for m, s in zip(grouped[column], std)
            ]
    return out
