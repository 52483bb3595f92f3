"""The tf.data pipelines of a streamed source's splits (streaming.py draws the splits and fits the statistics):
the split's inputs and labels as array-like objects that read the files when sliced, and ``RowStreams``, which
prepare.make_datasets asks for the training, validation and test pipelines.

Training reads the training files in a seeded order per epoch (four at a time), regroups their chunks into windows
of data.shuffle_buffer rows with ``Dataset.rebatch`` (no row is a tf.data element of its own), permutes each window
by (seed, epoch, window) and rebatches into batches; evaluation reads the split's rows in file order::

    [data]
    source = "tfrecord:shards/*.tfrecord"
    features = { pixels = { shape = [64] }, label = { dtype = "int64" } }
    shuffle_buffer = 10000
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from typing import Any

from framework.data.pipeline import map_stateful
from framework.data.streaming import NO_LIMIT, SHARD_LOG_ENV, SPLITS, Plan, split_codes
from framework.errors import DataError


def json_ready(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in stats.items()}


class StreamInputs:
    """A streamed split's inputs: ``len``, ``shape`` and ``dtype`` as an array's; slicing (``x[:8]``) reads just
    the first rows of the split. What the framework reads of ``splits.x_test`` (sample rows, explain) works on it."""

    def __init__(self, plan: Plan, split: str):
        self.plan, self.split = plan, split

    def __len__(self) -> int:
        return self.plan.size(self.split)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.plan.example_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.plan.example_shape)

    @property
    def dtype(self):
        import numpy as np

        return np.dtype("float32")

    def __getitem__(self, index):
        return _first_rows(self.plan, self.split, index, inputs=True)


class StreamLabels:
    """A streamed split's labels (class ids, or numbers): the split's length, dtype, and distinct values are known
    from the counting pass (``distinct``: what the checks of the model's outputs read); ``np.asarray`` and slices
    read them from the files."""

    ndim = 1

    def __init__(self, plan: Plan, split: str, classes: int | None = None):
        self.plan, self.split = plan, split
        self.classes = classes  # one-hot rows of this many classes, made in the pipeline

    def __len__(self) -> int:
        return self.plan.size(self.split)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self),)

    @property
    def dtype(self):
        import numpy as np

        return np.dtype(self.plan.label_dtype)

    @property
    def distinct(self):
        return self.plan.distinct[self.split]

    def one_hot(self, classes: int) -> StreamLabels:
        return StreamLabels(self.plan, self.split, classes)

    def __array__(self, dtype=None, copy=None):
        # read once: the reports take the test labels several times (confusion matrix, calibration), as the
        # test split's predictions, which they hold too
        if getattr(self, "_values", None) is None:
            self._values = _first_rows(self.plan, self.split, slice(None), inputs=False)
        return self._values if dtype is None else self._values.astype(dtype)

    def __getitem__(self, index):
        return _first_rows(self.plan, self.split, index, inputs=False)


def _first_rows(plan: Plan, split: str, index, inputs: bool):
    """Rows of a split, read in file order: a slice from its start, an int, or a list of ints."""
    import numpy as np

    if isinstance(index, slice):
        start, stop, step = index.indices(plan.size(split))
        wanted = None
    else:
        wanted = np.atleast_1d(np.asarray(index, dtype="int64"))
        start, stop, step = 0, int(wanted.max()) + 1 if len(wanted) else 0, 1
    if stop <= start:
        shape = plan.example_shape if inputs else ()
        return np.zeros((0, *shape), "float32" if inputs else plan.label_dtype)
    ds = _rows(plan, split).map(lambda x, y: x if inputs else y).unbatch().take(stop).batch(4096)
    values = np.concatenate([b.numpy() for b in ds])[start:stop:step]
    if wanted is None:
        return values
    values = values[wanted]
    return values[0] if np.ndim(index) == 0 else values


def _file_table(plan: Plan, split: str, files: list[int] | None = None):
    """The (path, relative path, split code, training rows below) of the files that hold the split's rows."""
    import numpy as np

    code = SPLITS.index(split)
    chosen = [i for i in (files if files is not None else range(len(plan.relative)))
              if plan.counts[split][i] > 0 and (plan.file_codes[i] in (-1, code))]
    return chosen, (
        np.asarray([plan.reader.paths[i] for i in chosen], dtype=str), np.asarray([plan.relative[i] for i in chosen], dtype=str),
        np.asarray([plan.file_codes[i] for i in chosen], dtype="int32"),
        np.asarray([plan.train_rows_below[i] if split == "train" else NO_LIMIT for i in chosen], dtype="int64"),
    )


def _select(plan: Plan, split: str):
    """A function of one file's table row -> its chunks of the split's rows: (scaled inputs, labels)."""
    import numpy as np
    import tensorflow as tf

    code = SPLITS.index(split)
    reader, stats = plan.reader, plan.stats
    shift = divide = None
    if stats.get("scale", "none") != "none":
        shift = tf.constant(np.asarray(stats["shift"], "float32").reshape(-1) if np.ndim(stats["shift"]) else
                            np.float32(stats["shift"]))
        divide = tf.constant(np.asarray(stats["divide"], "float32").reshape(-1) if np.ndim(stats["divide"]) else
                             np.float32(stats["divide"]))
    table = None
    if plan.class_names is not None and plan.label_dtype == "int64" and reader.label_dtype == "string":
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(list(plan.class_names), tf.range(len(plan.class_names), dtype=tf.int64)),
            default_value=-1,
        )
    shape = list(plan.example_shape)

    def rows_of(path, rel, file_code, below):
        def keep(start, x, y):
            n = tf.shape(y, out_type=tf.int64)[0]
            if plan.by_file:
                mask = tf.fill([n], True)
                rows = start + tf.range(n, dtype=tf.int64)
            else:
                codes, rows = split_codes(rel, start, n, plan.seed, plan.test_split, plan.validation_split)
                mask = tf.equal(codes, code)
            mask = tf.logical_and(mask, rows < below)
            x = tf.reshape(tf.boolean_mask(x, mask), [-1, int(np.prod(shape))])
            if shift is not None:
                x = (x - shift) / divide
            y = tf.boolean_mask(y, mask)
            if table is not None:
                y = table.lookup(y)
            return tf.reshape(x, [-1, *shape]), y

        # data.train_limit: the file is read up to its cut, not to its end
        return reader.batches(path).take_while(lambda start, x, y: start < below).map(keep)

    return rows_of


