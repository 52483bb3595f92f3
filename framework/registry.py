"""One registry for every named thing a spec can use.

Built-ins register exactly as plugins do::

    from framework.registry import registry

    @registry.register("layer", "TemperedSigmoid")
    class TemperedSigmoid(keras.layers.Layer): ...

Kinds: layer, augmentation, data_source, loss, metric, callback, optimizer,
lr_schedule. Each kind checks what it is given (a layer must be a Keras
``Layer`` subclass, a data source a ``DataSource`` subclass, ...). Large
built-in families (all of ``keras.layers``) are added by *providers*:
functions that run the first time a kind is looked up, so that importing the
registry never imports TensorFlow. Every built-in provider is added at the
bottom of this file.

Registrations made by the framework's own modules (``framework.*``) are
built-ins whoever imports them first; they never run providers or load entry
points, so importing a built-in module can't re-enter the registry half-way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from framework.errors import SpecError, did_you_mean

KINDS = (
    "layer",
    "augmentation",
    "data_source",
    "loss",
    "metric",
    "callback",
    "optimizer",
    "lr_schedule",
)

BUILTIN = "built-in"

# Kinds whose classes end up inside a saved model.
SERIALIZABLE_KINDS = {"layer", "augmentation", "loss", "metric"}


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Any
    source: str


# Each kind as `python -m framework list WORD` names it.
LIST_WORDS = {
    "layer": "layers",
    "augmentation": "augmentations",
    "data_source": "datasets",
    "loss": "losses",
    "metric": "metrics",
    "callback": "callbacks",
    "optimizer": "optimizers",
    "lr_schedule": "schedules",
}


class NameClash(SpecError):
    pass


class WrongKind(SpecError, TypeError):
    """An object registered under a kind it can't serve (e.g. a function as a layer)."""


# What each kind accepts: (what to tell the author, module the base class lives in, its names).
# Checked by walking the object's MRO by name, so that the check imports nothing (no Keras, no cycle).
_EXPECTED: dict[str, tuple[str, str, frozenset[str]]] = {
    "layer": ("a subclass of keras.layers.Layer", "keras", frozenset({"Layer"})),
    "augmentation": ("a subclass of keras.layers.Layer", "keras", frozenset({"Layer"})),
    "data_source": ("a subclass of framework.data.sources.DataSource", "framework.data.sources", frozenset({"DataSource"})),
    "callback": ("a subclass of keras.callbacks.Callback", "keras", frozenset({"Callback"})),
    "optimizer": ("a subclass of keras.optimizers.Optimizer", "keras", frozenset({"Optimizer", "BaseOptimizer"})),
    "lr_schedule": (
        "a subclass of keras.optimizers.schedules.LearningRateSchedule",
        "keras",
        frozenset({"LearningRateSchedule"}),
    ),
    "loss": ("a function or a subclass of keras.losses.Loss", "keras", frozenset({"Loss"})),
    "metric": ("a function or a subclass of keras.metrics.Metric", "keras", frozenset({"Metric"})),
}
# Kinds that also take a plain function (anything callable that is not a class).
_CALLABLE_KINDS = {"loss", "metric"}


