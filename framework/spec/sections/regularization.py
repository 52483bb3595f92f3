"""The [regularization] section: penalties, dropout, gradient clipping, early stopping and reduce-LR-on-plateau."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from framework.spec.sections.base import StrictModel


class EarlyStoppingSpec(StrictModel):
    monitor: str = Field("val_loss", description="The logged quantity to watch, e.g. val_loss or val_accuracy.")
    patience: int = Field(5, ge=0, description="Epochs without improvement before stopping.")
    min_delta: float = Field(0.0, ge=0, description="Smallest change that counts as an improvement.")
    restore_best_weights: bool = Field(True, description="End with the weights of the best epoch.")


class ReduceLROnPlateauSpec(StrictModel):
    monitor: str = Field("val_loss", description="The logged quantity to watch.")
    factor: float = Field(0.5, gt=0, lt=1, description="Multiply the learning rate by this on a plateau.")
    patience: int = Field(3, ge=0, description="Epochs without improvement before reducing.")
    min_lr: float = Field(0.0, ge=0, description="Lower bound on the learning rate.")


class RegularizationSpec(StrictModel):
    l1: float = Field(0.0, ge=0, description="L1 penalty on every kernel; a layer's own kernel_regularizer overrides it.")
    l2: float = Field(0.0, ge=0, description="L2 penalty on every kernel; a layer's own kernel_regularizer overrides it.")
    dropout: float = Field(
        0.0, ge=0, lt=1,
        description="Adds Dropout(rate) after every hidden Dense layer and sets `dropout` on layers that take it (GRU, LSTM, ...).",
    )
    weight_decay: float = Field(0.0, ge=0, description="Decoupled weight decay (as in AdamW), applied by the optimizer.")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label smoothing for cross-entropy losses.")
    clip_norm: float | None = Field(None, gt=0, description="Clip each gradient to this L2 norm.")
    clip_global_norm: float | None = Field(None, gt=0, description="Clip all gradients together to this global L2 norm.")
    clip_value: float | None = Field(None, gt=0, description="Clip gradient values to [-clip_value, clip_value].")
    early_stopping: EarlyStoppingSpec | None = Field(None, description="Stop when the monitored value stops improving.")
    reduce_lr_on_plateau: ReduceLROnPlateauSpec | None = Field(None, description="Reduce the learning rate on a plateau.")

    @model_validator(mode="after")
    def _one_clipping(self) -> "RegularizationSpec":
        set_ = [k for k in ("clip_norm", "clip_global_norm", "clip_value") if getattr(self, k) is not None]
        if len(set_) > 1:
            raise PydanticCustomError("clipping", "choose one gradient clipping, got {keys}", {"keys": set_})
        return self
