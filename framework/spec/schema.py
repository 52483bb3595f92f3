"""The spec format, declared once: every option's type, default and description.

The top-level ``Spec`` lives here and every section's classes are importable from here, as before. The sections are
declared in ``framework/spec/sections/`` (one module each), the rules across sections are named checks in
``framework/spec/checks.py``, and the look-ups on disk and in the registry that validation needs are resolvers in
``framework/spec/resolve.py``. The JSON Schema (``python -m framework schema``) and the spec reference in the
README come from these classes. Nothing here imports TensorFlow.
"""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator, model_validator

from framework.spec.checks import CHECKS, run_checks
from framework.spec.resolve import resolve_plugin_paths
from framework.spec.sections.augmentation import AugmentationSpec, AugmentationStep
from framework.spec.sections.base import LATEST, RUN_NAME_PATTERN, StrictModel, TypedTable
from framework.spec.sections.data import DataSpec, SequenceSpec, WindowSpec
from framework.spec.sections.distill import DistillSpec
from framework.spec.sections.distribute import DistributeSpec
from framework.spec.sections.model import InputSpec, LayerSpec, ModelSpec
from framework.spec.sections.privacy import BATCH_MIXING_LAYERS, PrivacySpec
from framework.spec.sections.regularization import EarlyStoppingSpec, ReduceLROnPlateauSpec, RegularizationSpec
from framework.spec.sections.track import TrackSpec
from framework.spec.sections.train import CallbackSpec, OptimizerSpec, ScheduleSpec, TrainSpec
from framework.spec.sections.tune import TuneSpec

__all__ = [
    "BATCH_MIXING_LAYERS",
    "CHECKS",
    "LATEST",
    "RUN_NAME_PATTERN",
    "AugmentationSpec",
    "AugmentationStep",
    "CallbackSpec",
    "DataSpec",
    "DistillSpec",
    "DistributeSpec",
    "EarlyStoppingSpec",
    "InputSpec",
    "LayerSpec",
    "ModelSpec",
    "OptimizerSpec",
    "PrivacySpec",
    "ReduceLROnPlateauSpec",
    "RegularizationSpec",
    "ScheduleSpec",
    "SequenceSpec",
    "Spec",
    "StrictModel",
    "TrackSpec",
    "TrainSpec",
    "TuneSpec",
    "TypedTable",
    "WindowSpec",
]


class Spec(StrictModel):
    """An experiment: data, model and training, plus optional sections."""

    name: str = Field(
        pattern=RUN_NAME_PATTERN,
        description="Run name; the run folder is reports/<name>-<timestamp>-<id>. Letters, digits, '.', '_', '-'.",
    )
    description: str = Field("", description="Free text, shown in reports.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed for splits, shuffling and initialisation.")
    plugins: list[str] = Field(
        default_factory=list,
        description="Plugin files or package folders to import first (relative to the spec); they register layers, data sources, ...",
    )
    data: DataSpec = Field(description="Where the data comes from and how it is split and scaled.")
    model: ModelSpec = Field(description="The layers of the model.")
    train: TrainSpec = Field(default_factory=TrainSpec, description="Optimizer, loss, metrics, epochs.")
    augmentation: AugmentationSpec = Field(default_factory=AugmentationSpec, description="Data augmentation (training only).")
    regularization: RegularizationSpec = Field(default_factory=RegularizationSpec, description="Penalties, dropout, clipping, early stopping.")
    tune: TuneSpec | None = Field(None, description="How `tune` searches the spec's search spaces.")
    privacy: PrivacySpec | None = Field(None, description="DP-SGD differential privacy; (epsilon, delta) in the report.")
    distill: DistillSpec | None = Field(None, description="Knowledge distillation from a trained teacher run.")
    distribute: DistributeSpec | None = Field(None, description="Distributed training with tf.distribute.")
    track: TrackSpec | None = Field(None, description="Experiment tracking: log runs to MLflow (the [track] extra).")

    @property
    def dp(self) -> PrivacySpec | None:
        """The [privacy] section when it is on (``enabled = false`` keeps it in the spec, switched off)."""
        return self.privacy if self.privacy is not None and self.privacy.enabled else None

    @field_validator("plugins")
    @classmethod
    def _absolute_plugin_paths(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return resolve_plugin_paths(value, info.context)

    @model_validator(mode="after")
    def _cross_section_checks(self, info: ValidationInfo) -> "Spec":
        """The named checks of framework/spec/checks.py, in order."""
        run_checks(self, info.context)
        return self
