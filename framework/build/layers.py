"""One layer table -> one Keras layer, with errors that name the key path."""

from __future__ import annotations

import functools
import inspect
import re
from typing import Any

from framework.errors import SpecError, did_you_mean
from framework.registry import registry

# Keyword arguments keras.layers.Layer takes through **kwargs.
_LAYER_EXTRA_KWARGS = ("input_shape", "input_dim", "batch_input_shape", "batch_size", "weights")


@functools.lru_cache(maxsize=None)
def signature_arguments(cls: type) -> tuple[dict[str, tuple[inspect.Parameter, type]], bool]:
    """The keyword arguments a class's constructor accepts, in signature order, following ``**kwargs`` up the MRO:
    {name: (parameter, the class that declares it)}, and whether that is all of them (False: any keyword goes).

    A parent's argument that the child's ``super().__init__(...)`` call sets itself (Conv2D sets ``rank``) is not
    the caller's to give. ``keras.layers.Layer`` takes a few more through ``**kwargs`` (``input_shape``, ...);
    Keras's base optimizer refuses any keyword it does not name."""
    import keras

    found: dict[str, tuple[inspect.Parameter, type]] = {}
    positional, bound = 0, set()  # what the previous class's super().__init__ call passes itself
    for klass in cls.__mro__:
        if "__init__" not in klass.__dict__ or klass is object:
            continue
        init = klass.__dict__["__init__"]
        params = inspect.signature(init).parameters
        order = [n for n, p in params.items() if n != "self" and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        set_by_child = set(order[:positional]) | bound
        for name, param in params.items():
            if param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL) and name != "self" and name not in set_by_child:
                found.setdefault(name, (param, klass))
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            return found, True
        if klass is keras.layers.Layer:
            for name in _LAYER_EXTRA_KWARGS:
                found.setdefault(name, (inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None), klass))
            return found, True
        if klass.__name__ == "BaseOptimizer" and klass.__module__.startswith("keras."):
            return found, True  # it raises "Argument(s) not recognized" for anything else
        positional, bound = _parent_call(init)
    return found, False


def _parent_call(init) -> tuple[int, set[str]]:
    """How many positional arguments, and which keywords, ``init`` passes to its parent's ``__init__``."""
    import ast
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
    except (OSError, TypeError, SyntaxError):
        return 0, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "__init__":
            owner = node.func.value
            explicit_self = not (isinstance(owner, ast.Call) and getattr(owner.func, "id", None) == "super")
            args = [a for a in node.args if not isinstance(a, ast.Starred)]
            keywords = {k.arg for k in node.keywords if k.arg is not None}
            return max(0, len(args) - (1 if explicit_self else 0)), keywords
    return 0, set()


def accepted_kwargs(cls: type) -> set[str] | None:
    """Every keyword a layer class accepts, following **kwargs up the MRO; None if unbounded."""
    found, complete = signature_arguments(cls)
    return set(found) if complete else None


def unknown_argument_message(type_name: str, key: str, allowed) -> str:
    """"Dense has no argument 'unitz' (did you mean 'units'?); it takes: units, activation, ..." """
    allowed = list(allowed)
    return f"{type_name} has no argument '{key}'{did_you_mean(key, allowed)}; it takes: {', '.join(allowed)}"


def _argument_in_message(message: str, kwargs: dict[str, Any]) -> str | None:
    """Which of the user's arguments an exception message is about, if any."""
    for name in kwargs:
        if re.search(rf"(`{re.escape(name)}`|\b{re.escape(name)}=|'{re.escape(name)}')", message):
            return name
    return None


def instantiate(cls: type, type_name: str, kwargs: dict[str, Any], path: str):
    """``cls(**kwargs)``, with unknown and bad arguments reported at their key path."""
    found, complete = signature_arguments(cls) if isinstance(cls, type) else ({}, False)
    for key in kwargs:
        if complete and key not in found:
            raise SpecError(unknown_argument_message(type_name, key, found), path=f"{path}.{key}")
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
