"""Read a TOML or JSON spec, apply ``--set`` overrides, validate, and report errors by key path."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from framework.errors import SpecError, SpecErrors, format_path
from framework.spec.schema import Spec

FORMATS = {".toml": "toml", ".json": "json"}


@dataclass
class LoadedSpec:
    """A validated spec with where it came from."""

    spec: Spec
    path: Path | None
    text: str
    overrides: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    #: search spaces in ``raw``: {name: (key path, SearchSpace)}; ``spec`` holds their defaults
    spaces: dict[str, Any] = field(default_factory=dict)
    #: "toml" or "json" for a spec given as a dict or text (no file)
    format: str | None = None
    #: what the spec's relative paths are relative to
    base_dir: Path | None = None

    @property
    def suffix(self) -> str:
        """The spec's file suffix, for the copy a run folder keeps."""
        if self.path is not None:
            return self.path.suffix.lower()
        return f".{self.format or 'json'}"

    @property
    def file(self) -> str:
        return str(self.path) if self.path else "<spec>"

    def resolved(self) -> dict[str, Any]:
        """Every option with its default filled in, as JSON-ready data."""
        return self.spec.model_dump(mode="json")


#: a JSON spec may name its JSON Schema at the top (for editors); validation ignores it
SCHEMA_KEY = "$schema"


def without_schema_key(data: dict[str, Any]) -> dict[str, Any]:
    """The spec without its top-level ``$schema`` (an editor's pointer to the JSON Schema, not an option)."""
    return {k: v for k, v in data.items() if k != SCHEMA_KEY} if SCHEMA_KEY in data else data


def parse_text(text: str, fmt: str, file: str) -> dict[str, Any]:
    if fmt == "toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(f"TOML syntax error: {exc}", file=file) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"JSON syntax error: {exc.msg} (at line {exc.lineno}, column {exc.colno})", file=file) from None
    if not isinstance(data, dict):
        raise SpecError("a JSON spec must be an object at the top level", file=file)
    return data


