"""Tuning trials in a worker process: ``python -m framework.tuning.trial --serve N MB`` (see workers.py).

TensorFlow keeps growing a process's memory with every model it trains, and
``clear_session`` does not give it back, so trials train outside the search's
process, in a worker that runs up to N trials and stops once its memory passes
MB, and the search's memory stays flat however many trials it runs. Each line
on the worker's input names a TRIAL.json: the spec, the trial's values, the
epochs and the checkpoints; the result (the history, the trial's peak memory,
or the error) is written to the ``result`` path it names. The trial trains through the same engine as
``run`` and leaves a run folder (resolved.json, metrics.json, history.csv) at
``folder``, inside the tune folder's ``trials/``, so ``report`` and ``compare``
read trials like any runs.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import traceback
from pathlib import Path

from framework.reports import run_folder as rf
from framework.reports import tracking
from framework.spec.upgrade import SPEC_VERSION
from framework.tuning.workers import SERVE_FLAG


def run_trial(request: dict) -> dict:
    """One trial through the training engine, as ``run`` trains: the same preparation, callbacks (the
    non-finite stop, epsilon and ``max_epsilon`` with [privacy]) and checkpoint; files in ``request['folder']``."""
    import keras

    from framework.spec import load_spec
    from framework.spec.load import LoadedSpec, validate
    from framework.train.engine import checkpoint_for, fit
    from framework.train.prepare import prepare
    from framework.tuning.spaces import substitute

    base_dir = Path(request.get("base_dir") or Path(request["spec_file"]).resolve().parent)
    loaded = load_spec(request["spec_file"], request["overrides"], base_dir=base_dir)
    raw = substitute(loaded.raw, loaded.spaces, request["values"])
    spec = validate(raw, file=loaded.file, base_dir=base_dir)
    prepared = prepare(LoadedSpec(spec=spec, path=loaded.path, text=loaded.text, overrides=loaded.overrides, raw=raw))
    if request.get("load_weights"):
        prepared.model.load_weights(request["load_weights"])
    extra = []
    if request.get("save_weights"):
        extra.append(keras.callbacks.ModelCheckpoint(
            request["save_weights"], monitor=request["objective"], mode=request["direction"],
            save_best_only=True, save_weights_only=True, verbose=0,
        ))
    folder = Path(request["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    # TensorBoard's HParams and MLflow get the trial's own values, not the whole spec (see reports/tracking.py)
    extra += tracking.callbacks(spec, folder, params=trial_params(request))
    resolved = spec.model_dump(mode="json")
    resolved.update(_overrides=loaded.overrides, spec_version=SPEC_VERSION)
    rf.write_json(folder / rf.RESOLVED, resolved)
    record = {"name": spec.name, "run": folder.name, "kind": "trial", "status": "running",
              "trial": request.get("trial_id"), "seed": spec.seed, "train_examples": prepared.splits.train_size,
              "steps_per_epoch": prepared.steps_per_epoch, "steps_per_execution": int(prepared.model.steps_per_execution)}
    rf.write_json(folder / rf.METRICS, record)
    outcome = fit(prepared, folder, resume=False, extra_callbacks=extra, epochs=request.get("epochs"), verbose=0,
                  initial_epoch=request.get("initial_epoch", 0))
    checkpoint_for(prepared, folder).delete()
    record.update(epochs=outcome.epochs, train_seconds=round(outcome.train_seconds, 3))
    failure = None
    if outcome.error is not None:
        failure = outcome.error
    elif outcome.interrupted:
        failure = KeyboardInterrupt()
    elif not outcome.finite()[0]:
        failure = RuntimeError(f"the loss became non-finite in epoch {outcome.finite()[1]}")
    if failure is not None:
        record = {**record, "status": "failed", "reason": f"{type(failure).__name__}: {failure}"}
        rf.write_json(folder / rf.METRICS, record)
        tracking.finish(record, folder)
        raise failure
    history = {k: [float(v) for v in values] for k, values in outcome.history.items()}
    last = {k: values[-1] for k, values in history.items() if values and (k.startswith("val_") or k == "epsilon")}
    record = {**record, "status": "completed", **last}
    rf.write_json(folder / rf.METRICS, record)
    tracking.finish(record, folder)
    return {"history": history}


def trial_params(request: dict) -> dict:
    """A trial's hyperparameters: its search spaces' values, and with hyperband its epoch budget and where it
    continued from."""
    params = dict(request["values"])
    if request.get("epochs"):
        params["tuner/epochs"] = request["epochs"]
        params["tuner/initial_epoch"] = request.get("initial_epoch", 0)
    if request.get("continued_from") is not None:
        params["tuner/trial_id"] = request["continued_from"]
    return params


def _rss_mb(field: str) -> float:
    """This process's resident memory (VmRSS) or its peak since the last reset (VmHWM), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    # not Linux: the process's peak (macOS counts it in bytes, others in KB)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def _reset_peak_rss() -> None:
    """Start VmHWM again from the current memory, so a trial's peak is its own (Linux; elsewhere a no-op)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def one_trial(request: dict) -> dict:
    """Run ``request`` and write its result file; the result. The environment variables and the working folder
    are put back afterwards, so a trial does not change the next one in the same worker."""
    _reset_peak_rss()
    environment, folder = dict(os.environ), os.getcwd()
    try:
        result = run_trial(request)
    except BaseException as exc:  # reported to the search, which marks the trial failed
        result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    finally:
        os.environ.clear()
        os.environ.update(environment)
        os.chdir(folder)
    result["peak_rss_mb"] = _rss_mb("VmHWM")
    rf.write_atomic(Path(request["result"]), json.dumps(result))  # whole or absent, if the worker is killed
    return result


def _die_with_the_search() -> None:
    """Linux: this worker gets SIGKILL when the search process ends, so no orphan trains on into a folder that a
    restarted search writes again."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def serve(trials_per_worker: int, memory_mb: float) -> int:
    """Run the trials named on standard input, one per line; after each, print {"rss_mb", "exit"} on the
    original standard output (what trials print goes to standard error) and stop when ``exit``."""
    _die_with_the_search()
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    from framework.quiet import import_tensorflow

    import_tensorflow()
    served = 0
    for line in sys.stdin:
        result = one_trial(json.loads(Path(line.strip()).read_text()))
        served += 1
        rss = _rss_mb("VmRSS")
        done = served >= trials_per_worker or rss > memory_mb or "error" in result  # a failed trial may leave state
        protocol.write(json.dumps({"rss_mb": rss, "exit": done}) + "\n")
        protocol.flush()
        if done:
            break
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] != [SERVE_FLAG] or len(argv) != 3:
        print("usage: python -m framework.tuning.trial --serve TRIALS_PER_WORKER MEMORY_MB", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return serve(int(argv[1]), float(argv[2]))


if __name__ == "__main__":
    from framework.process import end_process

    end_process(main(sys.argv[1:]))  # the search waits for a retired worker's exit: without the teardown
