"""Start-up latency of the commands that must not import TensorFlow, against an empty Python, and of a check that
builds the model against a plain ``import tensorflow, keras``.

    python benchmarks/cli_latency.py [--repeat 7]

Each command runs as a new process; the figure is the median wall time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "python -c 'import tensorflow, keras' (plain, for reference)": [
        sys.executable, "-c", "import tensorflow, keras"],
    "framework --help": [sys.executable, "-m", "framework", "--help"],
    "framework schema": [sys.executable, "-m", "framework", "schema"],
    "framework check --schema-only specs/quickstart.toml": [
        sys.executable, "-m", "framework", "check", "--schema-only", "specs/quickstart.toml"],
    "framework check specs/quickstart.toml (builds the model: imports TensorFlow)": [
        sys.executable, "-m", "framework", "check", "specs/quickstart.toml"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    times = {name: [] for name in COMMANDS}
    for _ in range(args.repeat):  # interleaved, so machine noise spreads over all commands
        for name, command in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["python -c pass"])
    print("| command | median wall (s) | over python -c pass (s) |")
    print("|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| `{name}` | {median:.3f} | {median - base:+.3f} |")


if __name__ == "__main__":
    main()
