"""CPU seconds of a short run with the compiled metrics built before the first train step, and without.

    python benchmarks/first_step.py [--rounds 8] [--epochs 1]

Keras's TensorFlow trainer creates the compiled metrics' variables while it traces the first train step, and a
``tf.function`` that creates variables on its first call is traced twice. The framework builds them beforehand
(framework/train/compile.py: build_compiled_state). Here the digits MLP of benchmarks/digits_mlp.toml runs ``epochs``
epochs through ``framework.train.run.run_experiment`` in one process, alternately with that step and with it
replaced by a no-op (Keras's own deferred build), after two warm-up runs; the medians of each side's process CPU
seconds per run are printed, and last ``first_step_cpu_saving=<1 - with / without>``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args(argv)
    from framework.quiet import import_tensorflow

    import_tensorflow()
    import framework.train.prepare as prepare_module
    from framework.spec.load import load_spec_input
    from framework.train.run import run_experiment

    spec = tomllib.loads((ROOT / "benchmarks" / "digits_mlp.toml").read_text())
    spec["train"]["epochs"] = args.epochs
    built_early = prepare_module.build_compiled_state
    reports = Path(tempfile.mkdtemp(prefix="first-step-"))

    def cpu_seconds(early: bool) -> float:
        prepare_module.build_compiled_state = built_early if early else (lambda model, element_spec: False)
        start = time.process_time()
        run_experiment(load_spec_input(dict(spec)), reports)
        return time.process_time() - start

    cpu_seconds(True), cpu_seconds(False)  # warm-up: imports, caches
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.rounds):
        for early in (False, True):
            times[early].append(cpu_seconds(early))
    with_early, without = statistics.median(times[True]), statistics.median(times[False])
    print(f"metrics built before the first step: {with_early:.3f} s CPU per run "
          f"({min(times[True]):.3f}-{max(times[True]):.3f})")
    print(f"built while tracing it (Keras):      {without:.3f} s CPU per run "
          f"({min(times[False]):.3f}-{max(times[False]):.3f})")
    print(f"first_step_cpu_saving={1 - with_early / without:.3f}")
    shutil.rmtree(reports, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
