"""The catalogue: every built-in type a spec can name, with its arguments, read without importing TensorFlow.

``catalogue.json`` beside this file lists, for each kind (layer, augmentation, optimizer, lr_schedule, callback,
loss, metric), the names the registry serves without plugins: the installed Keras's classes and the framework's
own blocks. For each class: the first line of its docstring and its constructor's arguments (name, default,
annotated type, whether required, the docstring's line about it), as ``inspect.signature`` gives them, following
``**kwargs`` up to ``keras.layers.Layer`` (``name``, ``dtype``, ``trainable``, ... are marked ``base``).

The JSON Schema (``python -m framework schema``), ``check --schema-only``, ``list --verbose`` and ``describe`` read
it, so they answer at once. It is generated from the installed Keras, and ``tests/test_catalogue.py`` fails when
it no longer matches; regenerate it with::

    python -m framework.spec.catalogue          # writes framework/spec/catalogue.json
    python -m framework.spec.catalogue --check  # exit 1 if it is stale

Plugins are not in it: a spec with ``plugins`` may name types the catalogue does not know.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

PATH = Path(__file__).with_name("catalogue.json")

#: the kinds in the catalogue, in the order ``describe`` looks a name up
KINDS = ("layer", "augmentation", "optimizer", "lr_schedule", "callback", "loss", "metric")
#: kinds whose entries are classes with arguments (losses and metrics are names)
CLASS_KINDS = ("layer", "augmentation", "optimizer", "lr_schedule", "callback")
#: keys of a layer table that are the framework's, not the layer's arguments
LAYER_SPEC_KEYS = ("type", "name", "inputs", "reuse", "repeat")
#: arguments the framework fills in for a learning-rate schedule (from train.optimizer and train.epochs)
FILLED_IN = {"lr_schedule": ("initial_learning_rate", "decay_steps")}


# --- reading ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def load() -> dict[str, Any]:
    """The shipped catalogue (no TensorFlow, no Keras)."""
    return json.loads(PATH.read_text(encoding="utf-8"))


def kind_entries(kind: str) -> dict[str, dict[str, Any]]:
    return load()["kinds"][kind]["entries"]


def kind_aliases(kind: str) -> dict[str, str]:
    return load()["kinds"][kind].get("aliases", {})


def names(kind: str) -> list[str]:
    """Every name of ``kind``, aliases (e.g. 'adam' for Adam) included."""
    return [*kind_entries(kind), *kind_aliases(kind)]


def all_names(kind: str) -> list[str]:
    """``names`` and, for losses and metrics, the other names Keras's compile() understands ('mse', 'acc')."""
    return [*load()["kinds"][kind].get("extra_names", []), *names(kind)]


def lookup(kind: str, name: str) -> dict[str, Any] | None:
    entries = kind_entries(kind)
    return entries.get(kind_aliases(kind).get(name, name))


