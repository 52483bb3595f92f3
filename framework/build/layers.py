"""One layer table -> one Keras layer, with errors that name the key path."""

from __future__ import annotations

import inspect
import re
from typing import Any

from framework.errors import SpecError, did_you_mean
from framework.registry import registry

# Keyword arguments keras.layers.Layer takes through **kwargs.
_LAYER_EXTRA_KWARGS = {"input_shape", "input_dim", "batch_input_shape", "batch_size", "weights"}


def accepted_kwargs(cls: type) -> set[str] | None:
    """Every keyword a layer class accepts, following **kwargs up the MRO; None if unbounded."""
    import keras

    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in klass.__dict__:
            continue
        params = inspect.signature(klass.__dict__["__init__"]).parameters
        names.update(n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and n != "self")
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            return names
        if klass is keras.layers.Layer:
            return names | _LAYER_EXTRA_KWARGS
    return None


def _argument_in_message(message: str, kwargs: dict[str, Any]) -> str | None:
    """Which of the user's arguments an exception message is about, if any."""
    for name in kwargs:
        if re.search(rf"(`{re.escape(name)}`|\b{re.escape(name)}=|'{re.escape(name)}')", message):
            return name
    return None


def instantiate(cls: type, type_name: str, kwargs: dict[str, Any], path: str):
    """``cls(**kwargs)``, with unknown and bad arguments reported at their key path."""
    allowed = accepted_kwargs(cls) if isinstance(cls, type) else None
    for key in kwargs:
        if allowed is not None and key not in allowed:
            raise SpecError(f"{type_name} has no argument '{key}'{did_you_mean(key, allowed)}", path=f"{path}.{key}")
    try:
        return cls(**kwargs)
    except SpecError:
        raise
    except Exception as exc:  # keras raises ValueError/TypeError/others for bad arguments
        arg = _argument_in_message(str(exc), kwargs)
        raise SpecError(f"{type_name}: {exc}", path=f"{path}.{arg}" if arg else path) from None


def make_layer(type_name: str, kwargs: dict[str, Any], path: str):
    """A registered layer. Nested tables with a ``type`` become layers too (e.g. Bidirectional's ``layer``)."""
    cls = registry.get("layer", type_name, path=f"{path}.type")
    kwargs = {
        key: make_layer(value["type"], {k: v for k, v in value.items() if k != "type"}, f"{path}.{key}")
        if isinstance(value, dict) and "type" in value
        else value
        for key, value in kwargs.items()
    }
    return instantiate(cls, type_name, _text_kwargs(cls, kwargs), path)


def _text_kwargs(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
    """TextVectorization standardizes with the framework's line-break-safe form of its ``standardize``
    (see framework.build.blocks.text), so that every vocabulary token saves and loads as one line."""
    import keras

    if not (isinstance(cls, type) and issubclass(cls, keras.layers.TextVectorization)):
        return kwargs
    from framework.build.blocks.text import one_line_standardizer

    return {**kwargs, "standardize": one_line_standardizer(kwargs.get("standardize", "lower_and_strip_punctuation"))}


def call_layer(layer, inputs: list, type_name: str, path: str):
    """Call a layer on Keras tensors; a shape that doesn't fit is a spec error at the layer."""
    try:
        return layer(inputs[0] if len(inputs) == 1 else inputs)
    except Exception as exc:
        shapes = ", ".join(str(tuple(t.shape)) for t in inputs)
        message = str(exc).strip().splitlines()[0][:400]
        raise SpecError(f"{type_name} does not fit its input of shape {shapes}: {message}", path=path) from None
