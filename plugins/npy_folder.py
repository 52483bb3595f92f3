"""A data source for a folder of .npy arrays, one example per file, with a labels.csv beside them.

    [data]
    source = "npyfolder:../plugins/data/digits_npy"   # labels.csv has columns file,label
"""

from pathlib import Path

import numpy as np

from framework.data.sources import DataSource, RawData
from framework.errors import DataError
from framework.registry import registry


@registry.register("data_source", "npyfolder")
class NpyFolder(DataSource):
    takes_path = True

    @classmethod
    def resolve(cls, arg, base_dir):
        path = super().resolve(arg, base_dir)
        if not (Path(path) / "labels.csv").is_file():
            raise ValueError(f"{path} has no labels.csv (columns: file,label)")
        return path

    def load(self) -> RawData:
        import pandas as pd

        folder = Path(self.arg)
        labels = pd.read_csv(folder / "labels.csv")
        if not {"file", "label"} <= set(labels.columns):
            raise DataError(f"{folder / 'labels.csv'} needs columns file,label; has {list(labels.columns)}", path="data.source")
        try:
            x = np.stack([np.load(folder / name, allow_pickle=False) for name in labels["file"]])
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read the arrays in {folder}: {exc}", path="data.source") from None
        return RawData(x.astype("float32"), labels["label"].to_numpy().astype("int64"))
