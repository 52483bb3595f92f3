"""The [privacy] section: DP-SGD settings, and the layers that DP-SGD cannot train."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from framework.spec.sections.base import StrictModel


class PrivacySpec(StrictModel):
    """DP-SGD: per-example clipping and Gaussian noise, with (epsilon, delta) accounting by dp-accounting."""

    enabled: bool = Field(True, description="false trains the same spec without DP (for comparison).")
    l2_norm_clip: float = Field(1.0, gt=0, description="Clip each example's gradient to this L2 norm (C).")
    noise_multiplier: float | None = Field(
        None, gt=0, description="Noise std as a multiple of the clip (sigma, > 0). Give this or target_epsilon."
    )
    target_epsilon: float | None = Field(
        None, gt=0, description="Calibrate sigma with dp-accounting so the planned steps spend this epsilon."
    )
    delta: float | None = Field(
        None, gt=0, lt=1, description="Target delta (default: 1/(10 N) for N training examples; stated in metrics.json)."
    )
    accountant: Literal["rdp", "pld"] = Field("rdp", description="dp-accounting's RDP or PLD accountant.")
    sampling: Literal["poisson", "shuffle"] = Field(
        "poisson",
        description=(
            "'poisson': each example joins each batch with probability batch_size/N, as the accounting assumes; "
            "'shuffle': fixed-size shuffled batches, whose epsilon is the Poisson figure, labelled as not proven for shuffling."
        ),
    )
    max_epsilon: float | None = Field(None, gt=0, description="Stop training before the spent epsilon would exceed this.")
    microbatches: int | None = Field(
        None, ge=1, description="Only per-example clipping is supported: leave unset or 1."
    )
    clipping: Literal["auto", "vectorized"] = Field(
        "auto",
        description=(
            "'auto': ghost clipping when every trainable layer is a Dense or Conv2D, else per-example gradients "
            "with tf.vectorized_map; 'vectorized': always the latter. Both clip the same way."
        ),
    )
    augmentation_multiplicity: int = Field(
        1, ge=1,
        description=(
            "Augmented copies of each example per step (De et al., 2022): the model's [augmentation] steps transform "
            "each copy differently and the copies' gradients are averaged before clipping, so one example still moves "
            "the sum by at most l2_norm_clip and epsilon is unchanged; each step costs about this many times more. "
            "Needs [augmentation] steps, run in the model."
        ),
    )
    audit: bool = Field(False, description="After training, run the loss-threshold membership-inference audit.")
    reproducible_noise: bool = Field(
        False,
        description=(
            "true draws the noise and the Poisson batches from `seed` (for tests and debugging): anyone who knows the "
            "seed can subtract the noise, so metrics.json marks such a run as not private. Default: secret randomness "
            "from the operating system, kept only in the run's checkpoint and deleted when the run completes."
        ),
    )
    public_init: bool = Field(
        False,
        description=(
            "Declares that model.init_from's run was trained on public data (or is itself accounted for), so its "
            "weights may start a private run. Without it, init_from is refused: its weights may encode private data."
        ),
    )

    @model_validator(mode="after")
    def _one_noise_setting(self) -> "PrivacySpec":
        if (self.noise_multiplier is None) == (self.target_epsilon is None):
            raise PydanticCustomError("privacy", "give exactly one of noise_multiplier or target_epsilon")
        if self.microbatches not in (None, 1):
            raise PydanticCustomError(
                "privacy",
                "microbatches > 1 clip the mean gradient of each group, which changes the sensitivity the accounting "
                "assumes; this framework clips every example on its own (vectorized), so leave microbatches unset",
            )
        return self


# Layers whose output for one example depends on the other examples in the batch.
BATCH_MIXING_LAYERS = {"BatchNormalization": "GroupNormalization or LayerNormalization"}
# Keras augmentation layers whose Equalization takes one histogram over the whole batch (Keras 3.15).
BATCH_HISTOGRAM_AUGMENTATIONS = ("Equalization", "RandAugment", "AugMix")
# Keras augmentation layers that draw nothing (the same output every call; tests/test_privacy.py checks this against
# Keras): copies made only by them are all alike.
DETERMINISTIC_AUGMENTATIONS = (
    "CenterCrop", "Resizing", "AutoContrast", "ContrastLimitedAdaptiveHistogramEqualization", "MaxNumBoundingBoxes",
)
