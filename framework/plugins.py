"""Loading plugins: Python files a spec names, and installed ``framework.plugins`` entry points.

A plugin registers into the same registry as the built-ins::

    # plugins/tempered.py
    import keras
    from framework.registry import registry

    @registry.register("layer")
    class TemperedSigmoid(keras.layers.Layer): ...

Only code the spec names (``plugins = ["../plugins/tempered.py"]``) or the
installed environment names (an entry point) is ever imported.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType

from framework.errors import SpecError
from framework.registry import registry

ENTRY_POINT_GROUP = "framework.plugins"

_loaded_files: dict[Path, ModuleType] = {}


def _import_with_source(source: str, do_import):
    previous, registry.current_source = registry.current_source, source
    try:
        return do_import()
    finally:
        registry.current_source = previous


def load_plugin_file(path: Path, *, key_path: str = "plugins") -> ModuleType:
    """Import a plugin file or package folder once per process; its registrations name it as their source."""
    path = Path(path).resolve()
    if path in _loaded_files:
        return _loaded_files[path]
    target = path / "__init__.py" if path.is_dir() else path
    if not target.is_file() or target.suffix != ".py":
        raise SpecError(f"plugin not found: {path} (a .py file or a package folder)", path=key_path)
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    module_name = f"framework_plugin_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(
        module_name, target, submodule_search_locations=[str(path)] if path.is_dir() else None
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module

    def run():
        try:
            spec.loader.exec_module(module)
        except SpecError:
            sys.modules.pop(module_name, None)
            raise
        except Exception as exc:
            sys.modules.pop(module_name, None)
            raise SpecError(f"plugin {path} failed to import: {type(exc).__name__}: {exc}", path=key_path) from None

    _import_with_source(f"plugin {path}", run)
    _loaded_files[path] = module
    return module


def resolve_plugin_paths(plugins, base_dir: Path) -> list[Path]:
    from framework.data.sources import usable_path

    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise SpecError("must be a list of paths to plugin files, e.g. [\"../plugins/tempered.py\"]", path="plugins")
    paths = []
    for i, plugin in enumerate(plugins):
        try:
            paths.append(usable_path(plugin, base_dir))
        except ValueError as exc:
            raise SpecError(str(exc), path=f"plugins[{i}]") from None
    return paths


def load_plugins(plugins, base_dir: Path) -> list[Path]:
    """Import every plugin a spec names (paths relative to the spec's folder)."""
    paths = resolve_plugin_paths(plugins, base_dir)
    for i, path in enumerate(paths):
        load_plugin_file(path, key_path=f"plugins[{i}]")
    return paths


def load_entry_points() -> None:
    """Import the installed ``framework.plugins`` entry points."""
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        source = f"entry point {entry_point.name} ({entry_point.value})"

        def run(ep=entry_point, source=source):
            try:
                ep.load()
            except SpecError:
                raise
            except Exception as exc:
                raise SpecError(f"{source} failed to import: {type(exc).__name__}: {exc}") from None

        _import_with_source(source, run)
