"""Trial worker processes: each trains several trials in turn, then is replaced.

A fresh process per trial pays Python's and TensorFlow's start-up (about 3 s) every time; one process for the
whole search grows with every model TensorFlow builds, since ``clear_session`` does not give memory back. So a
worker (``python -m framework.tuning.trial --serve``) takes trial requests one after another, and the search
replaces it after ``tune.trials_per_worker`` trials, once its memory passes ``tune.worker_memory_mb``, after a
failed trial, or when it dies. The search process itself never imports a model, so its memory stays flat.

    pool = TrialWorkers(trials_per_worker=8, memory_mb=3000, log=folder / "workers.log")
    try:
        result = pool.run(request, stem)   # {"history": ..., "peak_rss_mb": ..., "worker": pid} or {"error": ...}
    finally:
        pool.close()
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

#: the line a worker prints on its protocol channel after each trial: {"rss_mb": ..., "exit": bool}
SERVE_FLAG = "--serve"


class TrialWorkers:
    """One live worker at a time (keras-tuner runs a search's trials one after another)."""

    def __init__(self, trials_per_worker: int, memory_mb: float, log: Path):
        self.trials_per_worker, self.memory_mb, self.log = trials_per_worker, memory_mb, Path(log)
        self._proc: subprocess.Popen | None = None
        self.started = 0  # workers started so far

    @property
    def pid(self) -> int | None:
        """The live worker's process id (None between workers)."""
        return None if self._proc is None or self._proc.poll() is not None else self._proc.pid

    def _worker(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log, "a") as log:  # the child keeps its own descriptor
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "framework.tuning.trial", SERVE_FLAG,
                     str(self.trials_per_worker), str(self.memory_mb)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                    env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")},
                )
            self.started += 1
        return self._proc

    def run(self, request: dict, stem: Path) -> dict:
        """Train one trial (``request`` as framework.tuning.trial.run_trial reads it); its result, with
        ``peak_rss_mb`` and the ``worker`` that ran it, or ``{"error": ...}``."""
        request = {**request, "result": str(stem.with_suffix(".result.json"))}
        request_file = stem.with_suffix(".request.json")
        request_file.write_text(json.dumps(request))
        result_file = Path(request["result"])
        result_file.unlink(missing_ok=True)
        log_start = self.log.stat().st_size if self.log.exists() else 0
        proc = self._worker()
        status = None
        try:
            proc.stdin.write(f"{request_file}\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            status = json.loads(line) if line.strip() else None
        except (BrokenPipeError, json.JSONDecodeError):
            status = None
        if status is None or status.get("exit"):
            self._retire()
        try:
            result = json.loads(result_file.read_text()) if result_file.exists() else None
        except ValueError:
            result = None
        if result is None:  # the worker died in the trial (killed, out of memory): what it wrote to its log
            result = {"error": f"the trial process ended ({self._exit_reason()}): {self._log_tail(log_start)}"}
        result["worker"] = proc.pid
        return result

    def _exit_reason(self) -> str:
        code = self._last_code
        return f"exit code {code}" if code is None or code >= 0 else f"signal {-code}"

    def _log_tail(self, start: int) -> str:
        try:
            with open(self.log, errors="replace") as log:
                log.seek(start)
                return log.read()[-2000:].strip()
        except OSError:
            return ""

    def _retire(self) -> None:
        proc, self._proc = self._proc, None
        self._last_code = None
        if proc is None:
            return
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            self._last_code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            self._last_code = proc.wait()

    _last_code: int | None = None

    def close(self) -> None:
        """Stop the live worker (it finishes nothing: it is idle between trials)."""
        self._retire()
