"""A run: prepare -> run folder -> the engine's fit -> evaluate, with everything written to the run folder.

``run_experiment`` starts one; ``resume_experiment`` continues a killed or interrupted one from its newest
checkpoint, exactly: the metrics equal an uninterrupted run's (see engine.py and checkpoint.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.errors import FrameworkError, RunError
from framework.reports import run_folder as rf
from framework.reports import tracking
from framework.reports.run_folder import RunFolder
from framework.spec.load import LoadedSpec
from framework.spec.upgrade import SPEC_VERSION
from framework.train import distribute
from framework.train.callbacks import early_stopping_report
from framework.train.checkpoint import digest
from framework.train.engine import FitOutcome, RunInterrupted, fit
from framework.train.environment import describe_environment
from framework.train.prepare import Prepared, deterministic_ops, model_summary, prepare
from framework.train.transfer import resolve_run_references

__all__ = ["RunFailed", "RunInterrupted", "RunResult", "resume_experiment", "run_experiment", "write_figures"]


class RunFailed(FrameworkError):
    """Training stopped on its own (e.g. a non-finite loss): the folder is marked failed."""

    exit_code = 1
    kind = "run failed"


@dataclass
class RunResult:
    folder: RunFolder | None  # None on a multi_worker helper: the chief writes the run folder
    metrics: dict[str, Any]
    model: Any = None  # the trained Keras model (as saved: raw examples in)
    prepared: Prepared | None = None


def _write_inputs(folder: RunFolder, loaded: LoadedSpec, prepared: Prepared) -> None:
    folder.write_text(f"spec{loaded.suffix}", loaded.text)
    resolved = loaded.resolved()
    resolved["_overrides"] = loaded.overrides
    resolved["spec_version"] = SPEC_VERSION
    folder.write_json(rf.RESOLVED, resolved)
    folder.write_text(rf.SUMMARY, model_summary(prepared.inference_model()))
    folder.write_json(
        rf.PREPROCESSING,
        {**prepared.splits.preprocessing, "class_names": prepared.splits.class_names, "sizes": prepared.splits.sizes()},
    )


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
        return RunResult(None, result.metrics, result.model, prepared)
    return _start(loaded, prepared, reports_dir)


def _privacy_facts(prepared: Prepared) -> dict[str, Any]:
    seeds = prepared.built.dp_seeds
    if seeds is None:
        return {}
    from framework.privacy.randomness import NOT_PRIVATE_REASON

    facts: dict[str, Any] = {
        "dp_noise": "secret" if seeds.secret else "from seed",
        # what epsilon does not cover (public by the threat model), and what this run withheld to keep it true
        "dp_public": ["spec", "validation split", "test split", "split sizes"],
        "dp_withheld": ["training loss and metrics"],
    }
    if not seeds.secret:
        facts.update(private=False, private_reason=NOT_PRIVATE_REASON)
    if prepared.spec.dp.augmentation_multiplicity > 1:
        facts["augmentation_multiplicity"] = prepared.spec.dp.augmentation_multiplicity
    return facts


def _start(loaded: LoadedSpec, prepared: Prepared, reports_dir) -> RunResult:
    """Create the run folder, write what the run starts from, and train."""
    spec, model = prepared.spec, prepared.model
    folder = RunFolder.create(Path(reports_dir), spec.name)
    _write_inputs(folder, loaded, prepared)
    from framework.build.word2vec import copy_into_run  # Word2VecEmbedding: its vectors and embedding.png

    copy_into_run(folder.path, prepared.built.facts)
    environment = describe_environment(loaded.path.parent if loaded.path else None)
    environment["jit_compile"] = bool(model.jit_compile)
    environment["steps_per_execution"] = int(model.steps_per_execution)
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
        "steps_per_execution": int(model.steps_per_execution),
        "deterministic": deterministic_ops(spec),
        "params": int(model.count_params()),
        "train_examples": prepared.splits.train_size,
        "steps_per_epoch": prepared.steps_per_epoch,
        "augmentation": prepared.built.augmentation.placement,
        **distribute.describe(spec, prepared.strategy),
        **(prepared.built.facts or {}),
        **_privacy_facts(prepared),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "resolved_digest": digest(folder.file(rf.RESOLVED)),  # --resume refuses an edited resolved.json
    })
    return _train(folder, prepared, resume=False)


def resume_experiment(path: str | Path) -> RunResult:
    """Continue a killed or interrupted run from its newest checkpoint, in the same folder."""
    from framework.spec.load import validate_resolved
    from framework.train.checkpoint import Checkpoint

    folder = RunFolder(Path(path))
    if not folder.file(rf.RESOLVED).exists() or not folder.file(rf.METRICS).exists():
        raise RunError("is not a run folder (no resolved.json or metrics.json)", path=str(folder.path))
    try:
        metrics = folder.metrics()
        status = metrics.get("status")
    except (ValueError, AttributeError) as exc:
        raise RunError(f"metrics.json is not readable ({type(exc).__name__}); this folder cannot be resumed",
                       path=str(folder.path)) from None
    if status == "completed":
        Checkpoint(folder.file("backup"), []).delete()  # left by a kill just after completion
        raise RunError("this run is already complete; nothing to resume", path=str(folder.path))
    if status == "failed" and metrics.get("reason") == "non-finite loss":
        raise RunError("this run failed with a non-finite loss; resuming would repeat it. Start a new run "
                       "(e.g. with a lower learning rate)", path=str(folder.path))
    if metrics.get("resolved_digest") not in (None, digest(folder.file(rf.RESOLVED))):
        raise RunError(
            "resolved.json was changed after this run started; put it back as it was, or start a new run with the "
            "changed spec", path=str(folder.file(rf.RESOLVED)),
        )
    try:
        resolved = folder.read_json(rf.RESOLVED)
    except ValueError as exc:
        raise RunError(f"resolved.json is not valid JSON ({exc}); put it back as it was", path=str(folder.path)) from None
    overrides = resolved.pop("_overrides", [])
    spec_file = next((folder.file(n) for n in rf.SPEC_FILES if folder.file(n).exists()), folder.file(rf.RESOLVED))
    spec = validate_resolved(resolved, folder.path, resuming=True)
    loaded = LoadedSpec(spec=spec, path=spec_file, text=spec_file.read_text(), overrides=overrides, raw=resolved)
    prepared = prepare(loaded)
    folder.update_metrics(status="running")
    return _train(folder, prepared, resume=True)


def _train(folder: RunFolder, prepared: Prepared, resume: bool) -> RunResult:
    outcome = fit(prepared, folder.path, resume=resume, resolved_digest=digest(folder.file(rf.RESOLVED)))
    if resume:
        folder.update_metrics(resumed_from_epoch=outcome.initial_epoch)
    return _finish(folder, prepared, outcome)


def _finish(folder: RunFolder, prepared: Prepared, outcome: FitOutcome) -> RunResult:
    """Evaluate, save and report a fit that ended; mark the folder interrupted or failed otherwise."""
    timing = {
        "epochs": outcome.epochs,
        "train_seconds": round(outcome.train_seconds, 3),
        "examples_per_second": (
            round(prepared.splits.train_size * outcome.epochs / outcome.train_seconds, 1) if outcome.train_seconds > 0 else None
        ),
    }
    if outcome.interrupted and outcome.error is None:  # an error (e.g. writing a checkpoint) is said first
        folder.update_metrics(status="interrupted", **timing)
        raise RunInterrupted(
            f"training interrupted; the history so far is kept. Continue with: python -m framework run --resume {folder.path}",
            path=str(folder.path),
        )
    if outcome.error is not None:
        if getattr(prepared.splits, "streams", None) is not None:  # a file that cannot be decoded, named
            from framework.data.images import unreadable_image_error

            outcome.error = unreadable_image_error(outcome.error, prepared.splits)
        folder.update_metrics(status="failed", reason=f"{type(outcome.error).__name__}: {outcome.error}")
        raise outcome.error
    finite, bad_epoch = outcome.finite()
    if not finite:
        from framework.train.engine import checkpoint_for

        checkpoint_for(prepared, folder.path).delete()  # not resumable; the secret DP seeds go with it
        folder.update_metrics(status="failed", reason="non-finite loss", failed_epoch=bad_epoch, **timing)
        raise RunFailed(f"the loss became non-finite in epoch {bad_epoch}; training stopped", path=str(folder.path))
    try:
        return _evaluate_and_save(folder, prepared, outcome, timing)
    except KeyboardInterrupt:  # after training: the checkpoint holds the last epoch, so --resume only evaluates
        folder.update_metrics(status="interrupted", **timing)
        raise RunInterrupted(
            f"interrupted while evaluating and saving; continue with: python -m framework run --resume {folder.path}",
            path=str(folder.path),
        ) from None


def _evaluate_and_save(folder: RunFolder, prepared: Prepared, outcome: FitOutcome, timing: dict) -> RunResult:
    """Test metrics, the saved (and reloaded) model, the audit, then "completed", figures, and the checkpoint's deletion."""
    import keras

    spec, model = prepared.spec, prepared.model
    try:
        scores = model.evaluate(prepared.test_ds, return_dict=True, verbose=0)
    except Exception as exc:
        if getattr(prepared.splits, "streams", None) is None:
            raise
        from framework.data.images import unreadable_image_error

        error = unreadable_image_error(exc, prepared.splits)
        folder.update_metrics(status="failed", reason=f"{type(error).__name__}: {error}")
        raise error from None
    test = {f"test_{k}": float(v) for k, v in scores.items()}
    test.update(prepared.splits.baselines)
    if prepared.splits.sequence is not None:
        from framework.data.sequences import exact_match, greedy_decode

        sources, targets = prepared.splits.test_texts
        test["test_exact_match"] = exact_match(greedy_decode(model, prepared.splits.sequence, sources), targets)
    privacy = prepared.built.privacy
    if privacy is not None:
        steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))  # the updates actually applied
        test.update(privacy.report(steps), dp_clipping=model.clipping, planned_steps=privacy.planned_steps)
    if spec.model.generative:  # the generator is the saved model; samples.png and the samples' scores
        from framework.reports.generative import finish_generative

        try:
            test.update(finish_generative(folder, prepared))
        except RunError as exc:
            folder.update_metrics(status="failed", reason=str(exc))
            raise
        predictions = None
    else:
        saved = prepared.inference_model()
        saved.save(folder.file(rf.MODEL))
        try:  # a saved model is a loadable model: reloaded as `predict` will, and compared on a few test examples
            rf.verify_saved_model(folder.path, saved, prepared.first_test_rows())
        except RunError as exc:
            folder.update_metrics(status="failed", reason=str(exc))
            raise
        # uncertainty and calibration (issue 19): the test split's class probabilities, computed once here, give
        # test_ece and test_entropy now, and the confusion matrix and calibration.png in write_figures
        predictions = _class_predictions(model, prepared.test_ds, prepared.splits)
        if predictions is not None:
            from framework.reports.calibration import calibration_metrics

            test.update(calibration_metrics(predictions[2], predictions[0]))
    folder.update_metrics(**test, **timing, **early_stopping_report(outcome.callbacks))
    if spec.dp is not None and spec.dp.audit:
        from framework.privacy.audit import audit_run

        audit_run(folder.path, model=model, splits=prepared.splits)
    metrics = folder.update_metrics(status="completed", finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
    write_figures(folder, prepared, predictions)
    tracking.finish(metrics, folder.path)  # test metrics to TensorBoard and MLflow, the folder's files to MLflow
    from framework.train.engine import checkpoint_for

    checkpoint_for(prepared, folder.path).delete()  # last: until here --resume can finish the run; the DP seeds go with it
    return RunResult(folder, metrics, saved if prepared.built.features is not None else model, prepared)


def _class_predictions(model, test_ds, splits):
    """(true class ids, predicted class ids, class probabilities) on the test split, or None when the task is
    not classification."""
    import numpy as np

    y = splits.y_test
    if len(model.outputs) != 1 or isinstance(y, dict) or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        return None
    probabilities = model.predict(test_ds, verbose=0)
    if probabilities.ndim != 2:
        return None
    predicted = probabilities.argmax(axis=1) if probabilities.shape[1] > 1 else (probabilities[:, 0] > 0.5).astype(int)
    return y, predicted, probabilities


_UNSET = object()


def write_figures(folder: RunFolder, prepared: Prepared, predictions: Any = _UNSET) -> None:
    """Learning curves, the confusion matrix and calibration.png (classification) and the run's HTML page.
    ``predictions``: _class_predictions's answer when the caller has it (else computed here)."""
    import pandas as pd

    from framework.reports import plots
    from framework.reports.html import write_run_page

    history = pd.read_csv(folder.file(rf.HISTORY))
    plots.learning_curves(history, folder.file(plots.CURVES), title=folder.path.name)
    if predictions is _UNSET:
        predictions = None if prepared.spec.model.generative else _class_predictions(prepared.model, prepared.test_ds, prepared.splits)
    if predictions is not None:
        y, predicted, probabilities = predictions
        plots.confusion_matrix(y, predicted, prepared.splits.class_names, folder.file(plots.CONFUSION))
        from framework.reports import calibration

        if calibration.are_probabilities(probabilities):
            plots.reliability_diagram(calibration.reliability_bins(probabilities, y),
                                      calibration.expected_calibration_error(probabilities, y),
                                      folder.file(plots.CALIBRATION),
                                      entropy=float(calibration.predictive_entropy(probabilities).mean()))
    write_run_page(folder.path)
