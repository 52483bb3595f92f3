"""The [data] section: where the data comes from, what kind of task it feeds, how it is split and scaled."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from framework.spec.resolve import resolve_data_source
from framework.spec.sections.base import StrictModel
from framework.spec.sections.synthetic import SyntheticSpec


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


class CsvOptions(StrictModel):
    """How a CSV file is written: its reader's options (csv:, in memory and streamed)."""

    delimiter: str = Field(",", min_length=1, max_length=1, description="The character between fields, e.g. ';' or '\\t'.")
    quote_char: str = Field('"', min_length=1, max_length=1, description="The character that quotes a field.")
    quoting: Literal["minimal", "all", "nonnumeric", "none"] = Field(
        "minimal",
        description=(
            "Python csv quoting: 'minimal' and 'all' read quoted fields as text; 'nonnumeric' reads unquoted fields as "
            "numbers; 'none' takes quote characters literally."
        ),
    )
    encoding: str = Field("utf-8", description="The file's text encoding, e.g. 'utf-8', 'latin-1', 'utf-16'.")
    line_terminator: Literal["\n", "\r\n", "\r"] | None = Field(
        None,
        description=(
            "What ends a row: null (any of \\n, \\r\\n, \\r; a bare \\r inside an unquoted field is then an "
            "error naming its line), '\\n' (a \\r is an ordinary character), '\\r\\n' or '\\r'."
        ),
    )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        try:
            return codecs.lookup(value).name
        except LookupError:
            raise ValueError(f"unknown text encoding {value!r}; e.g. 'utf-8', 'latin-1', 'cp1252', 'utf-16'") from None


class RecordFeature(StrictModel):
    """One feature of a tfrecord: file, parsed with tf.io.FixedLenFeature."""

    shape: list[int] = Field(default_factory=list, description="Values per example, e.g. [64] or [8, 8, 1]; [] = one value.")
    dtype: Literal["float32", "int64", "string"] = Field(
        "float32", description="How the tf.train.Example stores it: float32 (float_list), int64 (int64_list), string (bytes_list)."
    )

    @field_validator("shape")
    @classmethod
    def _positive_dims(cls, value: list[int]) -> list[int]:
        if any(d < 1 for d in value):
            raise ValueError(f"dimensions must be positive, got {value}")
        return value


STREAMING_SCHEMES = ("tfrecord", "parquet")


class DataSpec(StrictModel):
    source: str = Field(
        description=(
            "Where the data comes from, as SCHEME:ARG: sklearn:digits|iris|wine|breast_cancer, "
            "csv:PATH, npz:PATH, keras:mnist|fashion_mnist|cifar10|..., images:FOLDER (one subfolder of images per class, "
            "or a CSV of file,label rows; streamed from disk), tfrecord:GLOB and parquet:GLOB (streamed; GLOB may "
            "match several files, e.g. shards/*.tfrecord). Paths are relative to the spec file."
        ),
        examples=["sklearn:digits", "csv:data/train.csv", "npz:mnist.npz", "keras:mnist", "parquet:data/*.parquet"],
    )
    features: list[str] | dict[str, RecordFeature] | None = Field(
        None,
        description=(
            "csv: and parquet: the feature columns (default: every column but the label). tfrecord: every feature "
            "to parse, label included, as name -> { shape, dtype }; the inputs are the features but the label (one: "
            "its shape; several: flattened and joined in this order)."
        ),
        examples=[["x1", "x2"], {"pixels": {"shape": [64]}, "label": {"dtype": "int64"}}],
    )
    label: str = Field("label", description="csv:, parquet:, tfrecord: the label column (or feature).")
    stream: bool = Field(
        False,
        description=(
            "csv: read the file(s) in chunks through tf.data instead of loading them (for data larger than memory; "
            "PATH may then be a glob). tfrecord: and parquet: always stream. Streamed splits are drawn by a hash "
            "(see data.split_by), not stratified."
        ),
    )
    split_by: Literal["row", "file"] = Field(
        "row",
        description=(
            "Streamed sources: draw each row's split from a hash of (file, row number) ('row'), or each file's from "
            "a hash of its path ('file': whole files are held out, and training reads only training files)."
        ),
    )
    chunk_rows: int = Field(
        8192, ge=1, le=10_000_000,
        description="Streamed csv: and parquet:, and tfrecord: parsing: rows read at a time (memory vs speed).",
    )
    shuffle_buffer: int = Field(
        10_000, ge=1, le=100_000_000,
        description="Streamed sources: the training rows are shuffled within windows of this many (by seed and epoch).",
    )
    csv: CsvOptions = Field(default_factory=CsvOptions, description="csv: the reader's options (in memory and streamed).")
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
    synthetic: SyntheticSpec | None = Field(
        None, description="Mix generated examples from a generative run into the training split (validation and test stay real).",
    )
    stratify: bool = Field(True, description="Stratify the splits by label (classification).")
    scale: Literal["none", "standard", "minmax"] | float = Field(
        "none",
        description=(
            "Input scaling: 'standard' (zero mean, unit variance) and 'minmax' are fitted on the training split only "
            "(images: in one streaming pass over its files); "
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
    image_size: list[int] | None = Field(
        None, min_length=2, max_length=2,
        description="images: [height, width] every image is resized to (bilinear) as it is read; required for images:.",
        examples=[[64, 64]],
    )
    channels: Literal[1, 3] = Field(
        3, description="images: 1 (gray) or 3 (RGB); every file is converted to it (an alpha channel is dropped)."
    )

    @field_validator("image_size")
    @classmethod
    def _image_size_positive(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(d < 1 or d > 65_536 for d in value):
            raise ValueError(f"height and width must be 1..65536, got {value}")
        return value

    @model_validator(mode="after")
    def _image_folder(self) -> "DataSpec":
        images = self.source.startswith("images:")
        if images and self.image_size is None:
            raise PydanticCustomError(
                "data_images", "images: needs data.image_size = [height, width], the size every image is resized to"
            )
        if not images and self.image_size is not None:
            raise PydanticCustomError("data_images", "data.image_size applies to the images: source only")
        if images and self.reshape:
            raise PydanticCustomError("data_images", "images: gives [height, width, channels] examples; data.reshape does not apply")
        return self

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
    def _streaming(self) -> "DataSpec":
        scheme = self.source.partition(":")[0]
        streamed = scheme in STREAMING_SCHEMES or (scheme == "csv" and self.stream)
        if self.stream and scheme not in ("csv", *STREAMING_SCHEMES):
            raise PydanticCustomError("data_stream", "data.stream applies to csv: (tfrecord: and parquet: always stream)")
        if isinstance(self.features, dict) and scheme != "tfrecord":
            raise PydanticCustomError(
                "data_features", "data.features as a table of name -> shape and dtype declares tfrecord: features; "
                "list the feature columns for " + scheme + ":",
            )
        if scheme == "tfrecord" and not isinstance(self.features, dict):
            raise PydanticCustomError(
                "data_features", "tfrecord: needs its feature spec, e.g. data.features = { pixels = { shape = [64] }, "
                "label = { dtype = 'int64' } }",
            )
        if streamed:
            used = [k for k in ("text", "targets", "window", "sequence") if getattr(self, k) is not None]
            if used:
                raise PydanticCustomError(
                    "data_stream", "streamed sources give numeric inputs and one label; data.{key} does not apply",
                    {"key": used[0]},
                )
        return self

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
        return resolve_data_source(value, info.context)
