"""From a source's arrays to seeded, stratified train/validation/test splits, scaled and reshaped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from framework.data.sources import RawData, open_source
from framework.data.targets import derive_targets
from framework.errors import DataError, SpecError


@dataclass
class Splits:
    """Inputs and targets per split. Inputs are a dict for several model inputs; targets a dict for several outputs."""

    x_train: Any
    y_train: Any
    x_val: Any
    y_val: Any
    x_test: Any
    y_test: Any
    class_names: list[str] | None = None
    preprocessing: dict[str, Any] = field(default_factory=dict)
    #: figures the data stage can state before training, e.g. a forecast's naive baseline (into metrics.json)
    baselines: dict[str, float] = field(default_factory=dict)
    #: sequence-to-sequence: the ids <-> strings encoding and the test split's (sources, targets) strings
    sequence: Any = None
    test_texts: tuple | None = None
    #: the class names were read off the labels themselves (not given by data.class_names or the source)
    class_names_from_labels: bool = False
    #: a streaming source (images:, tfrecord:, ...): builds the pipelines from the x_* it holds (file lists, split
    #: plans), see images.ImageStreams and streaming.RowStreams
    streams: Any = None

    @property
    def example_shape(self) -> tuple[int, ...] | None:
        return None if isinstance(self.x_train, dict) else tuple(self.x_train.shape[1:])

    @property
    def train_size(self) -> int:
        return _length(self.x_train)

    def sizes(self) -> dict[str, int]:
        return {"train": _length(self.x_train), "validation": 0 if self.x_val is None else _length(self.x_val),
                "test": _length(self.x_test)}


def _length(data) -> int:
    return len(next(iter(data.values()))) if isinstance(data, dict) else len(data)


def _take(data, index):
    return {k: v[index] for k, v in data.items()} if isinstance(data, dict) else data[index]


def _check_pair(x, y, what: str, text: bool = False) -> None:
    what = f"{what} " if what else ""
    n_x = len(x)
    if n_x == 0:
        raise DataError(f"the {what}data is empty", path="data.source")
    for name, values in (y.items() if isinstance(y, dict) else [("", y)]):
        if len(values) != n_x:
            raise DataError(f"the {what}data has {n_x} inputs but {len(values)} labels {name}".rstrip(), path="data.source")
    if text and x.dtype.kind not in "OUS":
        raise DataError(
            f"data.text / data.sequence need text inputs, but the {what}inputs from this source are {x.dtype}; "
            "read a text column from a CSV source", path="data.source",
        )
    if not text and not np.issubdtype(x.dtype, np.number):
        hint = "; for a column of text set data.text" if x.dtype == object else ""
        raise DataError(f"the {what}inputs are {x.dtype}, not numbers{hint}", path="data.source")


def _targets(table, targets: dict[str, str]):
    """A dict of arrays for several outputs; one output's targets are a plain array, as Keras expects."""
    derived = derive_targets(table, targets)
    return next(iter(derived.values())) if len(derived) == 1 else derived


def _is_class_labels(y) -> bool:
    return isinstance(y, np.ndarray) and y.ndim == 1 and np.issubdtype(y.dtype, np.integer)


def _split(n: int, y, fraction: float, seed: int, stratify: bool):
    """(kept, held-out) example indices; stratified by y (the first target) when it is class labels."""
    from sklearn.model_selection import train_test_split

    if isinstance(y, dict):
        y = next(iter(y.values()))
    strat = None
    if stratify and _is_class_labels(y):
        _, counts = np.unique(y, return_counts=True)
        n_held = int(np.ceil(fraction * n))
        if counts.min() >= 2 and n_held >= len(counts) and n - n_held >= len(counts):
            strat = y
    try:
        return train_test_split(np.arange(n), test_size=fraction, random_state=seed, stratify=strat)
    except ValueError as exc:
        raise DataError(f"cannot split {n} examples with fraction {fraction}: {exc}", path="data") from None


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


def _fit_scaling(x_train: np.ndarray, scale, axes: tuple[int, ...] = (0,)) -> dict[str, Any]:
    if scale == "none":
        return {"scale": "none"}
    if scale == "standard":
        mean, std = x_train.mean(axis=axes), x_train.std(axis=axes)
        return {"scale": "standard", "shift": mean, "divide": np.where(std > 0, std, 1.0)}
    if scale == "minmax":
        low, high = x_train.min(axis=axes), x_train.max(axis=axes)
        return {"scale": "minmax", "shift": low, "divide": np.where(high > low, high - low, 1.0)}
    return {"scale": float(scale), "shift": 0.0, "divide": 1.0 / float(scale)}


