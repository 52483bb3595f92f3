"""Data sources: ``SCHEME:ARG`` strings in ``data.source`` map to these classes.

A source turns its argument into numpy arrays. It registers under its scheme,
as a plugin's source would::

    @registry.register("data_source", "npyfolder")
    class NpyFolder(DataSource): ...
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framework.errors import DataError, did_you_mean, warn
from framework.registry import registry

if TYPE_CHECKING:  # numpy is imported where arrays are made, so that validating a spec stays light
    import numpy as np


@dataclass
class RawData:
    """Arrays as a source gives them; x_test/y_test when the source has its own test split."""

    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    class_names: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    #: columns that data.targets expressions may use (default: one column, 'label')
    table: Any = None
    table_test: Any = None

    def label_table(self, test: bool = False):
        import pandas as pd

        table = self.table_test if test else self.table
        if table is not None:
            return table
        y = self.y_test if test else self.y
        return pd.DataFrame({"label": y}) if y is not None and y.ndim == 1 else None


class DataSource:
    """Base class. ``arg`` is what follows ``SCHEME:`` (already resolved by :meth:`resolve`)."""

    #: whether ARG is a path, resolved against the spec file's folder
    takes_path = False
    #: or: the names ARG may be, and what they are called in messages
    choices: dict[str, Any] | None = None
    choice_kind = "data set"

    def __init__(self, arg: str, spec: Any):
        self.arg = arg
        self.spec = spec

    @classmethod
    def resolve(cls, arg: str, base_dir: Path) -> str:
        """Normalise ARG at validation time; raise ValueError for a bad one. Must not load data."""
        if cls.takes_path:
            path = usable_path(arg, base_dir)
            if not path.exists():
                raise ValueError(f"file not found: {path}")
            return str(path)
        if cls.choices is not None and arg not in cls.choices:
            raise ValueError(
                f"unknown {cls.choice_kind} '{arg}'{did_you_mean(arg, cls.choices)}; known: {', '.join(cls.choices)}"
            )
        return arg

    def feature_shape(self) -> tuple[int, ...] | None:
        """Shape of one example, if known without loading the data."""
        return None

    def known_classes(self) -> int | None:
        """Number of classes of the labels (ids 0..n-1), if known without loading the data (``check`` uses it)."""
        return None

    def load(self) -> RawData:
        raise NotImplementedError

    def streams(self) -> bool:
        """Whether load_splits reads this source with ``load_splits_streaming(seed)`` (its data stays on disk)."""
        return hasattr(self, "load_splits_streaming")


def usable_path(text: str, base_dir: Path) -> Path:
    """``text`` resolved against ``base_dir``; ValueError for what no file system accepts."""
    try:
        path = (base_dir / Path(text).expanduser()).resolve()
        path.exists()  # raises for names too long or with NUL bytes
    except (OSError, ValueError, RuntimeError) as exc:
        raise ValueError(f"not a usable path: {text[:80]!r} ({exc.__class__.__name__})") from None
    return path


def parse_source(value: str) -> tuple[str, str]:
    scheme, sep, arg = value.partition(":")
    if not sep or not scheme or not arg:
        raise ValueError(f"expected SCHEME:ARG such as 'sklearn:digits' or 'csv:data.csv', got {value!r}")
    return scheme, arg


def resolve_source_string(value: str, base_dir: Path) -> str:
    """Validate ``SCHEME:ARG`` and resolve relative paths; used by the spec schema."""
    scheme, arg = parse_source(value)
    entry = registry.find("data_source", scheme)
    if entry is None:
        names = registry.entries("data_source")
        raise ValueError(f"unknown data source '{scheme}'{did_you_mean(scheme, names)}; known: {', '.join(names)}")
    return f"{scheme}:{entry.obj.resolve(arg, base_dir)}"


def open_source(data_spec: Any) -> DataSource:
    scheme, arg = parse_source(data_spec.source)
    return registry.get("data_source", scheme, path="data.source")(arg, data_spec)


# --- built-in sources --------------------------------------------------------------------

_SKLEARN = {"digits": (64,), "iris": (4,), "wine": (13,), "breast_cancer": (30,)}
_SKLEARN_CLASSES = {"digits": 10, "iris": 3, "wine": 3, "breast_cancer": 2}


@registry.register("data_source", "sklearn")
class SklearnSource(DataSource):
    """The small data sets scikit-learn ships: digits, iris, wine, breast_cancer."""

    choices, choice_kind = _SKLEARN, "scikit-learn data set"

    def feature_shape(self):
        return _SKLEARN[self.arg]

    def known_classes(self):
        return _SKLEARN_CLASSES[self.arg]

    def load(self) -> RawData:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, f"load_{self.arg}")()
        names = [str(n) for n in bunch.target_names]
        return RawData(bunch.data.astype("float32"), bunch.target.astype("int64"), class_names=names)


@registry.register("data_source", "csv")
class CsvSource(DataSource):
    """A CSV file with a header: ``data.features`` columns (default: all but the label) and ``data.label``.

    With ``data.text`` the input is that column's raw text; with ``data.sequence`` the input is the one
    feature column's text and the label is the target text; with ``data.window`` the features default
    to the label column itself (its own past predicts its future). ``data.csv`` sets the reader's options; with
    ``data.stream = true`` the file(s) (PATH may then be a glob) are read in chunks (csv_stream.py).
    """

    takes_path = True

    @classmethod
    def resolve(cls, arg: str, base_dir: Path) -> str:
        import glob

        if glob.has_magic(arg):  # several files: streamed (load_splits refuses a pattern without data.stream)
            from framework.data.streaming import resolve_glob

            return resolve_glob(arg, base_dir, (".csv",), "csv:")
        return super().resolve(arg, base_dir)

    def streams(self) -> bool:
        return bool(self.spec.stream)

    def load_splits_streaming(self, seed: int):
        from framework.data.csv_stream import CsvReader
        from framework.data.streaming import stream_splits

        return stream_splits(self, CsvReader(self.arg, self.spec), seed)

    def feature_shape(self):
        if self.spec.text or self.spec.sequence:
            return ()
        if self.spec.window:
            return (self.spec.window.size, len(self.spec.features or [self.spec.label]))
        return (len(self.spec.features),) if self.spec.features else None

    def _read(self):
        import glob

        import pandas as pd

        from framework.data.csv_stream import checks_carriage_returns, pandas_options

        if glob.has_magic(self.arg):
            raise DataError(f"{self.arg} is a pattern of files; read several files with data.stream = true",
                            path="data.source")
        options = self.spec.csv
        if checks_carriage_returns(options):
            check_csv_rows(self.arg, options=options)  # carriage returns inside fields
        try:
            frame = pd.read_csv(self.arg, **pandas_options(options))
        except Exception as exc:  # pandas raises many kinds for unreadable files
            raise DataError(f"cannot read CSV {self.arg}: {csv_error_message(exc)}", path="data.source") from None
        check_csv_rows(self.arg, frame, options=options)  # rows with fewer fields than the header
        if frame.empty:
            raise DataError(f"CSV {self.arg} has no rows", path="data.source")
        return frame

    def _column(self, frame, name: str, key: str):
        if name not in frame.columns:
            role = {"data.label": "label ", "data.text": "text ", "data.features": "feature "}.get(key, "")
            raise DataError(
                f"{role}column '{name}' is not in {self.arg}{did_you_mean(name, frame.columns)}; columns: {list(frame.columns)}",
                path=key,
            )
        return frame[name]

    def _default_features(self, frame) -> list[str]:
        from framework.data.targets import referenced_columns

        if self.spec.window:
            return [self.spec.label]
        excluded = {self.spec.label}
        if self.spec.targets:
            excluded |= referenced_columns(self.spec.targets, frame.columns)
        return [c for c in frame.columns if c not in excluded]

    def load(self) -> RawData:
        import numpy as np
        import pandas as pd

        frame = self._read()
        spec = self.spec
        if spec.text or spec.sequence:
            if spec.text:
                column = self._column(frame, spec.text, "data.text")
            else:
                features = spec.features or self._default_features(frame)
                if len(features) != 1:
                    raise DataError(f"a sequence task reads one source column, got {features}", path="data.features")
                column = self._column(frame, features[0], "data.features")
            missing = int(column.isna().sum())
            if missing:
                warn(f"{missing} of {len(column)} rows have no text in column '{column.name}'; they are read as empty "
                     f"texts (first at data rows {_row_numbers(column.isna())})", path="data.text" if spec.text else "data.features")
            x = column.fillna("").astype(str).to_numpy(dtype=object)
            features = [column.name]
        else:
            features = spec.features or self._default_features(frame)
            for name in features:
                self._column(frame, name, "data.features")
            x_frame = frame[features]
            non_numeric = [c for c in features if not pd.api.types.is_numeric_dtype(x_frame[c])]
            if non_numeric:
                from framework.data.csv_stream import line_of_row

                column = x_frame[non_numeric[0]]
                row = int(np.flatnonzero(pd.to_numeric(column, errors="coerce").isna() & column.notna())[0])
                line = line_of_row(self.arg, spec.csv, row + 1)[0]
                raise DataError(f"feature columns {non_numeric} are not numeric (line {line} of {self.arg}: "
                                f"{column.iloc[row]!r})", path="data.features")
            if x_frame.isna().any().any():
                raise DataError(f"feature columns of {self.arg} have missing values", path="data.source")
            x = x_frame.to_numpy(dtype="float32")
        info = {"features": features}
        if spec.targets:  # the targets come from the table
            return RawData(x, np.zeros(len(x), "int64"), table=frame, info=info)
        y_col = self._column(frame, spec.label, "data.label")
        if y_col.isna().any():
            missing = int(y_col.isna().sum())
            raise DataError(
                f"label column '{spec.label}' has {missing} missing values in {len(y_col)} rows (data rows "
                f"{_row_numbers(y_col.isna())}); fill them in or drop those rows", path="data.label",
            )
        class_names = None
        if spec.sequence:
            y = y_col.astype(str).to_numpy(dtype=object)
        elif spec.window:
            if not pd.api.types.is_numeric_dtype(y_col):
                raise DataError(f"label column '{spec.label}' must be numeric to forecast", path="data.label")
            y = y_col.to_numpy(dtype="float32")
        elif pd.api.types.is_numeric_dtype(y_col):
            y = y_col.to_numpy()
            y = y.astype("int64") if pd.api.types.is_integer_dtype(y_col) else y.astype("float32")
        else:  # class names: load_splits turns them into class ids, as it does an NPZ's
            y = y_col.astype(str).to_numpy(dtype=object)
        return RawData(x, y, class_names=class_names, table=frame, info=info)


def _row_numbers(mask, shown: int = 5) -> str:
    """'3, 7, 12, ...': 1-based data row numbers (the header not counted) where ``mask`` is true."""
    import numpy as np

    rows = [str(i + 1) for i in np.flatnonzero(np.asarray(mask))[: shown + 1]]
    return ", ".join(rows[:shown]) + (", ..." if len(rows) > shown else "")


def csv_error_message(exc: Exception) -> str:
    """pandas' parser error, said in terms of the file's lines."""
    import re

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if found:
        expected, line, saw = found.groups()
        return (f"line {line} has {saw} fields where the rows before it have {expected}; a value that contains a "
                f'comma must be quoted ("a, b"), or that row has a value too many')
    return text


def _csv_bytes(path: str) -> bytes | None:
    """The file's bytes, decompressed as pandas would; None when it cannot be read here (pandas then reports it)."""
    import bz2
    import gzip
    import lzma

    openers = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
    suffix = Path(path).suffix.lower()
    if suffix in (".zip", ".zst", ".tar"):
        return None
    try:
        with openers.get(suffix, open)(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError, lzma.LZMAError):
        return None


