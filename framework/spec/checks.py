"""Named checks across spec sections: rules that no single section can check on its own.

Each check is a function ``(spec, context) -> None`` that raises a ``PydanticCustomError`` for the first problem it
finds; ``context`` is the validation context (``base_dir``; ``existing_run`` when a finished run's resolved.json is
read back). ``Spec`` runs ``CHECKS`` in order from one model validator, so a spec with several problems reports the
first. A check about one key names it as ``path`` in the error's context; the CLI reports the error at that key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic_core import PydanticCustomError

from framework.spec.sections.privacy import (
    BATCH_HISTOGRAM_AUGMENTATIONS,
    BATCH_MIXING_LAYERS,
    DETERMINISTIC_AUGMENTATIONS,
)

if TYPE_CHECKING:
    from framework.spec.schema import Spec

Check = Callable[["Spec", Mapping[str, Any]], None]


# --- training settings -----------------------------------------------------------------


def check_lr_conflict(spec: Spec, context: Mapping[str, Any]) -> None:
    """reduce_lr_on_plateau and a learning-rate schedule both set the learning rate."""
    if spec.regularization.reduce_lr_on_plateau is not None and spec.train.lr_schedule is not None:
        raise PydanticCustomError(
            "lr_conflict", "regularization.reduce_lr_on_plateau cannot change a train.lr_schedule; use one of them"
        )


def check_weight_decay_twice(spec: Spec, context: Mapping[str, Any]) -> None:
    """Weight decay in [regularization] and in the optimizer's arguments."""
    if spec.regularization.weight_decay and "weight_decay" in spec.train.optimizer.kwargs:
        raise PydanticCustomError(
            "wd_conflict", "weight decay is set twice: in regularization.weight_decay and train.optimizer.weight_decay"
        )


def check_xla_determinism(spec: Spec, context: Mapping[str, Any]) -> None:
    """Keras runs no XLA with deterministic ops."""
    if spec.train.deterministic is True and spec.train.jit_compile is True:
        raise PydanticCustomError(
            "xla_determinism", "train.deterministic = true and train.jit_compile = true exclude each other: "
            "Keras runs no XLA with deterministic ops; choose one"
        )


# --- privacy (only when [privacy] is on: a disabled section stays in the spec, unused) ----


def check_private_layers(spec: Spec, context: Mapping[str, Any]) -> None:
    """DP-SGD clips each example's gradient: no layer, augmentation or output layout may mix examples."""
    if spec.dp is None:
        return
    for i, layer in enumerate(spec.model.layers):
        if layer.type in BATCH_MIXING_LAYERS:
            raise PydanticCustomError(
                "privacy_layer",
                "model.layers[{i}]: {type} mixes the examples of a batch, so per-example clipping cannot bound one "
                "example's influence; use {alternative}",
                {"i": i, "type": layer.type, "alternative": BATCH_MIXING_LAYERS[layer.type]},
            )
    for i, step in enumerate(spec.augmentation.steps):
        if step.type in ("MixUp", "CutMix"):
            raise PydanticCustomError(
                "privacy_mix", "augmentation.steps[{i}]: {type} mixes examples, which DP-SGD's per-example "
                "clipping does not allow", {"i": i, "type": step.type},
            )
        if step.type in BATCH_HISTOGRAM_AUGMENTATIONS:
            raise PydanticCustomError(
                "privacy_histogram", "augmentation.steps[{i}]: {type} equalizes with one histogram of the whole "
                "batch, so one example changes the others' augmented inputs and per-example clipping no longer bounds "
                "its influence; use steps that transform each image alone (RandomTranslation, RandomFlip, "
                "RandomContrast, AutoContrast, CLAHE, ...)",
                {"i": i, "type": step.type, "path": f"augmentation.steps[{i}].type"},
            )
    if spec.model.outputs and len(spec.model.outputs) > 1:
        raise PydanticCustomError("privacy_outputs", "DP-SGD here supports single-output models")


