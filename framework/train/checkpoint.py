"""Crash-safe training checkpoints: everything the remaining epochs depend on, switched in atomically.

A checkpoint is a folder ``backup/epoch-000005/`` holding

- ``state.npz``: every variable the remaining epochs read: the model's weights and its random generators'
  states (Dropout, augmentation layers, the DP noise), the optimizer's (moments, step count, learning rate),
  the pipeline's (the secret Poisson-sampling seed), and early stopping's best weights;
- ``meta.json``: the epoch, the history rows so far, the callbacks' counters (early stopping, learning-rate
  reduction), the seconds trained so far and a digest of ``resolved.json``.

It is written as ``epoch-000005.tmp/``, flushed to disk, then renamed: a kill at any instant leaves the
previous complete checkpoint, the new one, or both. The newest two are kept, so a checkpoint that cannot be
read (a disk error) falls back to the one before it.

    >>> checkpoint = Checkpoint(folder / "backup", state=[*model.variables, *model.optimizer.variables])
    >>> checkpoint.save(epoch=3, meta={...})          # after epoch 3 ends
    >>> writer.submit(partial(checkpoint.write, checkpoint.snapshot(epoch=4, meta={...})))  # or off the training thread
    >>> epoch, meta = checkpoint.restore()            # in a new process, before training resumes
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from framework.errors import RunError

STATE = "state.npz"
META = "meta.json"
PREFIX = "epoch-"
KEEP = 2
FORMAT = 1


# Fault injection for the crash tests: "EPOCH:STAGE" kills this process with SIGKILL at that point of a save.
FAULT_ENV = "FRAMEWORK_CHECKPOINT_FAULT"
STAGES = ("begin", "state", "meta", "renamed", "pruned")


def _fault(stage: str, epoch: int) -> None:
    target = os.environ.get(FAULT_ENV)
    if target and target == f"{epoch}:{stage}":
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def digest(path: Path) -> str:
    """A digest of a file's bytes: resume compares resolved.json with the one the checkpoint was made from."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass
class Snapshot:
    """A checkpoint in memory: the variables' values and meta.json's record, taken at the end of an epoch."""

    epoch: int
    values: dict[str, np.ndarray]
    record: dict[str, Any]


