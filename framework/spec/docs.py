"""The spec reference as Markdown, generated from the schema classes (README's "Spec reference")."""

from __future__ import annotations

import functools
import json
import operator
import re
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from framework.spec.schema import Spec


def _without_constraints(annotation: Any) -> Any:
    """``Annotated[int, Field(ge=1)]`` -> ``int``, also inside a union (the bounds are in the description)."""
    if get_origin(annotation) is Annotated:
        return get_args(annotation)[0]
    if get_origin(annotation) is Union and any(get_origin(arg) is Annotated for arg in get_args(annotation)):
        return functools.reduce(operator.or_, [_without_constraints(arg) for arg in get_args(annotation)])
    return annotation


def _type_name(annotation: Any) -> str:
    annotation = _without_constraints(annotation)
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = text or str(annotation)
    text = re.sub(r"framework\.spec\.(?:schema|sections\.\w+)\.", "", text)  # where a spec table is declared
    for noise in ("typing.", "NoneType"):
        text = text.replace(noise, "" if noise != "NoneType" else "None")
    return text


def _default(field) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "(table)"
        return f"`{json.dumps(value)}`"
    if field.default is PydanticUndefined:
        return "required"
    return f"`{json.dumps(field.default)}`"


def _sections(model: type[BaseModel], prefix: str, out: list[tuple[str, type[BaseModel]]]) -> None:
    out.append((prefix, model))
    for name, field in model.model_fields.items():
        for candidate in _models_in(field.annotation):
            _sections(candidate, f"{prefix}.{name}" if prefix else name, out)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Spec tables inside an annotation such as ``list[InputSpec] | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


def spec_reference() -> str:
    from framework.tuning.spaces import SearchSpace

    sections: list[tuple[str, type[BaseModel]]] = []
    _sections(Spec, "", sections)
    sections.append(("search space: { tune = ... } wherever a value stands", SearchSpace))
    lines: list[str] = []
    for prefix, model in sections:
        lines.append(f"#### `{prefix or 'top level'}`")
        if model.model_config.get("extra") == "allow":
            lines.append("Other keys are passed as keyword arguments to the named type.")
        lines.append("")
        lines.append("| key | type | default | description |")
        lines.append("|---|---|---|---|")
        for name, field in model.model_fields.items():
            name = field.alias or name
            description = (field.description or "").replace("|", "\\|")
            type_name = _type_name(field.annotation).replace("|", "\\|")
            lines.append(f"| `{name}` | {type_name} | {_default(field)} | {description} |")
        lines.append("")
    return "\n".join(lines)
