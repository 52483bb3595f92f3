"""From a source's arrays to seeded, stratified train/validation/test splits, scaled and reshaped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from framework.data.sources import RawData, open_source
from framework.errors import DataError, SpecError


@dataclass
class Splits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str] | None = None
    preprocessing: dict[str, Any] = field(default_factory=dict)

    @property
    def example_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.x_train), "validation": 0 if self.x_val is None else len(self.x_val), "test": len(self.x_test)}


def _check_pair(x: np.ndarray, y: np.ndarray, what: str) -> None:
    if len(x) == 0:
        raise DataError(f"the {what} data is empty", path="data.source")
    if len(x) != len(y):
        raise DataError(f"the {what} data has {len(x)} inputs but {len(y)} labels", path="data.source")
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"the {what} inputs are {x.dtype}, not numbers", path="data.source")


def _is_class_labels(y: np.ndarray) -> bool:
    return y.ndim == 1 and np.issubdtype(y.dtype, np.integer)


def _split(x, y, fraction: float, seed: int, stratify: bool):
    from sklearn.model_selection import train_test_split

    strat = None
    if stratify and _is_class_labels(y):
        _, counts = np.unique(y, return_counts=True)
        n_held = int(np.ceil(fraction * len(y)))
        if counts.min() >= 2 and n_held >= len(counts) and len(y) - n_held >= len(counts):
            strat = y
    try:
        return train_test_split(x, y, test_size=fraction, random_state=seed, stratify=strat)
    except ValueError as exc:
        raise DataError(f"cannot split {len(y)} examples with fraction {fraction}: {exc}", path="data") from None


def _reshape(x: np.ndarray, shape: list[int] | None) -> np.ndarray:
    if not shape:
        return x
    try:
        return x.reshape(len(x), *shape)
    except ValueError:
        raise SpecError(
            f"cannot reshape examples of shape {tuple(x.shape[1:])} ({int(np.prod(x.shape[1:]))} values) to {tuple(shape)}",
            path="data.reshape",
        ) from None


def _fit_scaling(x_train: np.ndarray, scale) -> dict[str, Any]:
    if scale == "none":
        return {"scale": "none"}
    if scale == "standard":
        mean, std = x_train.mean(axis=0), x_train.std(axis=0)
        return {"scale": "standard", "shift": mean, "divide": np.where(std > 0, std, 1.0)}
    if scale == "minmax":
        low, high = x_train.min(axis=0), x_train.max(axis=0)
        return {"scale": "minmax", "shift": low, "divide": np.where(high > low, high - low, 1.0)}
    return {"scale": float(scale), "shift": 0.0, "divide": 1.0 / float(scale)}


def apply_scaling(x: np.ndarray, stats: dict[str, Any]) -> np.ndarray:
    x = x.astype("float32", copy=False)
    if stats.get("scale", "none") == "none":
        return x
    return ((x - np.asarray(stats["shift"], "float32")) / np.asarray(stats["divide"], "float32")).astype("float32")


def load_splits(data_spec, seed: int) -> Splits:
    """Load ``data_spec.source`` and return scaled, reshaped splits. Scaling is fitted on train only."""
    raw: RawData = open_source(data_spec).load()
    _check_pair(raw.x, raw.y, "training" if raw.x_test is not None else "")
    if raw.x_test is not None:
        _check_pair(raw.x_test, raw.y_test, "test")
        x_train, y_train, x_test, y_test = raw.x, raw.y, raw.x_test, raw.y_test
    else:
        if data_spec.test_split <= 0:
            raise SpecError("the source has no test split of its own, so test_split must be > 0", path="data.test_split")
        x_train, x_test, y_train, y_test = _split(raw.x, raw.y, data_spec.test_split, seed, data_spec.stratify)
    x_val = y_val = None
    if data_spec.validation_split > 0:
        x_train, x_val, y_train, y_val = _split(x_train, y_train, data_spec.validation_split, seed, data_spec.stratify)
    if data_spec.train_limit:
        x_train, y_train = x_train[: data_spec.train_limit], y_train[: data_spec.train_limit]

    x_train, x_test = _reshape(x_train, data_spec.reshape), _reshape(x_test, data_spec.reshape)
    if x_test.shape[1:] != x_train.shape[1:]:
        raise DataError(f"test inputs have shape {x_test.shape[1:]}, training inputs {x_train.shape[1:]}", path="data.source")
    stats = _fit_scaling(x_train.astype("float32"), data_spec.scale)
    splits = Splits(
        apply_scaling(x_train, stats),
        y_train,
        None if x_val is None else apply_scaling(_reshape(x_val, data_spec.reshape), stats),
        y_val,
        apply_scaling(x_test, stats),
        y_test,
        class_names=raw.class_names,
        preprocessing={k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in stats.items()},
    )
    return splits
