"""The builder: ``[model]`` (list form or graph form) -> a functional keras.Model.

List form: each layer takes the previous layer's output. Graph form: layers
name their ``inputs`` (model inputs or earlier layers), ``reuse = "name"``
calls an existing layer again (shared weights), and ``outputs`` lists the
output layers. A list is just a graph whose layers omit ``inputs``, so one
loop builds both.
"""

from __future__ import annotations

from typing import Any

from framework.build.augment import IN_MODEL_WHEN
from framework.build.layers import call_layer, make_layer
from framework.build.regularize import dropout_after, regularized_kwargs
from framework.registry import registry
from framework.errors import SpecError
from framework.spec.schema import Spec


# Layers built without their activation (then an Activation layer) in DP runs.
SPLIT_FOR_PRIVACY = ("Dense", "Conv2D")


def list_input_shape(spec: Spec, data_shape: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """The example shape of a list-form model: from the data, the spec, or the source's metadata."""
    declared = spec.model.input_shape
    if declared is not None and data_shape is not None and tuple(declared) != tuple(data_shape):
        raise SpecError(f"is {tuple(declared)} but the data's examples have shape {tuple(data_shape)}", path="model.input_shape")
    if data_shape is not None:
        return tuple(data_shape)
    if declared is not None:
        return tuple(declared)
    if spec.data.reshape and -1 not in spec.data.reshape:
        return tuple(spec.data.reshape)
    from framework.data.sources import open_source

    shape = open_source(spec.data).feature_shape()
    if shape is None:
        raise SpecError("cannot tell the input shape without loading the data; set it here", path="model.input_shape")
    return tuple(shape)


def output_names(spec: Spec) -> list[str]:
    if spec.model.outputs:
        return list(spec.model.outputs)
    last = spec.model.layers[-1]
    return [last.name] if last.name else []


def build_model(spec: Spec, data_shape: tuple[int, ...] | None = None, input_layers: list | None = None,
                part: str = "layers", start: int = 0):
    """Build the Keras model a spec declares, with ``[regularization]`` applied to its layers.

    ``input_layers`` (augmentation placed in the model) are applied to the input first. ``part``: which layer list
    of [model] (a generative model's ``encoder``, ``generator``, ...: list form, on an input of ``data_shape``).
    ``start``: build from this layer of a list-form model on, on inputs of ``data_shape`` (see
    :func:`fixed_feature_layers`).
    """
    inputs, outputs = _connect(spec, data_shape, input_layers, part, None, start)
    return connect_model(inputs[0] if len(inputs) == 1 else inputs, outputs[0] if len(outputs) == 1 else outputs,
                         model_name(spec, part))


def connect_model(inputs, outputs, name: str, model_class=None, hint: str = ""):
    """``model_class(inputs, outputs)`` (a functional keras.Model by default); Keras's refusal (e.g. a layer name used
    twice) as a SpecError at ``model``, followed by ``hint``."""
    import keras

    try:
        return (model_class or keras.Model)(inputs=inputs, outputs=outputs, name=name)
    except Exception as exc:
        raise SpecError(f"cannot connect the model: {exc}{hint}", path="model") from None


def model_name(spec: Spec, part: str = "layers") -> str:
    return spec.name.replace(".", "_") + ("" if part == "layers" else f"_{part}")


def apply_layers(spec: Spec, part: str, tensor):
    """A generative model's layer list (``part``) called on ``tensor`` in the caller's graph: its output tensor.

    The layers join the caller's functional graph directly (no nested model), so every layer is called once in the
    whole model, as DP-SGD's ghost clipping needs (privacy/step.py).
    """
    return _connect(spec, tuple(tensor.shape[1:]), None, part, tensor)[1][0]


def fixed_feature_layers(spec: Spec) -> int:
    """How many leading layers of a list-form model compute fixed features (``fixed_features = True`` on the class,
    e.g. Scattering2D): no weights, no randomness, nothing fitted, so the engine computes them once per example
    before training instead of in every step (train/prepare.py). 0 when anything needs the whole model or the raw
    examples: the graph form, a text input, augmentation, a distillation teacher, layers matched by name
    (``init_from``, ``freeze``)."""
    model_spec = spec.model
    if (model_spec.generative or model_spec.inputs or spec.data.text is not None or spec.augmentation.steps
            or spec.distill is not None or model_spec.init_from or model_spec.freeze):
        return 0
    count = 0
    for i, layer_spec in enumerate(model_spec.layers):
        if layer_spec.reuse is not None or layer_spec.inputs is not None or layer_spec.repeat != 1:
            break
        if not getattr(registry.get("layer", layer_spec.type, path=f"model.layers[{i}].type"), "fixed_features", False):
            break
        count += 1
    return count if count < len(model_spec.layers) else 0


def _connect(spec: Spec, data_shape, input_layers, part: str, input_tensor, start: int = 0):
    """(input tensors, output tensors) of the declared layers from the ``start``-th, on new inputs or on
    ``input_tensor``."""
    import keras

    model_spec = spec.model
    layer_specs = getattr(model_spec, part)
    nodes: dict[str, Any] = {}
    layers_by_name: dict[str, Any] = {}
    graph_inputs = model_spec.inputs if part == "layers" else None
    if input_tensor is not None:
        inputs = [input_tensor]
    elif graph_inputs:
        inputs = []
        for i, input_spec in enumerate(model_spec.inputs):
            try:
                tensor = keras.Input(shape=input_spec.keras_shape, dtype=input_spec.dtype, name=input_spec.name)
            except Exception as exc:
                raise SpecError(str(exc), path=f"model.inputs[{i}]") from None
            nodes[input_spec.name] = tensor
            inputs.append(tensor)
    else:
        shape = list_input_shape(spec, data_shape) if part == "layers" and not start else data_shape
        try:
            # a text column arrives as one string per example
            dtype = "string" if spec.data.text is not None else None
            inputs = [keras.Input(shape=shape, name="input", dtype=dtype)]
        except Exception as exc:
            raise SpecError(f"cannot make an input of shape {shape}: {exc}", path="model.input_shape") from None
    if data_shape is not None and model_spec.inputs and len(model_spec.inputs) == 1:
        declared = model_spec.inputs[0].keras_shape
        if len(declared) != len(data_shape) or any(d not in (None, e) for d, e in zip(declared, data_shape)):
            raise SpecError(f"shape is {declared} but the data's examples have shape {tuple(data_shape)}", path="model.inputs[0].shape")

    out_names = set(output_names(spec)) if part == "layers" else set()
    previous = inputs[-1]
    if input_layers:
        if len(inputs) != 1:
            raise SpecError(f"augmentation in the model ({IN_MODEL_WHEN}) needs a model with one input",
                            path="augmentation.placement")
        for layer in input_layers:
            previous = call_layer(layer, [previous], type(layer).__name__, "augmentation")
        if model_spec.inputs:  # graph form: layers that name the input get the augmented tensor
            nodes[model_spec.inputs[0].name] = previous
    reg = spec.regularization
    last = len(layer_specs) - 1
    for i, layer_spec in enumerate(layer_specs):
        if i < start:
            continue
        path = f"model.{part}[{i}]"
        for copy in range(layer_spec.repeat):
            last_copy = copy == layer_spec.repeat - 1
            split_activation = None
            if layer_spec.reuse is not None:
                if layer_spec.reuse not in layers_by_name:
                    raise SpecError(f"reuses '{layer_spec.reuse}', which is not an earlier layer's name", path=f"{path}.reuse")
                layer, type_name, is_output = layers_by_name[layer_spec.reuse], layer_spec.reuse, False
            else:
                cls = registry.get("layer", layer_spec.type, path=f"{path}.type")
                kwargs = regularized_kwargs(cls, layer_spec, reg, path)
                if layer_spec.name:
                    kwargs["name"] = layer_spec.name if layer_spec.repeat == 1 else f"{layer_spec.name}_{copy + 1}"
                is_output = last_copy and (layer_spec.name in out_names or (not out_names and i == last))
                if spec.train.mixed_precision and is_output:
                    kwargs.setdefault("dtype", "float32")  # keep outputs and their loss in float32
                split_activation = None
                if spec.dp is not None and layer_spec.type in SPLIT_FOR_PRIVACY:
                    # DP-SGD's ghost clipping needs the layer's pre-activation output as a tensor of its own
                    split_activation = kwargs.pop("activation", None)
                layer, type_name = make_layer(layer_spec.type, kwargs, path), layer_spec.type
                if layer_spec.name and last_copy:
                    layers_by_name[layer_spec.name] = layer
            if layer_spec.inputs is None or copy > 0:
                args = [previous]
            else:
                missing = [n for n in layer_spec.inputs if n not in nodes]
                if missing:
                    raise SpecError(f"unknown inputs {missing}; known so far: {sorted(nodes)}", path=f"{path}.inputs")
                args = [nodes[n] for n in layer_spec.inputs]
            previous = call_layer(layer, args, type_name, path)
            if layer_spec.reuse is None and split_activation not in (None, "linear"):
                previous = call_layer(
                    keras.layers.Activation(split_activation, dtype=kwargs.get("dtype")), [previous], type_name, f"{path}.activation"
                )
            if layer_spec.reuse is None and dropout_after(type(layer), reg, is_output):
                previous = keras.layers.Dropout(reg.dropout, seed=spec.seed + i)(previous)
        if layer_spec.name:
            nodes[layer_spec.name] = previous

    if model_spec.outputs and part == "layers":
        unknown = [n for n in model_spec.outputs if n not in nodes]
        if unknown:
            raise SpecError(f"unknown layer names {unknown}; known: {sorted(nodes)}", path="model.outputs")
        outputs = [nodes[n] for n in model_spec.outputs]
    else:
        outputs = [previous]
    return inputs, outputs
