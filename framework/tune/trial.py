"""One tuning trial in a fresh process: ``python -m framework.tune.trial TRIAL.json``.

TensorFlow keeps growing a process's memory with every model it trains, and
``clear_session`` does not give it back, so each trial trains in its own
process and the search's memory stays flat however many trials it runs.
TRIAL.json names the spec, the trial's values, the epochs and the checkpoints;
the result (the history, this process's peak memory, or the error) is written
to the ``result`` path it names.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import traceback
from pathlib import Path


def run_trial(request: dict) -> dict:
    import keras

    from framework.data import load_splits
    from framework.spec import load_spec
    from framework.spec.load import validate
    from framework.train.callbacks import spec_callbacks
    from framework.train.run import build_and_compile, make_datasets, setup_backend
    from framework.tune.spaces import substitute

    loaded = load_spec(request["spec_file"], request["overrides"])
    base_dir = Path(request["spec_file"]).resolve().parent
    spec = validate(substitute(loaded.raw, loaded.spaces, request["values"]), file=loaded.file, base_dir=base_dir)
    setup_backend(spec)
    splits = load_splits(spec.data, spec.seed)
    built = build_and_compile(spec, splits.example_shape, math.ceil(splits.train_size / spec.train.batch_size),
                              train_examples=splits.train_size, train_inputs=splits.x_train)
    model = built.model
    if request.get("load_weights"):
        model.load_weights(request["load_weights"])
    train_ds, val_ds, _, epoch_callback = make_datasets(spec, splits, built)
    callbacks = [epoch_callback, *spec_callbacks(spec)]
    if request.get("save_weights"):
        callbacks.append(keras.callbacks.ModelCheckpoint(
            request["save_weights"], monitor=request["objective"], mode=request["direction"],
            save_best_only=True, save_weights_only=True, verbose=0,
        ))
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=request.get("epochs") or spec.train.epochs,
        initial_epoch=request.get("initial_epoch", 0),
        callbacks=callbacks,
        shuffle=False,
        verbose=0,
    )
    return {"history": {k: [float(v) for v in values] for k, values in history.history.items()}}


def main(argv: list[str]) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    request = json.loads(Path(argv[0]).read_text())
    try:
        from framework.quiet import import_tensorflow

        import_tensorflow()
        result = run_trial(request)
    except BaseException as exc:  # reported to the search, which marks the trial failed
        result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    Path(request["result"]).write_text(json.dumps(result))
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
