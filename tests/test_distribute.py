"""[distribute]: mirrored over two logical CPUs, multi_worker with two processes on 127.0.0.1, refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, free_ports, tiny_spec
from framework.errors import SpecError
from framework.spec.load import validate


def _run(spec: Path, reports: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "framework", "run", str(spec), "--reports", str(reports)],
        cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _quickstart(write_spec, strategy: dict) -> Path:
    spec = tiny_spec(name="dist", distribute=strategy, train={"epochs": 2, "batch_size": 64, "verbose": 0})
    spec["data"]["reshape"] = [8, 8, 1]
    spec["model"] = {"layers": [
        {"type": "Conv2D", "filters": 8, "kernel_size": 3, "activation": "relu"}, {"type": "Flatten"},
        {"type": "Dense", "units": 10, "activation": "softmax"},
    ]}
    return write_spec(spec)


def test_mirrored_over_two_logical_cpus(write_spec, tmp_path):
    process = _run(_quickstart(write_spec, {"strategy": "mirrored", "cpu_devices": 2}), tmp_path / "r")
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    (folder,) = (tmp_path / "r").iterdir()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["strategy"] == "mirrored" and metrics["replicas"] == 2
    assert (folder / "model.keras").exists()


def test_multi_worker_two_processes_make_one_run_folder(write_spec, tmp_path):
    spec = _quickstart(write_spec, {"strategy": "multi_worker"})
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    workers = [
        _run(spec, tmp_path / "r", {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})})
        for i in range(2)
    ]
    results = [w.communicate(timeout=300) for w in workers]
    for worker, (out, err) in zip(workers, results):
        assert worker.returncode == 0, err[-3000:]
    (folder,) = (tmp_path / "r").iterdir()  # one run folder, from the chief
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["strategy"] == "multi_worker"
    assert metrics["replicas"] == 2 and metrics["epochs"] == 2
    for name in ("history.csv", "model.keras", "resolved.json", "report.html"):
        assert (folder / name).exists()
    assert "the chief worker writes the run folder" in results[1][0]


def test_multi_worker_without_tf_config_is_a_clear_error(cli, write_spec, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    code, _, err = cli("run", _quickstart(write_spec, {"strategy": "multi_worker"}))
    assert code == 2 and "TF_CONFIG" in err and "Traceback" not in err


def test_distribute_refuses_dp_and_distillation(tmp_path):
    with pytest.raises(SpecError) as err:
        validate(tiny_spec(distribute={"strategy": "mirrored"}, privacy={"noise_multiplier": 1.0}), file="s", base_dir=tmp_path)
    assert err.value.path == "distribute" and "noise" in err.value.message
    with pytest.raises(SpecError) as err:
        validate(tiny_spec(distribute={"strategy": "mirrored"}, distill={"teacher": "latest:x"}), file="s", base_dir=tmp_path)
    assert err.value.path == "distribute"
