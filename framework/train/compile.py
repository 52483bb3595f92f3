"""``[train]`` -> optimizer, schedule, losses and metrics, then ``model.compile``."""

from __future__ import annotations

from typing import Any

from framework.build.layers import accepted_kwargs, instantiate
from framework.errors import SpecError, did_you_mean
from framework.registry import BUILTIN, registry
from framework.spec.schema import Spec

# Names Keras's compile() understands that are not attributes of keras.losses/metrics.
COMPILE_ALIASES = {"accuracy", "acc", "crossentropy", "ce", "mse", "mae", "mape", "msle"}


def _instantiate(kind: str, type_name: str, kwargs: dict[str, Any], path: str):
    return instantiate(registry.get(kind, type_name, path=f"{path}.type"), type_name, kwargs, path)


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


def make_optimizer(spec: Spec, steps_per_epoch: int):
    """The spec's optimizer, with regularization's weight decay and gradient clipping."""
    opt, reg = spec.train.optimizer, spec.regularization
    kwargs = {**opt.kwargs, "learning_rate": make_learning_rate(spec, steps_per_epoch)}
    extras = {
        "weight_decay": reg.weight_decay or None,
        "clipnorm": reg.clip_norm,
        "global_clipnorm": reg.clip_global_norm,
        "clipvalue": reg.clip_value,
    }
    kwargs.update({k: v for k, v in extras.items() if v is not None})
    return _instantiate("optimizer", opt.type, kwargs, "train.optimizer")


def resolve_named(kind: str, name: str, path: str):
    """A loss or metric name: Keras's own stay strings (compile resolves them); plugins become objects."""
    import keras

    entry = registry.find(kind, name)
    if entry is not None and entry.source != BUILTIN:
        return entry.obj() if isinstance(entry.obj, type) else entry.obj
    if entry is not None or name in COMPILE_ALIASES:
        return name
    getter = keras.losses.get if kind == "loss" else keras.metrics.get
    try:
        getter(name)
        return name
    except Exception:
        names = list(registry.entries(kind)) + sorted(COMPILE_ALIASES)
        raise SpecError(f"unknown {kind} '{name}'{did_you_mean(name, names)}", path=path) from None


# Cross-entropies that take label smoothing, by the target encoding they expect.
_SMOOTHABLE = {
    "categorical_crossentropy": "CategoricalCrossentropy",
    "binary_crossentropy": "BinaryCrossentropy",
}
SPARSE_CE = "sparse_categorical_crossentropy"


def needs_one_hot(spec: Spec, mixing: bool) -> bool:
    """Integer labels become one-hot when the loss needs it: categorical CE, label smoothing, MixUp/CutMix."""
    loss = spec.train.loss
    if isinstance(loss, dict):
        return False
    return loss == "categorical_crossentropy" or (loss == SPARSE_CE and (mixing or spec.regularization.label_smoothing > 0))


def resolve_losses(spec: Spec, one_hot: bool = False):
    """Loss objects for compile. With one-hot targets the sparse CE becomes its categorical form."""
    import keras

    loss = spec.train.loss
    smoothing = spec.regularization.label_smoothing
    if isinstance(loss, dict):
        if smoothing:
            raise SpecError("label smoothing applies to single-output models", path="regularization.label_smoothing")
        return {out: resolve_named("loss", name, f"train.loss.{out}") for out, name in loss.items()}
    if one_hot and loss == SPARSE_CE:
        loss = "categorical_crossentropy"
    if smoothing:
        if loss not in _SMOOTHABLE:
            raise SpecError(
                f"label smoothing needs a cross-entropy loss, not '{loss}'", path="regularization.label_smoothing"
            )
        return getattr(keras.losses, _SMOOTHABLE[loss])(label_smoothing=smoothing)
    return resolve_named("loss", loss, "train.loss")


def resolve_metrics(spec: Spec):
    metrics = spec.train.metrics
    if isinstance(metrics, dict):
        return {
            out: [resolve_named("metric", m, f"train.metrics.{out}[{i}]") for i, m in enumerate(names)]
            for out, names in metrics.items()
        }
    return [resolve_named("metric", m, f"train.metrics[{i}]") for i, m in enumerate(metrics)]


#: train.steps_per_execution = "auto": batches per compiled call. On 2 CPU cores a steady epoch took about half as
#: long at 16 as at 1 for MLPs and a fifth less for a small CNN (benchmarks/steps_per_execution.py); past 16 it
#: gained nothing more.
AUTO_STEPS_PER_EXECUTION = 16

