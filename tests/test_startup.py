"""What a user sees when a command starts: no TensorFlow/CUDA log lines, Keras on TensorFlow whatever KERAS_BACKEND
says, a status line while data loads, and Keras's progress output chosen for the terminal (train.verbose = "auto")."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT, SPECS, tiny_spec

#: what TensorFlow's C++ core prints at start-up (absl lines such as "E0000 00:00:... cuda_platform.cc:52] ...")
ABSL_LINE = re.compile(r"^[IWEF]\d{4} |absl::InitializeLog", re.MULTILINE)


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_check_prints_no_tensorflow_or_cuda_log_lines():
    """`python -m framework check specs/quickstart.toml 2>&1 | grep -c E0000` prints 0."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a fresh shell has it
    result = subprocess.run([sys.executable, "-m", "framework", "check", str(SPECS / "quickstart.toml")], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "E0000" not in output and not ABSL_LINE.search(output), output
    assert "valid spec 'quickstart'" in result.stdout


def test_python_api_prints_no_tensorflow_or_cuda_log_lines():
    code = f"import framework; framework.check({str(SPECS / 'quickstart.toml')!r}); print('built')"
    result = _run("-c", code)
    assert result.returncode == 0 and "built" in result.stdout, result.stderr
    assert not ABSL_LINE.search(result.stderr), result.stderr


def test_another_keras_backend_is_overridden_with_a_note():
    result = _run("-m", "framework", "check", str(SPECS / "quickstart.toml"), env={"KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("note: KERAS_BACKEND=jax ignored: the framework runs Keras on TensorFlow") == 1


def test_only_start_up_notices_are_filtered():
    from framework.quiet import is_notice

    for line in (
        "E0000 00:00:1795962315.589586    4706 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error",
        "I0000 00:00:1795962335.091388    5452 port.cc:153] oneDNN custom operations are on.",
        "W0000 00:00:1795962335.091388    5452 cuda_executor.cc:1000] TensorRT not found",
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow",
    ):
        assert is_notice(line), line
    for line in (
        "E0000 00:00:1795962315.589586    4706 bfc_allocator.cc:12] Out of memory while trying to allocate",
        "F0000 00:00:1795962315.589586    4706 check.cc:1] Check failed: x",
        "Traceback (most recent call last):",
        "ValueError: bad",
        "E0000 is not at the start of a log line",
    ):
        assert not is_notice(line), line


def test_filtered_stderr_passes_real_errors_on(capfd):
    from framework.quiet import filtered_stderr

    with filtered_stderr():
        os.write(2, b"I0000 00:00:1.2    1 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"E0000 00:00:1.2    1 some_op.cc:7] a real problem\n")
        print("a Python warning", file=sys.stderr)
    err = capfd.readouterr().err
    assert "a real problem" in err and "a Python warning" in err and "oneDNN" not in err


# --- train.verbose = "auto" --------------------------------------------------------------


class _Stream:
    def __init__(self, tty: bool):
        self.tty = tty

    def isatty(self):
        return self.tty


def test_verbose_auto_is_the_default_and_resolves_once(monkeypatch):
    from framework.spec.schema import TrainSpec

    assert TrainSpec().verbose == "auto"
    monkeypatch.setattr(sys, "stdout", _Stream(True))
    assert TrainSpec().keras_verbose == 1  # a terminal: Keras's progress bar
    monkeypatch.setattr(sys, "stdout", _Stream(False))
    assert TrainSpec().keras_verbose == 2  # a log or a pipe: one line per epoch
    for value in (0, 1, 2):
        assert TrainSpec(verbose=value).keras_verbose == value


def test_run_prints_a_status_line_then_one_line_per_epoch_when_not_a_terminal(cli, write_spec, tmp_path):
    spec = tiny_spec(train={"epochs": 2, "verbose": "auto"})
    code, out, err = cli("run", write_spec(spec), "--reports", tmp_path / "reports")
    assert code == 0, err
    assert "loading data and building the model..." in err, err
    assert "Epoch 1/2" in out and "Epoch 2/2" in out, out
    assert "━" not in out and "\r" not in out, out  # no progress bar in captured output


@pytest.mark.parametrize("command", [["-m", "framework", "--version"]])
def test_version(command):
    from framework import __version__

    result = _run(*command)
    assert result.returncode == 0 and result.stdout.strip() == f"framework {__version__}"

