"""``list --verbose`` and ``describe TYPE``: each type's arguments, defaults and docstring line, from the catalogue.

Built-in types are read from ``framework/spec/catalogue.json`` (no TensorFlow, so they answer at once); types a
plugin registers (``--spec``/``--plugin``) are described from their classes as they load.
"""

from __future__ import annotations

import json
from typing import Any

from framework.spec import catalogue

#: how wide the argument-name column is
_NAME_WIDTH = 26


def _value(arg: dict[str, Any]) -> str:
    return catalogue.format_default(arg)


def _signature_line(args: list[dict[str, Any]]) -> str:
    parts = []
    for arg in args:
        parts.append(f"{arg['name']} (required)" if arg.get("required") else f"{arg['name']} = {_value(arg)}")
    return ", ".join(parts)


def _own_and_base(entry: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    args = entry.get("args", [])
    return [a for a in args if not a.get("base")], [a for a in args if a.get("base")]


def base_layer_arguments() -> str:
    """The arguments every Keras layer takes (from keras.layers.Layer), as one line."""
    dense = catalogue.lookup("layer", "Dense") or {}
    return _signature_line(_own_and_base(dense)[1])


def plugin_entries(kind: str) -> dict[str, dict[str, Any]]:
    """Catalogue entries, described now, of what plugins registered (nothing unless plugins were loaded)."""
    from framework.registry import BUILTIN, registry

    found = {}
    for name, entry in registry.registered_entries(kind).items():
        if entry.source == BUILTIN:
            continue
        if isinstance(entry.obj, type):
            described = catalogue.describe_class(entry.obj)
        else:
            import inspect

            described = {"doc": catalogue.first_paragraph(inspect.cleandoc(entry.obj.__doc__ or ""))}
        described["source"] = entry.source
        found[name] = described
    return found


def list_verbose(kind: str, with_plugins: bool = False) -> str:
    """Every type of ``kind``: the first docstring line and the arguments with their defaults."""
    lines = []
    if kind not in catalogue.KINDS:  # data sources: the framework's own classes, no Keras needed
        from framework.registry import registry

        entries = registry.entries(kind)
        lines.append(f"{kind} ({len(entries)}):")
        for name, entry in entries.items():
            doc = catalogue.first_paragraph(getattr(entry.obj, "__doc__", None) or "")
            lines.append(f"  {name}  [{entry.source}]" + (f" - {doc}" if doc else ""))
        return "\n".join(lines) + "\n"
    entries = dict(catalogue.kind_entries(kind))
    plugins = plugin_entries(kind) if with_plugins else {}
    extra = catalogue.load()["kinds"][kind].get("extra_names", [])
    aliases = catalogue.kind_aliases(kind)
    lines.append(f"{kind} ({len(entries) + len(plugins)}; Keras {catalogue.load()['keras']} and the framework's own"
                 + (", and plugins" if plugins else "") + "):")
    if kind in ("layer", "augmentation"):
        lines.append(f"  every layer also takes keras.layers.Layer's arguments: {base_layer_arguments()}")
    aliases_of: dict[str, list[str]] = {}
    for alias, name in aliases.items():
        aliases_of.setdefault(name, []).append(alias)
    for name, entry in sorted({**entries, **plugins}.items(), key=lambda kv: kv[0].lower()):
        also = f" (also: {', '.join(aliases_of[name])})" if name in aliases_of else ""
        source = f" [{entry['source']}]" if "source" in entry else ""
        lines.append(f"  {name}{also}{source}" + (f" - {entry['doc']}" if entry.get("doc") else ""))
        own, _ = _own_and_base(entry)
        if own:
            lines.append(f"      {_signature_line(own)}" + (", **kwargs" if entry.get("open") else ""))
    if extra:
        lines.append(f"  also understood by Keras's compile(): {', '.join(extra)}")
    return "\n".join(lines) + "\n"


def describe(name: str, with_plugins: bool = False) -> str:
    """One type's kind, class, docstring line and arguments (name, default or 'required', description)."""
    from framework.errors import FrameworkError, did_you_mean

    found = catalogue.find(name)
    if with_plugins and not found:
        for kind in catalogue.KINDS:
            entry = plugin_entries(kind).get(name)
            if entry is not None:
                found.append((kind, name, entry))
    if not found:
        extra = [(k, n) for k in ("loss", "metric") for n in catalogue.load()["kinds"][k].get("extra_names", [])]
        kinds = [k for k, n in extra if n == name]
        if kinds:
            return f"{name}: a {' and '.join(kinds)} name that Keras's compile() understands\n"
        every = {n for kind in catalogue.KINDS for n in catalogue.names(kind)}
        raise FrameworkError(
            f"unknown type '{name}'{did_you_mean(name, every)}; `python -m framework list KIND --verbose` lists them "
            "(plugins' types with --spec or --plugin)", path="describe",
        )
    kind, canonical, entry = found[0]
    lines = [f"{canonical}: {kind.replace('_', ' ')}" + (f" ({entry['class']})" if "class" in entry else "")
             + (f", from {entry['source']}" if "source" in entry else "")]
    if canonical != name:
        lines[0] = f"{name} = " + lines[0]
    others = sorted({k for k, _, _ in found[1:]})
    if others:
        lines.append(f"  also a{'n' if others[0][0] in 'aeiou' else ''} {', '.join(others).replace('_', ' ')}")
    if entry.get("doc"):
        lines.append(f"  {entry['doc']}")
    own, base = _own_and_base(entry)
    if own:
        lines.append("")
        lines.append(f"  {'argument':{_NAME_WIDTH}} {'default':20} description")
        for arg in own:
            value = _value(arg)
            kind_of = f" [{arg['type']}]" if "type" in arg else ""
            choices = f" One of {', '.join(json.dumps(c) for c in arg['choices'])}." if "choices" in arg else ""
            text = " ".join(t for t in (arg.get("doc", ""), kind_of.strip(), choices.strip()) if t)
            lines.append(f"  {arg['name']:{_NAME_WIDTH}} {value:20} {text}".rstrip())
    elif kind in catalogue.CLASS_KINDS:
        lines.append("  (no arguments of its own)")
    if kind in catalogue.FILLED_IN:
        lines.append(f"  the framework fills in {', '.join(catalogue.FILLED_IN[kind])} when not given")
    if entry.get("open"):
        lines.append("  it also takes other keyword arguments (**kwargs)")
    if base:
        lines.append("")
        lines.append(f"  and keras.layers.Layer's: {_signature_line(base)}")
    return "\n".join(lines) + "\n"