def check_augmentation_multiplicity(spec: Spec, context: Mapping[str, Any]) -> None:
    """Several augmented copies of each example are made inside the DP step, by augmentation layers in the model."""
    if spec.dp is None or spec.dp.augmentation_multiplicity == 1:
        return
    copies = spec.dp.augmentation_multiplicity
    if spec.model.generative:
        raise PydanticCustomError(
            "multiplicity_generative", "privacy.augmentation_multiplicity = {copies}: a VAE or GAN trains on each "
            "example once per step; use 1", {"copies": copies, "path": "privacy.augmentation_multiplicity"},
        )
    steps = [step.type for step in spec.augmentation.steps]
    if all(step in DETERMINISTIC_AUGMENTATIONS for step in steps):  # none at all, too
        reason = f"its augmentation steps ({', '.join(steps)}) draw nothing at random" if steps else (
            "[augmentation] has no steps")
        raise PydanticCustomError(
            "multiplicity_steps", "privacy.augmentation_multiplicity = {copies} averages {copies} augmented copies of "
            "each example, but {reason}, so the copies would all be the same (at {copies} times the cost): add a "
            "random augmentation step (RandomTranslation, RandomFlip, ...) or use 1",
            {"copies": copies, "reason": reason, "path": "privacy.augmentation_multiplicity"},
        )
    if spec.augmentation.placement == "pipeline":
        raise PydanticCustomError(
            "multiplicity_placement", "privacy.augmentation_multiplicity = {copies} augments each example's copies "
            "inside the DP step, so the augmentation steps must run in the model: set augmentation.placement to "
            "\"model\" or \"auto\"", {"copies": copies, "path": "augmentation.placement"},
        )


def check_private_inputs(spec: Spec, context: Mapping[str, Any]) -> None:
    """Each way the training split could reach the output outside the DP step is refused, with the alternative.

    Rules for starting a run: not applied when a finished run is read back (``existing_run`` in the context)."""
    if spec.dp is None or context.get("existing_run"):
        return
    if spec.data.scale in ("standard", "minmax"):
        raise PydanticCustomError(
            "privacy_scale", "data.scale = '{scale}' is fitted on the private training split and written to "
            "preprocessing.json without noise; with [privacy] give a fixed number known in advance "
            "(e.g. data.scale = 0.00392 for 0-255 pixels)", {"scale": spec.data.scale, "path": "data.scale"},
        )
    reg = spec.regularization
    for key, callback in (("early_stopping", reg.early_stopping), ("reduce_lr_on_plateau", reg.reduce_lr_on_plateau)):
        if callback is not None and not callback.monitor.startswith("val_"):
            raise PydanticCustomError(
                "privacy_monitor", "regularization.{key} watches '{monitor}', a training metric computed from the "
                "private data without noise; with [privacy] watch a validation metric (val_{monitor})",
                {"key": key, "monitor": callback.monitor, "path": f"regularization.{key}.monitor"},
            )
    if spec.model.init_from and not spec.dp.public_init:
        raise PydanticCustomError(
            "privacy_init", "model.init_from starts from weights whose privacy this run cannot know; if that run "
            "was trained on public data, say so with privacy.public_init = true", {"path": "model.init_from"},
        )
    if spec.train.mixed_precision:
        raise PydanticCustomError(
            "privacy_precision", "train.mixed_precision with [privacy]: the DP step adds noise to float32 sums and "
            "does not unscale a loss-scaled gradient; train DP in float32", {"path": "train.mixed_precision"},
        )
    for i, callback in enumerate(spec.train.callbacks):
        monitor = callback.kwargs.get("monitor")
        if isinstance(monitor, str) and not monitor.startswith("val_"):
            raise PydanticCustomError(
                "privacy_monitor", "train.callbacks[{i}] ({type}) watches '{monitor}', a training metric computed from "
                "the private data without noise; with [privacy] watch a validation metric (val_{monitor})",
                {"i": i, "type": callback.type, "monitor": monitor, "path": f"train.callbacks[{i}].monitor"},
            )
    if spec.data.window is not None:
        raise PydanticCustomError(
            "privacy_window", "data.window with [privacy]: each row appears in up to size + horizon windows, so an "
            "epsilon per window would understate each row's; DP-SGD here protects one example per row",
            {"path": "data.window"},
        )
    if spec.tune is not None and not spec.tune.objective.startswith("val_"):
        raise PydanticCustomError(
            "privacy_objective", "tune.objective '{objective}' is a training metric, which a private run does not "
            "release; tune on a validation metric (val_{objective})", {"objective": spec.tune.objective, "path": "tune.objective"},
        )


