"""The [tune] section: how `tune` searches the spec's search spaces (the spaces themselves: framework/tuning/spaces.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from framework.spec.sections.base import StrictModel


class TuneSpec(StrictModel):
    tuner: Literal["random", "bayesian", "hyperband", "grid"] = Field("random", description="keras-tuner's search algorithm.")
    objective: str = Field("val_loss", description="The logged quantity to optimize, e.g. val_accuracy or val_loss.")
    direction: Literal["auto", "min", "max"] = Field(
        "auto", description="'auto': max for accuracy-like objectives, min for losses and errors."
    )
    max_trials: int = Field(
        10, ge=1, le=100_000,
        description="Trials to run at most, in all (hyperband: also bounded by its brackets, whichever comes first).",
    )
    max_seconds: float | None = Field(
        None, gt=0,
        description="Start no new trial after this many seconds of the `tune` command (a running trial finishes).",
    )
    executions_per_trial: int = Field(1, ge=1, le=100, description="Trainings per trial, averaged (reduces noise).")
    seed: int | None = Field(None, ge=0, description="The tuner's seed (default: the spec's seed).")
    hyperband_factor: int = Field(3, ge=2, description="hyperband: the reduction factor; train.epochs is its max epochs.")
    trials_per_worker: int = Field(
        8, ge=1, le=10_000,
        description="Trials one worker process trains before a fresh one replaces it (each start costs a TensorFlow "
                    "import; each trial in the same process grows its memory a little). 1: a fresh process per trial.",
    )
    worker_memory_mb: float = Field(
        4000, gt=0,
        description="A worker process is replaced after a trial that leaves it above this resident memory (MB).",
    )

    @property
    def resolved_direction(self) -> str:
        if self.direction != "auto":
            return self.direction
        lowered = self.objective.lower()
        return "min" if any(k in lowered for k in ("loss", "error", "mae", "mse")) else "max"
