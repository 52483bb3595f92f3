"""Row streams: the splits, statistics and pipelines shared by the streamed tabular sources (tfrecord:, parquet:,
csv: with data.stream = true). Memory holds the file list and per-file counts, never the rows.

A source gives a *reader* (records.py, csv_stream.py): the files, the shape of one example, the label's type, and
``batches(path)``, a tf.data pipeline of ``(first row number, inputs, labels)`` chunks of one file in file order.
The splits and the counting pass are here, the pipelines in stream_pipelines.py:

- **Splits** are drawn without a shuffle: each row's from a hash of (seed, the file's path relative to the common
  folder, the row's number in its file), computed inside the pipeline (``data.split_by = "row"``), or each file's
  from a hash of its path (``"file"``). They are the same in every process, on resume, and on every worker; they
  are not stratified.
- **One pass** over every file, in file order, counts the splits, finds the labels' classes (or checks them against
  data.class_names) and sums data.scale's statistics over the training rows only (float64).
- **Training order** is a function of (seed, epoch) only: the training files in a seeded order per epoch, read a
  few at a time, and each window of data.shuffle_buffer rows permuted by (seed, epoch, window) with stateless ops.
  A resumed run reads the batches an uninterrupted one would.
- **Multi-worker** training gives each worker its own share of the training files (``share_files``); the
  evaluation pipelines are read by every worker, which keeps its part of each batch.

    [data]
    source = "parquet:shards/*.parquet"   # or tfrecord:..., or csv:big.csv with stream = true
    label = "species"                     # integer class ids, or class names (sorted, or data.class_names)
    scale = "standard"
    split_by = "file"                     # whole files held out; training reads only training files
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.errors import DataError, SpecError

SPLITS = ("train", "validation", "test")
NO_LIMIT = 2**62
_BUCKETS = 2**53  # row hashes: exact in float64
#: debugging and tests: every worker appends the training files it reads to this file
SHARD_LOG_ENV = "FRAMEWORK_SHARD_LOG"


def resolve_glob(arg: str, base_dir: Path, suffixes: tuple[str, ...], what: str) -> str:
    """data.source's GLOB made absolute against the spec's folder; ValueError when it matches no file."""
    from framework.data.sources import usable_path

    pattern = str(usable_path(arg, base_dir)) if not glob.has_magic(arg) else str(base_dir / Path(arg).expanduser())
    if not glob.has_magic(pattern) and Path(pattern).is_dir():
        pattern = os.path.join(pattern, "*")
    found = [f for f in glob.glob(pattern, recursive=True) if os.path.isfile(f)]
    if suffixes:
        found = [f for f in found if f.lower().endswith(suffixes)] or found
    if not found:
        raise ValueError(f"no {what} file matches {pattern}")
    return pattern


def list_files(pattern: str) -> tuple[str, list[str], list[str]]:
    """(common folder, absolute paths, paths relative to the folder with '/'), sorted by relative path."""
    found = sorted(os.path.abspath(f) for f in glob.glob(pattern, recursive=True) if os.path.isfile(f))
    if not found:
        raise DataError(f"no file matches {pattern}", path="data.source")
    root = os.path.dirname(found[0]) if len(found) == 1 else os.path.commonpath(found)
    relative = [Path(os.path.relpath(f, root)).as_posix() for f in found]
    order = sorted(range(len(found)), key=lambda i: relative[i])
    return root, [found[i] for i in order], [relative[i] for i in order]


def feature_columns(columns: list[str], spec, file: str) -> list[str]:
    """data.features (default: every column but data.label), checked against a file's columns."""
    from framework.errors import did_you_mean

    for name, key in [(spec.label, "data.label"), *((n, "data.features") for n in spec.features or [])]:
        if name not in columns:
            role = "label" if key == "data.label" else "feature"
            raise DataError(f"{role} column '{name}' is not in {file}{did_you_mean(name, columns)}; columns: {columns}",
                            path=key)
    return list(spec.features or [c for c in columns if c != spec.label])


