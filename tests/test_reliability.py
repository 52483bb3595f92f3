"""Reliability: resume after SIGKILL, reproducible runs, Ctrl-C, non-finite loss, concurrent runs, safety."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, SPECS, tiny_spec
from framework.reports import load

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _start_run(spec, reports, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "framework", "run", str(spec), "--reports", str(reports), *extra],
        cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for_epochs(reports, epochs, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for history in Path(reports).glob("*/history.csv"):
            if len(history.read_text().splitlines()) - 1 >= epochs:
                return history.parent
        if proc.poll() is not None:
            pytest.fail(f"the run ended before epoch {epochs}: {proc.communicate()}")
        time.sleep(0.05)
    pytest.fail("timed out waiting for epochs")


def _test_metrics(folder):
    metrics = json.loads((Path(folder) / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k.startswith("test_")}


# Exact resume after SIGKILL (at any instant, with random state and DP) is tested in test_resume.py.


def test_resume_refuses_a_completed_run(cli, tmp_path, write_spec):
    assert cli("run", write_spec(tiny_spec()), "--reports", tmp_path / "r")[0] == 0
    code, _, err = cli("run", "--resume", next((tmp_path / "r").iterdir()))
    assert code == 2 and "already complete" in err
    code, _, err = cli("run", "--resume", tmp_path / "nothing")
    assert code == 2 and "not a run folder" in err


def test_same_spec_and_seed_give_identical_metrics(cli, tmp_path, write_spec):
    spec = write_spec(tiny_spec(train={"epochs": 3, "verbose": 0}, regularization={"dropout": 0.2},
                                augmentation={"steps": [{"type": "GaussianNoise", "stddev": 0.1}]}))
    for _ in range(2):
        assert cli("run", spec, "--reports", tmp_path / "r")[0] == 0
    first, second = sorted((tmp_path / "r").iterdir())
    assert _test_metrics(first) == _test_metrics(second)
    timing = ["epoch_seconds"]  # wall time differs between any two runs
    pd.testing.assert_frame_equal(
        pd.read_csv(first / "history.csv").drop(columns=timing), pd.read_csv(second / "history.csv").drop(columns=timing)
    )


def test_ctrl_c_marks_the_run_interrupted_and_keeps_history(tmp_path):
    proc = _start_run(SPECS / "quickstart.toml", tmp_path, "--set", "train.epochs=200", "--set", "train.verbose=0")
    folder = _wait_for_epochs(tmp_path, 2, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["status"] == "interrupted"
    assert len(pd.read_csv(folder / "history.csv")) >= 2


def test_non_finite_loss_fails_the_run_and_report_lists_it(cli, tmp_path, write_spec):
    spec = write_spec(tiny_spec(data={"scale": 1e30}, train={"epochs": 5, "verbose": 0}))
    tmp_path = tmp_path / "r"
    code, _, err = cli("run", spec, "--reports", tmp_path)
    assert code == 1 and "non-finite" in err and "Traceback" not in err
    metrics = json.loads(next(tmp_path.iterdir()).joinpath("metrics.json").read_text())
    assert metrics["status"] == "failed" and metrics["reason"] == "non-finite loss" and metrics["failed_epoch"] == 1
    frame = load(tmp_path)
    assert list(frame["status"]) == ["failed"]


def test_concurrent_runs_get_complete_distinct_folders(cli, tmp_path, write_spec):
    spec = write_spec(tiny_spec(train={"epochs": 3, "verbose": 0}))
    tmp_path = tmp_path / "r"
    procs = [_start_run(spec, tmp_path) for _ in range(2)]
    while any(p.poll() is None for p in procs):
        if tmp_path.exists():  # a folder that does not exist is an error of its own
            assert cli("report", tmp_path, "--format", "csv")[0] == 0  # never fails on half-written folders
        time.sleep(0.2)
    assert all(p.returncode == 0 for p in procs), [p.communicate() for p in procs]
    folders = list(tmp_path.iterdir())
    assert len(folders) == 2
    assert all(json.loads((f / "metrics.json").read_text())["status"] == "completed" for f in folders)


def test_unusable_reports_folder_is_reported_before_training(cli, tmp_path, write_spec):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = cli("run", write_spec(tiny_spec()), "--reports", blocker / "reports")
    assert code == 2 and "cannot create the reports folder" in err


def test_full_disk_is_reported_before_training(cli, tmp_path, write_spec, monkeypatch):
    import shutil as shutil_module
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil_module, "disk_usage", lambda path: usage(10**9, 10**9, 1024))
    code, _, err = cli("run", write_spec(tiny_spec()), "--reports", tmp_path / "r")
    assert code == 2 and "MiB free" in err
    assert not any((tmp_path / "r").iterdir())


def test_saved_models_load_in_safe_mode(tmp_path):
    import keras

    from framework.errors import RunError
    from framework.reports.run_folder import load_run_model

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    (tmp_path / "resolved.json").write_text("{}")
    model.save(tmp_path / "model.keras")
    with pytest.raises(RunError, match="cannot load model.keras"):
        load_run_model(tmp_path)
