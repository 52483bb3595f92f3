"""The [distill] section: knowledge distillation from a finished teacher run."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from framework.spec.resolve import resolve_run_reference
from framework.spec.sections.base import StrictModel


class DistillSpec(StrictModel):
    """Knowledge distillation: the model (the student) learns from the labels and from a trained teacher's outputs."""

    teacher: str = Field(
        description="The teacher: a finished run folder (relative to the spec file) or 'latest:NAME'.",
        examples=["latest:quickstart"],
    )
    temperature: float = Field(
        4.0, gt=0, le=100, description="Softens both models' class probabilities before they are compared (T)."
    )
    alpha: float = Field(
        0.1, ge=0, le=1,
        description="Weight of the loss on the true labels; 1 - alpha weighs T^2 x KL(teacher || student) at temperature T.",
    )

    @field_validator("teacher")
    @classmethod
    def _teacher(cls, value: str, info: ValidationInfo) -> str | None:
        return resolve_run_reference(value, info.context)