# --- the kind of data and the model it feeds ---------------------------------------------


def _textual(spec: Spec) -> str | None:
    data = spec.data
    return "data.text" if data.text is not None else "data.sequence" if data.sequence is not None else None


def check_text_augmentation(spec: Spec, context: Mapping[str, Any]) -> None:
    """Augmentation steps transform numbers and images, not strings."""
    textual = _textual(spec)
    if textual and spec.augmentation.steps:
        raise PydanticCustomError(
            "augment_text", "augmentation steps transform numbers and images; {kind} gives the model strings, "
            "so remove [augmentation] or its steps", {"kind": textual, "path": "augmentation.steps"},
        )


def check_text_privacy(spec: Spec, context: Mapping[str, Any]) -> None:
    """DP-SGD cannot train on data.text (TextVectorization) or data.sequence (two inputs)."""
    textual = _textual(spec)
    if textual and spec.dp is not None:
        reason = (
            "TextVectorization cannot run inside DP-SGD's per-example gradient loop"
            if spec.data.text is not None else "DP-SGD here supports single-input models"
        )
        if any(layer.type == "Word2VecEmbedding" for layer in spec.model.layers or []):
            reason += (
                "; and Word2VecEmbedding would train word vectors on the private training text outside DP-SGD, "
                "where they can memorise rare words and phrases (give vectors trained on public text to a "
                "PretrainedEmbedding's vectors_file instead)"
            )
        raise PydanticCustomError(
            "privacy_text", "[privacy] with {kind}: {reason}", {"kind": textual, "reason": reason, "path": "privacy"}
        )


def check_sequence_inputs(spec: Spec, context: Mapping[str, Any]) -> None:
    """data.sequence feeds two named model inputs, which model.inputs must declare."""
    sequence = spec.data.sequence
    if sequence is not None:
        declared = [i.name for i in spec.model.inputs or []]
        missing = [n for n in (sequence.source_input, sequence.decoder_input) if n not in declared]
        if missing:
            raise PydanticCustomError(
                "sequence_inputs", "data.sequence feeds the model inputs {missing}, which model.inputs does not "
                "declare (declared: {declared})", {"missing": missing, "declared": declared, "path": "model.inputs"},
            )


def check_targets_outputs(spec: Spec, context: Mapping[str, Any]) -> None:
    """Several data.targets: one per model output, by name."""
    targets = spec.data.targets
    if targets is not None and len(targets) > 1:
        outputs = spec.model.outputs or []
        if sorted(targets) != sorted(outputs):
            raise PydanticCustomError(
                "targets_outputs", "data.targets names {targets}, but model.outputs is {outputs}; "
                "each output needs its target", {"targets": sorted(targets), "outputs": outputs, "path": "data.targets"},
            )


# --- distributed training and distillation -----------------------------------------------


def check_distribute_privacy(spec: Spec, context: Mapping[str, Any]) -> None:
    """Replicas would each add DP noise within their own batch."""
    if spec.distribute is not None and spec.dp is not None:
        raise PydanticCustomError(
            "distribute_privacy", "[distribute] with [privacy]: the DP-SGD step clips and adds noise within one "
            "replica's batch, so replicas would each add noise and the accounting would not hold; train DP on "
            "one device", {"path": "distribute"},
        )


def check_distribute_steps_per_execution(spec: Spec, context: Mapping[str, Any]) -> None:
    """Keras 3's multi-step loop fails under a mirrored strategy (keras-team/keras#19246: "You must feed a value for
    placeholder tensor"); "auto" is 1 there."""
    steps = spec.train.steps_per_execution
    if spec.distribute is not None and spec.distribute.strategy != "tpu" and steps != "auto" and steps > 1:
        raise PydanticCustomError(
            "distribute_steps_per_execution", "train.steps_per_execution = {steps} with [distribute] strategy = "
            "'{strategy}': Keras's loop of several batches per call fails under that strategy; set it to 1 or "
            "\"auto\"", {"path": "train.steps_per_execution", "steps": steps, "strategy": spec.distribute.strategy},
        )


