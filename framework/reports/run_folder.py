"""The run folder: ``reports/<name>-<timestamp>-<id>/``, written so a crash never leaves half a file."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from framework.errors import FrameworkError, RunError

SPEC_FILES = ("spec.toml", "spec.json")
METRICS = "metrics.json"
RESOLVED = "resolved.json"
HISTORY = "history.csv"
ENVIRONMENT = "environment.json"
SUMMARY = "summary.txt"
MODEL = "model.keras"
PREPROCESSING = "preprocessing.json"

# Free space a run needs before it starts (model, history, plots).
MIN_FREE_BYTES = 50 * 1024 * 1024


def _json_default(value: Any):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def current_umask() -> int:
    """The process's umask, read without changing it where Linux allows (``os.umask`` can only set it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # a round trip: another thread creating a file meanwhile may get 022
    os.umask(mask)
    return mask


def _mode_for(path: Path) -> int:
    """The mode ``open(path, "w")`` would leave: an existing file's own, else 0o666 less the umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return 0o666 & ~current_umask()


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, then rename over the target.

    The file gets the mode a plain ``open(path, "w")`` would give it (mkstemp's own is 0600)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=_json_default, allow_nan=True) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def check_writable(reports_dir: Path) -> None:
    """Fail before training when the reports folder can't take a run."""
    try:
        reports_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create the reports folder: {exc.strerror}", path=str(reports_dir)) from None
    if not os.access(reports_dir, os.W_OK | os.X_OK):
        raise RunError("the reports folder is not writable", path=str(reports_dir))
    free = shutil.disk_usage(reports_dir).free
    if free < MIN_FREE_BYTES:
        raise RunError(f"only {free // 2**20} MiB free on the reports folder's disk; a run needs {MIN_FREE_BYTES // 2**20} MiB", path=str(reports_dir))


class RunFolder:
    """One run's folder. ``RunFolder.create`` makes a new, unique one."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def create(cls, reports_dir: Path, name: str) -> "RunFolder":
        reports_dir = Path(reports_dir)
        check_writable(reports_dir)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for _ in range(100):
            path = reports_dir / f"{name}-{stamp}-{secrets.token_hex(3)}"
            # the schema restricts names to [A-Za-z0-9._-]; still, never leave the reports folder
            if path.resolve().parent != reports_dir.resolve():
                raise RunError(f"run name '{name}' would leave the reports folder", path="name")
            try:
                path.mkdir()  # exist_ok=False: concurrent runs never share a folder
                return cls(path)
            except FileExistsError:
                continue
        raise RunError("could not find a free run folder name", path=str(reports_dir))

    def file(self, name: str) -> Path:
        return self.path / name

    def write_json(self, name: str, data: Any) -> None:
        write_json(self.file(name), data)

    def write_text(self, name: str, text: str) -> None:
        write_atomic(self.file(name), text)

    def read_json(self, name: str) -> Any:
        return read_json(self.file(name))

    def metrics(self) -> dict[str, Any]:
        return self.read_json(METRICS) if self.file(METRICS).exists() else {}

    def update_metrics(self, **values: Any) -> dict[str, Any]:
        data = {**self.metrics(), **values}
        self.write_json(METRICS, data)
        return data


def load_run_model(folder: str | Path):
    """The trained model of a run folder, loaded with Keras's safe mode after importing the run's plugins."""
    import keras

    from framework.plugins import load_plugin_file

    import framework.build.blocks  # noqa: F401  the framework's own layers, for deserialization

    folder = RunFolder(Path(folder))
    if not folder.file(MODEL).exists():
        raise RunError(f"no {MODEL} here; is this a completed run folder?", path=str(folder.path))
    plugins = folder.read_json(RESOLVED).get("plugins", []) if folder.file(RESOLVED).exists() else []
    for i, plugin in enumerate(plugins):
        try:
            load_plugin_file(Path(plugin), key_path=f"plugins[{i}]")
        except FrameworkError as exc:
            raise RunError(f"the model needs the plugin {plugin}, which cannot be loaded: {exc.message}", path=str(folder.path)) from None
    try:
        return keras.saving.load_model(folder.file(MODEL), safe_mode=True)
    except Exception as exc:
        message = str(exc).strip().splitlines()[0][:300]
        hint = f"; the run used the plugins {plugins}" if plugins else "; if it uses a plugin class, import that plugin first"
        raise RunError(f"cannot load {MODEL}: {message}{hint}", path=str(folder.path)) from None


def verify_saved_model(folder: str | Path, model, sample_inputs, tolerance: float = 1e-5) -> float:
    """Reload the run's model.keras the way ``predict`` does and compare its predictions with ``model``'s on
    ``sample_inputs`` (a small batch: an array, or a dict of arrays for a model with several inputs).

    Returns the largest absolute difference. Raises RunError when the file cannot be loaded (e.g. a layer's
    saved state does not read back), cannot run on the inputs, or predicts differently by more than ``tolerance``.
    """
    import numpy as np

    reloaded = load_run_model(folder)
    where = str(Path(folder))
    try:
        # called directly, as predict's step calls them: a few rows need no traced predict function (~0.1 s)
        expected = _prediction_arrays(model(_as_built(model, sample_inputs), training=False))
        got = _prediction_arrays(reloaded(_as_built(reloaded, sample_inputs), training=False))
    except Exception as exc:
        message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise RunError(f"the reloaded {MODEL} cannot predict on sample inputs: {message}", path=where) from None
    if len(expected) != len(got) or any(e.shape != g.shape for e, g in zip(expected, got)):
        raise RunError(
            f"the reloaded {MODEL} gives outputs of shapes {[g.shape for g in got]}, the trained model "
            f"{[e.shape for e in expected]}", path=where,
        )
    difference = 0.0
    for e, g in zip(expected, got):
        if e.size:
            same_nan = np.isnan(e) & np.isnan(g)
            gap = np.where(same_nan, 0.0, np.abs(e - g))
            difference = max(difference, float(np.nanmax(np.where(np.isnan(gap), np.inf, gap))))
    if not difference <= tolerance:
        examples = len(expected[0]) if expected and expected[0].ndim else 1
        raise RunError(
            f"{MODEL} reloads, but its predictions on {examples} examples differ from the trained model's by up to "
            f"{difference:.3g} (tolerance {tolerance:g}): some of its weights or state (e.g. a vocabulary) did not "
            "save or load; the file is not safe to use", path=where,
        )
    return difference


def _as_built(model, inputs):
    """``inputs`` in the structure ``model`` was built with (one array in a list for a model built on ``[input]``),
    which a direct call needs to go without Keras's structure warning."""
    built = model.input
    if isinstance(built, (list, tuple)) and len(built) == 1 and not isinstance(inputs, (list, tuple, dict)):
        return [inputs]
    return inputs


def _prediction_arrays(predictions) -> list:
    """A model's predictions (an array, or a list or dict of arrays for several outputs) as float64 arrays."""
    import numpy as np

    if isinstance(predictions, dict):
        predictions = [predictions[k] for k in sorted(predictions)]
    elif not isinstance(predictions, (list, tuple)):
        predictions = [predictions]
    return [np.asarray(p, dtype="float64") for p in predictions]