def _rows(plan: Plan, split: str):
    """The split's rows in file order (evaluation, sample rows), in chunks as read."""
    import tensorflow as tf

    _, table = _file_table(plan, split)
    return tf.data.Dataset.from_tensor_slices(tuple(table)).flat_map(_select(plan, split))


def _targets(labels: StreamLabels):
    """Labels as the model trains on them: one-hot rows when the loss wants them."""
    import tensorflow as tf

    if labels.classes is None:
        return lambda x, y: (x, y)
    return lambda x, y: (x, tf.one_hot(y, labels.classes))


@dataclass
class RowStreams:
    """Builds the train/validation/test pipelines of a streamed source's splits (see prepare.make_datasets)."""

    plan: Plan
    log: list[str] = field(default_factory=list)

    def share_files(self, workers: int, index: int) -> None:
        """Multi-worker training: this worker reads the training files index, index + workers, ... (sorted by path),
        and its training pipeline says so (tf.data's auto-sharding off)."""
        self.plan = replace(self.plan, workers=(workers, index))

    def training_dataset(self, x: StreamInputs, y: StreamLabels, *, batch_size: int, data_spec, seed, augment=None):
        """The order is a function of (seed, epoch) only; one worker reads ceil(rows / batch) batches an epoch."""
        import tensorflow as tf

        from framework.data.pipeline import epoch_callback

        plan = self.plan
        workers, index = plan.workers
        chosen, table = _file_table(plan, "train")
        if workers > 1:
            if len(chosen) < workers:
                raise DataError(
                    f"{workers} workers share the training files by file, but the training split is in {len(chosen)} "
                    f"file(s); write the data as at least {workers} files (shards)", path="data.source",
                )
            chosen, table = chosen[index::workers], tuple(column[index::workers] for column in table)
        if os.environ.get(SHARD_LOG_ENV):
            with open(os.environ[SHARD_LOG_ENV], "a", encoding="utf-8") as log:
                log.write(json.dumps({"worker": index, "workers": workers, "files": table[1].tolist()}) + "\n")
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        select, count = _select(plan, "train"), len(chosen)
        steps = -(-len(x) // batch_size)

        def epoch_rows(_):
            files = tf.data.Dataset.from_tensor_slices(table)
            if data_spec.shuffle:
                order = tf.random.experimental.stateless_shuffle(tf.range(count), seed=tf.stack([tf.cast(seed, tf.int64), epoch]))
                files = tf.data.Dataset.from_tensor_slices(tuple(tf.gather(column, order) for column in table))
            rows = files.interleave(select, cycle_length=min(count, 4), num_parallel_calls=tf.data.AUTOTUNE,
                                    deterministic=True)
            if data_spec.shuffle:  # windows of shuffle_buffer rows, each permuted by (seed, epoch, window)
                key = tf.stack([tf.cast(seed, tf.int64), epoch])

                def permuted(window, x, y):
                    order = tf.random.experimental.stateless_shuffle(
                        tf.range(tf.shape(y)[0]), seed=tf.random.experimental.stateless_fold_in(key, window)
                    )
                    return tf.gather(x, order), tf.gather(y, order)

                # chunks regrouped into windows without splitting them into rows (rebatch), the next window read
                # while this one is trained on
                rows = rows.rebatch(plan.shuffle_buffer).prefetch(1).enumerate().map(lambda i, xy: permuted(i, *xy))
            return rows.repeat() if workers > 1 else rows  # every worker: the same number of batches

        ds = tf.data.Dataset.from_tensors(0).flat_map(epoch_rows).rebatch(batch_size)
        ds = ds.take(steps).apply(tf.data.experimental.assert_cardinality(steps))
        ds = ds.map(_targets(y))
        if augment is not None:
            ds = map_stateful(ds, augment)
        if data_spec.prefetch:
            ds = ds.prefetch(tf.data.AUTOTUNE)
        if workers > 1:  # sharded by file here: tf.data must not shard it again
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
            ds = ds.with_options(options)
        return ds, epoch_callback(epoch)

    def evaluation_dataset(self, x: StreamInputs, y: StreamLabels, *, batch_size: int, data_spec):
        """The split's rows in file order; not cached (data.cache would hold the split in memory)."""
        import tensorflow as tf

        ds = _rows(self.plan, x.split).rebatch(batch_size).map(_targets(y))
        ds = ds.apply(tf.data.experimental.assert_cardinality(-(-len(x) // batch_size)))  # Keras: no end-of-data warning
        return ds.prefetch(tf.data.AUTOTUNE) if data_spec.prefetch else ds

    def digest(self, x: StreamInputs, y: StreamLabels) -> str:
        """The training split as files: each path (relative), size, modification time, and the split's plan."""
        plan = self.plan
        digest = hashlib.sha256(json.dumps({
            "format": plan.reader.kind, "seed": plan.seed, "split": [plan.test_split, plan.validation_split, plan.by_file],
            "train": plan.counts["train"], "below": plan.train_rows_below, "classes": plan.class_names,
            "stats": json_ready(plan.stats), "shape": list(plan.example_shape),
        }, sort_keys=True, default=str).encode())
        for path, rel in zip(plan.reader.paths, plan.relative):
            stat = os.stat(path)
            digest.update(f"{rel}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        return digest.hexdigest()
