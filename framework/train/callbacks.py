"""Keras callbacks a spec asks for: early stopping and learning-rate reduction from ``[regularization]``."""

from __future__ import annotations

from framework.build.layers import instantiate
from framework.registry import registry
from framework.spec.schema import Spec


def spec_callbacks(spec: Spec) -> list:
    import keras

    reg = spec.regularization
    callbacks = []
    if reg.early_stopping is not None:
        callbacks.append(keras.callbacks.EarlyStopping(**reg.early_stopping.model_dump(), verbose=0))
    if reg.reduce_lr_on_plateau is not None:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(**reg.reduce_lr_on_plateau.model_dump(), verbose=0))
    for i, callback in enumerate(spec.train.callbacks):
        path = f"train.callbacks[{i}]"
        cls = registry.get("callback", callback.type, path=f"{path}.type")
        callbacks.append(instantiate(cls, callback.type, callback.kwargs, path))
    return callbacks


def early_stopping_report(callbacks: list) -> dict:
    """What early stopping did, for metrics.json (1-based epochs)."""
    import keras

    for callback in callbacks:
        if isinstance(callback, keras.callbacks.EarlyStopping):
            return {
                "early_stopped": callback.stopped_epoch > 0,
                "best_epoch": int(callback.best_epoch) + 1,
            }
    return {}


def epoch_timer():
    """Adds ``epoch_seconds`` (wall time of the epoch, validation included) to each epoch's logs and history.csv."""
    import time

    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["epoch_seconds"] = time.perf_counter() - self.start

    return EpochTimer()


def stop_on_non_finite_loss():
    """Stops training after an epoch whose loss is NaN or infinite.

    Keras's TerminateOnNaN checks every batch, which makes Keras wait for each step's loss and turns off
    its asynchronous step dispatch; checking once per epoch keeps steps asynchronous.
    """
    import math

    import keras

    class StopOnNonFiniteLoss(keras.callbacks.Callback):
        bad_epoch = None  # 1-based, across resumes

        def on_epoch_end(self, epoch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.bad_epoch = self.bad_epoch or epoch + 1
                self.model.stop_training = True

    return StopOnNonFiniteLoss()


# What a DP run may log: computed from the model and public or held-out data, or from the accountant.
PUBLIC_LOGS = ("val_", "epsilon", "epoch_seconds", "learning_rate")


def keep_public_logs():
    """With [privacy]: drops the training loss and metrics (computed on the private batches, without noise)
    from the epoch's logs before anything writes them (history.csv, TensorBoard, tracking, tune trials)."""
    import keras

    class KeepPublicLogs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            for key in [k for k in (logs or {}) if not k.startswith(PUBLIC_LOGS)]:
                del logs[key]

    return KeepPublicLogs()


# Counters of Keras's callbacks that the remaining epochs depend on; restored after their on_train_begin resets them.
CALLBACK_STATE = {
    "EarlyStopping": ("wait", "stopped_epoch", "best", "best_epoch"),
    "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
}


def _plain(value):
    import numbers

    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value) if hasattr(value, "__float__") else value


def callback_states(callbacks: list) -> tuple[list[dict], dict]:
    """(counters per callback, arrays such as early stopping's best weights) for a checkpoint."""
    states, arrays = [], {}
    for i, callback in enumerate(callbacks):
        names = CALLBACK_STATE.get(type(callback).__name__, ())
        states.append({name: _plain(getattr(callback, name, None)) for name in names})
        for j, weight in enumerate(getattr(callback, "best_weights", None) or []):
            arrays[f"cb{i}_{j:04d}"] = weight
    return states, arrays


def restore_callback_states(callbacks: list, states: list[dict], arrays: dict) -> None:
    for i, (callback, state) in enumerate(zip(callbacks, states)):
        for name, value in state.items():
            setattr(callback, name, value)
        weights = sorted(k for k in arrays if k.startswith(f"cb{i}_"))
        if weights and hasattr(callback, "best_weights"):
            callback.best_weights = [arrays[k] for k in weights]


def history_value(value) -> str:
    """One history.csv cell."""
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        return str(value)


def write_history(path, rows: list[dict[str, str]]) -> None:
    """history.csv from the epoch rows, written atomically (a kill never leaves half a row)."""
    import csv
    import io

    from framework.reports.run_folder import write_atomic

    columns = ["epoch", *sorted({k for row in rows for k in row} - {"epoch"})]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buffer.getvalue())


def epoch_recorder(checkpoint, history_file, stateful: list, resumed: dict, non_finite=None):
    """Saves the checkpoint, then history.csv, at the end of every epoch; restores callback counters on resume.

    ``stateful``: the callbacks whose counters the checkpoint carries. ``resumed``: the checkpoint's meta and
    arrays when resuming ({} otherwise). ``history_file`` is rewritten atomically after each checkpoint.
    The state is copied at the epoch's end; the files are written in a background thread while the next epoch
    trains (``wait_for_writes`` waits for them; the engine calls it whenever fit ends).
    Only epoch hooks: Keras keeps dispatching steps asynchronously.
    """
    import time

    import keras

    from framework.train.checkpoint import BackgroundWriter

    class EpochRecorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            meta = resumed.get("meta", {})
            self.rows: list[dict] = list(meta.get("history", []))
            self.seconds_before = float(meta.get("train_seconds", 0.0))
            self.meta_extra: dict = {}
            self.writer = BackgroundWriter()

        def on_train_begin(self, logs=None):
            self.started = time.perf_counter()
            if resumed:
                restore_callback_states(stateful, resumed["meta"].get("callbacks", []), resumed.get("arrays", {}))

        def train_seconds(self) -> float:
            return self.seconds_before + time.perf_counter() - self.started

        def on_epoch_end(self, epoch, logs=None):
            self.rows.append({"epoch": str(epoch), **{k: history_value(v) for k, v in sorted((logs or {}).items())}})
            self.writer.wait()  # the previous epoch's files are written: one copy of the state in memory at a time
            states, arrays = callback_states(stateful)
            snapshot = checkpoint.snapshot(epoch + 1, {
                "history": self.rows, "callbacks": states, "train_seconds": self.train_seconds(),
                # a stop asked for by a callback (early stopping, max_epsilon, a non-finite loss) holds on resume
                "stopped": bool(self.model.stop_training),
                "non_finite_epoch": getattr(non_finite, "bad_epoch", None),
                **self.meta_extra,
            }, arrays)
            rows = list(self.rows)

            def write():
                checkpoint.write(snapshot)
                write_history(history_file, rows)  # after the checkpoint that holds the same rows

            self.writer.submit(write)

        def wait_for_writes(self) -> None:
            """Until the last epoch's checkpoint and history.csv are on disk (an error writing them is raised)."""
            self.writer.wait()

    return EpochRecorder()
