"""The spec format, declared once: every option's type, default and description.

The JSON Schema (``python -m framework schema``) and the spec reference in the
README come from these classes. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from framework.errors import did_you_mean


class StrictModel(BaseModel):
    """A spec table: unknown keys are errors that suggest the closest known key."""

    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and cls.model_config.get("extra") == "forbid":
            known = set(cls.model_fields)
            for key in data:
                if key not in known:
                    raise PydanticCustomError(
                        "unknown_key",
                        "unknown key '{key}'{hint}",
                        {"key": str(key), "hint": did_you_mean(str(key), known)},
                    )
        return data


def _finite(value: float, info: ValidationInfo) -> float:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value}")
    return value


class TypedTable(BaseModel):
    """A table with a ``type`` and that type's keyword arguments (checked when built)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    type: str = Field(description="Registered name, e.g. a keras class name.")

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


# --- data ------------------------------------------------------------------------------


class WindowSpec(StrictModel):
    """Forecasting: slide a window over the rows (in file order) and predict a later value of the label."""

    size: int = Field(ge=1, le=100_000, description="Time steps in each input window.")
    horizon: int = Field(1, ge=1, le=100_000, description="Predict the label this many steps after the window's last step.")
    stride: int = Field(1, ge=1, le=100_000, description="Steps between the starts of consecutive windows.")


class SequenceSpec(StrictModel):
    """Sequence-to-sequence: source and target strings become character ids (vocabularies from the training split)."""

    source_input: str = Field("source", description="Model input that receives the source ids.")
    decoder_input: str = Field(
        "decoder_input", description="Model input that receives the target shifted right (teacher forcing)."
    )


