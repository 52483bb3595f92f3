"""What a run ran on: packages, devices, XLA and precision modes, git commit."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("framework", "keras", "tensorflow", "keras-tuner", "numpy", "pandas", "scikit-learn", "pydantic", "dp-accounting")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_commit(folder: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def describe_environment(spec_dir: Path | None = None) -> dict:
    import tensorflow as tf

    devices = [d.device_type + ":" + d.name.rsplit(":", 1)[-1] for d in tf.config.list_physical_devices()]
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor_count": __import__("os").cpu_count(),
        "packages": {p: _version(p) for p in PACKAGES},
        "devices": devices,
        "gpu": any(d.startswith("GPU") for d in devices),
        "git_commit": git_commit(spec_dir or Path.cwd()),
        "command": sys.argv,
    }