def check_distribute_distill(spec: Spec, context: Mapping[str, Any]) -> None:
    """The teacher model is not replicated."""
    if spec.distribute is not None and spec.distill is not None:
        raise PydanticCustomError(
            "distribute_distill", "[distribute] with [distill]: the teacher model is not replicated; distil on "
            "one device", {"path": "distribute"},
        )


def check_distill_privacy(spec: Spec, context: Mapping[str, Any]) -> None:
    """A teacher trained on the same data without noise voids the student's epsilon."""
    if spec.distill is not None and spec.dp is not None:
        raise PydanticCustomError(
            "distill_privacy", "[distill] with [privacy]: the teacher learned from the same data without noise, "
            "so the student's epsilon would not bound what it reveals; distil without DP, or train the teacher with DP",
            {"path": "distill"},
        )


def check_distill_outputs(spec: Spec, context: Mapping[str, Any]) -> None:
    """Distillation compares class probabilities of a single output."""
    if spec.distill is not None and spec.model.outputs and len(spec.model.outputs) > 1:
        raise PydanticCustomError("distill_outputs", "[distill] needs a single-output (classifier) model", {"path": "distill"})


# --- generative models (model.kind = "vae" or "gan") --------------------------------------


def check_generative_data(spec: Spec, context: Mapping[str, Any]) -> None:
    """A VAE or GAN models numeric examples with one class label (data.label), not text, sequences or windows."""
    if not spec.model.generative:
        return
    data = spec.data
    for key in ("text", "sequence", "window", "targets"):
        if getattr(data, key, None) is not None:
            raise PydanticCustomError(
                "generative_data", "model.kind = \"{kind}\" models numeric examples and their class label; data.{key} "
                "is not supported", {"kind": spec.model.kind, "key": key, "path": f"data.{key}"},
            )
    for i, step in enumerate(spec.augmentation.steps):
        if step.type in ("MixUp", "CutMix"):
            raise PydanticCustomError(
                "generative_mix", "augmentation.steps[{i}]: {type} mixes labels, which a conditional generator "
                "cannot condition on", {"i": i, "type": step.type, "path": f"augmentation.steps[{i}].type"},
            )
    for key in ("init_from", "freeze", "inputs", "outputs", "input_shape"):
        if getattr(spec.model, key):
            raise PydanticCustomError(
                "generative_model_key", "model.{key} is a predictive model's key; a {kind} is built from its layer "
                "lists", {"key": key, "kind": spec.model.kind.upper(), "path": f"model.{key}"},
            )
    for key in ("distill", "distribute", "tune"):
        if getattr(spec, key) is not None:
            raise PydanticCustomError(
                "generative_section", "[{key}] is not supported for model.kind = \"{kind}\"",
                {"key": key, "kind": spec.model.kind, "path": key},
            )


def check_generative_privacy(spec: Spec, context: Mapping[str, Any]) -> None:
    """The networks that see real data (a VAE's encoder and decoder, a GAN's discriminator) train with DP-SGD:
    no layer there, nor in the generator whose fakes join the private step, may mix the examples of a batch, and
    each sampled batch is one private step."""
    if spec.dp is None or not spec.model.generative:
        return
    # a GAN's fakes for the private step are made from the private batch's labels: its generator counts too
    parts = ("encoder", "decoder") if spec.model.kind == "vae" else ("discriminator", "generator")
    for part in parts:
        for i, layer in enumerate(getattr(spec.model, part)):
            if layer.type in BATCH_MIXING_LAYERS:
                raise PydanticCustomError(
                    "privacy_layer",
                    "model.{part}[{i}]: {type} mixes the examples of a batch, so per-example clipping cannot bound one "
                    "example's influence; use {alternative}",
                    {"part": part, "i": i, "type": layer.type, "alternative": BATCH_MIXING_LAYERS[layer.type],
                     "path": f"model.{part}[{i}].type"},
                )
    if spec.model.kind == "gan" and spec.model.discriminator_steps > 1:
        raise PydanticCustomError(
            "privacy_steps", "model.discriminator_steps > 1 with [privacy]: each extra discriminator step would reuse "
            "the same private batch, which the accountant (one step per sampled batch) does not count; use 1",
            {"path": "model.discriminator_steps"},
        )


# --- validation data ---------------------------------------------------------------------


