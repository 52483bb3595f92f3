"""One run: data -> model -> fit -> evaluate, with everything written to a run folder."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.build import build_model
from framework.build.augment import AugmentationPlan, augment_batch, plan_augmentation
from framework.data import load_splits
from framework.data.pipeline import evaluation_dataset, training_dataset
from framework.errors import FrameworkError
from framework.reports import run_folder as rf
from framework.reports.run_folder import RunFolder
from framework.spec.load import LoadedSpec
from framework.spec.schema import LATEST, Spec
from framework.train import distribute
from framework.train.callbacks import (
    early_stopping_report,
    epoch_backup,
    epoch_timer,
    spec_callbacks,
    stop_on_non_finite_loss,
)
from framework.train.compile import compile_model, needs_one_hot
from framework.train.environment import describe_environment
from framework.train.transfer import initialise_and_freeze, resolve_run_references


class RunInterrupted(FrameworkError):
    """Ctrl-C during training: the folder is kept and marked interrupted."""

    exit_code = 130
    kind = "interrupted"


class RunFailed(FrameworkError):
    """Training stopped on its own (e.g. a non-finite loss): the folder is marked failed."""

    exit_code = 1
    kind = "run failed"


@dataclass
class RunResult:
    folder: RunFolder | None  # None on a multi_worker helper: the chief writes the run folder
    metrics: dict[str, Any]


def setup_backend(spec: Spec) -> None:
    """Seeds and precision policy; call before building the model."""
    import keras

    keras.utils.clear_session(free_memory=True)
    keras.utils.set_random_seed(spec.seed)
    from tensorflow.python.framework import config as tf_config  # the public API has no way back

    if deterministic_ops(spec):
        tf_config.enable_op_determinism()
    else:
        tf_config.disable_op_determinism()
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


def build_and_compile(
    spec: Spec, example_shape: tuple[int, ...] | None, steps_per_epoch: int, train_examples: int | None = None,
    train_inputs: Any = None,
) -> Built:
    """Plan augmentation, build the model, compile it; with [privacy], a DP-SGD model. ``check`` and ``run`` share this.

    ``train_inputs`` (the training split's inputs) adapt layers such as TextVectorization before compiling.
    """
    from framework.build.adapt import adapt_to_data
    from framework.build.model import list_input_shape

    shape = example_shape if example_shape is not None else (
        spec.model.inputs[0].keras_shape if spec.model.inputs else list_input_shape(spec)
    )
    plan = plan_augmentation(spec, shape)
    model = build_model(spec, example_shape, input_layers=plan.model_layers())
    facts = adapt_to_data(model, train_inputs) if train_inputs is not None else {}
    facts.update(initialise_and_freeze(model, spec))
    if spec.distill is not None and not spec.distill.teacher.startswith(LATEST):  # `check` leaves latest: unresolved
        from framework.train.distill import distillation_model, teacher_facts

        model, teacher = distillation_model(model, spec)
        facts.update(teacher_facts(spec, teacher))
    one_hot = needs_one_hot(spec, mixing=bool(plan.mixers))
    privacy = None
    if spec.distribute is not None and spec.distribute.strategy == "multi_worker":
        model = distribute.multi_worker_model(model)
    if spec.privacy is not None:
        from framework.privacy.step import DPSGDModel

        model = DPSGDModel(inputs=model.inputs, outputs=model.outputs, name=model.name)
    compile_model(model, spec, steps_per_epoch, one_hot=one_hot)
    if spec.privacy is not None and train_examples is not None:
        import keras

        from framework.privacy.plan import plan_privacy
        from framework.train.compile import resolve_losses

        privacy = plan_privacy(spec, train_examples)
        loss = resolve_losses(spec, one_hot)
        model.configure_privacy(
            l2_norm_clip=privacy.l2_norm_clip, noise_multiplier=privacy.noise_multiplier,
            expected_batch_size=spec.train.batch_size, loss=keras.losses.get(loss) if isinstance(loss, str) else loss,
            seed=spec.seed, allow_ghost=spec.privacy.clipping == "auto",
        )
    return Built(model, plan, one_hot, privacy, facts)


@dataclass
class Prepared:
    """Everything a run needs before the run folder exists: spec, data, compiled model."""

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

    @property
    def model(self):
        return self.built.model


def targets_for(y, built: Built):
    import numpy as np

    if y is None or isinstance(y, dict) or not built.one_hot or y.ndim != 1:
        return y
    classes = int(built.model.output_shape[-1])
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= classes:
        from framework.errors import DataError

        raise DataError(f"one-hot targets need integer labels in [0, {classes}); got {y.dtype} in [{y.min()}, {y.max()}]", path="data.label")
    return np.eye(classes, dtype="float32")[y]


def make_datasets(spec: Spec, splits, built: Built):
    """(train, validation, test) pipelines for a built model, and the callback the training pipeline needs."""
    plan = built.augmentation
    augment = (lambda x, y: augment_batch(plan, x, y)) if plan.pipeline_layers() or plan.mixers else None
    batch = spec.train.batch_size
    if built.privacy is not None and built.privacy.sampling == "poisson":
        from framework.privacy.sampling import poisson_dataset

        train_ds, epoch_callback = poisson_dataset(
            splits.x_train, targets_for(splits.y_train, built), batch_size=batch, seed=spec.seed,
            steps_per_epoch=built.privacy.steps_per_epoch, augment=augment, prefetch=spec.data.prefetch,
        )
    else:
        train_ds, epoch_callback = training_dataset(
            splits.x_train, targets_for(splits.y_train, built), batch_size=batch, data_spec=spec.data, seed=spec.seed,
            augment=augment,
        )
    val_ds = None if splits.x_val is None else evaluation_dataset(
        splits.x_val, targets_for(splits.y_val, built), batch_size=batch, data_spec=spec.data
    )
    test_ds = evaluation_dataset(splits.x_test, targets_for(splits.y_test, built), batch_size=batch, data_spec=spec.data)
    return train_ds, val_ds, test_ds, epoch_callback


def prepare(loaded: LoadedSpec) -> Prepared:
    """Load data and build and compile the model. Every user error surfaces here, before any file is written."""
    spec = loaded.spec
    strategy = distribute.make_strategy(spec)  # first: it may split the CPU into devices
    setup_backend(spec)
    splits = load_splits(spec.data, spec.seed)
    steps = math.ceil(splits.train_size / spec.train.batch_size)
    with distribute.scope(strategy):  # variables (model, optimizer) live on every replica
        built = build_and_compile(
            spec, splits.example_shape, steps, train_examples=splits.train_size, train_inputs=splits.x_train
        )
    train_ds, val_ds, test_ds, epoch_callback = make_datasets(spec, splits, built)
    if strategy is not None:
        train_ds, val_ds, test_ds = (_shard_by_data(ds) for ds in (train_ds, val_ds, test_ds))
    return Prepared(spec, splits, built, train_ds, val_ds, test_ds, steps, [epoch_callback], spec_callbacks(spec), strategy)


def _shard_by_data(dataset):
    """In-memory pipelines have no files to shard by; workers split the batches instead."""
    if dataset is None:
        return None
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _write_inputs(folder: RunFolder, loaded: LoadedSpec, prepared: Prepared) -> None:
    suffix = loaded.path.suffix.lower() if loaded.path else ".json"
    folder.write_text(f"spec{suffix}", loaded.text)
    resolved = loaded.resolved()
    resolved["_overrides"] = loaded.overrides
    folder.write_json(rf.RESOLVED, resolved)
    folder.write_text(rf.SUMMARY, model_summary(prepared.model))
    folder.write_json(
        rf.PREPROCESSING,
        {**prepared.splits.preprocessing, "class_names": prepared.splits.class_names, "sizes": prepared.splits.sizes()},
    )


def _finite_history(history: dict[str, list[float]]) -> tuple[bool, int | None]:
    for epoch, value in enumerate(history.get("loss", []), start=1):
        if value is None or not math.isfinite(value):
            return False, epoch
    return True, None


BACKUP = "backup"  # keras.callbacks.BackupAndRestore's folder: weights, optimizer state, epoch


def run_experiment(loaded: LoadedSpec, reports_dir: str | Path = "reports") -> RunResult:
    """A new run: prepare (every user error surfaces here), then create the folder and train."""
    loaded.spec = resolve_run_references(loaded.spec, reports_dir)
    prepared = prepare(loaded)
    if not distribute.is_chief(prepared.strategy):
        # a multi_worker helper trains its share in a scratch folder; the chief alone writes the run folder
        import shutil
        import tempfile

        scratch = tempfile.mkdtemp(prefix="framework-worker-")
        try:
            result = _start(loaded, prepared, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return RunResult(None, result.metrics)
    return _start(loaded, prepared, reports_dir)


def _start(loaded: LoadedSpec, prepared: Prepared, reports_dir) -> RunResult:
    """Create the run folder, write what the run starts from, and train."""
    spec, model = prepared.spec, prepared.model
    folder = RunFolder.create(Path(reports_dir), spec.name)
    _write_inputs(folder, loaded, prepared)
    environment = describe_environment(loaded.path.parent if loaded.path else None)
    environment["jit_compile"] = bool(model.jit_compile)
    environment["mixed_precision"] = spec.train.mixed_precision
    environment["deterministic"] = deterministic_ops(spec)
    environment["augmentation_placement"] = prepared.built.augmentation.placement
    folder.write_json(rf.ENVIRONMENT, environment)
    folder.write_json(rf.METRICS, {
        "name": spec.name,
        "run": folder.path.name,
        "status": "running",
        "seed": spec.seed,
        "jit_compile": bool(model.jit_compile),
        "deterministic": deterministic_ops(spec),
        "params": int(model.count_params()),
        "train_examples": prepared.splits.train_size,
        "augmentation": prepared.built.augmentation.placement,
        **distribute.describe(spec, prepared.strategy),
        **(prepared.built.facts or {}),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    return _train(folder, prepared, initial_epoch=0)


def resume_experiment(path: str | Path) -> RunResult:
    """Continue a killed or interrupted run from its last completed epoch, in the same folder."""
    from framework.errors import RunError
    from framework.spec.load import validate_resolved

    folder = RunFolder(Path(path))
    if not folder.file(rf.RESOLVED).exists() or not folder.file(rf.METRICS).exists():
        raise RunError("is not a run folder (no resolved.json or metrics.json)", path=str(folder.path))
    metrics = folder.metrics()
    if metrics.get("status") == "completed":
        raise RunError("this run is already complete; nothing to resume", path=str(folder.path))
    resolved = folder.read_json(rf.RESOLVED)
    overrides = resolved.pop("_overrides", [])
    spec_file = next((folder.file(n) for n in rf.SPEC_FILES if folder.file(n).exists()), folder.file(rf.RESOLVED))
    spec = validate_resolved(resolved, folder.path)
    loaded = LoadedSpec(spec=spec, path=spec_file, text=spec_file.read_text(), overrides=overrides, raw=resolved)
    prepared = prepare(loaded)
    initial_epoch = _completed_epochs(folder)
    _truncate_history(folder, initial_epoch)
    folder.update_metrics(status="running", resumed_from_epoch=initial_epoch)
    return _train(folder, prepared, initial_epoch=initial_epoch)


def _completed_epochs(folder: RunFolder) -> int:
    meta = folder.file(BACKUP) / "training_metadata.json"
    try:
        return int(rf.read_json(meta).get("epoch", 0))
    except (OSError, ValueError):
        return 0


def _truncate_history(folder: RunFolder, epochs: int) -> None:
    """Keep the history rows of the epochs the backup holds; a row written after it is redone."""
    path = folder.file(rf.HISTORY)
    if path.exists():
        lines = path.read_text().splitlines(keepends=True)
        rf.write_atomic(path, "".join(lines[: 1 + epochs]) if epochs else "")


def _train(folder: RunFolder, prepared: Prepared, initial_epoch: int) -> RunResult:
    import keras

    spec, model = prepared.spec, prepared.model
    history_file = folder.file(rf.HISTORY)
    callbacks = [
        *prepared.pipeline_callbacks,
        *prepared.spec_callbacks,  # first, so the values they log (learning_rate) reach the CSV
        stop_on_non_finite_loss(),
        epoch_timer(),
        # before the CSV: an epoch in history.csv is always in the backup too
        epoch_backup(str(folder.file(BACKUP))),
        keras.callbacks.CSVLogger(str(history_file), append=initial_epoch > 0 and history_file.exists()),
    ]
    if spec.train.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(folder.file("tensorboard"))))
    privacy = prepared.built.privacy
    if privacy is not None:
        from framework.privacy.plan import epsilon_callback

        callbacks.insert(0, epsilon_callback(privacy, spec.privacy.max_epsilon))  # before the CSV
    if initial_epoch:
        # BackupAndRestore loads optimizer state only into a built optimizer (Adam's moments, step count)
        model.optimizer.build(model.trainable_variables)
    start = time.perf_counter()
    try:
        history = model.fit(
            prepared.train_ds,
            validation_data=prepared.val_ds,
            initial_epoch=initial_epoch,
            epochs=spec.train.epochs,
            callbacks=callbacks,
            shuffle=False,  # the tf.data pipeline shuffles
            verbose=spec.train.verbose,
        )
    except KeyboardInterrupt:
        folder.update_metrics(status="interrupted", train_seconds=round(time.perf_counter() - start, 3))
        raise RunInterrupted(
            f"training interrupted; the history so far is kept. Continue with: python -m framework run --resume {folder.path}",
            path=str(folder.path),
        ) from None
    except Exception as exc:
        folder.update_metrics(status="failed", reason=f"{type(exc).__name__}: {exc}")
        raise
    train_seconds = time.perf_counter() - start
    epochs_now = len(history.history.get("loss", []))
    finite, bad_epoch = _finite_history(history.history)
    timing = {
        "epochs": initial_epoch + epochs_now,
        "train_seconds": round(train_seconds, 3),
        "examples_per_second": round(prepared.splits.train_size * epochs_now / train_seconds, 1) if train_seconds > 0 else None,
    }
    if not finite:
        folder.update_metrics(status="failed", reason="non-finite loss", failed_epoch=initial_epoch + bad_epoch, **timing)
        raise RunFailed(f"the loss became non-finite in epoch {initial_epoch + bad_epoch}; training stopped", path=str(folder.path))

    scores = model.evaluate(prepared.test_ds, return_dict=True, verbose=0)
    test = {f"test_{k}": float(v) for k, v in scores.items()}
    test.update(prepared.splits.baselines)
    if prepared.splits.sequence is not None:
        from framework.data.sequences import exact_match, greedy_decode

        sources, targets = prepared.splits.test_texts
        test["test_exact_match"] = exact_match(greedy_decode(model, prepared.splits.sequence, sources), targets)
    if privacy is not None:
        test.update(privacy.report(timing["epochs"] * privacy.steps_per_epoch), dp_clipping=model.clipping)
    if spec.privacy is not None or spec.distill is not None or spec.distribute is not None:
        # the saved model is for inference: a plain functional model without the DP, distillation or worker step
        keras.Model(model.inputs, model.outputs, name=model.name).save(folder.file(rf.MODEL))
    else:
        model.save(folder.file(rf.MODEL))
    metrics = folder.update_metrics(
        status="completed", **test, **timing, **early_stopping_report(callbacks),
        finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    if spec.privacy is not None and spec.privacy.audit:
        from framework.privacy.audit import audit_run

        metrics = audit_run(folder.path, model=model, splits=prepared.splits)
    write_figures(folder, prepared)
    return RunResult(folder, metrics)


def _class_predictions(model, test_ds, splits):
    """Predicted and true class ids on the test split, or None when the task is not classification."""
    import numpy as np

    y = splits.y_test
    if len(model.outputs) != 1 or isinstance(y, dict) or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        return None
    probabilities = model.predict(test_ds, verbose=0)
    if probabilities.ndim != 2:
        return None
    predicted = probabilities.argmax(axis=1) if probabilities.shape[1] > 1 else (probabilities[:, 0] > 0.5).astype(int)
    return y, predicted


def write_figures(folder: RunFolder, prepared: Prepared) -> None:
    """Learning curves, the confusion matrix (classification) and the run's HTML page."""
    import pandas as pd

    from framework.reports import plots
    from framework.reports.html import write_run_page

    history = pd.read_csv(folder.file(rf.HISTORY))
    plots.learning_curves(history, folder.file(plots.CURVES), title=folder.path.name)
    predictions = _class_predictions(prepared.model, prepared.test_ds, prepared.splits)
    if predictions is not None:
        plots.confusion_matrix(*predictions, prepared.splits.class_names, folder.file(plots.CONFUSION))
    write_run_page(folder.path)
