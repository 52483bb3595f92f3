"""Milliseconds per training step, DP-SGD vs plain SGD, on the MNIST-shaped tanh CNN of specs/mnist_dp.toml.

    python benchmarks/dp_overhead.py [--steps 60] [--batch 256] [--rounds 3]

Both are measured in this one process, with XLA off and on, in interleaved rounds; the median
step time of each is printed, and that of DP with per-example gradients (``privacy.clipping =
"vectorized"``) for comparison. The last line is ``dp_step_ratio=<best DP mode / best non-DP mode>``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def step_times(private: bool, jit: bool, steps: int, batch: int, clipping: str = "auto") -> list[float]:
    import keras
    import numpy as np

    from framework.spec.load import validate
    from framework.train.run import build_and_compile, setup_backend

    raw = tomllib.loads((ROOT / "specs" / "mnist_dp.toml").read_text())
    raw["data"]["source"] = "sklearn:digits"  # not loaded: the shape is given below
    raw["train"].update(batch_size=batch, jit_compile=jit, deterministic=False)
    if private:
        raw["privacy"] = {"l2_norm_clip": 1.0, "noise_multiplier": 1.0, "sampling": "shuffle", "clipping": clipping}
    else:
        raw.pop("privacy")
    spec = validate(raw, file="mnist_dp.toml", base_dir=ROOT / "specs")
    setup_backend(spec)
    model = build_and_compile(spec, (28, 28, 1), steps_per_epoch=steps, train_examples=60000).model
    rng = np.random.default_rng(0)
    x = rng.random((batch * steps, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, batch * steps)

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    timer = Timer()
    model.fit(x, y, batch_size=batch, epochs=1, callbacks=[timer], verbose=0, shuffle=False)
    return timer.times[5:]  # after tracing and compiling


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    from framework.quiet import import_tensorflow

    import_tensorflow()
    samples: dict = {}
    vectorized: list = []  # per-example gradients with tf.vectorized_map, for comparison
    for _ in range(args.rounds):  # interleaved rounds, so a slow spell of the machine hits every mode
        for private in (False, True):
            for jit in (False, True):
                samples.setdefault((private, jit), []).extend(step_times(private, jit, args.steps, args.batch))
        vectorized.extend(step_times(True, False, args.steps, args.batch, clipping="vectorized"))
    results = {}
    for (private, jit), times in samples.items():
        results[(private, jit)] = statistics.median(times) * 1000
        print(f"{'DP-SGD' if private else 'plain '}  XLA {'on ' if jit else 'off'}  {results[(private, jit)]:8.1f} ms/step", flush=True)
    print(f"DP-SGD  XLA off  {statistics.median(vectorized) * 1000:8.1f} ms/step  (clipping = \"vectorized\")")
    best_dp = min(v for (p, _), v in results.items() if p)
    best_plain = min(v for (p, _), v in results.items() if not p)
    print(f"cpu_count={os.cpu_count()} batch={args.batch}")
    print(f"dp_step_ratio={best_dp / best_plain:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