def _in_module(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _has_base(cls: type, package: str, names: frozenset[str]) -> bool:
    return any(
        base.__name__ in names and _in_module(getattr(base, "__module__", "") or "", package)
        for base in getattr(cls, "__mro__", ())
    )


def _describe(obj: Any) -> str:
    if isinstance(obj, type):
        return f"the class {obj.__module__}.{obj.__qualname__}"
    if callable(obj) and hasattr(obj, "__qualname__"):
        return f"the function {getattr(obj, '__module__', None) or '?'}.{obj.__qualname__}"
    return f"{obj!r:.60} (an instance of {type(obj).__module__}.{type(obj).__qualname__})"


def check_accepts(kind: str, name: str, obj: Any, source: str = BUILTIN) -> None:
    """Raise WrongKind unless ``obj`` is what ``kind`` takes."""
    expected, package, bases = _EXPECTED[kind]
    if isinstance(obj, type):
        if _has_base(obj, package, bases):
            return
    elif kind in _CALLABLE_KINDS and callable(obj):
        return
    by = "" if source == BUILTIN else f" (registered by {source})"
    hint = "; register the class, not an instance" if _has_base(type(obj), package, bases) else ""
    raise WrongKind(f"{kind} '{name}'{by} must be {expected}; got {_describe(obj)}{hint}")


def _is_framework_module(module: str) -> bool:
    return _in_module(module, "framework")


class Registry:
    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
        self._providers: dict[str, list[Callable[[], dict[str, Any]]]] = {k: [] for k in KINDS}
        self._aliases: dict[str, dict[str, str]] = {k: {} for k in KINDS}
        # The source that registrations made now are attributed to (a plugin file while it loads).
        self.current_source = BUILTIN
        self._entry_points_loaded = False

    def _check_kind(self, kind: str) -> None:
        if kind not in self._entries:
            raise ValueError(f"unknown registry kind {kind!r}; kinds are {', '.join(KINDS)}")

    def add(self, kind: str, name: str, obj: Any, source: str | None = None) -> Any:
        self._check_kind(kind)
        if source is None:
            # the framework's own modules are built-ins even when a plugin's import is what first imports them
            module = getattr(obj, "__module__", None) or ""
            source = BUILTIN if _is_framework_module(module) else self.current_source
        check_accepts(kind, name, obj, source)
        if source != BUILTIN:
            # a plugin's name must not clash with a built-in: bring the built-ins in first. Built-ins don't do
            # this: they register while their module imports, and running providers then would import other
            # modules (and load entry points) in the middle of that import.
            self._run_providers(kind)
        existing = self._entries[kind].get(name)
        if existing is not None and existing.obj is not obj:
            raise NameClash(
                f"{kind} '{name}' is registered twice: by {existing.source} and by {source}; "
                "rename one of them"
            )
        self._entries[kind][name] = Entry(name, obj, source)
        if source != BUILTIN and isinstance(obj, type) and kind in SERIALIZABLE_KINDS:
            import keras

            # so that a saved model.keras names the class and reloads once the plugin is imported
            keras.saving.register_keras_serializable(package="framework", name=name)(obj)
        return obj

    def register(self, kind: str, name: str | None = None, source: str | None = None):
        """Decorator form of :meth:`add`; the name defaults to the object's ``__name__``."""

        def decorator(obj):
            self.add(kind, name or obj.__name__, obj, source)
            return obj

        return decorator

    def add_provider(self, kind: str, provider: Callable[[], dict[str, Any]]) -> None:
        """Register many built-ins lazily: ``provider()`` returns {name: obj}."""
        self._check_kind(kind)
        self._providers[kind].append(provider)

    def alias(self, kind: str, alias: str, name: str) -> None:
        self._aliases[kind][alias] = name

    def _run_providers(self, kind: str) -> None:
        if not self._entry_points_loaded:
            self._entry_points_loaded = True  # before loading: entry points register through add()
            from framework.plugins import load_entry_points

            load_entry_points()
        providers, self._providers[kind] = self._providers[kind], []
        for provider in providers:
            for name, obj in provider().items():
                existing = self._entries[kind].setdefault(name, Entry(name, obj, BUILTIN))
                if existing.obj is not obj:
                    raise NameClash(
                        f"{kind} '{name}' is registered twice: by {existing.source} "
                        f"({_describe(existing.obj)}) and by a built-in provider ({_describe(obj)}); "
                        "rename one of them"
                    )

    def entries(self, kind: str) -> dict[str, Entry]:
        self._check_kind(kind)
        self._run_providers(kind)
        return dict(sorted(self._entries[kind].items(), key=lambda kv: kv[0].lower()))

    def __contains__(self, key: tuple[str, str]) -> bool:
        kind, name = key
        return self.find(kind, name) is not None

    def find(self, kind: str, name: str) -> Entry | None:
        self._check_kind(kind)
        self._run_providers(kind)
        name = self._aliases[kind].get(name, name)
        return self._entries[kind].get(name)

    def registered(self, kind: str, name: str) -> Entry | None:
        """What is registered under ``name`` so far (by a plugin, say), without running the built-in providers."""
        self._check_kind(kind)
        return self._entries[kind].get(self._aliases[kind].get(name, name))

    def registered_entries(self, kind: str) -> dict[str, Entry]:
        """Everything registered under ``kind`` so far, without running the built-in providers (no Keras import)."""
        self._check_kind(kind)
        return dict(self._entries[kind])

    def get(self, kind: str, name: str, *, path: str | None = None) -> Any:
        """Look a name up; unknown names raise a SpecError with a suggestion."""
        if not isinstance(name, str):
            raise SpecError(f"expected the name of a {kind.replace('_', ' ')} (a string), got {name!r:.80}", path=path)
        entry = self.find(kind, name)
        if entry is None:
            names = list(self._entries[kind]) + list(self._aliases[kind])
            raise SpecError(
                f"unknown {kind.replace('_', ' ')} '{name}'{did_you_mean(name, names)}; "
                f"`python -m framework list {LIST_WORDS.get(kind, kind)}` shows them all",
                path=path,
            )
        return entry.obj


registry = Registry()


# --- built-in providers -------------------------------------------------------
# Each runs on first lookup of its kind, so only a command that needs Keras imports it.


def _keras_classes(module_name: str, base_name: str, lower: bool = False) -> dict[str, Any]:
    import importlib

    import keras

    module = importlib.import_module(module_name)
    base = keras
    for attr in base_name.split(".")[1:]:
        base = getattr(base, attr)
    found = {}
    for attr in dir(module):
        obj = getattr(module, attr)
        if isinstance(obj, type) and issubclass(obj, base) and obj is not base:
            found[attr] = obj
            if lower:
                found.setdefault(attr.lower(), obj)
    return found


def _keras_callables(module_name: str) -> dict[str, Any]:
    import importlib

    module = importlib.import_module(module_name)
    return {
        name: getattr(module, name)
        for name in dir(module)
        if not name.startswith("_") and name not in {"get", "serialize", "deserialize"} and callable(getattr(module, name))
    }


def _keras_augmentations() -> dict[str, Any]:
    # framework.build.augment knows which Keras layers are augmentations (and imports Keras)
    from framework.build.augment import keras_augmentations as augmentations

    return augmentations()


def _import_builtins(*modules: str) -> Callable[[], dict[str, Any]]:
    """A provider that imports modules whose decorators register built-ins."""

    def provider() -> dict[str, Any]:
        import importlib

        for module in modules:
            importlib.import_module(module)
        return {}

    return provider


registry.add_provider("layer", lambda: _keras_classes("keras.layers", "keras.layers.Layer"))
registry.add_provider("optimizer", lambda: _keras_classes("keras.optimizers", "keras.optimizers.Optimizer", lower=True))
registry.add_provider(
    "lr_schedule",
    lambda: _keras_classes("keras.optimizers.schedules", "keras.optimizers.schedules.LearningRateSchedule"),
)
registry.add_provider("loss", lambda: _keras_callables("keras.losses"))
registry.add_provider("metric", lambda: _keras_callables("keras.metrics"))
registry.add_provider("callback", lambda: _keras_classes("keras.callbacks", "keras.callbacks.Callback"))
registry.add_provider("layer", _import_builtins("framework.build.blocks"))
registry.add_provider("augmentation", _keras_augmentations)
registry.add_provider("data_source", _import_builtins("framework.data.sources", "framework.data.generated", "framework.data.images",
                                                    "framework.data.records"))
