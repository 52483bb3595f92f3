"""Shared helpers: run the CLI in-process (TensorFlow is imported once per test session)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# tables fit the terminal only where one is known; the tests read whole tables (pytest-xdist's workers set COLUMNS)
os.environ.pop("COLUMNS", None)

# The longest test files first (seconds from `pytest --durations=0`): pytest-xdist's loadfile scheduling hands files
# out in collection order, so long files start early instead of keeping one worker busy after the others finish.
LONGEST_FILES_FIRST = [
    "test_tune.py", "test_resume.py", "test_use.py", "test_generative.py", "test_records.py", "test_privacy.py",
    "test_privacy_paths.py", "test_families.py", "test_reliability.py", "test_distribute.py", "test_scattering.py",
    "test_plugins.py", "test_api.py", "test_explain_more.py", "test_reports.py", "test_images.py", "test_word2vec.py",
    "test_startup.py",
]


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's own order is kept


ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
SHARED_DATA = ROOT.parent / "shared" / "data"


def run_python(code: str, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a new Python process (its own plugin registry and Keras state), from the repository root.
    It ends as the CLI does (framework/process.py): without the interpreter's teardown, a second per process."""
    code = textwrap.dedent(code) + "\nfrom framework.process import end_process\nend_process(0)\n"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})})


#: metrics.json keys that differ between two runs of the same spec (wall time, dates, the folder's name)
TIMING = ("train_seconds", "examples_per_second", "started", "finished", "run", "resumed_from_epoch")


def run_outcome(folder) -> tuple:
    """A run folder's metrics.json without TIMING and its history.csv without epoch_seconds: what an exactly
    resumed run shares with the uninterrupted one."""
    import pandas as pd

    metrics = json.loads((Path(folder) / "metrics.json").read_text())
    history = pd.read_csv(Path(folder) / "history.csv").drop(columns=["epoch_seconds"])
    return {k: v for k, v in metrics.items() if k not in TIMING}, history


def run_in_process(*args) -> None:
    """``python -m framework ARGS`` in this process, asserting it succeeds (its output goes to pytest's capture)."""
    from framework.cli import main

    assert main([str(a) for a in args]) == 0


@pytest.fixture
def cli(capsys):
    """cli("run", "spec.toml", ...) -> (exit code, stdout, stderr)."""
    from framework.cli import main

    def run(*args: str):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def write_spec(tmp_path):
    """write_spec(dict_or_text, name="spec.toml") -> Path in tmp_path."""
    import tomli_w

    def write(content, name: str = "spec.toml") -> Path:
        path = tmp_path / name
        if isinstance(content, str):
            path.write_text(content)
        elif name.endswith(".json"):
            path.write_text(json.dumps(content))
        else:
            path.write_text(tomli_w.dumps(content))
        return path

    return write


def tiny_spec(**sections) -> dict:
    """A small valid MLP spec on digits; sections replace or extend its tables."""
    spec = {
        "name": "tiny",
        "seed": 1,
        "data": {"source": "sklearn:digits", "scale": 0.0625, "validation_split": 0.1},
        "model": {"layers": [{"type": "Dense", "units": 16, "activation": "relu"}, {"type": "Dense", "units": 10, "activation": "softmax"}]},
        "train": {"epochs": 1, "batch_size": 64, "verbose": 0},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    return spec


@pytest.fixture
def digits_npz(tmp_path) -> Path:
    from sklearn.datasets import load_digits

    digits = load_digits()
    path = tmp_path / "digits.npz"
    np.savez(path, x_train=digits.data[:1400], y_train=digits.target[:1400], x_test=digits.data[1400:], y_test=digits.target[1400:])
    return path


@pytest.fixture
def copy_spec(tmp_path):
    def copy(name: str) -> Path:
        return Path(shutil.copy(SPECS / name, tmp_path / name))

    return copy


def free_ports(count: int) -> list[int]:
    """``count`` distinct local TCP ports that were free a moment ago (for multi-process tests)."""
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def train_run(spec_path, reports, *overrides) -> Path:
    """Train a spec quietly in this process; its run folder."""
    from framework.spec import load_spec
    from framework.train.run import run_experiment

    return run_experiment(load_spec(spec_path, ["train.verbose=0", *overrides]), reports).folder.path


# Trained runs that several test files explain, predict from and export: each trained once per session.
@pytest.fixture(scope="session")
def image_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("image")
    return train_run(shutil.copy(SPECS / "quickstart.toml", tmp), tmp / "r", "train.epochs=8")


@pytest.fixture(scope="session")
def text_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("text")
    shutil.copytree(SPECS / "data", tmp / "data")
    return train_run(shutil.copy(SPECS / "movie_transformer.toml", tmp), tmp / "r", "train.epochs=4",
                     "regularization.early_stopping.patience=4")


@pytest.fixture(scope="session")
def tabular_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tabular")
    return train_run(shutil.copy(SPECS / "quickstart.json", tmp), tmp / "r", "train.epochs=5")

