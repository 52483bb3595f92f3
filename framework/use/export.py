"""``export``: a run's model as a serving artifact (SavedModel, TFLite or .keras), reloaded and checked."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from framework.errors import FrameworkError, RunError
from framework.use.trained import TrainedRun, test_examples

FORMATS = {"savedmodel": "savedmodel", "tflite": "model.tflite", "keras": "model.keras"}


def export_run(run: TrainedRun, fmt: str, output: str | Path | None = None) -> tuple[Path, float]:
    """Write the artifact (default: RUN/export/<format name>), reload it, and return (path, max |difference|)
    between its predictions and the run's model on test examples."""
    if fmt not in FORMATS:
        raise FrameworkError(f"unknown format '{fmt}'; choose from {', '.join(FORMATS)}", path="--format")
    target = Path(output) if output else run.folder / "export" / FORMATS[fmt]
    if target.exists():
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    model = run.model
    if fmt == "tflite" and any(getattr(t, "dtype", None) == "string" for t in model.inputs):
        raise RunError(
            "TFLite has no built-in string ops, so it cannot run this model's TextVectorization (it would need the "
            "Flex delegate); export as savedmodel or keras instead", path="--format",
        )
    try:
        if fmt == "keras":
            model.save(target)
        elif fmt == "savedmodel":
            model.export(str(target), format="tf_saved_model", verbose=False)
        else:
            target.write_bytes(_tflite_bytes(model, target.parent))
    except FrameworkError:
        raise
    except Exception as exc:
        raise RunError(f"cannot export as {fmt}: {str(exc).strip().splitlines()[0][:300]}", path=str(run.folder)) from None
    x, _ = test_examples(run, 16)
    expected = np.asarray(model.predict(x, verbose=0))
    try:
        got = np.asarray(reload_and_predict(target, fmt, x))
    except FrameworkError:
        raise
    except Exception as exc:
        raise RunError(f"wrote {target}, but reloading it failed: {str(exc).strip().splitlines()[0][:300]}", path=str(target)) from None
    return target, float(np.max(np.abs(expected - got)))


def _tflite_bytes(model, workdir: Path) -> bytes:
    import tempfile

    import tensorflow as tf

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        # string ops (TextVectorization) are not TFLite built-ins; the select-TF-ops runtime has them
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        return converter.convert()


def reload_and_predict(path: Path, fmt: str, x):
    """Load an exported artifact the way a server would and run it on ``x``."""
    import tensorflow as tf

    if fmt == "keras":
        import keras

        return keras.saving.load_model(path).predict(x, verbose=0)
    if fmt == "savedmodel":
        loaded = tf.saved_model.load(str(path))  # keep it: the serving function uses its variables
        if isinstance(x, dict):  # several inputs: the serving signature takes them by name
            outputs = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in x.items()})
            return next(iter(outputs.values())).numpy()
        return loaded.serve(tf.constant(x)).numpy()
    interpreter = tf.lite.Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner()
    names = interpreter.get_signature_list()["serving_default"]["inputs"]
    if isinstance(x, dict) or len(names) != 1:
        raise RunError("the TFLite reload check runs single-input models; export this one as savedmodel or keras", path="--format")
    # one example at a time: the converted signature has a fixed batch of 1 for some models
    rows = [next(iter(runner(**{names[0]: x[i : i + 1]}).values())) for i in range(len(x))]
    return np.concatenate(rows)
