"""Run folders -> one pandas DataFrame, a row per run.

Columns are the run's metrics (``status``, ``test_accuracy``, ``params``, ...)
and its resolved spec flattened to key paths (``train.optimizer.learning_rate``,
``model.layers[0].filters``)::

    from framework.reports import load
    df = load("reports")
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any, Iterable

from framework.errors import FrameworkError, did_you_mean
from framework.reports import run_folder as rf

# Layer types in order; the default view shows it instead of per-layer keys when architectures differ.
ARCHITECTURE = "model.architecture"

# Metric columns shown first, in this order, when present.
LEAD_COLUMNS = ["run", "name", "status", "seed"]
TRAILING_COLUMNS = ["params", "teacher_params", "epochs", "best_epoch", "train_seconds", "examples_per_second", "jit_compile", "steps_per_execution", "augmentation", "epsilon"]


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
# Folders inside a run or a reports folder that hold no runs: never searched.
NOT_RUNS = {"tensorboard", "backup", "kt", "trial_stats", "explain", "export", "mlruns", "__pycache__"}
MAX_DEPTH = 8  # folders of folders of runs, this deep at most


def _is_run(path: Path) -> bool:
    return (path / rf.METRICS).exists() or (path / rf.RESOLVED).exists()


def _subfolders(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in NOT_RUNS)
    except OSError:
        return []


def find_run_folders(paths: Iterable[str | Path]) -> list[Path]:
    """Run folders named, or found anywhere below the folders named (folders of folders of runs too); a tune folder
    brings its trials. A folder with no subfolders that is not a run is returned as well, so that reading it notes why
    it is skipped."""
    found: list[Path] = []

    def add_run(folder: Path) -> None:
        found.append(folder)
        trials = folder / TRIAL_RUNS
        if trials.is_dir():
            found.extend(p for p in _subfolders(trials) if _is_run(p))

    def walk(folder: Path, depth: int) -> None:
        for child in _subfolders(folder):
            if _is_run(child):
                add_run(child)
            elif (child / "meta.yaml").exists():  # an MLflow store's folder
                continue
            elif _subfolders(child) and depth < MAX_DEPTH:
                walk(child, depth + 1)
            else:
                found.append(child)

    for path in map(Path, paths):
        if _is_run(path):
            add_run(path)
        elif path.is_dir():
            walk(path, 0)
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


# A generative run's scores of its samples (reports/generative.py), metrics without a split prefix.
SAMPLE_METRICS = ("synthetic_accuracy", "fid", "real_accuracy")


def metric_columns(columns: Iterable[str]) -> list[str]:
    return [
        c for c in columns
        if (c.startswith(("test_", "val_", "best_", "teacher_test_")) and c not in ("best_epoch", "best_trial"))
        or c in SAMPLE_METRICS
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


# Keys that say how a run was watched or where it lives, not what it was: left out of the compact view.
NOISE_COLUMNS = {"train.verbose", "train.tensorboard", "description", "plugins", "path", "name", "examples_per_second"}
NOISE_PREFIXES = ("tune.", "track.")
_RUN_ID = re.compile(r"^(?P<name>.+)-\d{8}-\d{6}-(?P<id>[0-9a-f]{6})$")


def is_noise(column: str) -> bool:
    """Spec keys and columns that never tell runs apart in a way worth a column (verbosity, logging, tuning)."""
    return column in NOISE_COLUMNS or column.startswith(NOISE_PREFIXES)


def short_run_id(run: str) -> str:
    """'quickstart-20261128-101500-3f9a2c' -> 'quickstart-3f9a2c': the name and the folder's 6-character id."""
    match = _RUN_ID.match(str(run))
    return f"{match['name']}-{match['id']}" if match else str(run)


def _short_ids(frame) -> list[str]:
    """Short run ids, with the parent folder's short name in front where two would be the same (trials)."""
    short = [short_run_id(r) for r in frame["run"]]
    if len(set(short)) < len(short) and "path" in frame.columns:
        short = [
            f"{short_run_id(Path(p).parent.parent.name if Path(p).parent.name == TRIAL_RUNS else Path(p).parent.name)}/{s}"
            for s, p in zip(short, frame["path"])
        ]
    return short


def _constant(series) -> bool:
    return series.map(lambda v: json.dumps(v, sort_keys=True, default=str)).nunique(dropna=False) <= 1


def compact_view(frame, columns: list[str] | None = None):
    """What ``report`` shows people: short run ids, the metrics, and only the columns that differ between the runs
    (no constant columns when there are several runs, no noise such as train.verbose, tune.*, paths).
    ``columns`` picks the columns instead, as ``default_view`` does."""
    if frame.empty or columns:
        return default_view(frame, columns)
    view = default_view(frame)
    metrics = set(metric_columns(view.columns))
    several = len(view) > 1
    keep = []
    for column in view.columns:
        if column == "run":
            keep.append(column)
        elif is_noise(column) or view[column].isna().all():
            continue
        elif column in metrics or not (several and _constant(view[column])):
            keep.append(column)
    out = view[keep].copy()
    if "run" in out.columns:
        out["run"] = _short_ids(frame.loc[out.index])
    return out


