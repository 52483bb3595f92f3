"""TensorFlow without its start-up chatter on stderr, Keras on the TensorFlow backend, and the CLI's status lines.

TensorFlow's C++ core logs informational lines (oneDNN, CUDA stubs, CPU features) while it imports, before its log
level can be set, and on a machine without a GPU an ``E0000 ... cuda_platform.cc] failed call to cuInit`` line the
first time it looks for devices. ``import_tensorflow`` captures file descriptor 2 during the import and that first
look, and passes on every line that is not such a notice: other errors, warnings from Python and tracebacks still
show. The CLI and the Python API (``framework.run``/``check``/``tune``) import TensorFlow through it.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import sys
import tempfile

_NOTICE_PREFIXES = (
    "WARNING: All log messages before absl::InitializeLog()",
    "To enable the following instructions:",  # the second line of cpu_feature_guard's notice
)
#: an absl log line: level, date, time, thread, file:line] message
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ \S+:\d+\] ")
#: error lines that only say this machine has no usable GPU, or that CUDA plugins were registered twice
_NO_GPU_ERRORS = (
    "failed call to cuInit",
    "Unable to register cuDNN factory",
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "computation placer already registered",
    "kernel driver does not appear to be running",
    "no NVIDIA GPU device is present",
    "cuda_diagnostics",
)

_devices_listed = False
#: a KERAS_BACKEND other than tensorflow that was overridden, until the note about it is printed
_overridden: str | None = None
#: the CLI turns status lines on; the Python API stays silent
show_status = False


def is_notice(line: str) -> bool:
    """A start-up notice of TensorFlow's C++ core, not a real problem."""
    if line.startswith(_NOTICE_PREFIXES):
        return True
    match = _ABSL_LINE.match(line)
    if not match:
        return False
    return match.group(1) in "IW" or (match.group(1) == "E" and any(text in line for text in _NO_GPU_ERRORS))


@contextlib.contextmanager
def filtered_stderr():
    """Capture file descriptor 2 (C++ logs included) and pass on the lines that are not start-up notices."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (some embedded interpreters): nothing to filter
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode("utf-8", "replace").splitlines(keepends=True):
                if not is_notice(line):
                    sys.stderr.write(line)
            sys.stderr.flush()


def use_tensorflow_backend(note: bool = True) -> None:
    """Keras runs on TensorFlow here: another ``KERAS_BACKEND`` is overridden (before Keras is imported) with a
    one-line note, printed now or, with ``note=False``, when TensorFlow is first imported. If this process already
    runs Keras on another backend, that is a clear error (exit status 2)."""
    global _overridden
    from framework.errors import FrameworkError

    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "backend"):
        backend = keras.backend.backend()
        if backend != "tensorflow":
            raise FrameworkError(
                f"Keras is already running on the {backend} backend in this process, and the framework needs "
                "TensorFlow: set KERAS_BACKEND=tensorflow before importing keras", path="KERAS_BACKEND",
            )
    requested = os.environ.get("KERAS_BACKEND", "").strip()
    if requested and requested != "tensorflow":
        _overridden = requested
    os.environ["KERAS_BACKEND"] = "tensorflow"
    if note and _overridden:
        print(f"note: KERAS_BACKEND={_overridden} ignored: the framework runs Keras on TensorFlow", file=sys.stderr)
        _overridden = None


def import_tensorflow():
    """Import TensorFlow and Keras and look for devices once, without the start-up notices."""
    global _devices_listed
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    use_tensorflow_backend()
    if "tensorflow" in sys.modules and _devices_listed:
        return sys.modules["tensorflow"]
    with filtered_stderr():
        from framework.compat import defer_keras_optional_integrations

        defer_keras_optional_integrations()  # ~1 s less start-up: scikit-learn and pyplot load when used
        import tensorflow

        import keras  # noqa: F401 - on the backend chosen above

        if not _devices_listed:
            # CUDA's start-up errors on a machine without a GPU print the first time devices are listed
            tensorflow.config.list_physical_devices("GPU")
            _devices_listed = True
            # TensorFlow's and Keras's module objects live as long as the process: moved out of the garbage
            # collector's view, its collections during training stop scanning them (~0.3 s of a short run)
            gc.freeze()
    return tensorflow


def status(message: str) -> None:
    """One line on stderr about what the CLI is doing (``loading data...``), before Keras's own output starts."""
    if show_status:
        print(message, file=sys.stderr, flush=True)