#: ... but only for runs of at least this many steps (epochs x steps per epoch): the loop of several batches takes
#: 0.15-0.3 s longer to trace (benchmarks/steps_per_execution.py: a 1-epoch digits run of 45 steps trained in 0.88 s
#: at 16 against 0.73 s at 1), and a step saves about 1-1.5 ms, so shorter runs (a test's, a tune trial of an epoch
#: or two) would lose time.
AUTO_MIN_STEPS = 500

#: Callback hooks Keras calls once per compiled call rather than once per batch when steps_per_execution > 1
#: (training, validation, evaluate and predict all run that many batches per call)
BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin",
               "on_test_batch_end", "on_predict_batch_begin", "on_predict_batch_end")


def steps_per_execution(spec: Spec, steps_per_epoch: int) -> int:
    """``train.steps_per_execution`` resolved. "auto" is AUTO_STEPS_PER_EXECUTION for a run of at least
    AUTO_MIN_STEPS steps, else 1; also 1 with ``[distribute]`` (Keras's loop of several batches per call fails under
    a mirrored strategy; spec/checks.py) and when a ``train.callbacks`` class overrides a batch hook (it would see
    only every 16th batch).

    >>> steps_per_execution(spec, steps_per_epoch=45)  # 30 epochs, no batch-level callbacks
    16
    """
    chosen = spec.train.steps_per_execution
    if chosen != "auto":
        return chosen
    if spec.distribute is not None or spec.train.epochs * steps_per_epoch < AUTO_MIN_STEPS:
        return 1
    import keras

    for i, callback in enumerate(spec.train.callbacks):
        cls = registry.get("callback", callback.type, path=f"train.callbacks[{i}].type")
        if any(getattr(cls, hook, None) is not getattr(keras.callbacks.Callback, hook) for hook in BATCH_HOOKS):
            return 1
    return AUTO_STEPS_PER_EXECUTION


def compile_model(model, spec: Spec, steps_per_epoch: int, *, one_hot: bool = False, optimizer=None) -> None:
    """Compile with the spec's optimizer, loss, metrics and XLA mode."""
    outputs = list(model.output_names)
    for key in ("loss", "loss_weights", "metrics"):
        value = getattr(spec.train, key)
        if isinstance(value, dict):
            unknown = [k for k in value if k not in outputs]
            if unknown:
                raise SpecError(f"names outputs {unknown} the model does not have; outputs: {outputs}", path=f"train.{key}")
    # Poisson-sampled DP batches carry padding rows of weight 0: Keras applies sample weights only to
    # weighted_metrics, so a private model's metrics are declared there (the same names and values otherwise).
    weighted = spec.dp is not None
    try:
        model.compile(
            optimizer=optimizer or make_optimizer(spec, steps_per_epoch),
            loss=resolve_losses(spec, one_hot),
            loss_weights=spec.train.loss_weights,
            metrics=None if weighted else resolve_metrics(spec),
            weighted_metrics=resolve_metrics(spec) if weighted else None,
            jit_compile=spec.train.jit_compile,
            steps_per_execution=steps_per_execution(spec, steps_per_epoch),
        )
    except SpecError:
        raise
    except Exception as exc:
        raise SpecError(f"cannot compile the model: {exc}", path="train") from None


def build_compiled_state(model, element_spec) -> bool:
    """Create the compiled loss's and metrics' variables now, symbolically from the training dataset's
    ``element_spec``, as Keras's TensorFlow trainer does itself under a distribution strategy (compat.symbolic_build);
    without one it creates them while it traces the first train step, and a ``tf.function`` that creates variables
    on its first call is traced twice (about 15% of a short run's CPU: benchmarks/first_step.py). Nothing runs, so no random state is drawn, and
    unknown sizes stay unknown (Keras picks accuracy and cross-entropy kinds from the shapes). Ragged or sparse
    inputs, or a model Keras cannot build this way, are left to that first trace (False)."""
    import tensorflow as tf

    from framework.compat import symbolic_build

    if not all(type(spec) is tf.TensorSpec for spec in tf.nest.flatten(element_spec)):
        return False
    try:
        symbolic_build(model, element_spec)
    except Exception:  # noqa: BLE001 - an optimisation only: the first traced step builds them as before
        return False
    return True
