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
        def on_epoch_end(self, epoch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.model.stop_training = True

    return StopOnNonFiniteLoss()


def epoch_backup(folder: str):
    """Keras's BackupAndRestore, saving once per epoch. Its per-batch hook does nothing with epoch saving,
    so it is marked safe for Keras's asynchronous step dispatch (which any per-batch hook turns off)."""
    import keras

    backup = keras.callbacks.BackupAndRestore(folder, save_freq="epoch", delete_checkpoint=True)
    backup.async_safe = True
    return backup