def apply_scaling(x: np.ndarray, stats: dict[str, Any]) -> np.ndarray:
    x = x.astype("float32", copy=False)
    if stats.get("scale", "none") == "none":
        return x
    return ((x - np.asarray(stats["shift"], "float32")) / np.asarray(stats["divide"], "float32")).astype("float32")


def _json_ready(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in stats.items()}


def _is_text(y) -> bool:
    return isinstance(y, np.ndarray) and y.dtype.kind in "OUS"


def _names_list(values, shown: int = 5) -> str:
    values = [str(v) for v in values]
    return ", ".join(repr(v) for v in values[:shown]) + (f", ... ({len(values)} in all)" if len(values) > shown else "")


def _class_ids(raw: RawData, data_spec) -> RawData:
    """Class names as labels (a CSV's or an NPZ's strings) -> class ids and ``class_names``; ``data.class_names``
    names integer labels (or orders string ones). Then a warning if the labels look like something else."""
    given = list(data_spec.class_names) if getattr(data_spec, "class_names", None) else None
    y, y_test, names = raw.y, raw.y_test, raw.class_names
    if _is_text(y) and y.ndim != 1:
        raise DataError(f"the labels are strings of shape {y.shape}; give one class name per example", path="data.label")
    if _is_text(y_test) and not _is_text(y):
        raise DataError(f"the test labels are names, but the training labels are {y.dtype}", path="data.label")
    if _is_text(y):
        if y_test is not None and not _is_text(y_test):
            raise DataError(f"the training labels are names, but the test labels are {y_test.dtype}", path="data.label")
        y = y.astype(str)
        if given is not None:
            unknown = sorted(set(np.unique(y)) - set(given))
            if unknown:
                raise SpecError(
                    f"the labels {_names_list(unknown)} are not among the {len(given)} names of data.class_names",
                    path="data.class_names",
                )
            names = given
        else:
            names = [str(n) for n in np.unique(y)]  # sorted
            raw.info["class_names_from_labels"] = True  # read off the data (a private run must not publish them)
        index = {name: i for i, name in enumerate(names)}
        y = np.array([index[v] for v in y], dtype="int64")
        if y_test is not None:
            y_test = y_test.astype(str)
            unseen = sorted(set(np.unique(y_test)) - set(index))
            if unseen:
                raise DataError(
                    f"the test labels {_names_list(unseen)} never occur in the training labels (classes: "
                    f"{_names_list(names, 10)}); a model cannot learn a class it never sees", path="data.label",
                )
            y_test = np.array([index[v] for v in y_test], dtype="int64")
    elif given is not None:
        if not _is_class_labels(y) or (y_test is not None and not _is_class_labels(y_test)):
            raise SpecError(
                f"names classes, but the labels are {y.dtype} values of shape {tuple(y.shape[1:]) or 'scalar'}, not class ids",
                path="data.class_names",
            )
        labels = y if y_test is None else np.concatenate([y, y_test])
        if labels.min() < 0:
            raise DataError(f"class ids must be 0 or more; the labels include {labels.min()}", path="data.label")
        found = len(names) if names else int(labels.max()) + 1
        if len(given) < found or (names and len(given) != len(names)):
            raise SpecError(
                f"has {len(given)} names, but the data has {found} classes"
                + (f" (the source names them {_names_list(names, 10)})" if names else f" (class ids 0..{found - 1})"),
                path="data.class_names",
            )
        names = given
    _warn_about_labels(y, y_test)
    return RawData(raw.x, y, raw.x_test, y_test, names, raw.info, raw.table, raw.table_test)


def _warn_about_labels(y, y_test) -> None:
    """Most classes with a single example: the label column is probably IDs, free text, or rows that fell apart."""
    from framework.errors import warn

    if not _is_class_labels(y):
        return
    labels = y if y_test is None or not _is_class_labels(y_test) else np.concatenate([y, y_test])
    _, counts = np.unique(labels, return_counts=True)
    singles = int((counts == 1).sum())
    if len(counts) > 2 and singles > len(counts) / 2:
        warn(
            f"{singles:,} of the {len(counts):,} classes have a single example ({len(labels):,} examples in all); "
            "a classifier cannot learn such classes. Is this the right label column, and does the file read as "
            "intended? (For numbers to predict, give float values and a regression loss such as 'mse'.)",
            path="data.label",
        )


