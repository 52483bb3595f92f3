"""The JSON Schema of the spec format (``python -m framework schema``), for editors and other tools.

It is pydantic's schema of ``Spec`` with three additions:

* a search space (``{ tune = "choice", values = [...] }``, ``$defs/SearchSpace``) is accepted wherever a value
  stands, except in ``[data]``, ``[tune]`` and ``plugins`` (where ``tune`` refuses them too);
* ``$schema`` is allowed at the top, so a JSON spec can name its schema (validation ignores it);
* from the catalogue (``framework/spec/catalogue.py``): each built-in layer, augmentation, optimizer, schedule and
  callback type's arguments (unknown ones are errors), and, unless the spec has ``plugins``, the enumerated type,
  loss and metric names, so an editor flags ``Densse`` and ``unitz``.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import copy
from typing import Any

from framework.spec import catalogue

SPACE_REF = {"$ref": "#/$defs/SearchSpace"}
#: what makes a table a search space (as framework/tuning/spaces.py recognises one): a string ``tune`` key
IS_SPACE = {"type": "object", "required": ["tune"], "properties": {"tune": {"type": "string"}}}
#: keys that stay on the outside of a wrapped schema, where editors show them
_OUTER = ("title", "description", "default", "examples")
#: tables in which search spaces are not allowed
_NO_SPACES = {"DataSpec", "WindowSpec", "SequenceSpec", "TuneSpec", "SearchSpace"}
_NO_SPACES_AT_TOP = {"data", "tune", "plugins", "$schema"}

_JSON_TYPES = {"int": "integer", "float": "number", "bool": "boolean", "str": "string", "None": "null"}

#: keys of each typed table that are the framework's own, beside the type's arguments
_OWN_KEYS = {
    "layer": catalogue.LAYER_SPEC_KEYS,
    "augmentation": ("type",),
    "optimizer": ("type", "learning_rate"),
    "lr_schedule": ("type",),
    "callback": ("type",),
}
#: where each kind's tables are declared in pydantic's $defs
_DEF_OF = {
    "layer": "LayerSpec",
    "augmentation": "AugmentationStep",
    "optimizer": "OptimizerSpec",
    "lr_schedule": "ScheduleSpec",
    "callback": "CallbackSpec",
}


def searchable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema``, or a search space in its place."""
    schema = dict(schema)
    outer = {k: schema.pop(k) for k in _OUTER if k in schema}
    if not schema:
        return outer  # anything goes already
    return {**outer, "if": IS_SPACE, "then": SPACE_REF, "else": schema}


def _allow_spaces(node: dict[str, Any]) -> None:
    """Wrap every value inside ``node`` (properties, items, dict values), in place."""
    for key, value in list(node.get("properties", {}).items()):
        _allow_spaces(value)
        node["properties"][key] = searchable(value)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            _allow_spaces(node[key])
            node[key] = searchable(node[key])
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in node.get(key, []):
            _allow_spaces(branch)


def _json_type(annotation: str) -> list[str] | None:
    parts = [p.strip() for p in annotation.split("|")]
    types = [_JSON_TYPES.get(p) for p in parts]
    return None if None in types else types


def argument_schema(arg: dict[str, Any]) -> dict[str, Any]:
    """An argument as the editor shows it: its description and default; its type where the signature annotates it."""
    schema: dict[str, Any] = {}
    default = "required" if arg.get("required") else f"default {catalogue.format_default(arg)}"
    schema["description"] = f"{arg.get('doc') or arg['name']} ({default})"
    if "default" in arg:
        schema["default"] = arg["default"]
    types = _json_type(arg["type"]) if "type" in arg else None
    if types:
        schema["type"] = types[0] if len(types) == 1 else types
    if "choices" in arg:
        schema["enum"] = arg["choices"]
    return searchable(schema) if len(schema) > 2 or "type" in schema or "enum" in schema else schema


