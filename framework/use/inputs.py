"""Reading new inputs for a trained run: a CSV, an NPZ, a folder of images, or a text file (one example per line)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from framework.errors import DataError, did_you_mean
from framework.use.trained import TrainedRun

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}


def read_inputs(run: TrainedRun, path: str | Path) -> tuple[Any, list[str]]:
    """(model inputs, one label per example for the output table). Strings for text and sequence runs."""
    path = Path(path)
    if not path.exists():
        raise DataError("not found", path=str(path))
    if path.is_dir():
        return _images(run, path)
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    if suffix.lower() in (".csv", ".csv.gz"):
        return _csv(run, path)
    if path.suffix.lower() == ".npz":
        return _npz(run, path)
    if path.suffix.lower() == ".txt":
        return _lines(run, path)
    raise DataError("cannot read this kind of file: give a .csv, .npz, .txt file or a folder of images", path=str(path))


def _lines(run: TrainedRun, path: Path):
    if run.kind not in ("text", "sequence"):
        raise DataError(f"a text file is input for text models; this run's model reads {run.kind} data", path=str(path))
    import re

    # lines end at \n, \r\n or \r only: str.splitlines() would also split a text at U+0085, U+2028, \f, ...
    texts = [line for line in re.split(r"\r\n|\r|\n", path.read_text(encoding="utf-8")) if line.strip()]
    if not texts:
        raise DataError("has no lines of text", path=str(path))
    return np.array(texts, dtype=object), texts


def _csv(run: TrainedRun, path: Path):
    import pandas as pd

    from framework.data.csv_stream import checks_carriage_returns, pandas_options
    from framework.data.sources import csv_error_message, check_csv_rows
    from framework.spec.sections.data import CsvOptions

    options = CsvOptions(**run.data.get("csv", {}))  # the reader options the run was trained with
    try:
        if checks_carriage_returns(options):
            check_csv_rows(str(path), options=options)  # rows that pandas would misread silently
        frame = pd.read_csv(path, **pandas_options(options))
        check_csv_rows(str(path), frame, options=options)
    except DataError as exc:
        raise DataError(exc.message, path=str(path)) from None
    except Exception as exc:
        raise DataError(f"cannot read CSV: {csv_error_message(exc)}", path=str(path)) from None
    if frame.empty:
        raise DataError("has no rows", path=str(path))
    data = run.data
    if run.kind in ("text", "sequence"):
        column = data.get("text") or (run.preprocessing.get("features") or data.get("features") or [frame.columns[0]])[0]
        if column not in frame.columns:
            raise DataError(
                f"the run reads text from column '{column}', which {path.name} lacks{did_you_mean(column, frame.columns)}; "
                f"columns: {list(frame.columns)}", path=str(path),
            )
        texts = frame[column].fillna("").astype(str)
        return texts.to_numpy(dtype=object), list(texts)
    features = run.preprocessing.get("features") or data.get("features")
    if features:
        missing = [c for c in features if c not in frame.columns]
        if missing:
            raise DataError(
                f"the model reads columns {features}; {path.name} lacks {missing}{did_you_mean(missing[0], frame.columns)}",
                path=str(path),
            )
        frame = frame[features]
    else:
        frame = frame.drop(columns=[c for c in (data.get("label"),) if c in frame.columns])
    non_numeric = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise DataError(f"columns {non_numeric} are not numeric", path=str(path))
    x = run.numeric_inputs(frame.to_numpy(dtype="float32"), str(path))
    if run.kind == "window":  # each window forecasts the label `horizon` rows after its last row
        size, horizon = run.preprocessing["window"]["size"], run.preprocessing["window"]["horizon"]
        labels = [f"rows {i}-{i + size - 1} -> row {i + size - 1 + horizon}" for i in range(len(x))]
    else:
        labels = [f"row {i}" for i in range(len(x))]
    return x, labels


def _npz(run: TrainedRun, path: Path):
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except Exception as exc:
        raise DataError(f"cannot read NPZ: {exc}", path=str(path)) from None
    key = next((k for k in ("x", "x_test", "x_train") if k in arrays), None)
    if key is None and len(arrays) == 1:
        key = next(iter(arrays))
    if key is None:
        raise DataError(f"has arrays {sorted(arrays)}; name the inputs 'x'", path=str(path))
    x = run.numeric_inputs(arrays[key], str(path))
    return x, [f"{key}[{i}]" for i in range(len(x))]


def _images(run: TrainedRun, folder: Path):
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    streamed = run.preprocessing.get("images")  # trained on images: read as its pipeline read them
    if not files and streamed:  # a folder laid out as training's: one subfolder per class
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"has no image files ({', '.join(sorted(IMAGE_SUFFIXES))})", path=str(folder))
    if run.kind != "image":
        raise DataError(f"images are input for image models; this run's model reads {run.kind} data", path=str(folder))
    if streamed:
        from framework.data.images import read_images

        try:
            x = read_images([str(f) for f in files], streamed["image_size"], streamed["channels"])
        except DataError as exc:
            raise DataError(exc.message, path=str(folder)) from None
        return run.numeric_inputs(x, str(folder)), [f.relative_to(folder).as_posix() for f in files]
    height, width, channels = run.model.input_shape[1:]
    if channels not in (1, 3):
        raise DataError(f"the model takes {channels}-channel images; image files give 1 or 3", path=str(folder))
    images = []
    for file in files:
        try:
            with Image.open(file) as image:
                image = image.convert("L" if channels == 1 else "RGB").resize((width, height))
                images.append(np.asarray(image, dtype="float32").reshape(height, width, channels))
        except OSError as exc:
            raise DataError(f"cannot read image {file.name}: {exc}", path=str(folder)) from None
    # pixel values 0..255, then the run's own scaling
    return run.numeric_inputs(np.stack(images), str(folder)), [f.name for f in files]