class DataSpec(StrictModel):
    source: str = Field(
        description=(
            "Where the data comes from, as SCHEME:ARG: sklearn:digits|iris|wine|breast_cancer, "
            "csv:PATH, npz:PATH, keras:mnist|fashion_mnist|cifar10|... Paths are relative to the spec file."
        ),
        examples=["sklearn:digits", "csv:data/train.csv", "npz:mnist.npz", "keras:mnist"],
    )
    features: list[str] | None = Field(None, description="csv: feature columns (default: every column but the label).")
    label: str = Field("label", description="csv: the label column.")
    class_names: list[str] | None = Field(
        None,
        min_length=1,
        description=(
            "Names of the classes, shown in predictions, the confusion matrix and preprocessing.json. For integer "
            "labels, name i is class i (as many names as classes); for string labels, the list sets the class ids' "
            "order (default: sorted). Not with data.targets, data.window or data.sequence."
        ),
        examples=[["cat", "dog"]],
    )
    text: str | None = Field(
        None,
        description=(
            "csv: a column of raw text that is the model's input (one string per example); start the model with a "
            "TextVectorization layer, whose vocabulary is built from the training split only."
        ),
    )
    targets: dict[str, str] | None = Field(
        None,
        description=(
            "Multi-task: one target per model output, as output name -> a label column or a pandas expression of "
            "columns, e.g. { digit = 'label', even = 'label % 2 == 0' }. scikit-learn sources have one column, 'label'."
        ),
    )
    window: WindowSpec | None = Field(
        None, description="Forecasting windows over the rows; the splits are chronological (test = the last rows)."
    )
    sequence: SequenceSpec | None = Field(
        None, description="Sequence-to-sequence: the source gives (source string, target string) pairs."
    )
    test_split: float = Field(
        0.2, ge=0.0, lt=1.0, description="Fraction held out for testing, when the source has no test split of its own."
    )
    validation_split: float = Field(0.1, ge=0.0, lt=1.0, description="Fraction of the training split held out for validation.")
    stratify: bool = Field(True, description="Stratify the splits by label (classification).")
    scale: Literal["none", "standard", "minmax"] | float = Field(
        "none",
        description=(
            "Input scaling: 'standard' (zero mean, unit variance) and 'minmax' are fitted on the training split only; "
            "a number multiplies the inputs (e.g. 0.0625 for digits, 0.00392 for 8-bit images)."
        ),
    )
    reshape: list[int] | None = Field(
        None, description="Reshape each example, e.g. [8, 8, 1] for digits as images; -1 allowed once."
    )
    train_limit: int | None = Field(
        None, ge=1, description="Keep only the first N training examples (after splitting), e.g. to study overfitting."
    )
    shuffle: bool = Field(
        True, description="Shuffle the training set every epoch: a seeded permutation per epoch, the same on resume."
    )
    cache: bool = Field(True, description="Cache the validation and test pipelines in memory.")
    prefetch: bool = Field(True, description="Prefetch batches (tf.data.AUTOTUNE).")

    @field_validator("scale")
    @classmethod
    def _scale_finite_positive(cls, value, info: ValidationInfo):
        if isinstance(value, float) and (not math.isfinite(value) or value <= 0):
            raise ValueError(f"a numeric scale must be a positive finite number, got {value}")
        return value

    @field_validator("reshape")
    @classmethod
    def _reshape_dims(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("must list at least one dimension")
        if sum(1 for d in value if d == -1) > 1 or any(d == 0 or d < -1 for d in value):
            raise ValueError(f"dimensions must be positive, with at most one -1; got {value}")
        return value

    @model_validator(mode="after")
    def _one_task_shape(self) -> "DataSpec":
        kinds = [k for k in ("text", "window", "sequence") if getattr(self, k) is not None]
        if len(kinds) > 1:
            raise PydanticCustomError("data_kind", "data.{a} and data.{b} exclude each other", {"a": kinds[0], "b": kinds[1]})
        if kinds and kinds[0] in ("text", "sequence") and (self.scale != "none" or self.reshape):
            raise PydanticCustomError(
                "data_text", "data.scale and data.reshape apply to numeric inputs, not to data.{kind}", {"kind": kinds[0]}
            )
        if self.targets is not None and (not self.targets or self.sequence is not None):
            raise PydanticCustomError("data_targets", "data.targets needs at least one output, and not data.sequence")
        if self.class_names is not None and (kinds[:1] in (["window"], ["sequence"]) or self.targets is not None):
            raise PydanticCustomError(
                "data_class_names", "data.class_names names the classes of data.label; data.{kind} has none",
                {"kind": "targets" if self.targets is not None else kinds[0]},
            )
        return self

    @field_validator("class_names")
    @classmethod
    def _distinct_class_names(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            repeated = sorted({n for n in value if value.count(n) > 1})
            if repeated:
                raise ValueError(f"each class needs its own name; repeated: {repeated}")
        return value

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str, info: ValidationInfo) -> str:
        from framework.data.sources import resolve_source_string

        base_dir = (info.context or {}).get("base_dir")
        return resolve_source_string(value, Path(base_dir) if base_dir else Path.cwd())


# --- model -----------------------------------------------------------------------------


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
        from framework.data.sources import usable_path

        base_dir = Path((info.context or {}).get("base_dir") or Path.cwd())
        for key, value in (self.model_extra or {}).items():
            if key.endswith("_file") and isinstance(value, str):
                path = usable_path(value, base_dir)
                if not path.is_file():
                    raise PydanticCustomError("layer_file", "{key}: file not found: {path}", {"key": key, "path": str(path)})
                self.model_extra[key] = str(path)
        return self

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _positive_dims(value: list[int] | None) -> list[int] | None:
    if value is not None and (not value or any(d < 1 or d > 2**31 for d in value)):
        raise ValueError(f"dimensions must be whole numbers from 1 to 2^31, at least one; got {value}")
    return value


class InputSpec(StrictModel):
    name: str = Field(description="Input name, used in layers' 'inputs'.")
    shape: list[int] = Field(
        description="Shape of one example, without the batch dimension; -1 for a dimension of any length (sequences)."
    )
    dtype: str = Field("float32", description="Input dtype: float32, int32 (token ids), string (raw text), ...")

    @field_validator("shape")
    @classmethod
    def _dims(cls, value: list[int]) -> list[int]:
        return _positive_dims([1 if d == -1 else d for d in value]) and value

    @property
    def keras_shape(self) -> tuple[int | None, ...]:
        return tuple(None if d == -1 else d for d in self.shape)


LATEST = "latest:"
RUN_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


def _run_reference(value: str | None, info: ValidationInfo) -> str | None:
    """A finished run: 'latest:NAME' (looked up when training starts) or a run folder, made absolute."""
    import re

    from framework.data.sources import usable_path

    if not value:
        return None  # "" switches it off, e.g. with --set
    if value.startswith(LATEST):
        if not re.match(RUN_NAME_PATTERN, value[len(LATEST):]):
            raise ValueError(f"'{value}': after 'latest:' comes a run name (letters, digits, '.', '_', '-')")
        return value
    folder = usable_path(value, Path((info.context or {}).get("base_dir") or Path.cwd()))
    if not (folder / "model.keras").is_file():
        raise ValueError(f"{folder} is not a finished run folder (it has no model.keras)")
    return str(folder)


class ModelSpec(StrictModel):
    layers: list[LayerSpec] = Field(
        min_length=1,
        description=(
            "Layers in order (list form: each takes the previous one's output), or a graph "
            "(graph form: layers name their 'inputs')."
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

    _input_shape = field_validator("input_shape")(_positive_dims)
    _init_from = field_validator("init_from")(lambda value, info: _run_reference(value, info))

    @model_validator(mode="after")
    def _graph_names(self) -> "ModelSpec":
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


# --- train -----------------------------------------------------------------------------


class OptimizerSpec(TypedTable):
    type: str = Field("adam", description="A keras.optimizers name: adam, adamw, sgd, rmsprop, ...")
    learning_rate: float = Field(1e-3, gt=0, description="Learning rate (the schedule's initial rate when one is set).")

    _finite_lr = field_validator("learning_rate")(_finite)


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
    verbose: Literal[0, 1, 2] = Field(2, description="Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch.")


# --- augmentation and regularization ---------------------------------------------------


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
            "inactive at evaluation and prediction), or 'auto': model on a GPU, pipeline otherwise. "
            "MixUp and CutMix always run in the pipeline. The placement used is recorded in metrics.json."
        ),
    )


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

    _teacher = field_validator("teacher")(lambda value, info: _run_reference(value, info))


class DistributeSpec(StrictModel):
    """Training on several devices or machines with tf.distribute. ``train.batch_size`` stays the global batch
    (all replicas together); each replica takes batch_size / replicas examples per step."""

    strategy: Literal["mirrored", "multi_worker", "tpu"] = Field(
        description=(
            "'mirrored': tf.distribute.MirroredStrategy over this machine's devices; 'multi_worker': "
            "MultiWorkerMirroredStrategy, the cluster from the TF_CONFIG environment variable; 'tpu': TPUStrategy."
        )
    )
    devices: list[str] | None = Field(
        None, description="mirrored: the devices, e.g. ['/gpu:0', '/gpu:1'] (default: every GPU, else the CPU)."
    )
    cpu_devices: int | None = Field(
        None, ge=2, le=64,
        description="Split the host CPU into this many logical devices and mirror over them (to try mirrored without GPUs).",
    )
    tpu: str = Field("", description="tpu: the TPU's name or grpc:// address ('' = the local or default TPU).")
    communication: Literal["auto", "ring", "nccl"] = Field(
        "auto", description="multi_worker: the collective implementation ('nccl' needs GPUs)."
    )


class TuneSpec(StrictModel):
    tuner: Literal["random", "bayesian", "hyperband", "grid"] = Field("random", description="keras-tuner's search algorithm.")
    objective: str = Field("val_loss", description="The logged quantity to optimize, e.g. val_accuracy or val_loss.")
    direction: Literal["auto", "min", "max"] = Field(
        "auto", description="'auto': max for accuracy-like objectives, min for losses and errors."
    )
    max_trials: int = Field(10, ge=1, le=100_000, description="Trials to run (hyperband: its own budget bounds it).")
    executions_per_trial: int = Field(1, ge=1, le=100, description="Trainings per trial, averaged (reduces noise).")
    seed: int | None = Field(None, ge=0, description="The tuner's seed (default: the spec's seed).")
    hyperband_factor: int = Field(3, ge=2, description="hyperband: the reduction factor; train.epochs is its max epochs.")

    @property
    def resolved_direction(self) -> str:
        if self.direction != "auto":
            return self.direction
        lowered = self.objective.lower()
        return "min" if any(k in lowered for k in ("loss", "error", "mae", "mse")) else "max"


# --- the whole spec --------------------------------------------------------------------


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

    @property
    def dp(self) -> PrivacySpec | None:
        """The [privacy] section when it is on (``enabled = false`` keeps it in the spec, switched off)."""
        return self.privacy if self.privacy is not None and self.privacy.enabled else None

    def _check_private(self) -> None:
        for i, layer in enumerate(self.model.layers):
            if layer.type in BATCH_MIXING_LAYERS:
                raise PydanticCustomError(
                    "privacy_layer",
                    "model.layers[{i}]: {type} mixes the examples of a batch, so per-example clipping cannot bound one "
                    "example's influence; use {alternative}",
                    {"i": i, "type": layer.type, "alternative": BATCH_MIXING_LAYERS[layer.type]},
                )
        for i, step in enumerate(self.augmentation.steps):
            if step.type in ("MixUp", "CutMix"):
                raise PydanticCustomError(
                    "privacy_mix", "augmentation.steps[{i}]: {type} mixes examples, which DP-SGD's per-example "
                    "clipping does not allow", {"i": i, "type": step.type},
                )
        if self.model.outputs and len(self.model.outputs) > 1:
            raise PydanticCustomError("privacy_outputs", "DP-SGD here supports single-output models")

    def _check_private_inputs(self) -> None:
        """Each way the training split could reach the output outside the DP step is refused, with the alternative."""
        if self.data.scale in ("standard", "minmax"):
            raise PydanticCustomError(
                "privacy_scale", "data.scale = '{scale}' is fitted on the private training split and written to "
                "preprocessing.json without noise; with [privacy] give a fixed number known in advance "
                "(e.g. data.scale = 0.00392 for 0-255 pixels)", {"scale": self.data.scale, "path": "data.scale"},
            )
        reg = self.regularization
        for key, callback in (("early_stopping", reg.early_stopping), ("reduce_lr_on_plateau", reg.reduce_lr_on_plateau)):
            if callback is not None and not callback.monitor.startswith("val_"):
                raise PydanticCustomError(
                    "privacy_monitor", "regularization.{key} watches '{monitor}', a training metric computed from the "
                    "private data without noise; with [privacy] watch a validation metric (val_{monitor})",
                    {"key": key, "monitor": callback.monitor, "path": f"regularization.{key}.monitor"},
                )
        if self.model.init_from and not self.dp.public_init:
            raise PydanticCustomError(
                "privacy_init", "model.init_from starts from weights whose privacy this run cannot know; if that run "
                "was trained on public data, say so with privacy.public_init = true", {"path": "model.init_from"},
            )
        if self.train.mixed_precision:
            raise PydanticCustomError(
                "privacy_precision", "train.mixed_precision with [privacy]: the DP step adds noise to float32 sums and "
                "does not unscale a loss-scaled gradient; train DP in float32", {"path": "train.mixed_precision"},
            )

    def _check_data_kinds(self) -> None:
        data = self.data
        textual = "data.text" if data.text is not None else "data.sequence" if data.sequence is not None else None
        if textual and self.augmentation.steps:
            raise PydanticCustomError(
                "augment_text", "augmentation steps transform numbers and images; {kind} gives the model strings, "
                "so remove [augmentation] or its steps", {"kind": textual, "path": "augmentation.steps"},
            )
        if textual and self.dp is not None:
            reason = (
                "TextVectorization cannot run inside DP-SGD's per-example gradient loop"
                if data.text is not None else "DP-SGD here supports single-input models"
            )
            raise PydanticCustomError(
                "privacy_text", "[privacy] with {kind}: {reason}", {"kind": textual, "reason": reason, "path": "privacy"}
            )
        if data.sequence is not None:
            declared = [i.name for i in self.model.inputs or []]
            missing = [n for n in (data.sequence.source_input, data.sequence.decoder_input) if n not in declared]
            if missing:
                raise PydanticCustomError(
                    "sequence_inputs", "data.sequence feeds the model inputs {missing}, which model.inputs does not "
                    "declare (declared: {declared})", {"missing": missing, "declared": declared, "path": "model.inputs"},
                )
        if data.targets is not None and len(data.targets) > 1:
            outputs = self.model.outputs or []
            if sorted(data.targets) != sorted(outputs):
                raise PydanticCustomError(
                    "targets_outputs", "data.targets names {targets}, but model.outputs is {outputs}; "
                    "each output needs its target", {"targets": sorted(data.targets), "outputs": outputs, "path": "data.targets"},
                )

    @field_validator("plugins")
    @classmethod
    def _absolute_plugin_paths(cls, value: list[str], info: ValidationInfo) -> list[str]:
        from framework.data.sources import usable_path

        base_dir = Path((info.context or {}).get("base_dir") or Path.cwd())
        return [str(usable_path(p, base_dir)) for p in value]

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> "Spec":
        reg = self.regularization
        if reg.reduce_lr_on_plateau is not None and self.train.lr_schedule is not None:
            raise PydanticCustomError(
                "lr_conflict", "regularization.reduce_lr_on_plateau cannot change a train.lr_schedule; use one of them"
            )
        if reg.weight_decay and "weight_decay" in self.train.optimizer.kwargs:
            raise PydanticCustomError(
                "wd_conflict", "weight decay is set twice: in regularization.weight_decay and train.optimizer.weight_decay"
            )
        if self.train.deterministic is True and self.train.jit_compile is True:
            raise PydanticCustomError(
                "xla_determinism", "train.deterministic = true and train.jit_compile = true exclude each other: "
                "Keras runs no XLA with deterministic ops; choose one"
            )
        if self.dp is not None:  # a disabled [privacy] section stays in the spec (and resolved.json), unused
            self._check_private()
            if not (info.context or {}).get("existing_run"):  # rules for starting a run, not for reading a finished one
                self._check_private_inputs()
        self._check_data_kinds()
        if self.distribute is not None:
            if self.dp is not None:
                raise PydanticCustomError(
                    "distribute_privacy", "[distribute] with [privacy]: the DP-SGD step clips and adds noise within one "
                    "replica's batch, so replicas would each add noise and the accounting would not hold; train DP on "
                    "one device", {"path": "distribute"},
                )
            if self.distill is not None:
                raise PydanticCustomError(
                    "distribute_distill", "[distribute] with [distill]: the teacher model is not replicated; distil on "
                    "one device", {"path": "distribute"},
                )
        if self.distill is not None:
            if self.dp is not None:
                raise PydanticCustomError(
                    "distill_privacy", "[distill] with [privacy]: the teacher learned from the same data without noise, "
                    "so the student's epsilon would not bound what it reveals; distil without DP, or train the teacher with DP",
                    {"path": "distill"},
                )
            if self.model.outputs and len(self.model.outputs) > 1:
                raise PydanticCustomError("distill_outputs", "[distill] needs a single-output (classifier) model", {"path": "distill"})
        monitors = [m.monitor for m in (reg.early_stopping, reg.reduce_lr_on_plateau) if m is not None]
        if self.data.validation_split == 0 and any(m.startswith("val_") for m in monitors):
            raise PydanticCustomError(
                "no_validation", "early stopping / reduce_lr_on_plateau watch a val_ metric but data.validation_split is 0"
            )
        return self
