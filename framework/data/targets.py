"""Multi-task targets: ``data.targets`` maps each model output to a label column or an expression of columns."""

from __future__ import annotations

import numpy as np

from framework.errors import DataError


def derive_targets(table, targets: dict[str, str]) -> dict[str, np.ndarray]:
    """One array per output, computed with pandas from the source's label columns.

    >>> derive_targets(pd.DataFrame({"label": [3, 4]}), {"digit": "label", "even": "label % 2 == 0"})
    {'digit': array([3, 4]), 'even': array([0, 1])}
    """
    if table is None:
        raise DataError("this data source has no label columns to derive data.targets from", path="data.targets")
    out = {}
    for name, expression in targets.items():
        if expression in table.columns:
            values = table[expression]
        else:
            try:
                values = table.eval(expression, engine="python")
            except Exception as exc:
                raise DataError(
                    f"cannot compute '{expression}' from the columns {list(table.columns)}: {exc}", path=f"data.targets.{name}"
                ) from None
        array = np.asarray(values)
        if array.ndim != 1 or len(array) != len(table):
            raise DataError(f"'{expression}' must give one value per row", path=f"data.targets.{name}")
        if array.dtype == bool:
            array = array.astype("int64")
        elif np.issubdtype(array.dtype, np.integer):
            array = array.astype("int64")
        elif np.issubdtype(array.dtype, np.floating):
            array = array.astype("float32")
        else:
            raise DataError(f"'{expression}' gives {array.dtype} values, not numbers", path=f"data.targets.{name}")
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            raise DataError(f"'{expression}' has missing or non-finite values", path=f"data.targets.{name}")
        out[name] = array
    return out


def referenced_columns(targets: dict[str, str], columns) -> set[str]:
    """Columns that some target names or uses (they are not features by default)."""
    import re

    words = {w for expression in targets.values() for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expression)}
    return {c for c in columns if c in words or c in targets.values()}
