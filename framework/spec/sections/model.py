"""The [model] section: layers in list or graph form, the named inputs, a start from a finished run, and the
generative kinds (VAE, GAN: sections/generative.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from framework.spec.resolve import resolve_layer_files, resolve_run_reference
from framework.spec.sections.base import StrictModel, positive_dims


class LayerSpec(BaseModel):
    """One layer: a ``type`` and its keyword arguments, or ``reuse`` of a named layer."""

    model_config = ConfigDict(extra="allow")

    type: str | None = Field(
        None,
        description=(
            "A keras.layers class name or a registered layer/block. Arguments named *_file are paths, "
            "relative to the spec file."
        ),
    )
    name: str | None = Field(None, description="Layer name; graph form refers to layers by it.")
    inputs: list[str] | None = Field(
        None, description="Graph form: names of the model inputs or layers this layer is called on."
    )
    reuse: str | None = Field(None, description="Graph form: call the layer of this name again (shared weights).")
    repeat: int = Field(1, ge=1, le=1000, description="Stack this layer this many times (a tunable depth).")

    @model_validator(mode="after")
    def _type_or_reuse(self) -> "LayerSpec":
        if (self.type is None) == (self.reuse is None):
            raise PydanticCustomError("layer_type", "each layer needs exactly one of 'type' or 'reuse'")
        if self.reuse is not None and self.repeat != 1:
            raise PydanticCustomError("layer_reuse", "a reused layer cannot repeat")
        if self.reuse is not None and self.model_extra:
            raise PydanticCustomError(
                "layer_reuse", "a reused layer takes no arguments of its own, got {keys}", {"keys": sorted(self.model_extra)}
            )
        return self

    @model_validator(mode="after")
    def _file_arguments(self, info: ValidationInfo) -> "LayerSpec":
        """Arguments named ``*_file`` are paths, relative to the spec file like data paths."""
        resolve_layer_files(self.model_extra, info.context)
        return self

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class InputSpec(StrictModel):
    name: str = Field(description="Input name, used in layers' 'inputs'.")
    shape: list[int] = Field(
        description="Shape of one example, without the batch dimension; -1 for a dimension of any length (sequences)."
    )
    dtype: str = Field("float32", description="Input dtype: float32, int32 (token ids), string (raw text), ...")

    @field_validator("shape")
    @classmethod
    def _dims(cls, value: list[int]) -> list[int]:
        return positive_dims([1 if d == -1 else d for d in value]) and value

    @property
    def keras_shape(self) -> tuple[int | None, ...]:
        return tuple(None if d == -1 else d for d in self.shape)


# the generative keys (kind, encoder, decoder, ...) need LayerSpec, defined above
from framework.spec.sections.generative import GenerativeFields


class ModelSpec(GenerativeFields):
    layers: list[LayerSpec] = Field(
        default_factory=list,
        description=(
            "Layers in order (list form: each takes the previous one's output), or a graph "
            "(graph form: layers name their 'inputs'). Required unless model.kind is generative."
        ),
    )
    input_shape: list[int] | None = Field(
        None, description="List form: shape of one example (default: from data.reshape or the data source)."
    )
    inputs: list[InputSpec] | None = Field(None, description="Graph form: the named model inputs.")
    outputs: list[str] | None = Field(
        None, description="Graph form: names of the layers that are model outputs (default: the last layer)."
    )

    init_from: str | None = Field(
        None,
        description=(
            "Pre-training -> fine-tuning: start from a finished run's weights, copied layer by layer where the names "
            "and shapes match (name the layers to share). A run folder (relative to the spec file) or 'latest:NAME', "
            "the newest completed run of that name in the reports folder."
        ),
        examples=["latest:digits_pretrain", "../reports/digits_pretrain-20261128-101500-ab12cd"],
    )
    freeze: list[str] = Field(
        default_factory=list, description="Names of layers whose weights stay fixed during training (e.g. a pretrained trunk)."
    )

    _input_shape = field_validator("input_shape")(positive_dims)

    @field_validator("init_from")
    @classmethod
    def _init_from(cls, value: str | None, info: ValidationInfo) -> str | None:
        return resolve_run_reference(value, info.context)

    @model_validator(mode="after")
    def _graph_names(self) -> "ModelSpec":
        if not self.generative and not self.layers:
            raise PydanticCustomError("too_short", "model.layers needs at least one layer", {"path": "model.layers"})
        names = [i.name for i in self.inputs or []]
        for i, layer in enumerate(self.layers):
            if layer.name is not None:
                if layer.name in names:
                    raise PydanticCustomError(
                        "duplicate_name", "layers[{i}]: name '{name}' is used twice", {"i": i, "name": layer.name}
                    )
                names.append(layer.name)
        return self

    @property
    def is_graph(self) -> bool:
        return self.inputs is not None or any(l.inputs is not None for l in self.layers)