def check_validation_monitors(spec: Spec, context: Mapping[str, Any]) -> None:
    """A callback that watches a val_ metric needs a validation split."""
    reg = spec.regularization
    monitors = [m.monitor for m in (reg.early_stopping, reg.reduce_lr_on_plateau) if m is not None]
    if spec.data.validation_split == 0 and any(m.startswith("val_") for m in monitors):
        raise PydanticCustomError(
            "no_validation", "early stopping / reduce_lr_on_plateau watch a val_ metric but data.validation_split is 0"
        )


def check_streamed_generative(spec: Spec, context: Mapping[str, Any]) -> None:
    """Generative models and data.synthetic work on training arrays in memory (the samples' scores, the mixing)."""
    if (spec.model.generative or spec.data.synthetic is not None) and _streams(spec):
        what, path = ("data.synthetic", "data.synthetic") if spec.data.synthetic is not None else (
            f"model.kind = \"{spec.model.kind}\"", "data.source")
        raise PydanticCustomError(
            "streamed_generative", "{what} needs its training examples in memory, but {scheme}: streams them from "
            "disk; use an in-memory source (npz:, csv: without data.stream)",
            {"what": what, "scheme": spec.data.source.partition(":")[0], "path": path},
        )


def check_hyperband_privacy(spec: Spec, context: Mapping[str, Any]) -> None:
    """A hyperband trial that continues another's weights starts a new optimizer, whose step count (the epsilon
    accounting's) would leave out the steps the weights were already trained with."""
    if spec.dp is not None and spec.tune is not None and spec.tune.tuner == "hyperband":
        raise PydanticCustomError(
            "privacy_hyperband", "hyperband continues trials from other trials' weights, and the epsilon of such a "
            "trial would leave out the private steps those weights were trained with; use tuner = \"random\", "
            "\"bayesian\" or \"grid\" with [privacy]", {"path": "tune.tuner"},
        )


def _streams(spec: Spec) -> bool:
    """Whether data.source streams its examples from disk (see DataSource.streams); False for an unknown source,
    which is data.source's own error, reported there."""
    from framework.data.sources import open_source

    try:
        return open_source(spec.data).streams()
    except Exception:  # noqa: BLE001 - any failure to open the source is reported by data.source's own check
        return False


def check_streaming_privacy(spec: Spec, context: Mapping[str, Any]) -> None:
    """Poisson sampling draws any training example at any step: a DP run needs its examples in memory."""
    if spec.dp is not None and _streams(spec):
        scheme = spec.data.source.partition(":")[0]
        raise PydanticCustomError(
            "privacy_streaming", "[privacy] needs its training examples in memory (Poisson sampling draws any "
            "example at any step, and the privacy accounting assumes it), but {scheme}: streams them from disk; "
            "use an in-memory source (e.g. an npz: of the data, or csv: without data.stream) for a private run",
            {"path": "privacy", "scheme": scheme},
        )


def check_synthetic_privacy(spec: Spec, context: Mapping[str, Any]) -> None:
    """Generated examples carry what their generator learned from its own training data, outside this run's DP."""
    if spec.dp is not None and spec.data.synthetic is not None:
        raise PydanticCustomError(
            "privacy_synthetic", "data.synthetic with [privacy]: the generated examples carry what the generator "
            "learned from its training data, which this run's epsilon does not cover; train without it",
            {"path": "data.synthetic"},
        )


#: Every cross-section check, in the order ``Spec`` runs them (the first problem found is the one reported).
CHECKS: list[Check] = [
    check_lr_conflict,
    check_weight_decay_twice,
    check_xla_determinism,
    check_private_layers,
    check_augmentation_multiplicity,
    check_private_inputs,
    check_text_augmentation,
    check_text_privacy,
    check_sequence_inputs,
    check_targets_outputs,
    check_distribute_privacy,
    check_distribute_steps_per_execution,
    check_distribute_distill,
    check_distill_privacy,
    check_distill_outputs,
    check_generative_data,
    check_generative_privacy,
    check_synthetic_privacy,
    check_streaming_privacy,
    check_hyperband_privacy,
    check_streamed_generative,
    check_validation_monitors,
]


def run_checks(spec: Spec, context: Mapping[str, Any] | None) -> None:
    """Run ``CHECKS`` on a validated spec, in order."""
    context = context or {}
    for check in CHECKS:
        check(spec, context)
