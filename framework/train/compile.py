"""``[train]`` -> optimizer, schedule, losses and metrics, then ``model.compile``."""

from __future__ import annotations

from typing import Any

from framework.build.layers import accepted_kwargs
from framework.errors import SpecError, did_you_mean
from framework.registry import BUILTIN, registry
from framework.spec.schema import Spec

# Names Keras's compile() understands that are not attributes of keras.losses/metrics.
_COMPILE_ALIASES = {"accuracy", "acc", "crossentropy", "ce", "mse", "mae", "mape", "msle"}


def _instantiate(kind: str, type_name: str, kwargs: dict[str, Any], path: str):
    cls = registry.get(kind, type_name, path=f"{path}.type")
    allowed = accepted_kwargs(cls) if isinstance(cls, type) else None
    for key in kwargs:
        if allowed is not None and key not in allowed:
            raise SpecError(f"{type_name} has no argument '{key}'{did_you_mean(key, allowed)}", path=f"{path}.{key}")
    try:
        return cls(**kwargs)
    except Exception as exc:
        raise SpecError(f"{type_name}: {exc}", path=path) from None


def make_learning_rate(spec: Spec, steps_per_epoch: int):
    lr = spec.train.optimizer.learning_rate
    schedule = spec.train.lr_schedule
    if schedule is None:
        return lr
    cls = registry.get("lr_schedule", schedule.type, path="train.lr_schedule.type")
    kwargs = schedule.kwargs
    accepted = accepted_kwargs(cls) or set()
    if "initial_learning_rate" in accepted:
        kwargs.setdefault("initial_learning_rate", lr)
    if "decay_steps" in accepted:
        kwargs.setdefault("decay_steps", max(1, spec.train.epochs * steps_per_epoch))
    return _instantiate("lr_schedule", schedule.type, kwargs, "train.lr_schedule")


def make_optimizer(spec: Spec, steps_per_epoch: int, extra: dict[str, Any] | None = None):
    opt = spec.train.optimizer
    kwargs = {**opt.kwargs, "learning_rate": make_learning_rate(spec, steps_per_epoch), **(extra or {})}
    return _instantiate("optimizer", opt.type, kwargs, "train.optimizer")


def resolve_named(kind: str, name: str, path: str):
    """A loss or metric name: Keras's own stay strings (compile resolves them); plugins become objects."""
    import keras

    entry = registry.find(kind, name)
    if entry is not None and entry.source != BUILTIN:
        return entry.obj() if isinstance(entry.obj, type) else entry.obj
    if entry is not None or name in _COMPILE_ALIASES:
        return name
    getter = keras.losses.get if kind == "loss" else keras.metrics.get
    try:
        getter(name)
        return name
    except Exception:
        names = list(registry.entries(kind)) + sorted(_COMPILE_ALIASES)
        raise SpecError(f"unknown {kind} '{name}'{did_you_mean(name, names)}", path=path) from None


def resolve_losses(spec: Spec):
    loss = spec.train.loss
    if isinstance(loss, dict):
        return {out: resolve_named("loss", name, f"train.loss.{out}") for out, name in loss.items()}
    return resolve_named("loss", loss, "train.loss")


def resolve_metrics(spec: Spec):
    metrics = spec.train.metrics
    if isinstance(metrics, dict):
        return {
            out: [resolve_named("metric", m, f"train.metrics.{out}[{i}]") for i, m in enumerate(names)]
            for out, names in metrics.items()
        }
    return [resolve_named("metric", m, f"train.metrics[{i}]") for i, m in enumerate(metrics)]


def compile_model(model, spec: Spec, steps_per_epoch: int, *, loss=None, optimizer=None) -> None:
    """Compile with the spec's optimizer, loss, metrics and XLA mode."""
    outputs = list(model.output_names)
    for key in ("loss", "loss_weights", "metrics"):
        value = getattr(spec.train, key)
        if isinstance(value, dict):
            unknown = [k for k in value if k not in outputs]
            if unknown:
                raise SpecError(f"names outputs {unknown} the model does not have; outputs: {outputs}", path=f"train.{key}")
    try:
        model.compile(
            optimizer=optimizer or make_optimizer(spec, steps_per_epoch),
            loss=loss if loss is not None else resolve_losses(spec),
            loss_weights=spec.train.loss_weights,
            metrics=resolve_metrics(spec),
            jit_compile=spec.train.jit_compile,
        )
    except SpecError:
        raise
    except Exception as exc:
        raise SpecError(f"cannot compile the model: {exc}", path="train") from None
