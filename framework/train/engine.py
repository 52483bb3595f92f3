"""The training engine: one ``fit`` for every way of training (run, resume, tune trials).

It owns the callback list and its order, the crash-safe checkpoint (see checkpoint.py), the history file,
the non-finite-loss stop and, with [privacy], the epsilon log and ``max_epsilon`` stop. Callers decide only
where the files go and what to add (a tune trial adds its best-weights checkpoint).

    >>> prepared = prepare(loaded)
    >>> outcome = fit(prepared, folder, resume=False)
    >>> outcome.epochs, outcome.train_seconds
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.errors import FrameworkError
from framework.reports import run_folder as rf
from framework.reports import tracking
from framework.train.callbacks import (
    epoch_recorder,
    epoch_timer,
    keep_public_logs,
    stop_on_non_finite_loss,
    write_history,
)
from framework.train.checkpoint import Checkpoint
from framework.train.prepare import Prepared

BACKUP = "backup"


class RunInterrupted(FrameworkError):
    """Ctrl-C during training: the folder is kept and marked interrupted."""

    exit_code = 130
    kind = "interrupted"


@dataclass
class FitOutcome:
    history: dict[str, list[float]]  # this process's epochs only (Keras's History)
    initial_epoch: int  # epochs restored from the checkpoint
    epochs: int  # epochs completed in all, across resumes
    train_seconds: float  # across resumes
    callbacks: list
    interrupted: bool = False
    error: BaseException | None = None
    non_finite_epoch: int | None = None  # 1-based, across resumes

    def finite(self) -> tuple[bool, int | None]:
        """(whether every loss was finite, the first non-finite epoch, 1-based and across resumes)."""
        return self.non_finite_epoch is None, self.non_finite_epoch


def checkpoint_for(prepared: Prepared, folder: Path) -> Checkpoint:
    return Checkpoint(Path(folder) / BACKUP, prepared.state_variables())


def core_callbacks(prepared: Prepared) -> list:
    """The callbacks every way of training runs, in their order: the pipeline's epoch, epsilon (before
    anything that logs), the spec's (regularization, train.callbacks), the non-finite stop, the epoch timer,
    and with [privacy] the filter that keeps training metrics out of everything written after it."""
    callbacks = list(prepared.pipeline_callbacks)
    privacy = prepared.built.privacy
    if privacy is not None:
        from framework.privacy.plan import epsilon_callback

        callbacks.append(epsilon_callback(privacy, prepared.spec.dp.max_epsilon))
    callbacks = [*callbacks, *prepared.spec_callbacks, stop_on_non_finite_loss(), epoch_timer()]
    if privacy is not None:
        callbacks.append(keep_public_logs())
    return callbacks


def fit(
    prepared: Prepared, folder: Path, *, resume: bool, extra_callbacks: list | None = None,
    resolved_digest: str | None = None, epochs: int | None = None, verbose: Any = None, initial_epoch: int = 0,
) -> FitOutcome:
    """Train ``prepared`` with its checkpoint in ``folder/backup`` and its history in ``folder/history.csv``.

    ``resume``: continue from the newest readable checkpoint (epoch 0 if the run was killed in its first).
    ``initial_epoch``/``epochs``: a hyperband trial's continuation and budget (without ``resume``).
    Exceptions from Keras are returned in ``FitOutcome.error``, Ctrl-C as ``interrupted``: the caller marks its folder.
    """
    import keras

    spec, model = prepared.spec, prepared.model
    folder = Path(folder)
    checkpoint = checkpoint_for(prepared, folder)
    resumed: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    if resume:
        initial_epoch, meta, arrays = checkpoint.restore(expected_resolved=resolved_digest)
        if initial_epoch:
            resumed = {"meta": meta, "arrays": arrays}
            if meta.get("data_digest") not in (None, prepared.data_digest):
                from framework.errors import RunError

                raise RunError(
                    "the training data changed since this run started (its checkpoint was made from other data), so "
                    "resuming would not continue the same run; restore the data or start a new run", path=str(folder),
                )
        write_history(folder / rf.HISTORY, meta.get("history", []))  # rows past the checkpoint are redone
    callbacks = core_callbacks(prepared)
    non_finite = next(c for c in callbacks if type(c).__name__ == "StopOnNonFiniteLoss")
    stateful = list(prepared.spec_callbacks)
    recorder = epoch_recorder(
        checkpoint, folder / rf.HISTORY, stateful, resumed, non_finite,
    )
    recorder.meta_extra = {"resolved_digest": resolved_digest, "data_digest": prepared.data_digest}
    callbacks += [*(extra_callbacks or []), recorder]  # the recorder last: it saves what the others logged
    if spec.train.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(folder / "tensorboard")))
    callbacks += tracking.callbacks(spec, folder, given=callbacks)  # HParams (tensorboard), MLflow ([track])
    outcome = FitOutcome({}, initial_epoch, initial_epoch, 0.0, callbacks)
    start = time.perf_counter()
    recorder.started = start  # also set by on_train_begin; here for a Ctrl-C before it
    if meta.get("stopped"):
        # the run had stopped itself (early stopping, max_epsilon, a non-finite loss) when it was killed: no further
        # epoch, but fit's start and end still run (the recorder restores the callbacks' states, and early
        # stopping's on_train_end puts back the best epoch's weights, as in the uninterrupted run)
        epochs = initial_epoch
    try:
        history = model.fit(
            prepared.train_ds,
            validation_data=prepared.val_ds,
            initial_epoch=initial_epoch,
            epochs=epochs or spec.train.epochs,
            callbacks=callbacks,
            shuffle=False,  # the tf.data pipeline shuffles
            verbose=spec.train.keras_verbose if verbose is None else verbose,
        )
        outcome.history = history.history
    except KeyboardInterrupt:
        outcome.interrupted = True
    except Exception as exc:  # noqa: BLE001 - the caller records it in its folder, then re-raises
        outcome.error = exc
    while True:  # a fit that ended any way: the last checkpoint written (in the background) is complete
        try:
            recorder.wait_for_writes()
            break
        except KeyboardInterrupt:  # a second Ctrl-C: the write is short and atomic; wait for it still
            outcome.interrupted = True
        except Exception as exc:  # noqa: BLE001 - e.g. the disk filled up
            outcome.error = outcome.error or exc
            break
    outcome.epochs = len(recorder.rows)
    outcome.train_seconds = recorder.train_seconds()
    outcome.non_finite_epoch = non_finite.bad_epoch if non_finite.bad_epoch is not None else meta.get("non_finite_epoch")
    return outcome