def find(name: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, canonical name, entry) for every kind that has ``name``."""
    out = []
    for kind in KINDS:
        entry = lookup(kind, name)
        if entry is not None:
            out.append((kind, kind_aliases(kind).get(name, name), entry))
    return out


@lru_cache(maxsize=1)
def describes_installed_keras() -> bool:
    """Whether the catalogue is of the installed Keras (its dist-info folder is found; Keras is not imported)."""
    import importlib.util

    found = importlib.util.find_spec("keras")
    if found is None or not found.origin:
        return False
    site = Path(found.origin).resolve().parent.parent
    return (site / f"keras-{load()['keras']}.dist-info").is_dir()


def argument_names(entry: dict[str, Any]) -> list[str] | None:
    """The arguments a class takes, in signature order; None when it takes any keyword."""
    return None if entry.get("open") else [a["name"] for a in entry.get("args", [])]


def format_default(arg: dict[str, Any]) -> str:
    if arg.get("required"):
        return "required"
    if "default_repr" in arg:
        return arg["default_repr"]
    return json.dumps(arg.get("default"))


# --- checking a spec (check --schema-only) --------------------------------------------------


def check_spec_names(spec, *, plugins: bool = False) -> None:
    """Types, their arguments, and loss and metric names, checked against the catalogue without TensorFlow.

    A name the catalogue lacks is accepted when the spec has ``plugins`` (or ``plugins`` is true) or a plugin
    registered it; a built-in's arguments are always checked (a plugin cannot replace a built-in).
    Raises SpecError at the key, with a suggestion and the valid arguments."""
    from framework.errors import SpecError, did_you_mean, warn
    from framework.registry import LIST_WORDS, registry

    if not describes_installed_keras():
        warn(f"framework/spec/catalogue.json describes Keras {load()['keras']}, not the Keras installed here, so "
             "check --schema-only does not check type names and arguments (the full check does); "
             "python -m framework.spec.catalogue regenerates it")
        return
    lenient = plugins or bool(spec.plugins)

    def known(kind: str, name: Any, path: str) -> dict[str, Any] | None:
        if not isinstance(name, str):
            return None
        entry = lookup(kind, name)
        if entry is None and kind in ("loss", "metric") and name in load()["kinds"][kind].get("extra_names", ()):
            return {}
        if entry is None and not lenient and registry.registered(kind, name) is None:
            raise SpecError(
                f"unknown {kind.replace('_', ' ')} '{name}'{did_you_mean(name, all_names(kind))}; "
                f"`python -m framework list {LIST_WORDS[kind]}` shows them all",
                path=path,
            )
        return entry

    def arguments(kind: str, type_name: str, kwargs: dict[str, Any], path: str) -> None:
        entry = known(kind, type_name, f"{path}.type")
        if not entry:
            return
        allowed = argument_names(entry)
        if allowed is not None:
            from framework.build.layers import unknown_argument_message

            for key in kwargs:
                if key not in allowed:
                    raise SpecError(unknown_argument_message(type_name, key, allowed), path=f"{path}.{key}")
        for arg in entry.get("args", []):
            value = kwargs.get(arg["name"], ...)
            if "choices" in arg and (value is None or isinstance(value, str)) and value not in arg["choices"]:
                raise SpecError(
                    f"{type_name}: {arg['name']} is one of {', '.join(map(json.dumps, arg['choices']))}, "
                    f"not {json.dumps(value)}{did_you_mean(str(value), [c for c in arg['choices'] if c])}",
                    path=f"{path}.{arg['name']}",
                )
        if kind == "layer":  # a nested layer table, e.g. Bidirectional's layer = { type = "LSTM", ... }
            for key, value in kwargs.items():
                if isinstance(value, dict) and isinstance(value.get("type"), str):
                    arguments("layer", value["type"], {k: v for k, v in value.items() if k != "type"}, f"{path}.{key}")

    from framework.spec.sections.generative import ALL_PARTS

    for part in ("layers", *ALL_PARTS):  # a generative model's layer lists too
        for i, layer in enumerate(getattr(spec.model, part)):
            if layer.type is not None:
                arguments("layer", layer.type, layer.kwargs, f"model.{part}[{i}]")
    for i, step in enumerate(spec.augmentation.steps):
        arguments("augmentation", step.type, step.kwargs, f"augmentation.steps[{i}]")
    train = spec.train
    arguments("optimizer", train.optimizer.type, {"learning_rate": 0, **train.optimizer.kwargs}, "train.optimizer")
    if train.lr_schedule is not None:
        arguments("lr_schedule", train.lr_schedule.type, train.lr_schedule.kwargs, "train.lr_schedule")
    for i, callback in enumerate(train.callbacks):
        arguments("callback", callback.type, callback.kwargs, f"train.callbacks[{i}]")
    losses = train.loss if isinstance(train.loss, dict) else {None: train.loss}
    for output, name in losses.items():
        known("loss", name, "train.loss" + (f".{output}" if output is not None else ""))
    metrics = train.metrics if isinstance(train.metrics, dict) else {None: train.metrics}
    for output, listed in metrics.items():
        for i, name in enumerate(listed):
            known("metric", name, "train.metrics" + (f".{output}" if output is not None else "") + f"[{i}]")


# --- generating (imports Keras) ---------------------------------------------------------------


def _jsonable(value: Any) -> tuple[bool, Any]:
    if isinstance(value, tuple):
        value = list(value)
    if value is None or isinstance(value, (bool, int, str)):
        return True, value
    if isinstance(value, float):
        return math.isfinite(value), value
    if isinstance(value, list):
        items = [_jsonable(v) for v in value]
        return all(ok for ok, _ in items), [v for _, v in items]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        items = {k: _jsonable(v) for k, v in value.items()}
        return all(ok for ok, _ in items.values()), {k: v for k, (_, v) in items.items()}
    return False, None


def first_paragraph(doc: str) -> str:
    lines = []
    for line in doc.strip().splitlines():
        if not line.strip():
            break
        lines.append(line.strip())
    text = " ".join(lines)
    return text if len(text) <= 200 else text[:197].rstrip() + "..."


_ARG_LINE = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def argument_docs(doc: str) -> dict[str, str]:
    """{argument: its description's first sentence} from a docstring's Keras-style ``Args:`` section."""
    found: dict[str, str] = {}
    lines = doc.splitlines()
    for start, line in enumerate(lines):
        if line.strip() in ("Args:", "Arguments:"):
            break
    else:
        return found
    header = len(lines[start]) - len(lines[start].lstrip())
    indent = None
    current = None
    for line in lines[start + 1:]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if depth <= header:
            break
        if indent is None:
            indent = depth
        if depth == indent:
            match = _ARG_LINE.match(line.strip())
            if not match:
                break
            current = match.group(1).lstrip("*")
            found[current] = match.group(2).strip()
        elif current is not None:
            found[current] = f"{found[current]} {line.strip()}".strip()
    return {name: _first_sentence(text) for name, text in found.items()}


def _first_sentence(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    match = re.search(r"(?<=[a-z0-9`)\]])\.\s", text)
    if match:
        text = text[: match.start() + 1]
    return text if len(text) <= 200 else text[:197].rstrip() + "..."


def _annotation(param) -> str | None:
    annotation = param.annotation
    if annotation is param.empty:
        return None
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


PUBLIC_MODULES = ("keras.layers", "keras.optimizers", "keras.optimizers.schedules", "keras.callbacks", "keras.losses",
                  "keras.metrics")


def public_path(cls: type) -> str:
    """Where users import ``cls`` from: Keras's public module that exports it (not the private module that defines it)."""
    import importlib

    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        exported = [attr for attr in dir(module) if getattr(module, attr) is cls]  # sometimes under another name
        if exported:
            return f"{name}.{cls.__name__ if cls.__name__ in exported else exported[0]}"
    return f"{cls.__module__}.{cls.__qualname__}"


def describe_class(cls: type) -> dict[str, Any]:
    """A class's catalogue entry: its docstring's first line and its arguments."""
    import inspect

    import keras

    from framework.build.layers import signature_arguments

    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")  # its own: not a base class's "the class from which..."
    found, complete = signature_arguments(cls)
    docs = argument_docs(doc)
    for _, owner in found.values():  # an inherited argument is described by the class that declares it
        for name, text in argument_docs(inspect.cleandoc(owner.__dict__.get("__doc__") or "")).items():
            docs.setdefault(name, text)
    args = []
    for name, (param, owner) in found.items():
        arg: dict[str, Any] = {"name": name}
        if param.default is param.empty:
            arg["required"] = True
        else:
            ok, value = _jsonable(param.default)
            if ok:
                arg["default"] = value
            else:
                arg["default_repr"] = repr(param.default)
        annotation = _annotation(param)
        if annotation:
            arg["type"] = annotation
        if name in docs:
            arg["doc"] = docs[name]
        if owner is keras.layers.Layer:
            arg["base"] = True
        args.append(arg)
    entry: dict[str, Any] = {"doc": first_paragraph(doc), "class": public_path(cls), "args": args}
    if not complete:
        entry["open"] = True
    return entry


#: abbreviations Keras's losses.get / metrics.get may know (kept if they do)
_ABBREVIATIONS = ("acc", "bce", "ce", "kld", "mae", "mape", "mse", "msle", "logcosh", "huber_loss")


def _snake(name: str) -> str:
    """Keras's snake_case of a class name: MeanSquaredError -> mean_squared_error, BinaryIoU -> binary_io_u."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def generate() -> dict[str, Any]:
    """The catalogue of the installed Keras and the framework's blocks (imports Keras and TensorFlow)."""
    import inspect

    import keras

    from framework.registry import BUILTIN, registry
    from framework.train.compile import COMPILE_ALIASES

    kinds: dict[str, Any] = {}
    for kind in CLASS_KINDS:
        by_object: dict[int, str] = {}
        entries: dict[str, Any] = {}
        aliases: dict[str, str] = {}
        for name, registered in registry.entries(kind).items():
            if registered.source != BUILTIN:
                continue
            canonical = by_object.get(id(registered.obj))
            if canonical is None and name == getattr(registered.obj, "__name__", name):
                by_object[id(registered.obj)] = name
        for name, registered in registry.entries(kind).items():
            if registered.source != BUILTIN:
                continue
            canonical = by_object.get(id(registered.obj))
            if canonical is not None and canonical != name:
                aliases[name] = canonical  # e.g. 'adam' for Adam, Convolution2D for Conv2D
            else:
                entries[name] = describe_class(registered.obj)
        kinds[kind] = {"entries": dict(sorted(entries.items())), "aliases": dict(sorted(aliases.items()))}

    for kind, module, getter in (("loss", keras.losses, keras.losses.get), ("metric", keras.metrics, keras.metrics.get)):
        entries = {}
        for name, registered in registry.entries(kind).items():
            if registered.source != BUILTIN:
                continue
            entries[name] = {"doc": first_paragraph(inspect.getdoc(registered.obj) or "")}
        extra = set(COMPILE_ALIASES)
        # other names Keras's get() knows: snake_case forms (MeanIoU -> mean_io_u) and abbreviations (bce, KLD)
        candidates = {_snake(name) for name in entries} | {a for short in _ABBREVIATIONS for a in (short, short.upper())}
        for name in sorted(candidates - set(entries)):
            try:
                getter(name)
                extra.add(name)
            except Exception:  # noqa: BLE001 - not a name Keras knows
                pass
        kinds[kind] = {"entries": dict(sorted(entries.items())), "extra_names": sorted(extra - set(entries))}

    from framework.build.blocks.text import STANDARDIZERS_BY_NAME

    for kind in ("layer",):  # TextVectorization's named standardizers (the framework's line-break-safe forms)
        for arg in kinds[kind]["entries"].get("TextVectorization", {}).get("args", []):
            if arg["name"] == "standardize":
                arg["choices"] = list(STANDARDIZERS_BY_NAME)
    return {
        "about": "Generated by `python -m framework.spec.catalogue` from the installed Keras; do not edit.",
        "keras": keras.__version__,
        "kinds": kinds,
    }


def dumps(catalogue: dict[str, Any]) -> str:
    return json.dumps(catalogue, indent=1, sort_keys=False, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse
    import os
    import sys

    parser = argparse.ArgumentParser(prog="python -m framework.spec.catalogue", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if catalogue.json differs from the installed Keras")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from framework.quiet import import_tensorflow

    import_tensorflow()
    text = dumps(generate())
    if args.check:
        if PATH.read_text(encoding="utf-8") != text:
            print(f"{PATH} is stale: run python -m framework.spec.catalogue", file=sys.stderr)
            return 1
        print(f"{PATH} matches the installed Keras")
        return 0
    PATH.write_text(text, encoding="utf-8")
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
