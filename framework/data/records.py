"""``tfrecord:GLOB`` and ``parquet:GLOB``: record files streamed through tf.data (splits, statistics and pipelines:
streaming.py). GLOB may name one file, a folder (its files) or a pattern such as ``shards/*.tfrecord``.

TFRecord files hold ``tf.train.Example`` protos; data.features declares every feature once (the label included),
and chunks of data.chunk_rows records are parsed with ``tf.io.parse_example``::

    [data]
    source = "tfrecord:shards/train-*.tfrecord"     # .gz files are read as GZIP
    label = "label"
    features = { pixels = { shape = [64] }, label = { dtype = "int64" } }
    scale = "standard"

Parquet files are read in record batches with ``pyarrow.parquet.ParquetFile.iter_batches``; the feature columns
(data.features, default: every column but the label) are numeric, the label integer class ids, class names
(strings) or numbers::

    [data]
    source = "parquet:data/*.parquet"
    label = "species"
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from framework.data.sources import DataSource
from framework.data.streaming import (
    ChunkReader,
    feature_columns,
    list_files,
    resolve_glob,
    stream_splits,
)
from framework.errors import DataError, SpecError, did_you_mean
from framework.registry import registry


class StreamedSource(DataSource):
    """A source whose rows stay on disk: load_splits reads it with load_splits_streaming."""

    takes_path = True
    suffixes: tuple[str, ...] = ()
    what = ""

    @classmethod
    def resolve(cls, arg: str, base_dir: Path) -> str:
        return resolve_glob(arg, base_dir, cls.suffixes, cls.what)

    def load(self):
        raise DataError(f"{self.what} streams its files; load_splits reads it with load_splits_streaming",
                        path="data.source")

    def reader(self):
        raise NotImplementedError

    def load_splits_streaming(self, seed: int):
        return stream_splits(self, self.reader(), seed)


class TFRecordReader:
    """Chunks of ``tf.train.Example`` records: (first row, inputs float32 [n, ...], labels [n])."""

    kind = "tfrecord"

    def __init__(self, pattern: str, spec):
        self.root, self.paths, self.relative = list_files(pattern)
        features: dict[str, Any] = spec.features
        if spec.label not in features:
            raise SpecError(
                f"declares no feature for the label '{spec.label}'{did_you_mean(spec.label, features)}; add it, e.g. "
                f"{spec.label} = {{ dtype = 'int64' }}", path="data.features",
            )
        self.label, self.chunk = spec.label, spec.chunk_rows
        label = features[spec.label]
        if label.shape:
            raise SpecError(f"the label '{spec.label}' must be one value per example (shape = []), not {label.shape}",
                            path="data.features")
        self.inputs = {name: f for name, f in features.items() if name != spec.label}
        if not self.inputs:
            raise SpecError("declares the label only; add the input features", path="data.features")
        text = [name for name, f in self.inputs.items() if f.dtype == "string"]
        if text:
            raise SpecError(f"the inputs {text} are strings; tfrecord: reads numeric inputs (the label may be a "
                            "class name)", path="data.features")
        self.label_dtype = label.dtype
        self.feature_names = list(self.inputs)
        shapes = [tuple(f.shape) for f in self.inputs.values()]
        self.example_shape = shapes[0] if len(shapes) == 1 and shapes[0] else (sum(math.prod(s) for s in shapes),)

    def batches(self, path):
        import tensorflow as tf

        spec = {name: tf.io.FixedLenFeature(f.shape, tf.dtypes.as_dtype(f.dtype)) for name, f in self.inputs.items()}
        spec[self.label] = tf.io.FixedLenFeature([], tf.dtypes.as_dtype(self.label_dtype))
        chunk, shape = self.chunk, self.example_shape
        compression = tf.where(tf.strings.regex_full_match(path, r"(?i).*\.gz"), "GZIP", "")

        def parse(index, serialized):
            parsed = tf.io.parse_example(serialized, spec)
            n = tf.shape(serialized)[0]
            parts = [tf.reshape(tf.cast(parsed[name], tf.float32), [n, -1]) for name in self.inputs]
            x = tf.reshape(tf.concat(parts, axis=1), [n, *shape])
            return index * chunk, x, parsed[self.label]

        return tf.data.TFRecordDataset(path, compression_type=compression).batch(chunk).enumerate().map(parse)


@registry.register("data_source", "tfrecord")
class TFRecordSource(StreamedSource):
    """TFRecord files of tf.train.Example records, streamed; data.features declares their features (the label
    included) as name -> { shape, dtype }."""

    suffixes, what = (".tfrecord", ".tfrecords", ".tfrec", ".gz"), "tfrecord:"

    def feature_shape(self):
        try:
            features = {n: f for n, f in (self.spec.features or {}).items() if n != self.spec.label}
            shapes = [tuple(f.shape) for f in features.values()]
            return shapes[0] if len(shapes) == 1 and shapes[0] else (sum(math.prod(s) for s in shapes),)
        except (AttributeError, TypeError):
            return None

    def reader(self):
        return TFRecordReader(self.arg, self.spec)


class ParquetReader(ChunkReader):
    """Record batches of Parquet files through pyarrow: (first row, inputs float32 [n, features], labels [n])."""

    kind = "parquet"

    def __init__(self, pattern: str, spec):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.root, self.paths, self.relative = list_files(pattern)
        try:
            schema = pq.ParquetFile(self.paths[0]).schema_arrow
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for files that are not Parquet
            raise DataError(f"cannot read Parquet {self.paths[0]}: {exc}", path="data.source") from None
        columns = list(schema.names)
        self.label, self.chunk = spec.label, spec.chunk_rows
        self.feature_names = feature_columns(columns, spec, self.paths[0])
        types = {name: schema.field(name).type for name in columns}
        wrong = [n for n in self.feature_names if not (pa.types.is_integer(types[n]) or pa.types.is_floating(types[n])
                                                       or pa.types.is_boolean(types[n]))]
        if wrong:
            raise DataError(f"feature columns {wrong} are not numeric ({', '.join(str(types[n]) for n in wrong)})",
                            path="data.features")
        kind = types[spec.label]
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        self.label_dtype = ("int64" if pa.types.is_integer(kind) or pa.types.is_boolean(kind) else
                            "float32" if pa.types.is_floating(kind) else "string")
        self.example_shape = (len(self.feature_names),)

    def _read(self, path: str):
        import numpy as np
        import pyarrow.parquet as pq

        start = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=self.chunk, columns=[*self.feature_names, self.label]):
            if batch.num_rows == 0:
                continue
            missing = [n for n in batch.schema.names if batch.column(n).null_count]
            if missing:
                raise ValueError(f"rows {start + 1}..{start + batch.num_rows} of {path} have missing values in "
                                 f"columns {missing}")
            x = np.stack([batch.column(n).to_numpy(zero_copy_only=False).astype("float32") for n in self.feature_names],
                         axis=1)
            y = batch.column(self.label)
            if self.label_dtype == "string":
                y = np.asarray(y.cast("string").to_pylist(), dtype=object)
            else:
                y = y.to_numpy(zero_copy_only=False).astype(self.label_dtype)
            yield np.int64(start), x, y
            start += batch.num_rows



@registry.register("data_source", "parquet")
class ParquetSource(StreamedSource):
    """Parquet files read in record batches through pyarrow: numeric feature columns (data.features, default every
    column but the label) and data.label."""

    suffixes, what = (".parquet", ".pq"), "parquet:"

    def feature_shape(self):
        """The listed feature columns, else the first file's columns but the label (its schema only is read)."""
        if isinstance(self.spec.features, list):
            return (len(self.spec.features),)
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(list_files(self.arg)[1][0]).names
        except Exception:  # noqa: BLE001 - a file that is not Parquet: reported when the data loads
            return None
        return (len([n for n in names if n != self.spec.label]),)

    def reader(self):
        return ParquetReader(self.arg, self.spec)
