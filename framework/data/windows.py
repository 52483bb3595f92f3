"""Forecasting windows: rows in file order -> (window of inputs, a later label), split chronologically."""

from __future__ import annotations

import numpy as np

from framework.errors import DataError


def make_windows(x: np.ndarray, y: np.ndarray, size: int, horizon: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows ``x[t : t+size]`` with target ``y[t+size-1+horizon]``, for t = 0, stride, 2*stride, ...

    >>> make_windows(np.arange(6.)[:, None], np.arange(6.), size=3, horizon=1, stride=2)[1]
    array([3., 5.])
    """
    starts = np.arange(0, len(x) - size - horizon + 1, stride)
    if len(starts) == 0:
        return x[:0, None].repeat(size, axis=1), y[:0]
    index = starts[:, None] + np.arange(size)[None, :]
    return x[index], y[starts + size - 1 + horizon]


def chronological_windows(x: np.ndarray, y: np.ndarray, data_spec) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split the rows by time (train, then validation, then test), then window each part on its own."""
    window = data_spec.window
    n = len(x)
    n_test = int(round(n * data_spec.test_split))
    n_rest = n - n_test
    n_val = int(round(n_rest * data_spec.validation_split))
    bounds = {"train": (0, n_rest - n_val), "validation": (n_rest - n_val, n_rest), "test": (n_rest, n)}
    parts = {}
    for name, (lo, hi) in bounds.items():
        if name == "validation" and data_spec.validation_split == 0:
            continue
        xs, ys = make_windows(x[lo:hi], y[lo:hi], window.size, window.horizon, window.stride)
        if len(xs) == 0:
            raise DataError(
                f"the {name} part has {hi - lo} rows, too few for one window of {window.size} steps with horizon "
                f"{window.horizon}; use a smaller window or a larger {name} fraction",
                path="data.window.size",
            )
        parts[name] = (xs, ys)
    return parts


def naive_mae(x_windows: np.ndarray, y: np.ndarray, label_index: int | None) -> float | None:
    """MAE of predicting each target by the last value of the label in its window (the persistence baseline)."""
    if label_index is None:
        return None
    return float(np.mean(np.abs(y - x_windows[:, -1, label_index])))
