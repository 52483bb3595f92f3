"""``[regularization]`` applied to layers: kernel penalties and dropout.

Global ``l1``/``l2`` become an ``L1L2`` kernel regularizer on every layer that
takes one; a layer's own ``kernel_regularizer`` wins. In a spec it may be a
table ``{ l1 = 0.0, l2 = 1e-3 }``, a Keras name such as ``"l2"``, or ``false``
for none.
"""

from __future__ import annotations

from typing import Any

from framework.build.layers import accepted_kwargs
from framework.errors import SpecError
from framework.spec.schema import LayerSpec, RegularizationSpec

REGULARIZER_KEYS = ("kernel_regularizer", "bias_regularizer", "activity_regularizer")


def _regularizer(value: Any, path: str):
    import keras

    if value is False or value is None:
        return None
    if isinstance(value, dict):
        unknown = set(value) - {"l1", "l2"}
        if unknown:
            raise SpecError(f"a regularizer table takes l1 and l2, got {sorted(unknown)}", path=path)
        if any(not isinstance(v, (int, float)) or v < 0 for v in value.values()):
            raise SpecError("l1 and l2 must be numbers >= 0", path=path)
        return keras.regularizers.L1L2(l1=float(value.get("l1", 0.0)), l2=float(value.get("l2", 0.0)))
    return value


def regularized_kwargs(cls: type, layer_spec: LayerSpec, reg: RegularizationSpec, path: str) -> dict[str, Any]:
    """The layer's keyword arguments with the global regularization filled in where the layer is silent."""
    import keras

    kwargs = layer_spec.kwargs
    accepted = accepted_kwargs(cls) or set()
    for key in REGULARIZER_KEYS:
        if key in kwargs:
            kwargs[key] = _regularizer(kwargs[key], f"{path}.{key}")
    if (reg.l1 or reg.l2) and "kernel_regularizer" in accepted and "kernel_regularizer" not in kwargs:
        kwargs["kernel_regularizer"] = keras.regularizers.L1L2(l1=reg.l1, l2=reg.l2)
    if reg.dropout and "dropout" in accepted and "dropout" not in kwargs:
        kwargs["dropout"] = reg.dropout
    return kwargs


def dropout_after(cls: type, reg: RegularizationSpec, is_output: bool) -> bool:
    """Global dropout follows every hidden Dense layer."""
    import keras

    return bool(reg.dropout) and not is_output and issubclass(cls, keras.layers.Dense)
