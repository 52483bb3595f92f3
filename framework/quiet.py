"""Import TensorFlow without its start-up chatter on stderr.

TensorFlow's C++ core logs informational lines (oneDNN, missing CUDA drivers)
before its log level can be set. We capture file descriptor 2 during the
import and pass on every line that is not such a notice.
"""

from __future__ import annotations

import os
import sys
import tempfile

_NOTICE_PREFIXES = ("I0000", "WARNING: All log messages before absl::InitializeLog()")


def import_tensorflow():
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode("utf-8", "replace").splitlines(keepends=True):
                if not line.startswith(_NOTICE_PREFIXES):
                    sys.stderr.write(line)
    return tensorflow