def load_splits(data_spec, seed: int) -> Splits:
    """Load ``data_spec.source`` and return its splits. Everything fitted (scaling, vocabularies) sees train only."""
    source = open_source(data_spec)
    if source.streams():  # images:, tfrecord:, parquet:, streamed csv: read by the pipelines, never all in memory
        return source.load_splits_streaming(seed)
    raw: RawData = source.load()
    if data_spec.targets is None and data_spec.sequence is None and data_spec.window is None:
        raw = _class_ids(raw, data_spec)
    elif getattr(data_spec, "class_names", None):
        kind = next(k for k in ("targets", "sequence", "window") if getattr(data_spec, k) is not None)
        raise SpecError(f"names the classes of data.label, which data.{kind} does not use", path="data.class_names")
    if data_spec.window is not None:
        return _window_splits(raw, data_spec)
    textual = data_spec.text is not None or data_spec.sequence is not None
    y = raw.y if data_spec.targets is None else _targets(raw.label_table(), data_spec.targets)
    _check_pair(raw.x, y, "training" if raw.x_test is not None else "", textual)
    if raw.x_test is not None:
        y_test = raw.y_test if data_spec.targets is None else _targets(raw.label_table(test=True), data_spec.targets)
        _check_pair(raw.x_test, y_test, "test", textual)
        x_train, y_train, x_test = raw.x, y, raw.x_test
    else:
        if data_spec.test_split <= 0:
            raise SpecError("the source has no test split of its own, so test_split must be > 0", path="data.test_split")
        kept, held = _split(len(raw.x), y, data_spec.test_split, seed, data_spec.stratify)
        x_train, y_train, x_test, y_test = raw.x[kept], _take(y, kept), raw.x[held], _take(y, held)
    x_val = y_val = None
    if data_spec.validation_split > 0:
        kept, held = _split(len(x_train), y_train, data_spec.validation_split, seed, data_spec.stratify)
        x_train, y_train, x_val, y_val = x_train[kept], _take(y_train, kept), x_train[held], _take(y_train, held)
    if data_spec.train_limit:
        limit = np.arange(min(data_spec.train_limit, len(x_train)))
        x_train, y_train = x_train[limit], _take(y_train, limit)

    if data_spec.sequence is not None:
        return _sequence_splits(data_spec, raw, x_train, y_train, x_val, y_val, x_test, y_test)
    if data_spec.text is not None:
        return Splits(x_train, y_train, x_val, y_val, x_test, y_test, class_names=raw.class_names,
                      class_names_from_labels=bool(raw.info.get("class_names_from_labels")),
                      preprocessing={"scale": "none", "text": data_spec.text})
    x_train, x_test = _reshape(x_train, data_spec.reshape), _reshape(x_test, data_spec.reshape)
    if x_test.shape[1:] != x_train.shape[1:]:
        raise DataError(f"test inputs have shape {x_test.shape[1:]}, training inputs {x_train.shape[1:]}", path="data.source")
    stats = _fit_scaling(x_train.astype("float32"), data_spec.scale)
    return Splits(
        apply_scaling(x_train, stats),
        y_train,
        None if x_val is None else apply_scaling(_reshape(x_val, data_spec.reshape), stats),
        y_val,
        apply_scaling(x_test, stats),
        y_test,
        class_names=raw.class_names, class_names_from_labels=bool(raw.info.get("class_names_from_labels")),
        preprocessing={**_json_ready(stats), **({"features": raw.info["features"]} if "features" in raw.info else {})},
    )


def _sequence_splits(data_spec, raw, x_train, y_train, x_val, y_val, x_test, y_test) -> Splits:
    from framework.data.sequences import SequenceEncoding

    encoding = SequenceEncoding.fit(x_train, y_train, data_spec.sequence)

    def encoded(x, y):
        return (None, None) if x is None else (encoding.inputs(x, y), encoding.labels(y))

    return Splits(
        *encoded(x_train, y_train), *encoded(x_val, y_val), *encoded(x_test, y_test),
        preprocessing={"scale": "none", "sequence": encoding.to_json()},
        sequence=encoding, test_texts=(list(x_test), list(y_test)),
    )


def _window_splits(raw: RawData, data_spec) -> Splits:
    from framework.data.windows import chronological_windows, naive_mae

    if raw.x_test is not None or raw.x.ndim != 2:
        raise DataError("forecasting windows need one table of rows (a CSV source)", path="data.window")
    parts = chronological_windows(raw.x, raw.y, data_spec)
    features = raw.info.get("features", [])
    label_index = features.index(data_spec.label) if data_spec.label in features else None
    x_train = parts["train"][0]
    stats = _fit_scaling(x_train, data_spec.scale, axes=(0, 1))
    x_val, y_val = parts.get("validation", (None, None))
    baselines = {}
    naive = naive_mae(*parts["test"], label_index)
    if naive is not None:
        baselines["test_naive_mae"] = naive
    return Splits(
        apply_scaling(x_train, stats), parts["train"][1],
        None if x_val is None else apply_scaling(x_val, stats), y_val,
        apply_scaling(parts["test"][0], stats), parts["test"][1],
        preprocessing={**_json_ready(stats), "window": data_spec.window.model_dump(), "features": features},
        baselines=baselines,
    )