def toml_ready(value: Any) -> Any:
    """Spec data as TOML can hold it: TOML has no null, so unset keys are dropped."""
    if isinstance(value, dict):
        return {k: toml_ready(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [toml_ready(v) for v in value if v is not None]
    return value


def read_spec_file(path: str | Path) -> tuple[Path, str, dict[str, Any]]:
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SpecError(f"unknown spec format '{path.suffix}'; use .toml or .json", file=str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("spec file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file: {exc}", file=str(path)) from None
    return path, text, parse_text(text, fmt, str(path))


# --- overrides -------------------------------------------------------------------------

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_key_path(key: str) -> list[str | int]:
    """'model.layers[0].filters' -> ['model', 'layers', 0, 'filters']."""
    parts: list[str | int] = []
    pos = 0
    key = key.strip()
    while pos < len(key):
        if key[pos] == "." and parts:
            pos += 1
        match = _TOKEN.match(key, pos)
        if not match:
            raise SpecError(f"cannot parse key path '{key}'; write it like model.layers[0].filters", path=key)
        parts.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        pos = match.end()
    if not parts or not isinstance(parts[0], str):
        raise SpecError(f"cannot parse key path '{key}'", path=key)
    return parts


def parse_value(text: str) -> Any:
    """A TOML value (3, 1e-3, true, "x", [1, 2], { a = 1 }); anything else is a plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(data: dict[str, Any], assignment: str) -> None:
    key, sep, value = assignment.partition("=")
    if not sep:
        raise SpecError(f"--set expects KEY=VALUE, got '{assignment}'")
    parts = parse_key_path(key)
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        here = format_path(parts[: i + 1])
        nxt = parts[i + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                size = len(node) if isinstance(node, list) else 0
                raise SpecError(f"index {part} is out of range (the list has {size} items)", path=here)
            if not isinstance(node[part], (dict, list)):
                node[part] = {}
            node = node[part]
        else:
            if not isinstance(node, dict):
                raise SpecError("is not a table, so it has no keys", path=format_path(parts[:i]))
            if not isinstance(node.get(part), (dict, list)):
                node[part] = [] if isinstance(nxt, int) else {}
            node = node[part]
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise SpecError(f"index {last} is out of range", path=format_path(parts))
    elif not isinstance(node, dict):
        raise SpecError("is not a table, so it has no keys", path=format_path(parts[:-1]))
    node[last] = parse_value(value.strip())


# --- validation ------------------------------------------------------------------------

_UNION_TAGS = {"str", "int", "float", "bool", "list", "dict", "none"}


def _clean_loc(loc: tuple) -> list[str | int]:
    """Drop pydantic's union-branch tags ('float', "literal['a']", 'ScheduleSpec') from an error location."""
    return [
        p
        for p in loc
        if isinstance(p, int)
        or not (p in _UNION_TAGS or "[" in p or (p[:1].isupper() and p.endswith("Spec")) or p.startswith("function-"))
    ]


def errors_from_validation(exc: ValidationError, file: str) -> SpecError:
    seen: dict[str, SpecError] = {}
    for err in exc.errors(include_url=False):
        loc = _clean_loc(err["loc"])
        if err["type"] == "unknown_key":
            loc.append(err["ctx"]["key"])
        # whole-spec checks name the key they are about in their context
        path = format_path(loc) or (err.get("ctx") or {}).get("path") or "<top level>"
        message = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if err["type"] == "missing":
            message = "missing required key"
        elif err["type"] not in ("unknown_key", "value_error") and "input" in err and not isinstance(err["input"], (dict, list)):
            message += f" (got {err['input']!r})"
        # one message per key: union branches repeat the same key
        seen.setdefault(path, SpecError(message, path=path, file=file))
    errors = list(seen.values())
    return errors[0] if len(errors) == 1 else SpecErrors(errors)


def validate(data: dict[str, Any], *, file: str, base_dir: Path) -> Spec:
    try:
        return Spec.model_validate(data, context={"base_dir": str(base_dir)})
    except ValidationError as exc:
        raise errors_from_validation(exc, file) from None


def validate_resolved(resolved: dict[str, Any], folder: Path, resuming: bool = False) -> Spec:
    """A run folder's resolved.json (already read) as a spec; it holds absolute paths, so it validates wherever
    the original spec was. Its ``_overrides`` entry (the --set list) is not part of the spec; an older
    ``spec_version`` is upgraded first (spec/upgrade.py), and the rules for starting a run are not re-applied."""
    from framework.spec.upgrade import upgrade

    where = str(Path(folder) / "resolved.json")
    data = upgrade({k: v for k, v in resolved.items() if k != "_overrides"}, where)
    try:
        # reading a finished run skips the rules for starting one; resuming continues training, so they apply
        return Spec.model_validate(data, context={"base_dir": str(folder), "existing_run": not resuming})
    except ValidationError as exc:
        raise errors_from_validation(exc, where) from None


def _cwd_relative_files(node: Any) -> Any:
    """Layer arguments named ``*_file`` inside a --set value, made absolute against the current folder."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("_file") and isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
                node[key] = str(Path.cwd() / value)
            else:
                _cwd_relative_files(value)
    elif isinstance(node, list):
        for value in node:
            _cwd_relative_files(value)
    return node


def _paths_from_command_line(data: dict[str, Any], overrides: list[str]) -> None:
    """A path given with --set is relative to the current folder, as on any command line (not to the spec)."""
    for assignment in overrides:
        parts = parse_key_path(assignment.partition("=")[0])
        node: Any = data
        for part in parts[:-1]:
            node = node[part]
        last = parts[-1]
        if isinstance(last, str) and last.endswith("_file"):
            node[last] = _cwd_relative_files({last: node[last]})[last]
        else:
            _cwd_relative_files(node[last])
    if not any(o.partition("=")[0].strip() == "data.source" for o in overrides):
        return
    source = (data.get("data") or {}).get("source")
    if not isinstance(source, str):
        return
    from framework.data.sources import parse_source
    from framework.registry import registry

    try:
        scheme, arg = parse_source(source)
    except ValueError:
        return  # the schema reports it
    entry = registry.find("data_source", scheme)
    if entry is not None and getattr(entry.obj, "takes_path", False) and not Path(arg).expanduser().is_absolute():
        data["data"]["source"] = f"{scheme}:{Path.cwd() / arg}"


def load_spec(path: str | Path, overrides: list[str] | None = None, base_dir: Path | None = None) -> LoadedSpec:
    """Read, override and validate a spec file. Raises SpecError with the file and key path.

    ``base_dir``: what relative paths in the spec are relative to (default: the spec file's folder).
    """
    path, text, data = read_spec_file(path)
    return _load(data, text, path, base_dir or path.resolve().parent, list(overrides or []))


def load_spec_input(spec: str | Path | dict, overrides: list[str] | None = None) -> LoadedSpec:
    """A spec given as a file path, a dict, or TOML/JSON text (the Python API's ``spec`` argument).

    A dict or text has no file: its relative paths are relative to the current folder, and the run folder
    keeps it as ``spec.json`` / ``spec.toml`` exactly as given.

        >>> load_spec_input({"name": "mlp", "data": {"source": "sklearn:digits"}, "model": {...}})
    """
    import copy

    overrides = list(overrides or [])
    if isinstance(spec, dict):
        data = copy.deepcopy(spec)
        text = json.dumps(spec, indent=2, default=str) + "\n"
        return _load(data, text, None, Path.cwd(), overrides, fmt="json")
    if isinstance(spec, Path) or ("\n" not in spec and Path(spec).suffix.lower() in FORMATS):
        return load_spec(spec, overrides)
    fmt = "json" if spec.lstrip().startswith("{") else "toml"
    return _load(parse_text(spec, fmt, "<spec>"), spec, None, Path.cwd(), overrides, fmt=fmt)


def _load(data: dict[str, Any], text: str, path: Path | None, base_dir: Path, overrides: list[str],
          fmt: str | None = None) -> LoadedSpec:
    file = str(path) if path else "<spec>"
    for assignment in overrides:
        try:
            apply_override(data, assignment)
        except SpecError as exc:
            exc.file = f"--set {assignment}"
            raise
    _paths_from_command_line(data, overrides)
    if "plugins" in data:  # before validation: plugins may register data sources the schema checks
        from framework.plugins import load_plugins

        try:
            load_plugins(data["plugins"], base_dir)
        except SpecError as exc:
            exc.file = exc.file or file
            raise
    from framework.tuning.spaces import extract_spaces, substitute

    data = without_schema_key(data)  # so that tune's trials validate ``raw`` as it is
    spaces = extract_spaces(data, file=file)
    spec = validate(substitute(data, spaces, {}), file=file, base_dir=base_dir)
    return LoadedSpec(spec=spec, path=path, text=text, overrides=overrides, raw=data, spaces=spaces, format=fmt,
                      base_dir=base_dir)