def _header_names(data: bytes, options=None) -> list[str]:
    import csv
    import io

    from framework.data.csv_stream import csv_module_options

    first = data.split(b"\n", 1)[0].decode(options.encoding if options else "utf-8", "replace")
    return next(csv.reader(io.StringIO(first), **(csv_module_options(options) if options else {})), [])


def _bare_carriage_return(data: bytes, delimiter: bytes = b",", quote: bytes = b'"') -> tuple[int, int] | None:
    """(line, field index) of the first carriage return outside quotes that does not end a line, in a file whose
    lines end in \\n (or \\r\\n). pandas takes such a \\r for the end of a row, so the rows around it fall apart."""
    import re

    if b"\n" not in data or re.search(rb"\r(?!\n)", data) is None:
        return None  # no bare \r, or an old Mac file whose every line ends in \r
    quoted, field, field_start, line = False, 0, 0, 1
    tokens = re.compile(re.escape(quote) + rb"|\r\n|\n|\r|" + re.escape(delimiter))
    for match in tokens.finditer(data):
        token, at = match.group(), match.start()
        if token == quote:
            if quoted:
                if data[at + 1 : at + 2] != quote:
                    quoted = False
            elif at == field_start:
                quoted = True
        elif quoted:
            if token != b"\r":
                line += token.count(b"\n")
        elif token == delimiter:
            field, field_start = field + 1, match.end()
        elif token == b"\r":
            return line, field
        else:
            line, field, field_start = line + 1, 0, match.end()
    return None


