"""The generative keys of [model]: a (conditional) VAE or GAN declared from layer lists.

    [model]
    kind = "vae"                 # or "gan"; "predictive" (default) is the model of `layers`
    latent_dim = 16
    conditional = true           # condition on the label: samples of a chosen class
    encoder = [ { type = "Dense", units = 256, activation = "relu" } ]
    decoder = [ { type = "Dense", units = 256, activation = "relu" },
                { type = "Dense", units = 64, activation = "sigmoid" } ]

``ModelSpec`` inherits these fields, so they are keys of ``[model]`` beside ``layers``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from framework.spec.sections.base import StrictModel
from framework.spec.sections.model import (
    LayerSpec,  # defined before model.py imports this module
)

GENERATIVE_KINDS = ("vae", "gan")
#: The layer lists each kind builds from; the first list sees the real data.
PARTS = {"vae": ("encoder", "decoder"), "gan": ("discriminator", "generator")}
ALL_PARTS = ("encoder", "decoder", "generator", "discriminator")


class GenerativeFields(StrictModel):
    """Keys of [model] for generative models (kind = "vae" or "gan")."""

    kind: Literal["predictive", "vae", "gan"] = Field(
        "predictive",
        description=(
            "'predictive': the model of `layers` (classifier, regressor, ...). 'vae': a variational autoencoder "
            "from `encoder` and `decoder`; 'gan': a GAN from `generator` and `discriminator`. Generative runs report "
            "samples.png, synthetic_accuracy and fid."
        ),
    )
    latent_dim: int = Field(16, ge=1, le=4096, description="VAE/GAN: size of the latent code z ~ N(0, I).")
    temperature: float = Field(
        1.0, gt=0, le=10,
        description=(
            "VAE/GAN: samples (samples.png, synthetic_accuracy, fid, `sample`, data.synthetic) draw z ~ N(0, t² I) "
            "with this t; below 1 trades variety for typical examples (the truncation trick). Training is unchanged."
        ),
    )
    conditional: bool = Field(
        True,
        description=(
            "VAE/GAN: condition on the label (one-hot, fed to the encoder/discriminator input and beside z to the "
            "decoder/generator), so samples can be drawn per class."
        ),
    )
    encoder: list[LayerSpec] = Field(
        default_factory=list,
        description="VAE: encoder layers on the input (with the label's channels when conditional); a Dense head "
        "to the latent mean and log-variance follows.",
    )
    decoder: list[LayerSpec] = Field(
        default_factory=list,
        description="VAE: decoder layers from [z, label]; the last one outputs an example (its values are reshaped "
        "to the example shape).",
    )
    generator: list[LayerSpec] = Field(
        default_factory=list,
        description="GAN: generator layers from [z, label]; the last one outputs an example (reshaped to the example shape).",
    )
    discriminator: list[LayerSpec] = Field(
        default_factory=list,
        description="GAN: discriminator layers on the input (with the label's channels when conditional); a Dense(1) "
        "logit head follows.",
    )
    beta: float = Field(1.0, gt=0, description="VAE: weight of the KL term (1: the ELBO).")
    reconstruction: Literal["bce", "mse"] = Field(
        "bce",
        description="VAE: 'bce' (Bernoulli likelihood; inputs scaled to [0, 1]) or 'mse' (Gaussian, unit variance).",
    )
    gan_loss: Literal["bce", "hinge"] = Field(
        "bce", description="GAN: 'bce' (non-saturating) or 'hinge' adversarial loss."
    )
    discriminator_steps: int = Field(1, ge=1, le=10, description="GAN: discriminator updates per generator update.")
    generator_learning_rate: float | None = Field(
        None, gt=0, description="GAN: the generator's learning rate (default: train.optimizer's); same optimizer type."
    )
    score_steps: int = Field(
        1000, ge=10, le=100_000,
        description="VAE/GAN: training steps (batch 128, at least 5 epochs) of the fixed classifier behind "
        "synthetic_accuracy and fid. Fewer: cheaper, cruder scores; scores compare between runs with the same value.",
    )

    @property
    def generative(self) -> bool:
        return self.kind in GENERATIVE_KINDS

    @model_validator(mode="after")
    def _parts_of_kind(self) -> GenerativeFields:
        if self.kind == "predictive":
            stray = [p for p in ALL_PARTS if getattr(self, p)]
            if stray:
                raise PydanticCustomError(
                    "model_kind", "model.{part} is a generative model's layer list; set model.kind = \"{kind}\"",
                    {"part": stray[0], "kind": "vae" if stray[0] in PARTS["vae"] else "gan"},
                )
            return self
        for part in PARTS[self.kind]:
            if not getattr(self, part):
                raise PydanticCustomError(
                    "model_kind", "model.kind = \"{kind}\" needs model.{part}, a list of layers",
                    {"kind": self.kind, "part": part, "path": f"model.{part}"},
                )
        other = [p for p in ALL_PARTS if p not in PARTS[self.kind] and getattr(self, p)]
        if other:
            raise PydanticCustomError(
                "model_kind", "model.{part} is not part of a {kind}; it takes {parts}",
                {"part": other[0], "kind": self.kind.upper(), "parts": " and ".join(PARTS[self.kind]), "path": f"model.{other[0]}"},
            )
        if getattr(self, "layers", None):
            raise PydanticCustomError(
                "model_kind", "model.layers is the predictive model's; a {kind} is built from {parts}",
                {"kind": self.kind.upper(), "parts": " and ".join(PARTS[self.kind]), "path": "model.layers"},
            )
        return self
