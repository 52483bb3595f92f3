"""[track]: MLflow tracking, an optional extra. Skipped where MLflow is not installed (pip install -e ".[track]")."""

import json

import pytest

from conftest import tiny_spec
from framework.errors import SpecError


def test_track_without_mlflow_is_a_spec_error_that_says_what_to_install(write_spec, monkeypatch):
    import importlib.util

    from framework.spec import load_spec

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(SpecError) as err:
        load_spec(write_spec(tiny_spec(track={"mlflow": True}), "s.json"))
    assert "track.mlflow" in str(err.value) and 'pip install -e ".[track]"' in str(err.value)


def test_a_run_is_logged_to_mlflow_with_params_epochs_test_metrics_and_files(cli, tmp_path, write_spec, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks before it uses a local file store
    spec = write_spec(tiny_spec(train={"epochs": 2, "verbose": 0}, track={"experiment": "tracked"}), "s.json")
    code, _, err = cli("run", spec, "--reports", tmp_path / "reports", "--set", "train.optimizer.learning_rate=0.003")
    assert code == 0, err
    folder = next((tmp_path / "reports").iterdir())
    metrics = json.loads((folder / "metrics.json").read_text())
    assert (tmp_path / "mlruns").is_dir()  # the default: mlruns/ next to the reports folder

    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    runs = mlflow.search_runs(experiment_names=["tracked"])
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["status"] == "FINISHED" and run["tags.mlflow.runName"] == folder.name
    assert float(run["params.train.optimizer.learning_rate"]) == 0.003
    assert run["params.model.layers.0.units"] == "16" and "params.train.verbose" not in runs.columns
    assert run["metrics.test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    client = mlflow.tracking.MlflowClient()
    history = client.get_metric_history(run["run_id"], "val_loss")
    assert [m.step for m in history] == [0, 1]  # every epoch
    artifacts = {a.path for a in client.list_artifacts(run["run_id"])}
    assert {"metrics.json", "resolved.json", "history.csv", "model.keras", "report.html"} <= artifacts
    assert json.loads((folder / "tracking.json").read_text())["run_id"] == run["run_id"]


def test_a_resumed_run_continues_its_mlflow_run(cli, tmp_path, write_spec, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    import keras

    import framework.train.engine as engine

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    timer = engine.epoch_timer

    def interrupting_timer():  # Ctrl-C at the end of the second epoch, before its checkpoint
        class Interrupt(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:
                    raise KeyboardInterrupt

        return Interrupt()

    monkeypatch.setattr(engine, "epoch_timer", interrupting_timer)
    spec = write_spec(tiny_spec(train={"epochs": 3, "verbose": 0}, track={"experiment": "resumed"}), "s.json")
    assert cli("run", spec, "--reports", tmp_path / "reports")[0] == 130
    monkeypatch.setattr(engine, "epoch_timer", timer)
    folder = next((tmp_path / "reports").iterdir())
    code, _, err = cli("run", "--resume", folder)
    assert code == 0, err

    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    runs = mlflow.search_runs(experiment_names=["resumed"])
    assert len(runs) == 1 and runs.iloc[0]["status"] == "FINISHED"
    history = mlflow.tracking.MlflowClient().get_metric_history(runs.iloc[0]["run_id"], "val_loss")
    assert sorted(m.step for m in history) == [0, 1, 2]  # epoch 1 again from the checkpoint, logged once