def check_csv_rows(path: str, frame=None, options=None) -> None:
    """DataError, naming the line, for what pandas would misread silently: a bare carriage return inside a field
    (one row read as several) and rows with fewer fields than the header (filled with missing values).

    With ``frame`` (what pandas read), the rows are counted only when its last column has missing values,
    as short rows leave there; call it once before reading (carriage returns) and once after (short rows).
    ``options``: data.csv (delimiter, quote character, encoding); default a comma-separated UTF-8 file.
    """
    import csv
    import io

    if frame is not None and (frame.shape[1] == 0 or not frame.iloc[:, -1].isna().any()):
        return
    data = _csv_bytes(path)
    if not data:
        return
    separators = (options.delimiter.encode(), options.quote_char.encode()) if options else (b",", b'"')
    found = _bare_carriage_return(data, *separators) if frame is None else None
    if found is not None:
        line, field = found
        header = _header_names(data, options)
        column = f"column '{header[field]}'" if field < len(header) else f"field {field + 1}"
        raise DataError(
            f"line {line} of {path} has a carriage return (\\r) inside {column}, outside quotes; CSV readers take it "
            "for the end of a row, so that row would be split into broken rows. Replace the \\r characters that are "
            "not followed by \\n with spaces, or quote the field",
            path="data.source",
        )
    if frame is None:
        return
    from framework.data.csv_stream import csv_module_options

    text = data.decode(options.encoding if options else "utf-8", "replace")
    try:
        reader = csv.reader(io.StringIO(text, newline=None), **(csv_module_options(options) if options else {}))
        header = next(reader, [])
        for row in reader:
            if any(field.strip() for field in row) and len(row) < len(header):
                raise DataError(
                    f"line {reader.line_num} of {path} has {len(row)} fields, but the header has {len(header)} "
                    f"({', '.join(header)}); a value is missing (write an empty field between commas: 'a,,c') or a "
                    "line break splits the row (quote values that contain line breaks)",
                    path="data.source",
                )
    except csv.Error:
        return  # pandas reads what the csv module cannot; it reports real problems itself