class ChunkReader:
    """A reader whose chunks come from Python (pyarrow, pandas): ``_read(path)`` yields (first row, inputs
    [n, features], labels [n]) numpy chunks; ``batches`` runs it in ``tf.data.Dataset.from_generator``."""

    failure: BaseException | None = None
    feature_names: list[str]
    label_dtype: str

    def _read(self, path: str):
        raise NotImplementedError

    def _chunks(self, path: bytes):
        """The generator tf.data runs; what goes wrong is kept for streaming.reading_error (TensorFlow only passes
        the text of an exception on)."""
        try:
            yield from self._read(path.decode())
        except Exception as exc:
            self.failure = exc
            raise

    def batches(self, path):
        import tensorflow as tf

        signature = (
            tf.TensorSpec((), tf.int64), tf.TensorSpec((None, len(self.feature_names)), tf.float32),
            tf.TensorSpec((None,), tf.dtypes.as_dtype(self.label_dtype)),
        )
        return tf.data.Dataset.from_generator(self._chunks, args=(path,), output_signature=signature)


@dataclass
class Plan:
    """What the pipelines need, fixed by the counting pass (see :func:`stream_splits`)."""

    reader: Any
    relative: list[str]
    seed: int
    test_split: float
    validation_split: float
    by_file: bool
    #: per file: its split code (0 train, 1 validation, 2 test; -1: per row) and the first row not used for training
    file_codes: list[int]
    train_rows_below: list[int]
    #: per split: rows in each file (multi-worker steps, sizes)
    counts: dict[str, list[int]]
    class_names: list[str] | None  # string labels -> ids in this order
    stats: dict[str, Any]
    example_shape: tuple[int, ...]
    #: per split: the distinct label values (class ids) or [min, max] (numbers)
    distinct: dict[str, Any]
    label_dtype: str
    shuffle_buffer: int
    workers: tuple[int, int] = (1, 0)  # (how many, this one's index)

    def size(self, split: str) -> int:
        return int(sum(self.counts[split]))


def split_codes(rel, start, count, seed: int, test: float, validation: float):
    """Each row's split, 0 train, 1 validation, 2 test, from a hash of 'seed:file:row' (FarmHash fingerprints, the
    same on every platform): test when u < test, validation when u < test + (1 - test) * validation."""
    import tensorflow as tf

    rows = start + tf.range(count, dtype=tf.int64)
    keys = tf.strings.join([f"{seed}:", rel, ":", tf.strings.as_string(rows)])
    u = tf.cast(tf.strings.to_hash_bucket_fast(keys, _BUCKETS), tf.float64) / float(_BUCKETS)
    return tf.where(u < test, 2, tf.where(u < test + (1 - test) * validation, 1, 0)), rows


def _file_code(relative: str, plan_seed: int, test: float, validation: float) -> int:
    from framework.data.images import hash_fraction

    u = hash_fraction(relative, plan_seed)
    return 2 if u < test else 1 if u < test + (1 - test) * validation else 0


def _coded_chunks(reader, codes: list[int], seed: int, test: float, validation: float):
    """(file index, split code per row, row numbers, inputs, labels) chunks of every file, in file order."""
    import tensorflow as tf

    def per_file(index, path, rel, code):
        def coded(start, x, y):
            n = tf.shape(y, out_type=tf.int64)[0]
            by_row, rows = split_codes(rel, start, n, seed, test, validation)
            return index, tf.where(code >= 0, tf.fill([n], code), by_row), rows, x, y

        return reader.batches(path).map(coded)

    files = tf.data.Dataset.from_tensor_slices(
        (tf.range(len(codes)), list(reader.paths), list(reader.relative), tf.constant(codes, tf.int32))
    )
    return files.flat_map(per_file).prefetch(2)


