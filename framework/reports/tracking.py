"""What a run reports outside its folder while it trains: TensorBoard's HParams, and MLflow with [track].

Every fit goes through the engine, which adds ``callbacks(spec, folder)`` to its callback list; a finished run
(``framework/train/run.py``) and a finished tune trial (``framework/tuning/trial.py``) then call
``finish(metrics, folder)``:

- ``train.tensorboard = true``: the run's hyperparameters go to ``tensorboard/`` through TensorBoard's HParams plugin
  (for a run, its resolved spec flattened to key paths, without noise such as ``train.verbose``; for a tune trial,
  the values of the search spaces), next to Keras's ``train/`` and ``validation/`` curves; ``finish`` adds the test
  metrics as scalars, so the HParams dashboard lists them.
- ``[track] mlflow = true``: one MLflow run per run folder (a resumed run continues the same MLflow run, a tune
  trial is a run of its own): the parameters, every epoch's metrics, then the test metrics and the run folder's
  files as artifacts. Its id is kept in the run folder's ``tracking.json``.

A tracker that cannot be reached costs a warning, not the run: the run folder is the record.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

from framework.errors import FrameworkWarning
from framework.reports import run_folder as rf

TENSORBOARD = "tensorboard"
TRACKING = "tracking.json"  # the MLflow run of this folder: tracking_uri, experiment_id, run_id
MLRUNS = "mlruns"
_ROLE = "framework_tracking"  # marks the callbacks made here, so a caller's own replace the defaults


def spec_params(resolved: dict) -> dict[str, bool | int | float | str]:
    """The resolved spec as hyperparameters: flattened key paths with scalar values, without the keys that say how
    a run was watched (train.verbose, train.tensorboard, tune.*, track.*, description, plugins)."""
    from framework.reports.table import flatten, is_noise

    return {
        key: value for key, value in flatten(resolved).items()
        if not is_noise(key) and key != "spec_version" and isinstance(value, (bool, int, float, str))
    }


def _scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """A finished run's numbers worth a chart: test metrics, epsilon, the last validation metrics, timing."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or key in ("seed", "trial"):
            continue
        if key.startswith(("test_", "teacher_test_", "val_", "audit_")) or key in ("epsilon", "train_seconds", "epochs"):
            out[key] = float(value)
    return out


def callbacks(spec, folder: Path, params: dict[str, Any] | None = None, given: list | tuple = ()) -> list:
    """Keras callbacks for a fit into ``folder``: an HParams writer with ``train.tensorboard``, an MLflow logger with
    ``[track] mlflow``. ``params``: the hyperparameters (default: the spec, flattened). A kind already in ``given``
    (a tune trial adds its own, with its spaces' values) is not added again."""
    from framework.train.distribute import is_chief

    folder = Path(folder)
    if not is_chief(getattr(spec, "distribute", None)):
        return []  # a multi_worker helper trains in a scratch folder; the chief reports the run
    present = {getattr(c, _ROLE, None) for c in given}
    track = getattr(spec, "track", None)
    hparams = spec.train.tensorboard and "hparams" not in present
    mlflow = track is not None and track.mlflow and "mlflow" not in present
    if not (hparams or mlflow):
        return []
    if params is None:
        params = spec_params(spec.model_dump(mode="json"))
    out = []
    if hparams:
        out.append(_hparams_writer(folder / TENSORBOARD, params, session=folder.name))
    if mlflow:
        out.append(_mlflow_logger(spec, folder, params))
    return out


def finish(metrics: dict[str, Any], folder: Path) -> None:
    """After evaluation: the test metrics as TensorBoard scalars (with train.tensorboard), and to MLflow with the
    run folder's files as artifacts, ending its MLflow run (with [track])."""
    folder = Path(folder)
    try:
        resolved = rf.read_json(folder / rf.RESOLVED)
    except (OSError, ValueError):
        return
    scalars = _scalar_metrics(metrics)
    step = int(metrics.get("epochs") or 0)
    measured = {k: v for k, v in scalars.items() if k.startswith(("test_", "teacher_test_", "audit_")) or k == "epsilon"}
    if (resolved.get("train") or {}).get("tensorboard") and measured:
        _write_scalars(folder / TENSORBOARD, measured, step)
    track = resolved.get("track") or {}
    if track.get("mlflow") and (folder / TRACKING).exists():
        _mlflow_finish(folder, scalars, step, metrics.get("status", "completed"))


# --- TensorBoard ----------------------------------------------------------------------------------------------


def _root_events(log_dir: Path) -> list[Path]:
    return [p for p in log_dir.glob("events.out.tfevents.*") if p.is_file()] if log_dir.is_dir() else []