def terminal_width() -> int | None:
    """The terminal's width, or COLUMNS where set; None when stdout is not a terminal (a file, a pipe)."""
    import os
    import shutil

    if "COLUMNS" in os.environ or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def _width(frame) -> int:
    return max((len(line) for line in frame.to_string(index=False).splitlines()), default=0)


def _clip(value, limit: int):
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip_run(value, limit: int):
    """A run id clipped in its name, keeping the id at its end that tells runs apart."""
    text = str(value)
    return text if len(text) <= limit else text[: max(limit - 8, 1)] + "…" + text[-7:]


_GENERIC = {"type", "name", "value", "kind", "rate", "source"}  # last parts that say little alone: 'lr_schedule.type'


def short_headers(columns: list[str]) -> dict[str, str]:
    """Dotted spec keys shortened to their last parts, as far as they stay unique: 'learning_rate', 'layers[0].units'."""
    out = {}
    taken = set(columns)
    for column in columns:
        parts = column.split(".")
        if len(parts) < 2:
            continue
        for n in range(2 if parts[-1] in _GENERIC else 1, len(parts)):
            candidate = ".".join(parts[-n:])
            others = [c for c in columns if c != column and ".".join(c.split(".")[-n:]) == candidate]
            if not others and candidate not in taken:
                out[column] = candidate
                taken.add(candidate)
                break
    return out


def _drop_order(columns: list[str]) -> list[str]:
    """Which columns go first when a table is too wide: timing and counts, later metrics, spec keys, test metrics."""
    metrics = metric_columns(columns)
    trailing = [c for c in columns if c in TRAILING_COLUMNS]
    status = [c for c in columns if c == "status"]
    tests = [c for c in metrics if c.startswith("test_")]
    other_metrics = [c for c in metrics if c not in tests]
    spec = [c for c in columns if c not in {"run", *metrics, *trailing, *status}]
    return [*trailing[::-1], *other_metrics[1:][::-1], *status[::-1], *spec[::-1], *other_metrics[:1], *tests[:0:-1]]


def _clip_columns(shown, limit: int) -> None:
    for column in shown.columns:
        clip = _clip_run if column == "run" else _clip
        shown[column] = [clip(v, max(limit, 24) if column == "run" else limit) for v in shown[column]]


def fit_width(view, width: int):
    """``view`` as display strings that fit ``width`` characters: long texts clipped, then dotted headers shortened,
    then the least telling columns left out. Returns (the display frame, a note on what was shortened or left out)."""
    shown = display_frame(view).astype(str)
    if shown.empty or _width(shown) <= width:
        return shown, ""
    notes = []
    _clip_columns(shown, 32)
    renamed = {}
    if _width(shown) > width:
        renamed = short_headers([c for c in shown.columns if c != "run"])
        shown = shown.rename(columns=renamed)
        if renamed:
            notes.append("spec keys shortened")
    hidden = []
    order = _drop_order(list(view.columns))
    for phase, columns in enumerate((
        [c for c in order if c in TRAILING_COLUMNS],  # timing and counts first, before texts are clipped further
        order,
    )):
        if phase == 1 and _width(shown) > width:
            _clip_columns(shown, 16)
        for column in columns:
            if _width(shown) <= width or len(shown.columns) <= 2:
                break
            if column not in hidden:
                shown = shown.drop(columns=renamed.get(column, column))
                hidden.append(column)
    if hidden:
        notes.append(f"{len(hidden)} column{'s' if len(hidden) > 1 else ''} left out to fit {width} characters: "
                     f"{', '.join(hidden)}")
    note = "; ".join(notes) + ". --wide shows every column in full, --columns picks them." if notes else ""
    return shown, note


def render(frame, fmt: str) -> str:
    if frame.empty:
        return "no runs found\n" if fmt == "table" else ""
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        return frame.to_json(orient="records", indent=2) + "\n"
    if fmt == "markdown":
        return display_frame(frame).to_markdown(index=False) + "\n"
    return display_frame(frame).to_string(index=False) + "\n"


def display_frame(frame):
    """Numbers to 4 significant digits and blanks for missing values, for people to read."""
    def cell(value):
        if value is None or (isinstance(value, float) and math.isnan(value)):
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
                f"{_number(m)} ± {_number(s)}" if not math.isnan(s) else _number(m) for m, s in zip(grouped[column], std)
            ]
    return out
