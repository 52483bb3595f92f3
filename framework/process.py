"""How a CLI process ends: without the interpreter's teardown once TensorFlow is loaded.

After a command that imported TensorFlow, Python's own finalization (freeing every module and TensorFlow's
objects one by one) takes about a second on a 2-core machine, longer than most of what the command did after
training (``benchmarks/RESULTS.md``, "Where the whole process's time goes"). Nothing the command produced depends
on it: every file the framework writes is closed (and checkpoints synced) before the command returns. So the
process ends as the interpreter would, minus that teardown: ``atexit`` handlers run (MLflow's end of run, logging's
flush, multiprocessing's children), the standard streams are flushed, then ``os._exit``. If any non-daemon thread
is still running, the process exits the normal way, which waits for it.

    python -m framework run spec.toml   # exit code as before, about a second sooner
"""

from __future__ import annotations

import os
import sys
import threading
from typing import NoReturn


def _other_threads_running() -> bool:
    main = threading.main_thread()
    return any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate())


def end_process(code: int) -> NoReturn:
    """Exit with ``code``; skip the interpreter's teardown when TensorFlow is loaded and no other thread runs."""
    if "tensorflow" not in sys.modules or _other_threads_running():
        raise SystemExit(code)
    from framework import compat

    compat.run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said on it
            pass
    os._exit(code)