def write_hparams(log_dir: Path, params: dict[str, Any], session: str) -> None:
    """The HParams plugin's session summary in ``log_dir`` (Keras writes the curves to its train/ and validation/)."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    log_dir.mkdir(parents=True, exist_ok=True)
    values = {k: v for k, v in params.items() if isinstance(v, (bool, int, float, str))}
    values |= {k: json.dumps(v) for k, v in params.items() if k not in values and v is not None}
    writer = tf.summary.create_file_writer(str(log_dir))
    try:
        with writer.as_default():
            hp.hparams(values, trial_id=session)
        writer.flush()
    finally:
        writer.close()


def _write_scalars(log_dir: Path, scalars: dict[str, float], step: int) -> None:
    import tensorflow as tf

    log_dir.mkdir(parents=True, exist_ok=True)
    writer = tf.summary.create_file_writer(str(log_dir))
    try:
        with writer.as_default():
            for key, value in scalars.items():
                tf.summary.scalar(key, value, step=step)
        writer.flush()
    finally:
        writer.close()


def _hparams_writer(log_dir: Path, params: dict[str, Any], session: str):
    import keras

    class HParamsWriter(keras.callbacks.Callback):
        """The hyperparameters, written once per run folder as the fit is set up (a resumed run has them already),
        before the training clock starts."""

    if not _root_events(log_dir):
        write_hparams(log_dir, params, session)
    writer = HParamsWriter()
    setattr(writer, _ROLE, "hparams")
    return writer


# --- MLflow ---------------------------------------------------------------------------------------------------


def default_tracking_uri(folder: Path) -> str:
    """``mlruns/`` next to the reports folder (a trial's reports folder is its tune folder's), as a file: URI."""
    folder = Path(folder).resolve()
    reports = folder.parent
    if reports.name == "trials" and (reports.parent / "space.json").exists():
        reports = reports.parent.parent
    return (reports.parent / MLRUNS).as_uri()


def _client(uri: str):
    if uri.startswith("file:"):
        # MLflow 3 keeps its file store in maintenance mode and refuses it unless asked: the framework asks
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _mlflow_key(key: str) -> str:
    """MLflow names allow letters, digits, _ - . space : /, so 'model.layers[0].units' -> 'model.layers.0.units'."""
    return key.replace("[", ".").replace("]", "")


def _warn(what: str, exc: BaseException) -> None:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    warnings.warn(f"MLflow: {what}: {first}; the run goes on, its folder keeps everything", FrameworkWarning, stacklevel=2)


def _experiment_id(client, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:  # another trial process created it first
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def _chunks(items: list, size: int = 100):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def start(spec, folder: Path, params: dict[str, Any] | None = None) -> tuple[Any, str] | None:
    """The MLflow run of ``folder``: the one in its tracking.json (a resumed run), else a new one with the
    parameters logged. Returns (client, run_id), or None with a warning when MLflow cannot be reached."""
    from mlflow.entities import Param

    folder = Path(folder)
    track = spec.track
    if (folder / TRACKING).exists():
        info = rf.read_json(folder / TRACKING)
        try:
            client = _client(info["tracking_uri"])
            client.update_run(info["run_id"], status="RUNNING")
            return client, info["run_id"]
        except Exception as exc:  # noqa: BLE001
            _warn("cannot continue the run's MLflow run", exc)
            return None
    uri = track.tracking_uri or default_tracking_uri(folder)
    params = spec_params(spec.model_dump(mode="json")) if params is None else params
    try:
        client = _client(uri)
        experiment = _experiment_id(client, track.experiment or spec.name)
        kind = "trial" if folder.parent.name == "trials" else "run"
        run = client.create_run(experiment, run_name=folder.name, tags={
            "framework.run_folder": str(folder.resolve()), "framework.kind": kind, "framework.spec_name": spec.name,
        })
        run_id = run.info.run_id
        entries = [Param(_mlflow_key(k), str(v)[:6000]) for k, v in params.items()]
        for chunk in _chunks(entries):
            client.log_batch(run_id, params=chunk)
    except Exception as exc:  # noqa: BLE001
        _warn(f"cannot start a run at {uri}", exc)
        return None
    rf.write_json(folder / TRACKING, {"tracking_uri": uri, "experiment_id": experiment, "run_id": run_id})
    return client, run_id


def _metrics_batch(values: dict[str, float], step: int) -> list:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(_mlflow_key(k), float(v), now, step) for k, v in values.items()]


def _mlflow_logger(spec, folder: Path, params: dict[str, Any]):
    import keras

    class MlflowLogger(keras.callbacks.Callback):
        """Logs every epoch's metrics to the folder's MLflow run, step = epoch (0-based, as history.csv)."""

        run = None

        def on_epoch_end(self, epoch, logs=None):
            if self.run is None:
                return
            client, run_id = self.run
            values = {}
            for key, value in (logs or {}).items():
                try:
                    values[key] = float(value)
                except (TypeError, ValueError):
                    continue
            try:
                for chunk in _chunks(_metrics_batch(values, epoch)):
                    client.log_batch(run_id, metrics=chunk)
            except Exception as exc:  # noqa: BLE001
                _warn("cannot log the epoch's metrics", exc)
                self.run = None

    logger = MlflowLogger()
    logger.run = start(spec, folder, params)  # (or, resumed, continue) before the training clock starts
    setattr(logger, _ROLE, "mlflow")
    return logger


def _mlflow_finish(folder: Path, scalars: dict[str, float], step: int, status: str) -> None:
    info = rf.read_json(folder / TRACKING)
    try:
        client = _client(info["tracking_uri"])
        run_id = info["run_id"]
        for chunk in _chunks(_metrics_batch(scalars, step)):
            client.log_batch(run_id, metrics=chunk)
        for path in sorted(folder.iterdir()):
            if path.name == "backup" or path.name.startswith("."):
                continue
            if path.is_dir():
                client.log_artifacts(run_id, str(path), artifact_path=path.name)
            else:
                client.log_artifact(run_id, str(path))
        client.set_terminated(run_id, "FINISHED" if status == "completed" else "FAILED")
    except Exception as exc:  # noqa: BLE001
        _warn("cannot log the test metrics and files", exc)
