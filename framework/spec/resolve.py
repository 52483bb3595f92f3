"""The disk and registry look-ups that validating a spec needs, in one place.

The section declarations (``framework/spec/sections/``) and the top-level ``Spec`` only declare fields; where a
value names something outside the spec (a data source, a file, a plugin, a finished run) their validators call a
resolver here. Each takes the validation context (``info.context``: ``base_dir``, the spec's folder, which
relative paths are resolved against; default the current folder) and raises what pydantic turns into a spec error
at that key. ``framework.data.sources`` is imported inside the functions, so importing the schema stays light.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic_core import PydanticCustomError

from framework.spec.sections.base import LATEST, RUN_NAME_PATTERN


def spec_folder(context: Mapping[str, Any] | None) -> Path:
    """The folder relative paths in the spec are resolved against: the context's ``base_dir``, else the current one."""
    base_dir = (context or {}).get("base_dir")
    return Path(base_dir) if base_dir else Path.cwd()


def resolve_data_source(value: str, context: Mapping[str, Any] | None) -> str:
    """data.source: ``SCHEME:ARG`` with the scheme looked up in the registry and its argument resolved by the source
    (a path made absolute against the spec's folder)."""
    from framework.data.sources import resolve_source_string

    return resolve_source_string(value, spec_folder(context))


def resolve_plugin_paths(paths: list[str], context: Mapping[str, Any] | None) -> list[str]:
    """plugins: each file or package folder made absolute against the spec's folder (imported later, not here)."""
    from framework.data.sources import usable_path

    base_dir = spec_folder(context)
    return [str(usable_path(p, base_dir)) for p in paths]


def resolve_layer_files(arguments: dict[str, Any] | None, context: Mapping[str, Any] | None) -> None:
    """A layer's arguments named ``*_file``: made absolute against the spec's folder, in place; each must be a file."""
    from framework.data.sources import usable_path

    base_dir = spec_folder(context)
    for key, value in (arguments or {}).items():
        if key.endswith("_file") and isinstance(value, str):
            path = usable_path(value, base_dir)
            if not path.is_file():
                raise PydanticCustomError("layer_file", "{key}: file not found: {path}", {"key": key, "path": str(path)})
            arguments[key] = str(path)


def resolve_run_reference(value: str | None, context: Mapping[str, Any] | None) -> str | None:
    """A finished run (model.init_from, distill.teacher): 'latest:NAME' (looked up when training starts) or a run
    folder, made absolute, that holds a model.keras. "" switches the reference off (e.g. with --set)."""
    from framework.data.sources import usable_path

    if not value:
        return None
    if value.startswith(LATEST):
        if not re.match(RUN_NAME_PATTERN, value[len(LATEST):]):
            raise ValueError(f"'{value}': after 'latest:' comes a run name (letters, digits, '.', '_', '-')")
        return value
    folder = usable_path(value, spec_folder(context))
    if not (folder / "model.keras").is_file():
        raise ValueError(f"{folder} is not a finished run folder (it has no model.keras)")
    return str(folder)
