"""The [train] section: optimizer, learning-rate schedule, loss, metrics, callbacks and how training runs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from framework.spec.sections.base import StrictModel, TypedTable, finite_number


class OptimizerSpec(TypedTable):
    type: str = Field("adam", description="A keras.optimizers name: adam, adamw, sgd, rmsprop, ...")
    learning_rate: float = Field(1e-3, gt=0, description="Learning rate (the schedule's initial rate when one is set).")

    _finite_lr = field_validator("learning_rate")(finite_number)


class ScheduleSpec(TypedTable):
    type: str = Field(
        description=(
            "A keras.optimizers.schedules class: CosineDecay, ExponentialDecay, PiecewiseConstantDecay, ... "
            "Its initial rate is train.optimizer.learning_rate; decay_steps defaults to the whole run."
        )
    )


class CallbackSpec(TypedTable):
    type: str = Field(description="A keras.callbacks class or a registered callback.")


class TrainSpec(StrictModel):
    epochs: int = Field(10, ge=1, le=100_000, description="Training epochs.")
    batch_size: int = Field(32, ge=1, le=1_000_000, description="Batch size (global, across replicas).")
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec, description="Optimizer: a type and its arguments.")
    lr_schedule: ScheduleSpec | None = Field(None, description="Optional learning-rate schedule.")
    loss: str | dict[str, str] = Field(
        "sparse_categorical_crossentropy",
        description="A keras loss name, or a table of them keyed by output name (graph form).",
    )
    loss_weights: dict[str, float] | None = Field(None, description="Per-output loss weights (graph form).")
    metrics: list[str] | dict[str, list[str]] = Field(
        default_factory=lambda: ["accuracy"], description="Keras metric names, or a table keyed by output name."
    )
    jit_compile: Literal["auto", True, False] = Field(
        "auto", description="XLA: 'auto' follows Keras (XLA on GPU, not on CPU); the mode that ran is recorded."
    )
    steps_per_execution: Literal["auto"] | Annotated[int, Field(ge=1, le=100_000)] = Field(
        "auto",
        description=(
            "Batches per compiled call (Keras's steps_per_execution): fewer round trips through Python, which for "
            "small models is much of each step; the same updates in the same order. Batch-level callback hooks then "
            "run once per call. 'auto': 16 for runs of at least 500 steps (shorter ones would spend more on tracing the "
            "loop than they save), else 1; also 1 with [distribute] or when a train.callbacks entry acts on batches. "
            "A number: 1 to 100000. The value that ran is recorded."
        ),
    )
    mixed_precision: bool = Field(False, description="Train with the mixed_float16 policy (outputs stay float32).")
    deterministic: Literal["auto", True, False] = Field(
        "auto",
        description=(
            "Deterministic TensorFlow ops, so the same spec and seed give the same metrics. 'auto': on a CPU, "
            "unless jit_compile = true (Keras runs no XLA with deterministic ops); off on a GPU, where XLA helps."
        ),
    )
    callbacks: list[CallbackSpec] = Field(
        default_factory=list, description="Extra Keras or plugin callbacks, each a type and its arguments."
    )
    tensorboard: bool = Field(False, description="Write TensorBoard logs into the run folder's tensorboard/.")
    verbose: Literal["auto", 0, 1, 2] = Field(
        "auto",
        description=(
            "Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch; 'auto': the progress bar when "
            "standard output is a terminal, one line per epoch otherwise (logs, CI, notebooks' captured output)."
        ),
    )

    @field_validator("steps_per_execution", mode="before")
    @classmethod
    def _whole_batches_or_auto(cls, value):
        if value == "auto" or (type(value) is int and 1 <= value <= 100_000):
            return value
        raise ValueError(f"must be a whole number of batches from 1 to 100000, or \"auto\"; got {value!r}")

    @property
    def keras_verbose(self) -> int:
        """``verbose`` as ``model.fit`` takes it: 'auto' resolved here, once, for every way of training."""
        if self.verbose != "auto":
            return self.verbose
        import sys

        stream = sys.stdout
        return 1 if stream is not None and hasattr(stream, "isatty") and stream.isatty() else 2
