"""The Python API: the CLI's commands as functions, for notebooks and scripts.

    >>> import framework
    >>> r = framework.run({"name": "mlp", "data": {"source": "sklearn:digits", "scale": 0.0625},
    ...                    "model": {"layers": [{"type": "Dense", "units": 32, "activation": "relu"},
    ...                                         {"type": "Dense", "units": 10, "activation": "softmax"}]},
    ...                    "train": {"epochs": 5}})
    >>> r.metrics["test_accuracy"], r.history.shape, r.model.count_params()

``spec`` is a path to a TOML or JSON file, a dict, or TOML/JSON text. Errors are the CLI's
(:class:`framework.errors.SpecError`, :class:`~framework.errors.DataError`, ...): one message that names the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

__all__ = ["Run", "check", "load", "open_run", "run", "sample", "tune"]


@dataclass
class Run:
    """A run folder and what it holds: ``folder``, ``metrics`` (dict), ``history`` (DataFrame, one row per
    epoch), ``model`` (the trained Keras model, loaded on first use for a finished run) and ``spec`` (the
    resolved spec, every option filled in)."""

    folder: Path
    metrics: dict[str, Any]
    spec: dict[str, Any]
    _model: Any = field(default=None, repr=False)

    @property
    def history(self):
        import pandas as pd

        from framework.reports import run_folder as rf

        path = self.folder / rf.HISTORY
        return pd.read_csv(path) if path.exists() and path.stat().st_size else pd.DataFrame()

    @property
    def model(self):
        if self._model is None:
            from framework.reports.run_folder import load_run_model

            _quiet_tensorflow()
            self._model = load_run_model(self.folder)
        return self._model


def _quiet_tensorflow() -> None:
    """TensorFlow and Keras imported (on the TensorFlow backend) without their start-up notices on stderr; first,
    before a spec's plugins or a model load import them (framework/quiet.py)."""
    from framework.quiet import import_tensorflow

    import_tensorflow()


def _overrides(overrides: Iterable[str], seed: int | None) -> list[str]:
    out = list(overrides)
    if isinstance(overrides, str):
        raise TypeError("overrides is a list of 'key=value' strings, e.g. ['train.epochs=5']")
    return out + ([f"seed={int(seed)}"] if seed is not None else [])


def open_run(folder: str | Path) -> Run:
    """A finished (or stopped) run folder as a :class:`Run`."""
    from framework.errors import RunError
    from framework.reports import run_folder as rf

    folder = Path(folder).resolve()  # a notebook may change folders later
    if not (folder / rf.METRICS).is_file():
        raise RunError("is not a run folder (no metrics.json)", path=str(folder))
    resolved = rf.read_json(folder / rf.RESOLVED) if (folder / rf.RESOLVED).is_file() else {}
    resolved.pop("_overrides", None)
    return Run(folder, rf.read_json(folder / rf.METRICS), resolved)


def run(spec: str | Path | dict, *, overrides: Iterable[str] = (), reports: str | Path = "reports",
        seed: int | None = None) -> Run:
    """Train ``spec`` as ``python -m framework run`` does; returns the :class:`Run` with its trained model."""
    from framework.spec.load import load_spec_input
    from framework.train.run import run_experiment

    _quiet_tensorflow()
    loaded = load_spec_input(spec, _overrides(overrides, seed))
    result = run_experiment(loaded, reports)
    if result.folder is None:  # a multi_worker helper: the chief writes the run folder
        return Run(Path(), result.metrics, loaded.resolved(), result.model)
    finished = open_run(result.folder.path)
    finished._model = result.model
    return finished


def check(spec: str | Path | dict, *, overrides: Iterable[str] = (), schema_only: bool = False):
    """Validate ``spec`` and build its model, as ``python -m framework check`` does; returns the compiled
    Keras model (or the validated spec with ``schema_only``, which does not import TensorFlow)."""
    from framework.spec.load import load_spec_input

    if not schema_only:
        _quiet_tensorflow()
    loaded = load_spec_input(spec, list(overrides))
    if schema_only:
        from framework.errors import SpecError
        from framework.spec.catalogue import check_spec_names

        try:
            check_spec_names(loaded.spec)  # types and arguments, from the catalogue (no TensorFlow)
        except SpecError as exc:
            exc.file = exc.file or loaded.file
            raise
        return loaded.spec
    from framework.train.prepare import check_model

    return check_model(loaded.spec)


def tune(spec: str | Path | dict, *, overrides: Iterable[str] = (), reports: str | Path = "reports"):
    """Search the spec's search spaces as ``python -m framework tune`` does; returns the trials as a DataFrame
    (the tune folder is ``trials.attrs["folder"]``)."""
    import pandas as pd

    from framework.spec.load import load_spec_input
    from framework.tuning.search import TRIALS, run_search

    _quiet_tensorflow()
    loaded = load_spec_input(spec, list(overrides))
    folder = run_search(loaded, reports)
    trials = pd.read_csv(folder / TRIALS)
    trials.attrs["folder"] = str(folder)
    return trials


def sample(run_folder: str | Path, count: int, path: str | Path, *, seed: int = 0) -> Path:
    """Write ``count`` generated labelled examples (classes balanced) of a finished conditional VAE or GAN run to
    ``path``, an NPZ with ``x`` and ``y`` that a spec reads as ``npz:PATH``, as ``python -m framework sample`` does.

    >>> framework.sample("reports/digits_cvae-20261129-164313-de02ad", 1000, "synthetic.npz")
    """
    from framework.data.synthetic import write_samples_npz

    _quiet_tensorflow()
    return write_samples_npz(run_folder, count, path, seed=seed)


def load(*paths: str | Path):
    """One row per run found under ``paths`` (default ``reports``), as ``python -m framework report`` reads them."""
    from framework.reports.table import load as load_table

    return load_table(*paths)