def stream_splits(source, reader, seed: int):
    """A streamed source's :class:`~framework.data.splits.Splits`, from one pass over its files."""
    import tensorflow as tf

    from framework.data.splits import Splits

    spec = source.spec
    if spec.test_split <= 0:
        raise SpecError("the source has no test split of its own, so test_split must be > 0", path="data.test_split")
    by_file = spec.split_by == "file"
    codes = [_file_code(r, seed, spec.test_split, spec.validation_split) if by_file else -1 for r in reader.relative]
    if by_file:
        for code, part in ((0, "training"), (2, "test")):
            if code not in codes:
                raise DataError(
                    f"data.split_by = 'file' puts none of the {len(codes)} files in the {part} split (it draws each "
                    "file's split from a hash of its path); add files, or split by row with data.split_by = 'row'",
                    path="data.split_by",
                )
    try:
        summary = _count_and_fit(reader, codes, seed, spec)
    except tf.errors.OpError as exc:
        raise reading_error(reader, exc) from None
    shape = _reshaped(reader.example_shape, spec.reshape) if spec.reshape else tuple(reader.example_shape)
    stats = summary.stats(spec.scale, shape)
    plan = Plan(
        reader, reader.relative, seed, spec.test_split, spec.validation_split, by_file, codes, summary.train_below,
        summary.counts, summary.class_names, stats, shape, summary.distinct, summary.label_dtype,
        spec.shuffle_buffer,
    )
    for split, part in (("train", "training"), ("test", "test")):
        if plan.size(split) == 0:
            raise DataError(
                f"the {part} split of {sum(map(sum, summary.counts.values()))} rows is empty (the split is drawn by a "
                "hash); add rows or change data.test_split / data.validation_split", path="data.source",
            )
    from framework.data.stream_pipelines import (
        RowStreams,
        StreamInputs,
        StreamLabels,
        json_ready,
    )

    parts = [(StreamInputs(plan, s), StreamLabels(plan, s)) if plan.size(s) else (None, None) for s in SPLITS]
    return Splits(
        *parts[0], *parts[1], *parts[2],
        class_names=summary.class_names if summary.class_names else (list(spec.class_names) if spec.class_names else None),
        class_names_from_labels=summary.names_from_labels,
        preprocessing={
            **json_ready(stats), "features": reader.feature_names,
            "stream": {"format": reader.kind, "files": len(reader.relative), "split": "file hash" if by_file else "row hash"},
        },
        streams=RowStreams(plan),
    )


def reading_error(reader, exc: BaseException) -> DataError:
    """A tf.data error while reading the files, as a DataError: what the reader's own code found (a line of a CSV,
    rows of a Parquet file), else TensorFlow's first line (a TFRecord that does not parse)."""
    failure = getattr(reader, "failure", None)
    if failure is not None:
        reader.failure = None
        return failure if isinstance(failure, DataError) else DataError(str(failure), path="data.source")
    first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return DataError(f"cannot read the {reader.kind} files ({len(reader.paths)} matching): {first}", path="data.source")


