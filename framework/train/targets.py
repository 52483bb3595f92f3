"""Before training: does each model output fit its targets?

A last Dense with fewer units than there are classes, a Dense head on images without a Flatten, a one-unit
sigmoid for ten classes: Keras accepts all of them when it builds and compiles, then fails in the first
training step with a TensorFlow traceback (``indices[1] = 9 is not in [0, 5)``, ``Argument output must have
rank target.ndim - 1``) or, worse, trains on a broadcast loss. These checks say which layer and which labels
disagree, and what to change, before the run folder exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from framework.errors import DataError, SpecError

SPARSE = {"sparse_categorical_crossentropy"}
CATEGORICAL = {"categorical_crossentropy", "categorical_focal_crossentropy"}
BINARY = {"binary_crossentropy", "binary_focal_crossentropy"}
REGRESSION = {
    "mse", "mae", "mape", "msle", "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "huber", "log_cosh", "logcosh",
}

#: layers that pass their input's shape on: the output layer's shape comes from the layer before them
_PASS_THROUGH = {"Activation", "Dropout", "Softmax", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization"}


@dataclass
class _Target:
    key: str  # data.label, data.targets.NAME, data.sequence, data.window
    values: np.ndarray  # every split's targets together
    class_names: list[str] | None

    @property
    def example_shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape[1:])

    @property
    def is_class_ids(self) -> bool:
        v = self.values
        if np.issubdtype(v.dtype, np.integer) or v.dtype == bool:
            return True
        return np.issubdtype(v.dtype, np.floating) and bool(np.all(np.isfinite(v))) and bool(np.all(v == np.round(v)))

    @property
    def classes(self) -> int:
        """Classes the labels need: one more than the largest id (or the number of names)."""
        top = int(self.values.max()) + 1 if self.values.size else 0
        return max(top, len(self.class_names or []))

    def describe(self) -> str:
        if self.class_names:
            return f"{self.key} has {self.classes} classes ({_listed(self.class_names)})"
        return f"{self.key} has {self.classes} classes (ids 0..{self.classes - 1})"


def _listed(names, shown: int = 6) -> str:
    names = [str(n) for n in names]
    return ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")


def _shape(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


class _Output:
    """A model output: its name, its shape (with the batch), and the layer that makes it, in words."""

    def __init__(self, model, index: int, spec):
        self.name = list(model.output_names)[index]
        self.shape = tuple(model.outputs[index].shape)
        layer = _layer_or_none(model, self.name)
        source = layer
        while source is not None and type(source).__name__ in _PASS_THROUGH:  # e.g. DP-SGD's split activation
            source = next((l for l in model.layers if _output_of(l) is _input_of(source)), None)
        self.layer = source or layer
        self.words = _describe_layer(self.layer) if self.layer is not None else f"output '{self.name}'"
        if source is not None and layer is not None and source is not layer:
            self.words += f" (through '{layer.name}')"
        self.path = _spec_path(spec, self.layer.name if self.layer is not None else self.name)

    @property
    def units(self) -> int | None:
        return self.shape[-1] if len(self.shape) >= 2 else None

    def error(self, message: str, what_to_do: str) -> SpecError:
        return SpecError(f"{self.words} {message}; {what_to_do}", path=self.path)


def _layer_or_none(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def _input_of(layer):
    try:
        return layer.input
    except (AttributeError, ValueError):
        return None


def _output_of(layer):
    try:
        return layer.output
    except (AttributeError, ValueError):
        return None


def _describe_layer(layer) -> str:
    kind = type(layer).__name__
    size = ""
    for attribute in ("units", "filters"):
        count = getattr(layer, attribute, None)
        if isinstance(count, int):
            size = f", {count} {attribute if count != 1 else attribute[:-1]}"
            break
    return f"layer '{layer.name}' ({kind}{size})"


def _spec_path(spec, layer_name: str) -> str:
    layers = spec.model.layers
    for i, layer in enumerate(layers):
        copies = {layer.name} if layer.repeat == 1 else {f"{layer.name}_{k + 1}" for k in range(layer.repeat)}
        if layer.name and layer_name in copies:
            return f"model.layers[{i}]"
    return f"model.layers[{len(layers) - 1}]" if not spec.model.outputs else "model.outputs"


def _loss_name(spec, output_name: str) -> str | None:
    loss = spec.train.loss
    if isinstance(loss, dict):
        loss = loss.get(output_name)
    return loss if isinstance(loss, str) else None


def _targets(splits, spec) -> list[tuple[str | None, _Target]]:
    """(output name or None, target) per model output, from every split."""
    def joined(parts):
        # a streamed source's labels stay on disk: their distinct values (from its counting pass) stand for them
        parts = [getattr(p, "distinct", p) for p in parts if p is not None]
        return np.concatenate([np.asarray(p) for p in parts]) if len(parts) > 1 else np.asarray(parts[0])

    data = spec.data
    splits_y = [splits.y_train, splits.y_val, splits.y_test]
    if isinstance(splits.y_train, dict):
        return [(name, _Target(f"data.targets.{name}", joined([y[name] if y is not None else None for y in splits_y]), None))
                for name in splits.y_train]
    key = ("data.sequence" if data.sequence is not None else "data.window" if data.window is not None
           else f"data.targets.{next(iter(data.targets))}" if data.targets else "data.label")
    return [(None, _Target(key, joined(splits_y), splits.class_names))]


def check_outputs_fit_targets(model, splits, spec, one_hot: bool) -> dict[str, Any]:
    """Raise SpecError (or DataError) when a model output cannot be trained on its targets, naming the output
    layer, the labels' key (data.label or data.targets.NAME) and what to change.

    ``splits`` is the data's :class:`~framework.data.splits.Splits` (only its targets and class names are read);
    ``one_hot`` says whether integer labels become one-hot rows (``Built.one_hot``). Returns facts for
    metrics.json: ``classes`` (or ``classes_OUTPUT`` for several outputs) for each classification output.
    """
    outputs = list(model.output_names)
    pairs = _targets(splits, spec)
    if len(pairs) == 1 and len(outputs) > 1:
        raise SpecError(
            f"the model has {len(outputs)} outputs ({', '.join(outputs)}), but {pairs[0][1].key} gives one target per "
            "example; give each output its target with data.targets = {{ OUTPUT = 'column or expression', ... }}",
            path="model.outputs",
        )
    facts: dict[str, Any] = {}
    for name, target in pairs:
        index = outputs.index(name) if name is not None and name in outputs else 0
        if name is not None and name not in outputs:
            raise SpecError(f"names the output '{name}', which the model does not have; outputs: {outputs}", path=target.key)
        output = _Output(model, index, spec)
        loss = _loss_name(spec, output.name)
        classes = _check_one(output, target, loss, one_hot and len(pairs) == 1)
        if classes is not None:
            facts["classes" if len(pairs) == 1 else f"classes_{output.name}"] = classes
    return facts


def _check_one(output: _Output, target: _Target, loss: str | None, one_hot: bool) -> int | None:
    """Check one output against its target; the number of classes when it is a classification output."""
    if loss in SPARSE and not one_hot:
        return _check_class_scores(output, target, loss, per_position=True)
    if one_hot or loss in CATEGORICAL:
        if target.values.ndim == 1:
            if not one_hot:  # a categorical loss in a table of losses: targets stay class ids
                raise output.error(
                    f"is trained with {loss}, which needs one-hot rows, but {target.key} gives one class id per example",
                    f"use '{next(iter(SPARSE))}' for this output",
                )
            return _check_class_scores(output, target, loss, per_position=False)
        _check_same_shape(output, target, loss, "one-hot rows")
        return target.example_shape[-1] if target.values.ndim == 2 else None
    if loss in BINARY:
        return _check_binary(output, target, loss)
    if loss in REGRESSION:
        _check_values(output, target, loss)
    return None  # a plugin's loss, or one whose targets we do not know: Keras checks it


def _check_class_scores(output: _Output, target: _Target, loss: str | None, per_position: bool) -> int:
    """Class ids -> one score per class: the output is the targets' shape plus a class axis of >= classes units."""
    values = target.values
    if not target.is_class_ids:
        raise DataError(
            f"holds {values.dtype} values with fractions, but {loss} needs class ids (0, 1, 2, ...); for values to "
            f"predict use a regression loss such as train.loss = 'mse' with {output.words} giving one value",
            path=target.key,
        )
    if values.size and values.min() < 0:
        raise DataError(f"class ids must be 0 or more; the labels include {int(values.min())}", path=target.key)
    if per_position and values.ndim >= 2 and values.shape[1:] == output.shape[1:] and _looks_one_hot(values):
        raise output.error(
            f"outputs {_shape(output.shape)} and {target.key} gives one-hot rows of the same width, but {loss} takes "
            "class ids", "set train.loss = 'categorical_crossentropy' (or give class ids instead of one-hot rows)",
        )
    want_rank = values.ndim + 1  # the targets' own axes, then one score per class
    if len(output.shape) != want_rank or any(
        o is not None and t != o for o, t in zip(output.shape[1:-1], values.shape[1:])
    ):
        per = "example" if values.ndim == 1 else f"example of shape {_shape(values.shape[1:])}"
        expected = _shape((None, *values.shape[1:], target.classes))
        fix = (
            "add a Flatten (or a GlobalAveragePooling) layer before it, so that it gives one row of class scores per "
            "example" if len(output.shape) > want_rank else "make the last layer give one score per class"
        )
        raise output.error(
            f"outputs {_shape(output.shape)}, but {target.key} has one class id per {per}, so the output must be "
            f"{expected}", fix,
        )
    units, classes = output.units, target.classes
    if units is not None and units < classes:
        binary_hint = (
            " (or, for two classes, keep 1 unit with activation = 'sigmoid' and train.loss = 'binary_crossentropy')"
            if classes == 2 and units == 1 else ""
        )
        raise output.error(
            f"gives {units} class score{'s' if units != 1 else ''}, but {target.describe()}",
            f"set its units to {classes}{binary_hint}",
        )
    if units is not None and target.class_names and units != len(target.class_names):
        raise output.error(
            f"gives {units} class scores, but {target.describe()}", f"set its units to {len(target.class_names)}"
        )
    return classes if values.ndim == 1 else None