def type_schema(kind: str, entry: dict[str, Any]) -> dict[str, Any]:
    """A typed table of one built-in type: its own keys and the type's arguments; nothing else."""
    schema: dict[str, Any] = {"properties": {key: True for key in _OWN_KEYS[kind]}}
    for arg in entry.get("args", []):
        if arg["name"] not in schema["properties"]:
            schema["properties"][arg["name"]] = argument_schema(arg)
    if not entry.get("open"):
        schema["additionalProperties"] = False
    filled = catalogue.FILLED_IN.get(kind, ())
    required = [a["name"] for a in entry.get("args", []) if a.get("required") and a["name"] not in filled
                and a["name"] not in _OWN_KEYS[kind]]
    if required:
        schema["required"] = required
    return schema


def _names_schema(kind: str) -> dict[str, Any]:
    return {"if": IS_SPACE, "then": True, "else": {"enum": catalogue.all_names(kind)}}


def _typed_tables(schema: dict[str, Any]) -> None:
    """Each kind's built-in types and their arguments, in the kind's $defs table (types a plugin adds are free)."""
    defs = schema["$defs"]
    for kind, def_name in _DEF_OF.items():
        if def_name not in defs:
            continue
        aliases_of: dict[str, list[str]] = {}
        for alias, name in catalogue.kind_aliases(kind).items():
            aliases_of.setdefault(name, []).append(alias)
        rules = []
        for name, entry in catalogue.kind_entries(kind).items():
            ref = f"{kind}.{name}"
            defs[ref] = type_schema(kind, entry)
            spelled = [name, *aliases_of.get(name, [])]
            condition = {"const": name} if len(spelled) == 1 else {"enum": spelled}
            rules.append({"if": {"required": ["type"], "properties": {"type": condition}}, "then": {"$ref": f"#/$defs/{ref}"}})
        defs[def_name]["allOf"] = rules


def _names_unless_plugins(schema: dict[str, Any]) -> None:
    """Without ``plugins``, every type, loss and metric name is one the catalogue knows."""
    def typed(kind: str) -> dict[str, Any]:
        return {"properties": {"type": _names_schema(kind)}}

    loss = _names_schema("loss")
    metric = _names_schema("metric")
    strict = {
        "properties": {
            "model": {"properties": {"layers": {"items": typed("layer")}}},
            "augmentation": {"properties": {"steps": {"items": typed("augmentation")}}},
            "train": {"properties": {
                "optimizer": typed("optimizer"),
                "lr_schedule": typed("lr_schedule"),
                "callbacks": {"items": typed("callback")},
                "loss": {"if": IS_SPACE, "then": True, "else": {
                    "if": {"type": "string"}, "then": loss, "else": {"additionalProperties": loss},
                }},
                "metrics": {"if": IS_SPACE, "then": True, "else": {
                    "items": metric,
                    "additionalProperties": {"if": IS_SPACE, "then": True, "else": {"items": metric}},
                }},
            }},
        }
    }
    has_plugins = {"required": ["plugins"], "properties": {"plugins": {"type": "array", "minItems": 1}}}
    schema.setdefault("allOf", []).append({"if": has_plugins, "else": strict})


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema ``python -m framework schema`` prints."""
    from framework.spec.schema import Spec
    from framework.tuning.spaces import SearchSpace

    schema = copy.deepcopy(Spec.model_json_schema())
    defs = schema["$defs"]
    for name, definition in defs.items():
        if name not in _NO_SPACES:
            _allow_spaces(definition)
    for key, value in list(schema["properties"].items()):
        if key not in _NO_SPACES_AT_TOP:
            _allow_spaces(value)
            schema["properties"][key] = searchable(value)
    defs["SearchSpace"] = SearchSpace.model_json_schema(by_alias=True)
    _typed_tables(schema)
    _names_unless_plugins(schema)
    schema["properties"] = {
        "$schema": {"type": "string", "description": "The JSON Schema this file follows, for editors; ignored by validation."},
        **schema["properties"],
    }
    # draft 7: what VS Code and Taplo support best; the schema uses no keyword of later drafts ($defs is only where
    # the $refs point, and no $ref has validating siblings, which draft 7 would ignore)
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    schema["description"] += (
        " Any value may instead be a SearchSpace table ({ tune = ... }), searched by `tune` (not in [data], [tune] "
        f"or plugins). Types and their arguments are those of Keras {catalogue.load()['keras']} and the framework's "
        "blocks; a spec with plugins may name other types."
    )
    return schema