def _reshaped(shape: tuple[int, ...], target: list[int]) -> tuple[int, ...]:
    import math

    size, known = math.prod(shape), math.prod(d for d in target if d != -1)
    fits = size % known == 0 if -1 in target else size == known
    if not fits:
        raise SpecError(f"cannot reshape examples of shape {tuple(shape)} ({size} values) to {tuple(target)}",
                        path="data.reshape")
    return tuple(size // known if d == -1 else d for d in target)


@dataclass
class _Summary:
    """What the counting pass finds."""

    counts: dict[str, list[int]]
    train_below: list[int]
    label_dtype: str
    distinct: dict[str, Any]
    class_names: list[str] | None
    names_from_labels: bool
    moments: tuple | None  # (count, sum, sum of squares, min, max) of the training inputs, float64

    def stats(self, scale, shape) -> dict[str, Any]:
        import numpy as np

        if scale == "none":
            return {"scale": "none"}
        if scale not in ("standard", "minmax"):
            return {"scale": float(scale), "shift": 0.0, "divide": 1.0 / float(scale)}
        count, total, squares, low, high = self.moments
        if scale == "standard":
            mean = total / count
            std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
            shift, divide = mean, np.where(std > 0, std, 1.0)
        else:
            shift, divide = low, np.where(high > low, high - low, 1.0)
        return {"scale": scale, "shift": shift.astype("float32").reshape(shape),
                "divide": divide.astype("float32").reshape(shape)}


def _count_and_fit(reader, codes: list[int], seed: int, spec) -> _Summary:
    """The one pass: every file in order; split sizes per file, the labels' values, the training inputs' moments
    (of the first data.train_limit training rows only), and where data.train_limit cuts each file's training rows."""
    import numpy as np

    fit = spec.scale in ("standard", "minmax")
    counts = {s: [0] * len(codes) for s in SPLITS}
    train_below = [NO_LIMIT] * len(codes)
    limit, taken = spec.train_limit or NO_LIMIT, 0
    labels: dict[str, set] = {s: set() for s in SPLITS}
    moments = None
    numbers = reader.label_dtype == "float32"
    chunks = _coded_chunks(reader, codes, seed, spec.test_split, spec.validation_split)
    for index, code, rows, x, y in chunks:
        index, code, y = int(index), code.numpy(), y.numpy()
        for i, split in enumerate(SPLITS[1:], start=1):
            mask = code == i
            counts[split][index] += int(mask.sum())
            if mask.any():
                labels[split].update(_label_values(y[mask], numbers))
        train = np.flatnonzero(code == 0)
        keep = max(0, min(len(train), limit - taken))
        if keep < len(train) and train_below[index] == NO_LIMIT:  # data.train_limit cuts this file's training rows
            train_below[index] = int(rows.numpy()[train[keep]])
        train = train[:keep]
        counts["train"][index] += keep
        taken += keep
        if keep:
            labels["train"].update(_label_values(y[train], numbers))
        if fit and keep:
            batch = x.numpy()[train].astype("float64").reshape(keep, -1)
            part = (keep, batch.sum(0), (batch * batch).sum(0), batch.min(0), batch.max(0))
            moments = part if moments is None else (
                moments[0] + part[0], moments[1] + part[1], moments[2] + part[2],
                np.minimum(moments[3], part[3]), np.maximum(moments[4], part[4]),
            )
    class_names, from_labels, distinct = _classes(reader, labels, numbers, spec)
    return _Summary(counts, train_below, "float32" if numbers else "int64", distinct, class_names, from_labels, moments)


def _label_values(values, numbers: bool) -> list:
    """What the pass keeps of a chunk's labels: the distinct values, or for numbers only the least and greatest."""
    import numpy as np

    if numbers:
        return [float(values.min()), float(values.max())]
    return np.unique(values).tolist()


def _classes(reader, labels: dict[str, set], numbers: bool, spec):
    """(class names, whether read off the labels, per split the labels' distinct class ids or [min, max])."""
    import numpy as np

    given = list(spec.class_names) if spec.class_names else None
    if numbers:
        if given:
            raise SpecError(f"names classes, but the label '{spec.label}' holds numbers with fractions, not class ids",
                            path="data.class_names")
        return None, False, {s: np.asarray([min(v), max(v)] if v else [], "float32") for s, v in labels.items()}
    seen = set().union(*labels.values())
    if reader.label_dtype == "string":
        names_seen = sorted(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in seen)
        if given is not None:
            unknown = sorted(set(names_seen) - set(given))
            if unknown:
                raise SpecError(
                    f"the labels {unknown[:5]} are not among the {len(given)} names of data.class_names",
                    path="data.class_names",
                )
        names = given or names_seen
        index = {n.encode(): i for i, n in enumerate(names)}
        return names, given is None, {
            s: np.asarray(sorted(index[v if isinstance(v, bytes) else str(v).encode()] for v in values), "int64")
            for s, values in labels.items()
        }
    ids = sorted(int(v) for v in seen)
    if ids and ids[0] < 0:
        raise DataError(f"class ids must be 0 or more; the label '{spec.label}' includes {ids[0]}", path="data.label")
    if given is not None and ids and ids[-1] >= len(given):
        raise SpecError(f"has {len(given)} names, but the data has class ids up to {ids[-1]}", path="data.class_names")
    return given, False, {s: np.asarray(sorted(int(v) for v in values), "int64") for s, values in labels.items()}