def _looks_one_hot(values: np.ndarray) -> bool:
    return values.ndim == 2 and values.shape[1] > 1 and bool(np.isin(values, (0, 1)).all()) and bool((values.sum(axis=1) == 1).all())


def _check_binary(output: _Output, target: _Target, loss: str) -> int | None:
    values = target.values
    if values.ndim == 1:
        if values.size and target.is_class_ids and (values.min() < 0 or values.max() > 1):
            raise output.error(
                f"is trained with {loss}, a yes/no loss for labels 0 and 1, but {target.describe()}",
                f"for {target.classes} classes use units = {target.classes}, activation = 'softmax' and "
                "train.loss = 'sparse_categorical_crossentropy'",
            )
        if values.size and (values.min() < 0 or values.max() > 1):
            raise DataError(f"{loss} needs targets between 0 and 1; these range from {values.min():g} to {values.max():g}",
                            path=target.key)
        if output.shape[1:] not in ((1,), ()):
            fix = ("add a Flatten (or a GlobalAveragePooling) layer before it" if len(output.shape) > 2
                   else "set its units to 1 with activation = 'sigmoid', or use units = 2 with 'softmax' and "
                   "train.loss = 'sparse_categorical_crossentropy'")
            raise output.error(
                f"outputs {_shape(output.shape)}, but {target.key} has one 0/1 label per example and {loss} compares "
                "one probability with it", fix,
            )
        return 2 if target.is_class_ids else None
    _check_same_shape(output, target, loss, "0/1 labels")
    return None


