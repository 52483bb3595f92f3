"""The [augmentation] section: augmentation steps for training batches and where they run."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from framework.spec.sections.base import StrictModel, TypedTable


class AugmentationStep(TypedTable):
    type: str = Field(
        description=(
            "A Keras augmentation layer (RandomFlip, RandomRotation, RandomZoom, RandomTranslation, RandomContrast, "
            "RandomBrightness, RandomCrop, RandAugment, ...), GaussianNoise for numeric or sequence inputs, "
            "or MixUp/CutMix, which mix whole batches, labels included."
        )
    )


class AugmentationSpec(StrictModel):
    steps: list[AugmentationStep] = Field(default_factory=list, description="Steps applied in order, to training batches only.")
    placement: Literal["auto", "pipeline", "model"] = Field(
        "auto",
        description=(
            "Where the steps run: 'pipeline' (tf.data, on the CPU), 'model' (as layers at the model's input, "
            "inactive at evaluation and prediction), or 'auto': model on a GPU or with privacy.augmentation_multiplicity > 1, "
            "pipeline otherwise. "
            "MixUp and CutMix always run in the pipeline. The placement used is recorded in metrics.json."
        ),
    )