def _npz_header_shape(path: str, key: str) -> tuple[int, ...] | None:
    """The shape of ``key`` in an .npz, read from its .npy header without loading the array."""
    import numpy as np

    fmt = np.lib.format
    try:
        with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as handle:
            major, _ = fmt.read_magic(handle)
            # headers 2.0 and 3.0 differ only in the header's text encoding (3.0: UTF-8 field names)
            read_header = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
            shape, _, _ = read_header(handle)
            return tuple(int(d) for d in shape)
    except (KeyError, OSError, ValueError, SyntaxError, UnicodeDecodeError, zipfile.BadZipFile):
        return None


@registry.register("data_source", "npz")
class NpzSource(DataSource):
    """A NumPy .npz with ``x_train, y_train, x_test, y_test`` (keras.datasets layout) or ``x, y``.

    Labels may be class ids or class names (a string array); names become ids in ``load_splits``.
    """

    takes_path = True

    def feature_shape(self):
        shape = _npz_header_shape(self.arg, "x_train") or _npz_header_shape(self.arg, "x")
        return shape[1:] if shape else None

    def load(self) -> RawData:
        import numpy as np

        try:
            with np.load(self.arg, allow_pickle=False) as archive:
                arrays = {k: archive[k] for k in archive.files}
        except ValueError as exc:
            if "Object arrays cannot be loaded" in str(exc):
                raise DataError(
                    f"{self.arg} holds Python objects (pickled arrays), which are not loaded because unpickling can run "
                    "code; save labels and texts as string arrays instead, e.g. np.savez(..., y=np.asarray(y, dtype=str))",
                    path="data.source",
                ) from None
            raise DataError(f"cannot read NPZ {self.arg}: {exc}", path="data.source") from None
        except Exception as exc:
            raise DataError(f"cannot read NPZ {self.arg}: {exc}", path="data.source") from None
        if {"x_train", "y_train"} <= arrays.keys():
            return RawData(arrays["x_train"], arrays["y_train"], arrays.get("x_test"), arrays.get("y_test"))
        if {"x", "y"} <= arrays.keys():
            return RawData(arrays["x"], arrays["y"])
        raise DataError(
            f"{self.arg} has keys {sorted(arrays)}; expected x_train, y_train[, x_test, y_test] or x, y", path="data.source"
        )


