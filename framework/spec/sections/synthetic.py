"""``data.synthetic``: generated examples from a finished generative run, mixed into the training split.

    [data]
    source = "sklearn:digits"
    synthetic = { run = "latest:digits_cvae", ratio = 0.5 }   # half as many generated examples as real ones

The validation and test splits stay real. The mixing is done by framework/data/synthetic.py.
"""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from framework.spec.resolve import resolve_run_reference
from framework.spec.sections.base import StrictModel


class SyntheticSpec(StrictModel):
    """Generated training examples from a conditional VAE or GAN run (its model.keras)."""

    run: str = Field(
        description="The generative run: a run folder (relative to the spec file) or 'latest:NAME'.",
        examples=["latest:digits_cvae", "../reports/digits_cvae-20261129-164313-de02ad"],
    )
    ratio: float = Field(
        gt=0, le=100,
        description="Generated examples per real training example (0.5: half as many; 1: as many), classes balanced.",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the generator's latent codes.")

    @field_validator("run")
    @classmethod
    def _run(cls, value: str, info: ValidationInfo) -> str:
        return resolve_run_reference(value, info.context)
