"""CSV read in chunks (``csv:PATH`` with ``data.stream = true``; PATH may be a glob of several files), and the
reader options that csv: honours in memory and streamed (``[data.csv]``).

Each file is parsed by pandas' C reader, data.chunk_rows rows at a time, inside ``tf.data.Dataset.from_generator``;
splits, statistics and pipelines are streaming.py's. What pandas would misread silently is an error naming the
line, as in memory: a bare carriage return inside an unquoted field (found by a fast scan of the bytes, then
located), rows with too many fields (pandas' own error) and rows with too few (missing values)::

    [data]
    source = "csv:logs/part-*.csv"
    stream = true
    label = "outcome"                 # class names, integer class ids, or numbers
    csv = { delimiter = ";", encoding = "latin-1" }
"""

from __future__ import annotations

import csv
import re
from typing import Any

from framework.data.streaming import ChunkReader, feature_columns, list_files
from framework.errors import DataError

_QUOTING = {"minimal": csv.QUOTE_MINIMAL, "all": csv.QUOTE_ALL, "nonnumeric": csv.QUOTE_NONNUMERIC, "none": csv.QUOTE_NONE}
_INTEGER = re.compile(r"^\s*[-+]?\d+\s*$")
_SCAN_BYTES = 1 << 24


def pandas_options(options) -> dict[str, Any]:
    """data.csv -> pandas.read_csv's keyword arguments (pandas' C reader takes one character to end a line; \\r\\n
    and 'any' are its default)."""
    return {
        "sep": options.delimiter, "quotechar": options.quote_char, "quoting": _QUOTING[options.quoting],
        "encoding": options.encoding,
        "lineterminator": options.line_terminator if options.line_terminator in ("\n", "\r") else None,
    }


def csv_module_options(options) -> dict[str, Any]:
    """data.csv -> the csv module's reader options (to locate a line pandas reported by row)."""
    return {"delimiter": options.delimiter, "quotechar": options.quote_char, "quoting": _QUOTING[options.quoting]}


def checks_carriage_returns(options) -> bool:
    """Whether a bare \\r ends a row for pandas (so one inside a field breaks it), and the bytes can be scanned."""
    byte_wise = options.encoding.replace("_", "-") not in ("utf-16", "utf-32") and not options.encoding.startswith(("utf-16", "utf-32"))
    return options.line_terminator in (None, "\r\n") and byte_wise


def has_bare_carriage_return(path: str) -> bool:
    """Whether the file has a \\r not followed by \\n, read 16 MB at a time (no more in memory)."""
    with open(path, "rb") as handle:
        tail = b""
        while True:
            block = handle.read(_SCAN_BYTES)
            data = tail + block
            if not block:
                return data.endswith(b"\r") and b"\n" in data
            if re.search(rb"\r(?!\n)", data[:-1]):
                return True
            tail = data[-1:]


def line_of_row(path: str, options, data_row: int) -> tuple[int, int, list[str]]:
    """(line number, field count, header) of the data_row-th data row (1-based), read with the csv module."""
    with open(path, newline="", encoding=options.encoding, errors="replace") as handle:
        reader = csv.reader(handle, **csv_module_options(options))
        header = next(reader, [])
        for number, row in enumerate(reader, start=1):
            if number == data_row:
                return reader.line_num, len(row), header
    return data_row + 1, len(header), header


class CsvReader(ChunkReader):
    """Chunks of CSV files: (first row, inputs float32 [n, features], labels [n])."""

    kind = "csv"

    def __init__(self, pattern: str, spec):
        import pandas as pd

        from framework.data.sources import csv_error_message

        self.root, self.paths, self.relative = list_files(pattern)
        self.options, self.label, self.chunk = spec.csv, spec.label, spec.chunk_rows
        self._scanned: set[str] = set()
        first = self.paths[0]
        try:
            head = pd.read_csv(first, nrows=1000, dtype={spec.label: str}, keep_default_na=False,
                               **pandas_options(self.options))
        except Exception as exc:  # noqa: BLE001 - pandas raises many kinds for unreadable files
            raise DataError(f"cannot read CSV {first}: {csv_error_message(exc)}", path="data.source") from None
        self.feature_names = feature_columns(list(head.columns), spec, first)
        labels = [v for v in head[spec.label] if v.strip()]
        if labels and all(_INTEGER.match(v) for v in labels):
            self.label_dtype = "int64"
        elif labels and all(_is_number(v) for v in labels):
            self.label_dtype = "float32"
        else:
            self.label_dtype = "string"
        self.example_shape = (len(self.feature_names),)

    def _check(self, path: str) -> None:
        from framework.data.sources import check_csv_rows

        if path in self._scanned:
            return
        if checks_carriage_returns(self.options) and has_bare_carriage_return(path):
            check_csv_rows(path, options=self.options)  # one exists: is it inside quotes, or which line? (in memory)
        self._scanned.add(path)

    def _read(self, path: str):
        import numpy as np
        import pandas as pd

        from framework.data.sources import csv_error_message

        self._check(path)
        start = 0
        reading = pd.read_csv(path, chunksize=self.chunk, usecols=[*self.feature_names, self.label],
                              dtype={self.label: str}, keep_default_na=False, na_values={n: [""] for n in self.feature_names},
                              **pandas_options(self.options))
        try:
            for frame in reading:
                x = frame[self.feature_names]
                text = [n for n in self.feature_names if not pd.api.types.is_numeric_dtype(x[n])]
                if text:
                    bad = next(i for i, v in enumerate(pd.to_numeric(x[text[0]], errors="coerce")) if np.isnan(v))
                    raise ValueError(self._at(path, start + bad + 1, f"column '{text[0]}' holds "
                                                                     f"'{x[text[0]].iloc[bad]}', not a number"))
                missing = x.isna().any(axis=1).to_numpy() | (frame[self.label].str.strip() == "").to_numpy()
                if missing.any():
                    raise ValueError(self._at(path, start + int(np.argmax(missing)) + 1, None))
                yield np.int64(start), x.to_numpy(dtype="float32"), self._labels(frame[self.label], path, start)
                start += len(frame)
        except pd.errors.ParserError as exc:
            raise ValueError(f"cannot read CSV {path}: {csv_error_message(exc)}") from None
        finally:
            reading.close()

    def _labels(self, column, path: str, start: int):
        import numpy as np
        import pandas as pd

        if self.label_dtype == "string":
            return column.to_numpy(dtype=object).astype(str)
        values = pd.to_numeric(column, errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy() | ((values % 1 != 0).to_numpy() if self.label_dtype == "int64" else False))
        if len(bad):
            kind = "an integer class id" if self.label_dtype == "int64" else "a number"
            raise ValueError(self._at(path, start + int(bad[0]) + 1, f"the label '{column.iloc[bad[0]]}' is not {kind} "
                                                                     "as the first rows' are"))
        return values.to_numpy().astype(self.label_dtype)

    def _at(self, path: str, data_row: int, problem: str | None) -> str:
        line, fields, header = line_of_row(path, self.options, data_row)
        if problem is None and fields < len(header):
            problem = (f"has {fields} fields, but the header has {len(header)} ({', '.join(header)}); a value is missing "
                       "(write an empty field between delimiters) or a line break splits the row")
        return f"line {line} of {path} {problem or 'has an empty value; streamed rows cannot have missing values'}"



def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