_KERAS = {
    "mnist": (28, 28),
    "fashion_mnist": (28, 28),
    "cifar10": (32, 32, 3),
    "cifar100": (32, 32, 3),
    "imdb": None,
    "reuters": None,
    "boston_housing": (13,),
    "california_housing": (8,),
}
_KERAS_CLASSES = {"mnist": 10, "fashion_mnist": 10, "cifar10": 10, "cifar100": 100, "imdb": 2, "reuters": 46}


@registry.register("data_source", "keras")
class KerasSource(DataSource):
    """``keras.datasets``: downloads once into the Keras cache (``~/.keras/datasets``)."""

    choices, choice_kind = _KERAS, "keras data set"

    def feature_shape(self):
        return _KERAS[self.arg]

    def known_classes(self):
        return _KERAS_CLASSES.get(self.arg)  # None for the housing prices (regression)

    def load(self) -> RawData:
        import os

        import keras

        cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"
        try:
            (x, y), (x_test, y_test) = getattr(keras.datasets, self.arg).load_data()
        except Exception as exc:
            raise DataError(
                f"could not load keras:{self.arg} ({type(exc).__name__}: {str(exc)[:200]}). It downloads on first use "
                f"into {cache}; offline, put the file there or use --set data.source=npz:PATH",
                path="data.source",
            ) from None
        return RawData(x, _column_to_vector(y), x_test, _column_to_vector(y_test))


def _column_to_vector(y: np.ndarray) -> np.ndarray:
    """cifar labels come as (N, 1); everything downstream expects (N,)."""
    return y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
