"""Preparation, shared by every way of training (run, resume, check, tune trials): the backend, the data
splits, ONE count of steps per epoch, the compiled model (a DP-SGD model with [privacy]) and the pipelines.
Every user error surfaces here, before any file is written."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from framework import compat
from framework.build import build_model
from framework.build.augment import AugmentationPlan, augment_batch, plan_augmentation
from framework.data import load_splits
from framework.data.pipeline import evaluation_dataset, training_dataset
from framework.spec.load import LoadedSpec
from framework.spec.schema import LATEST, Spec
from framework.train import distribute
from framework.train.callbacks import spec_callbacks
from framework.train.compile import build_compiled_state, compile_model, needs_one_hot
from framework.train.transfer import initialise_and_freeze


_built_before = False  # whether this process has set up a model already: the first has no memory to free


def setup_backend(spec: Spec) -> None:
    """Seeds and precision policy; call before building the model."""
    import keras

    global _built_before
    keras.utils.clear_session(free_memory=_built_before)  # its garbage collection alone takes ~0.2 s
    _built_before = True
    keras.utils.set_random_seed(spec.seed)
    compat.set_op_determinism(deterministic_ops(spec))
    keras.mixed_precision.set_global_policy("mixed_float16" if spec.train.mixed_precision else "float32")


def deterministic_ops(spec: Spec) -> bool:
    """Whether this run uses deterministic ops (see TrainSpec.deterministic)."""
    if spec.train.deterministic != "auto":
        return spec.train.deterministic
    if spec.train.jit_compile is True:
        return False
    import tensorflow as tf

    return not tf.config.list_physical_devices("GPU")


def model_summary(model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    return "\n".join(lines) + "\n"


@dataclass
class Built:
    """A compiled model and how its targets and augmentation are arranged."""

    model: Any
    augmentation: AugmentationPlan
    one_hot: bool
    privacy: Any = None  # a PrivacyPlan when the spec has [privacy] and the data is known
    facts: dict = None  # what building found (vocabulary size, layers loaded, the teacher's scores), for metrics.json
    dp_seeds: Any = None  # the DP noise and sampling seeds (privacy.randomness.DPSeeds)
    #: the model's leading fixed-feature layers (e.g. Scattering2D), computed once per example by `prepare`; ``model``
    #: is then the rest, trained on their outputs
    features: Any = None


def count_steps(train_examples: int, batch_size: int, poisson: bool) -> int:
    """Steps per epoch: the one count the pipeline, the learning-rate schedule and the DP plan all use.

    Shuffled batches cover the split once (the last batch may be short); Poisson-sampled ones are
    ``N / batch_size`` independent draws of expected size ``batch_size``.
    """
    if poisson:
        return max(1, round(train_examples / batch_size))
    return max(1, math.ceil(train_examples / batch_size))


def check_model(spec: Spec):
    """``check`` without data: the backend, the compiled model, its outputs against the classes the source names
    without loading (sklearn:, keras:), and the spec's callbacks. Returns the model. ``check`` (CLI and API) and
    ``tune`` (before any trial starts) use it, so each finds the same spec errors."""
    from framework.train.targets import check_outputs_fit_source

    setup_backend(spec)
    built = build_and_compile(spec, None, steps_per_epoch=1)
    if not spec.model.generative:
        check_outputs_fit_source(built.model, spec, built.one_hot)
    spec_callbacks(spec)  # their names and arguments
    return built.model


def build_and_compile(
    spec: Spec, example_shape: tuple[int, ...] | None, steps_per_epoch: int, train_examples: int | None = None,
    train_inputs: Any = None, splits: Any = None, features: Any = None,
) -> Built:
    """Plan augmentation, build the model, compile it; with [privacy], a DP-SGD model. ``check`` and ``run`` share this.

    ``train_inputs`` (the training split's inputs) adapt layers such as TextVectorization before compiling.
    ``steps_per_epoch`` comes from :func:`count_steps` (``check`` passes 1: no data). ``features``: the fixed-feature
    model :func:`fixed_features` made; the model is then built from the layers after them, on their outputs.
    """
    from framework.build.adapt import adapt_to_data
    from framework.build.model import list_input_shape

    shape = example_shape if example_shape is not None else (
        spec.model.inputs[0].keras_shape if spec.model.inputs else list_input_shape(spec)
    )
    plan = plan_augmentation(spec, shape)
    if spec.model.generative:  # a VAE or GAN: its own train_step (build/generative.py)
        from framework.build.generative import build_generative, class_count, generation_facts

        model, privacy, seeds = build_generative(spec, shape, class_count(splits, spec), steps_per_epoch, plan,
                                                 train_examples)
        return Built(model, plan, False, privacy, generation_facts(model, spec.model.temperature), seeds)
    if features is not None:
        from framework.build.model import fixed_feature_layers

        model = build_model(spec, tuple(features.output_shape[1:]), start=fixed_feature_layers(spec))
    else:
        model = build_model(spec, example_shape, input_layers=plan.model_layers())
    facts = adapt_to_data(model, train_inputs) if train_inputs is not None else {}
    facts.update(initialise_and_freeze(model, spec))
    if spec.distill is not None and not spec.distill.teacher.startswith(LATEST):  # `check` leaves latest: unresolved
        from framework.train.distill import distillation_model, teacher_facts

        model, teacher = distillation_model(model, spec)
        facts.update(teacher_facts(spec, teacher))
    one_hot = needs_one_hot(spec, mixing=bool(plan.mixers))
    privacy = seeds = None
    if spec.distribute is not None and spec.distribute.strategy == "multi_worker":
        model = distribute.multi_worker_model(model)
    if spec.dp is not None:
        from framework.privacy.step import DPSGDModel

        model = DPSGDModel(inputs=model.inputs, outputs=model.outputs, name=model.name)
    compile_model(model, spec, steps_per_epoch, one_hot=one_hot)
    if spec.dp is not None and train_examples is not None:
        import keras

        from framework.privacy.plan import configure_private_model
        from framework.train.compile import resolve_losses

        loss = resolve_losses(spec, one_hot)
        privacy, seeds = configure_private_model(
            model, spec, train_examples, steps_per_epoch, keras.losses.get(loss) if isinstance(loss, str) else loss
        )
    return Built(model, plan, one_hot, privacy, facts, seeds, features)


def fixed_features(spec: Spec, splits):
    """The model's leading fixed-feature layers (build/model.py's fixed_feature_layers) as a model of their own, and
    the splits with their inputs replaced by those layers' outputs, computed once; (None, splits) when there are
    none or the data streams (it is not in memory)."""
    import dataclasses

    from framework.build.model import fixed_feature_layers

    if getattr(splits, "streams", None) is not None or isinstance(splits.x_train, dict):
        return None, splits
    count = fixed_feature_layers(spec)
    if not count:
        return None, splits
    features = build_model(spec.model_copy(update={"model": spec.model.model_copy(
        update={"layers": spec.model.layers[:count], "outputs": None})}), splits.example_shape)

    import numpy as np

    parts = [x for x in (splits.x_train, splits.x_val, splits.x_test) if x is not None]
    computed = np.split(features.predict(np.concatenate(parts), batch_size=1024, verbose=0),
                        np.cumsum([len(x) for x in parts])[:-1])  # one call: one traced function
    if splits.x_val is None:
        computed.insert(1, None)
    return features, dataclasses.replace(splits, x_train=computed[0], x_val=computed[1], x_test=computed[2])


@dataclass
class Prepared:
    """Everything a run needs before the run folder exists: spec, data, compiled model, pipelines."""

    spec: Spec
    splits: Any
    built: Built
    train_ds: Any
    val_ds: Any
    test_ds: Any
    steps_per_epoch: int
    pipeline_callbacks: list
    spec_callbacks: list  # regularization's and train.callbacks, made before any file is written
    strategy: Any = None  # the tf.distribute strategy with [distribute]
    pipeline_state: list = field(default_factory=list)  # pipeline variables a checkpoint carries (the DP sampling seed)
    data_digest: str = ""  # of the training split: a checkpoint resumes only the run of the same data
    raw_test_rows: Any = None  # a few test examples before fixed features: what the saved model is checked on

    @property
    def model(self):
        return self.built.model

    def inference_model(self):
        """The model as saved and used: raw examples in (fixed features included), without the DP, distillation
        or worker step."""
        import keras

        model, spec = self.model, self.spec
        if spec.model.generative:  # its saved model is the generator (reports/generative.py)
            return model
        if spec.dp is not None or spec.distill is not None or spec.distribute is not None:
            model = keras.Model(model.inputs, model.outputs, name=model.name)
        if self.built.features is not None:  # the whole declared model, flat, with the trained layers' weights
            full = build_model(spec, tuple(self.built.features.input_shape[1:]))
            full.set_weights(model.get_weights())  # the fixed layers have none: the same weights in the same order
            model = full
        return model

    def first_test_rows(self, count: int = 8):
        """A few raw test examples (before fixed features): what the saved model is checked on."""
        if self.raw_test_rows is not None:
            return self.raw_test_rows[:count]
        x = self.splits.x_test
        return {k: v[:count] for k, v in x.items()} if isinstance(x, dict) else x[:count]

    def state_variables(self) -> list:
        """Every variable the remaining epochs depend on, in a fixed order: weights, random generators'
        states (Dropout, augmentation, DP noise), the optimizer's, the pipeline's."""
        model = self.model
        plan = self.built.augmentation
        augmentation = [v for layer in [*plan.pipeline_layers(), *plan.mixers] for v in layer.variables]
        private = model.dp_state_variables() if hasattr(model, "dp_state_variables") else []
        generative = model.generative_state_variables() if hasattr(model, "generative_state_variables") else []
        return [*model.variables, *model.optimizer.variables, *generative, *augmentation, *private, *self.pipeline_state]


def targets_for(y, built: Built):
    import numpy as np

    if y is None or isinstance(y, dict) or not built.one_hot or y.ndim != 1:
        return y
    if hasattr(y, "one_hot"):  # a streamed source's labels (data/stream_pipelines.py): one-hot rows made in its pipeline
        return y.one_hot(int(built.model.output_shape[-1]))
    classes = int(built.model.output_shape[-1])
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= classes:
        from framework.errors import DataError

        raise DataError(f"one-hot targets need integer labels in [0, {classes}); got {y.dtype} in [{y.min()}, {y.max()}]", path="data.label")
    return np.eye(classes, dtype="float32")[y]


def make_datasets(spec: Spec, splits, built: Built, steps_per_epoch: int):
    """(train, validation, test) pipelines for a built model, the callback the training pipeline needs, and the
    pipeline's state variables."""
    plan = built.augmentation
    augment = (lambda x, y: augment_batch(plan, x, y)) if plan.pipeline_layers() or plan.mixers else None
    batch = spec.train.batch_size
    state = []
    seed: Any = spec.seed
    if built.dp_seeds is not None:  # the batches' membership is secret, and carried by the checkpoint
        import tensorflow as tf

        seed = tf.Variable(built.dp_seeds.sampling, dtype=tf.int64, trainable=False, name="dp_sampling_seed")
        state.append(seed)
    if getattr(splits, "streams", None) is not None:  # a streaming source (images:): its own pipelines over its file lists
        train_ds, epoch_callback = splits.streams.training_dataset(
            splits.x_train, targets_for(splits.y_train, built), batch_size=batch, data_spec=spec.data, seed=seed,
            augment=augment,
        )
        val_ds = None if splits.x_val is None else splits.streams.evaluation_dataset(
            splits.x_val, targets_for(splits.y_val, built), batch_size=batch, data_spec=spec.data
        )
        test_ds = splits.streams.evaluation_dataset(
            splits.x_test, targets_for(splits.y_test, built), batch_size=batch, data_spec=spec.data
        )
        return train_ds, val_ds, test_ds, epoch_callback, state
    if built.privacy is not None and built.privacy.sampling == "poisson":
        from framework.privacy.sampling import poisson_dataset

        train_ds, epoch_callback = poisson_dataset(
            splits.x_train, targets_for(splits.y_train, built), batch_size=batch, seed_variable=seed,
            steps_per_epoch=steps_per_epoch, augment=augment, prefetch=spec.data.prefetch,
        )
    else:
        train_ds, epoch_callback = training_dataset(
            splits.x_train, targets_for(splits.y_train, built), batch_size=batch, data_spec=spec.data, seed=seed,
            augment=augment,
        )
    val_ds = None if splits.x_val is None else evaluation_dataset(
        splits.x_val, targets_for(splits.y_val, built), batch_size=batch, data_spec=spec.data
    )
    test_ds = evaluation_dataset(splits.x_test, targets_for(splits.y_test, built), batch_size=batch, data_spec=spec.data)
    return train_ds, val_ds, test_ds, epoch_callback, state