def _check_same_shape(output: _Output, target: _Target, loss: str | None, what: str) -> None:
    want = target.example_shape
    got = output.shape[1:]
    if len(got) != len(want) or any(o is not None and o != t for o, t in zip(got, want)):
        fix = ("add a Flatten (or a GlobalAveragePooling) layer before it" if len(got) > len(want)
               else f"make it output {_shape((None, *want))}")
        raise output.error(
            f"outputs {_shape(output.shape)}, but {target.key} gives {what} of shape {_shape(want)} per example"
            + (f" for {loss}" if loss else ""), fix,
        )


def _check_values(output: _Output, target: _Target, loss: str) -> None:
    """Regression: one predicted value per target value (a 1-D target takes an output of shape (None, 1))."""
    want = target.example_shape
    got = output.shape[1:]
    if want == ():
        if got in ((1,), ()):
            return
        if len(got) == 1 and got[0] is not None and got[0] > 1:
            raise output.error(
                f"gives {got[0]} values per example, but {target.key} has one value per example and {loss} would "
                "compare every output with it",
                "set its units to 1" + (
                    "; for classes use train.loss = 'sparse_categorical_crossentropy'" if target.is_class_ids else ""
                ),
            )
        raise output.error(
            f"outputs {_shape(output.shape)}, but {target.key} has one value per example",
            "add a Flatten (or a GlobalAveragePooling) layer before it and give it 1 unit",
        )
    _check_same_shape(output, target, loss, "values")


# --- `check`: what the spec alone tells -------------------------------------------------------


def check_outputs_fit_source(model, spec, one_hot: bool) -> dict[str, Any]:
    """``check_outputs_fit_targets`` for ``check``, which loads no data: for sources whose classes are known from
    their name (sklearn:digits has 10), with labels 0..n-1 standing in for the data. Nothing to check otherwise."""
    from framework.data.sources import open_source
    from framework.data.splits import Splits

    data = spec.data
    if data.sequence is not None or data.window is not None:
        return {}
    source = open_source(data)
    classes = source.known_classes()
    if classes is None:
        return {}
    labels = np.arange(classes, dtype="int64")
    names = None
    if data.class_names:
        if len(data.class_names) != classes:
            raise SpecError(f"has {len(data.class_names)} names, but {data.source} has {classes} classes", path="data.class_names")
        names = list(data.class_names)
    if data.targets:
        import pandas as pd

        from framework.data.targets import derive_targets

        derived = derive_targets(pd.DataFrame({"label": labels}), data.targets)
        y = next(iter(derived.values())) if len(derived) == 1 else derived
        return check_outputs_fit_targets(model, Splits(None, y, None, None, None, None), spec, one_hot)
    return check_outputs_fit_targets(model, Splits(None, labels, None, None, None, None, class_names=names), spec, one_hot)
