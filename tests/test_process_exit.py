"""How a CLI process ends (framework/process.py): atexit handlers and buffered output survive the skipped
interpreter teardown, the exit code is kept, and a running non-daemon thread is waited for."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from conftest import ROOT

from framework import process

# a stand-in for TensorFlow: the fast exit applies once "tensorflow" is imported
SCRIPT = """
import atexit, sys, types
sys.modules["tensorflow"] = types.ModuleType("tensorflow")
atexit.register(lambda: print("atexit handler ran", flush=True))
from framework.process import end_process
print("buffered output", end="")
sys.stderr.write("buffered error")
end_process(3)
"""


def test_the_fast_exit_keeps_the_code_the_output_and_the_atexit_handlers():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert result.stdout == "buffered outputatexit handler ran\n"  # compat.run_exit_handlers ran them
    assert result.stderr == "buffered error"


def test_a_running_non_daemon_thread_means_the_normal_exit(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", sys.modules.get("tensorflow") or type(sys)("tensorflow"))
    release = threading.Event()
    worker = threading.Thread(target=release.wait)
    worker.start()
    try:
        with pytest.raises(SystemExit) as ended:  # not os._exit: the interpreter's own exit waits for the thread
            process.end_process(4)
        assert ended.value.code == 4
    finally:
        release.set()
        worker.join()


def test_without_tensorflow_the_exit_is_the_normal_one(monkeypatch):
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    with pytest.raises(SystemExit) as ended:
        process.end_process(0)
    assert ended.value.code == 0