def prepare(loaded: LoadedSpec) -> Prepared:
    """Load data and build and compile the model. Every user error surfaces here, before any file is written."""
    spec = loaded.spec
    strategy = distribute.make_strategy(spec)  # first: it may split the CPU into devices
    setup_backend(spec)
    splits = load_splits(spec.data, spec.seed)
    mixed = {}
    if spec.data.synthetic is not None:  # generated examples join the training split only
        from framework.data.synthetic import mix_synthetic

        mixed = mix_synthetic(splits, spec.data.synthetic)
    if spec.dp is not None and splits.class_names_from_labels:
        from framework.errors import DataError

        raise DataError(
            "with [privacy], class names read off the private labels would be published (preprocessing.json, reports); "
            "list the classes, known in advance, in data.class_names", path="data.class_names",
        )
    poisson = spec.dp is not None and spec.dp.sampling == "poisson"
    steps = count_steps(splits.train_size, spec.train.batch_size, poisson)
    digest = training_data_digest(splits)  # of the examples as stored, not of computed features
    features, featurized = fixed_features(spec, splits)
    raw_test_rows = None if features is None else splits.x_test[:8]
    splits = featurized
    with distribute.scope(strategy):  # variables (model, optimizer) live on every replica
        built = build_and_compile(
            spec, splits.example_shape, steps, train_examples=splits.train_size, train_inputs=splits.x_train,
            splits=splits, features=features,
        )
        if not built.model.optimizer.built:  # a GAN builds each optimizer on its own network
            built.model.optimizer.build(built.model.trainable_variables)  # before a checkpoint restores them
    built.facts.update(mixed)
    if spec.model.generative:
        from framework.build.generative import check_generative_inputs

        check_generative_inputs(spec, splits.x_train)
    else:
        from framework.train.targets import check_outputs_fit_targets  # outputs vs labels, before any file is written

        built.facts.update(check_outputs_fit_targets(built.model, splits, spec, built.one_hot))
    if strategy is not None and hasattr(splits.streams, "share_files"):  # each worker reads only its share of files
        splits.streams.share_files(*distribute.worker_share(strategy))
    train_ds, val_ds, test_ds, epoch_callback, state = make_datasets(spec, splits, built, steps)
    if strategy is None and not spec.model.generative:  # (a strategy's fit builds them itself; VAE/GAN steps have none)
        build_compiled_state(built.model, train_ds.element_spec)
    if strategy is not None:
        train_ds, val_ds, test_ds = (_shard_by_data(ds) for ds in (train_ds, val_ds, test_ds))
    return Prepared(
        spec, splits, built, train_ds, val_ds, test_ds, steps, [epoch_callback], spec_callbacks(spec), strategy, state,
        digest, raw_test_rows,
    )


def training_data_digest(splits) -> str:
    """A digest of the training split's inputs and targets, as the model sees them."""
    import hashlib

    import numpy as np

    if getattr(splits, "streams", None) is not None:  # files, not pixels: paths, sizes, times and labels
        return splits.streams.digest(splits.x_train, splits.y_train)
    digest = hashlib.sha256()
    for part in (splits.x_train, splits.y_train):
        for key, array in sorted(part.items()) if isinstance(part, dict) else [("", part)]:
            array = np.ascontiguousarray(array)
            digest.update(f"{key}:{array.dtype}:{array.shape};".encode())
            digest.update(array.tobytes() if array.dtype != object else repr(array.tolist()).encode())
    return digest.hexdigest()


def _shard_by_data(dataset):
    """In-memory pipelines have no files to shard by; workers split the batches instead."""
    if dataset is None:
        return None
    import tensorflow as tf

    if dataset.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.OFF:
        return dataset  # a streamed source's training pipeline, sharded by file already
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