class BackgroundWriter:
    """Runs one job at a time in a thread, so the disk work of a checkpoint overlaps the next epoch's training.

    ``submit`` waits for the previous job first (checkpoints land in epoch order, one at a time); ``wait`` waits
    for the last. An error in a job is raised by the next ``submit`` or ``wait``.
    """

    def __init__(self):
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, job) -> None:
        self.wait()

        def run():
            try:
                job()
            except BaseException as exc:  # noqa: BLE001 - handed to the training thread
                self._error = exc

        self._thread = threading.Thread(target=run, name="checkpoint-writer", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error


class Checkpoint:
    """The checkpoints of one run, in ``folder``. ``state`` lists the variables to save and restore, in a fixed order."""

    def __init__(self, folder: Path, state: list):
        self.folder = Path(folder)
        self.state = _unique(state)

    # --- writing -----------------------------------------------------------------------------
    def save(self, epoch: int, meta: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> Path:
        """Write the checkpoint after ``epoch`` epochs; returns its folder once it is complete."""
        return self.write(self.snapshot(epoch, meta, arrays))

    def snapshot(self, epoch: int, meta: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> Snapshot:
        """The state's values now (copies), for :meth:`write` to put on disk later, e.g. in another thread while
        the next epoch trains."""
        values = {f"v{i:05d}": np.array(v.numpy()) for i, v in enumerate(self.state)}
        values.update({f"x_{k}": np.array(a) for k, a in (arrays or {}).items()})
        record = {"format": FORMAT, "epoch": epoch, "variables": len(self.state),
                  "shapes": [list(np.shape(values[f"v{i:05d}"])) for i in range(len(self.state))],
                  **json.loads(json.dumps(meta))}  # a copy: the caller's lists keep growing
        return Snapshot(epoch, values, record)

    def write(self, snapshot: Snapshot) -> Path:
        """Put ``snapshot`` on disk as the newest checkpoint: written aside, flushed, then renamed into place."""
        epoch = snapshot.epoch
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"{PREFIX}{epoch:06d}"
        tmp = self.folder / f"{final.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        _fault("begin", epoch)
        with open(tmp / STATE, "wb") as handle:
            np.savez(handle, **snapshot.values)
            handle.flush()
            _fault("state", epoch)
            os.fsync(handle.fileno())
        with open(tmp / META, "w", encoding="utf-8") as handle:
            json.dump(snapshot.record, handle)
            handle.flush()
            os.fsync(handle.fileno())
        _fsync_dir(tmp)
        _fault("meta", epoch)
        if final.exists():  # a checkpoint of this epoch from a run killed after renaming it: replaced whole
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(self.folder)
        _fault("renamed", epoch)
        for old in self.complete()[KEEP:]:
            shutil.rmtree(old, ignore_errors=True)
        _fault("pruned", epoch)
        return final

    # --- reading -----------------------------------------------------------------------------
    def complete(self) -> list[Path]:
        """Complete checkpoints, newest first (a ``.tmp`` folder is a write that was cut short)."""
        if not self.folder.is_dir():
            return []
        found = [p for p in self.folder.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and p.suffix != ".tmp"]
        return sorted(found, key=lambda p: p.name, reverse=True)

    def newest_meta(self) -> dict[str, Any] | None:
        """The newest readable checkpoint's meta.json, without loading its variables."""
        for path in self.complete():
            try:
                return json.loads((path / META).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
        return None

    def restore(self, expected_resolved: str | None = None) -> tuple[int, dict[str, Any], dict[str, np.ndarray]]:
        """Load the newest readable checkpoint into the state variables: (epoch, meta, extra arrays).

        (0, {}, {}) when there is none (the run was killed in its first epoch). A checkpoint that cannot be
        read is skipped for the one before it; the reasons are kept in ``self.skipped``.
        """
        self.skipped: list[str] = []
        if self.folder.is_dir() and not self.complete() and (self.folder / "training_metadata.json").exists():
            raise RunError(
                "this run was stopped by an older version of the framework, whose backup does not hold the random "
                "generators' state, so it cannot resume exactly; start the run again",
                path=str(self.folder),
            )
        for path in self.complete():
            try:
                meta, values = self._read(path)
            except (OSError, ValueError, KeyError, EOFError) as exc:
                self.skipped.append(f"{path.name}: {type(exc).__name__}: {exc}")
                continue
            if expected_resolved is not None and meta.get("resolved_digest") not in (None, expected_resolved):
                raise RunError(
                    "resolved.json was changed after this run started, so its checkpoint no longer matches the spec; "
                    "put resolved.json back as it was, or start a new run with the changed spec",
                    path=str(self.folder.parent / "resolved.json"),
                )
            for i, variable in enumerate(self.state):
                variable.assign(values[f"v{i:05d}"])
            extras = {k[2:]: values[k] for k in values if k.startswith("x_")}
            return int(meta["epoch"]), meta, extras
        if self.skipped:
            raise RunError(
                "no readable checkpoint (" + "; ".join(self.skipped) + "); start the run again",
                path=str(self.folder),
            )
        return 0, {}, {}

    def _read(self, path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = json.loads((path / META).read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"checkpoint format {meta.get('format')} is not {FORMAT}")
        with np.load(path / STATE, allow_pickle=False) as archive:
            values = {k: archive[k] for k in archive.files}
        if meta["variables"] != len(self.state):
            raise ValueError(f"holds {meta['variables']} variables; this model has {len(self.state)}")
        for i, variable in enumerate(self.state):
            stored = values[f"v{i:05d}"]
            if tuple(stored.shape) != tuple(variable.shape):
                raise ValueError(f"variable {i} ({getattr(variable, 'path', variable.name)}) has shape {stored.shape}, expected {tuple(variable.shape)}")
        return meta, values

    def delete(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _unique(variables: list) -> list:
    """Each variable once (a sub-model shares its parent's variables), in first-seen order."""
    seen, out = set(), []
    for variable in variables:
        if id(variable) not in seen:
            seen.add(id(variable))
            out.append(variable)
    return out
