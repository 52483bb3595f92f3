"""A finished run folder as something to use: its model, and the preprocessing its training applied."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from framework.errors import DataError, RunError
from framework.reports import run_folder as rf


@dataclass
class TrainedRun:
    folder: Path
    resolved: dict[str, Any]  # the spec as the run resolved it (plain JSON: the data source need not exist now)
    preprocessing: dict[str, Any]

    @classmethod
    def open(cls, folder: str | Path) -> "TrainedRun":
        folder = Path(folder)
        run = rf.RunFolder(folder)
        for name in (rf.RESOLVED, rf.PREPROCESSING, rf.MODEL):
            if not run.file(name).exists():
                raise RunError(f"is not a finished run folder (no {name})", path=str(folder))
        resolved = run.read_json(rf.RESOLVED)
        if resolved.get("model", {}).get("kind") in ("vae", "gan"):  # its model.keras makes examples from [z, label]
            raise RunError("is a generative run: its model makes examples rather than reading them; draw them with "
                           "`python -m framework sample RUN N --output FILE.npz`", path=str(folder))
        return cls(folder, resolved, run.read_json(rf.PREPROCESSING))

    @cached_property
    def model(self):
        return rf.load_run_model(self.folder)

    @property
    def data(self) -> dict[str, Any]:
        return self.resolved.get("data", {})

    @property
    def kind(self) -> str:
        """sequence, text, window, image or tabular: what inputs the model reads."""
        if "sequence" in self.preprocessing:
            return "sequence"
        if self.data.get("text"):
            return "text"
        if "window" in self.preprocessing:
            return "window"
        return "image" if len(self.model.input_shape) == 4 else "tabular"

    @property
    def class_names(self) -> list[str] | None:
        return self.preprocessing.get("class_names")

    def encoding(self):
        from framework.data.sequences import SequenceEncoding

        return SequenceEncoding.from_json(self.preprocessing["sequence"])

    def numeric_inputs(self, x: np.ndarray, where: str) -> np.ndarray:
        """Raw numeric examples -> the model's inputs: the run's reshape, then its scaling (fitted on its training split)."""
        from framework.data.splits import apply_scaling

        shape = self.model.input_shape[1:]
        x = np.asarray(x, dtype="float32")
        if self.kind == "window":
            from framework.data.windows import make_windows

            size = self.preprocessing["window"]["size"]
            if len(x) < size:
                raise DataError(f"{len(x)} rows, but the model reads windows of {size} rows", path=where)
            x, _ = make_windows(x, np.zeros(len(x)), size, 0, 1)
        reshape = self.data.get("reshape")
        if reshape and x.ndim >= 2 and tuple(x.shape[1:]) != tuple(shape):
            # the run's own layout before its data.reshape: (N, 64) or (N, 8, 8) for an (8, 8, 1) model, say
            try:
                x = x.reshape(len(x), *reshape)
            except ValueError:
                pass  # reported below with the shapes
        if tuple(x.shape[1:]) != tuple(shape):
            raise DataError(
                f"examples of shape {tuple(x.shape[1:])}, but the model takes {tuple(shape)}"
                + (f" (the run reshaped {int(np.prod(shape))} values with data.reshape = {reshape})" if reshape else ""),
                path=where,
            )
        return apply_scaling(x, self.preprocessing)

    def describe_outputs(self, predictions: np.ndarray) -> dict[str, Any]:
        """Columns for predictions: the class and its probabilities, or the values."""
        out: dict[str, Any] = {}
        if predictions.ndim == 2 and predictions.shape[1] > 1:
            names = self.class_names or [str(i) for i in range(predictions.shape[1])]
            out["prediction"] = [names[i] for i in predictions.argmax(axis=1)]
            for i, name in enumerate(names):
                out[f"p_{name}"] = predictions[:, i]
        elif predictions.ndim == 2 and self.resolved.get("train", {}).get("loss") == "binary_crossentropy":
            positive = (predictions[:, 0] > 0.5).astype(int)
            names = self.class_names if self.class_names and len(self.class_names) == 2 else None
            out["prediction"] = [names[i] for i in positive] if names else positive
            out[f"p_{names[1]}" if names else "p_1"] = predictions[:, 0]
        else:
            values = predictions.reshape(len(predictions), -1)
            if values.shape[1] == 1:
                out["prediction"] = values[:, 0]
            else:
                for i in range(values.shape[1]):
                    out[f"value_{i}"] = values[:, i]
        return out


def test_examples(run: TrainedRun, count: int):
    """Up to ``count`` examples of the run's own test split (model inputs, targets), loaded as the run loaded them."""
    from framework.data.splits import load_splits
    from framework.spec.load import validate_resolved

    try:
        spec = validate_resolved(run.resolved, run.folder)
    except Exception as exc:
        raise RunError(f"cannot reload the run's data to pick test examples: {exc}", path=str(run.folder)) from None
    splits = load_splits(spec.data, spec.seed)

    def first(data):
        return {k: v[:count] for k, v in data.items()} if isinstance(data, dict) else data[:count]

    return first(splits.x_test), first(splits.y_test)
