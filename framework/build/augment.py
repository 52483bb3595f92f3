"""``[augmentation]`` -> Keras augmentation layers, placed in the tf.data pipeline or in the model.

Augmentation only acts on training batches: in the pipeline it is mapped over
the training set alone; in the model, Keras's augmentation layers are the
identity when ``training=False`` (evaluation, prediction, the saved model).
MixUp and CutMix mix labels as well as inputs, so they always run in the
pipeline, on one-hot labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from framework.build.layers import accepted_kwargs, instantiate
from framework.errors import SpecError
from framework.registry import registry
from framework.spec.schema import Spec

# Batch-level steps that need labels, and so one-hot targets.
MIXERS = {"MixUp", "CutMix"}


def keras_augmentations() -> dict[str, Any]:
    import keras

    from framework.compat import image_preprocessing_base

    BaseImagePreprocessingLayer = image_preprocessing_base()
    found = {
        name: obj
        for name in dir(keras.layers)
        if isinstance(obj := getattr(keras.layers, name), type) and issubclass(obj, BaseImagePreprocessingLayer)
    }
    for name in ("GaussianNoise", "GaussianDropout"):
        found[name] = getattr(keras.layers, name)
    return found  # framework/registry.py adds this as the augmentation kind's provider


def is_image_step(cls: type) -> bool:
    from framework.compat import image_preprocessing_base

    return issubclass(cls, image_preprocessing_base())


@dataclass
class AugmentationPlan:
    """Which layers run where; ``placement`` is what the run records."""

    placement: str  # "pipeline", "model" or "none"
    layers: list[Any] = field(default_factory=list)  # per-example steps
    mixers: list[Any] = field(default_factory=list)  # MixUp/CutMix, always in the pipeline

    @property
    def needs_one_hot(self) -> bool:
        return bool(self.mixers)

    def model_layers(self) -> list[Any]:
        return self.layers if self.placement == "model" else []

    def pipeline_layers(self) -> list[Any]:
        return self.layers if self.placement == "pipeline" else []


#: when ``placement = "auto"`` puts the steps in the model, for messages that depend on it
IN_MODEL_WHEN = 'placement "model", a GPU, or privacy.augmentation_multiplicity > 1'


def resolve_placement(requested: str, copies: int = 1) -> str:
    """``copies``: privacy.augmentation_multiplicity; several copies of an example are augmented in the model."""
    if requested != "auto":
        return requested
    if copies > 1:
        return "model"
    import tensorflow as tf

    return "model" if tf.config.list_physical_devices("GPU") else "pipeline"


def plan_augmentation(spec: Spec, example_shape: tuple[int, ...]) -> AugmentationPlan:
    steps = spec.augmentation.steps
    if not steps:
        return AugmentationPlan("none")
    placement = resolve_placement(spec.augmentation.placement, spec.dp.augmentation_multiplicity if spec.dp else 1)
    plan = AugmentationPlan(placement)
    for i, step in enumerate(steps):
        path = f"augmentation.steps[{i}]"
        cls = registry.get("augmentation", step.type, path=f"{path}.type")
        if is_image_step(cls) and len(example_shape) != 3:
            raise SpecError(
                f"{step.type} is an image augmentation, but the inputs have shape {tuple(example_shape)}; "
                "images need (height, width, channels): set data.reshape, or use GaussianNoise for numeric inputs",
                path=f"{path}.type",
            )
        kwargs = step.kwargs
        if "seed" in (accepted_kwargs(cls) or ()):
            kwargs.setdefault("seed", spec.seed + i)  # reproducible, but different per step
        if step.type == "RandomCrop" and placement == "model":
            raise SpecError(
                f"RandomCrop changes the image size while training but not at evaluation, so in the model ({IN_MODEL_WHEN}) "
                "evaluation inputs would not fit the layers after it; use RandomTranslation, which keeps the size, or "
                "placement = \"pipeline\"",
                path=f"{path}.type",
            )
        layer = instantiate(cls, step.type, kwargs, path)
        (plan.mixers if step.type in MIXERS else plan.layers).append(layer)
    if plan.mixers and spec.model.is_graph and spec.model.outputs and len(spec.model.outputs) > 1:
        raise SpecError("MixUp and CutMix mix one label per example; this model has several outputs", path="augmentation.steps")
    return plan


def augment_batch(plan: AugmentationPlan, x, y):
    """Apply the pipeline's steps to one training batch (inside tf.data)."""
    for layer in plan.pipeline_layers():
        x = layer(x, training=True)
    for mixer in plan.mixers:
        # Keras's MixUp call() leaves labels unmixed in some versions; drive its transformation explicitly.
        transformation = mixer.get_random_transformation({"images": x, "labels": y}, training=True)
        x = mixer.transform_images(x, transformation, training=True)
        y = mixer.transform_labels(y, transformation, training=True)
    return x, y
