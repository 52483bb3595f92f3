"""Milliseconds per training step, DP-SGD vs plain SGD, on the MNIST-shaped tanh CNN of specs/mnist_dp.toml.

    python benchmarks/dp_overhead.py [--steps 300] [--batch 256] [--rounds 3]
    python benchmarks/dp_overhead.py --breakdown      # where one DP step's time goes, part by part

Both are measured in this one process, with XLA off and on, and DP with per-example gradients
(``privacy.clipping = "vectorized"``) for comparison: the modes take turns ``--block`` steps at a time, and the
median step time of each is printed, with the DP/plain ratio over each tenth of the steps as its spread. Then whole DP epochs through the framework's own pipelines, Poisson-sampled
against shuffled batches, XLA off, interleaved. The last two lines are
``dp_step_ratio=<best DP mode / best non-DP mode>`` and ``poisson_vs_shuffle=<Poisson epoch / shuffled epoch>``.
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


def build_model(private: bool, jit: bool, steps: int, batch: int, clipping: str = "auto"):
    """The compiled MNIST tanh CNN of specs/mnist_dp.toml, DP-SGD (shuffled batches) or plain."""
    from framework.spec.load import validate
    from framework.train.prepare import build_and_compile, setup_backend

    raw = tomllib.loads((ROOT / "specs" / "mnist_dp.toml").read_text())
    raw["data"]["source"] = "sklearn:digits"  # not loaded: the shape is given below
    # one batch per compiled call, so that train_function is one step as fit calls it (the figures per step)
    raw["train"].update(batch_size=batch, jit_compile=jit, deterministic=False, steps_per_execution=1)
    if private:
        raw["privacy"] = {"l2_norm_clip": 1.0, "noise_multiplier": 1.0, "sampling": "shuffle", "clipping": clipping}
    else:
        raw.pop("privacy")
    spec = validate(raw, file="mnist_dp.toml", base_dir=ROOT / "specs")
    setup_backend(spec)
    return build_and_compile(spec, (28, 28, 1), steps_per_epoch=steps, train_examples=60000).model


MODES = {  # name: (private, jit, clipping)
    "plain  XLA off": (False, False, "auto"),
    "plain  XLA on ": (False, True, "auto"),
    "DP-SGD XLA off": (True, False, "auto"),
    "DP-SGD XLA on ": (True, True, "auto"),
    "DP-SGD XLA off, clipping = \"vectorized\"": (True, False, "vectorized"),
}


def interleaved_step_times(steps: int, batch: int, block: int = 10, modes: dict = MODES) -> dict[str, list[float]]:
    """Seconds of ``steps`` training steps per mode, the modes taking turns ``block`` steps at a time (a slow spell of
    the machine hits every mode alike, and within a block the steps run back to back as in ``fit``; the first step
    of each block, which finds the caches holding another model, is not counted). A step is the compiled model's
    ``train_function`` on one batch already in memory, as ``fit`` calls it, waited for; every mode gets the same
    batches."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    batches = [(tf.constant(rng.random((batch, 28, 28, 1), dtype=np.float32)), tf.constant(rng.integers(0, 10, batch)))
               for _ in range(8)]
    models = {name: build_model(private, jit, steps, batch, clipping) for name, (private, jit, clipping) in modes.items()}
    for model in models.values():
        model.make_train_function()
        for data in batches[:3]:  # trace and compile
            tf.nest.map_structure(lambda t: t.numpy(), model.train_function(iter([data])))
    times: dict = {name: [] for name in models}
    for first in range(0, steps, block):
        for name, model in models.items():
            for step in range(first, first + block + 1):
                start = time.perf_counter()
                tf.nest.map_structure(lambda t: t.numpy(), model.train_function(iter([batches[step % len(batches)]])))
                if step > first:
                    times[name].append(time.perf_counter() - start)
    return times


def epoch_seconds(sampling: str, steps: int, batch: int) -> float:
    """Wall time of the second DP epoch (the first traces) through the run's pipeline for ``sampling``."""
    import keras
    import numpy as np
    import tensorflow as tf

    from framework.data.pipeline import training_dataset
    from framework.privacy.sampling import poisson_dataset
    from framework.spec.load import validate
    from framework.train.prepare import build_and_compile, count_steps, setup_backend

    raw = tomllib.loads((ROOT / "specs" / "mnist_dp.toml").read_text())
    raw["data"]["source"] = "sklearn:digits"  # not loaded: the data is generated below
    raw["train"].update(batch_size=batch, deterministic=False, epochs=2)
    raw["privacy"] = {"l2_norm_clip": 1.0, "noise_multiplier": 1.0, "sampling": sampling}
    spec = validate(raw, file="mnist_dp.toml", base_dir=ROOT / "specs")
    setup_backend(spec)
    count = batch * steps
    per_epoch = count_steps(count, batch, poisson=sampling == "poisson")
    built = build_and_compile(spec, (28, 28, 1), steps_per_epoch=per_epoch, train_examples=count)
    rng = np.random.default_rng(0)
    x = rng.random((count, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, count)
    seed = tf.Variable(1, dtype=tf.int64)
    if sampling == "poisson":
        ds, callback = poisson_dataset(x, y, batch_size=batch, seed_variable=seed, steps_per_epoch=per_epoch)
    else:
        ds, callback = training_dataset(x, y, batch_size=batch, data_spec=spec.data, seed=seed)
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    built.model.fit(ds, epochs=2, callbacks=[callback, Timer()], verbose=0, shuffle=False)
    return times[-1]


def breakdown(batch: int, repeats: int = 40) -> int:
    """Milliseconds of the parts of one ghost-clipped DP step (XLA off), each a tf.function timed alone (median of
    ``repeats``): the whole plain and DP steps, the tapped forward and backward pass to each layer's pre-activation,
    and each layer's per-example norms and clipped sum (privacy/step.py: layer_pieces)."""
    import numpy as np
    import tensorflow as tf

    from framework.privacy.step import layer_pieces

    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((batch, 28, 28, 1), dtype=np.float32))
    y = tf.constant(rng.integers(0, 10, batch))

    def median_ms(function) -> float:
        function()
        function()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            tf.nest.map_structure(lambda t: t.numpy(), function())
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1000

    rows = []
    for private in (False, True):
        model = build_model(private, False, 10, batch)
        model.make_train_function()
        batches = iter([(x, y)] * (repeats + 2))
        rows.append((f"{'DP' if private else 'plain'} train step",
                     median_ms(lambda model=model, batches=batches: model.train_function(batches))))
    count = len(model.ghost_layers)

    @tf.function
    def tapped_pass():
        with tf.GradientTape() as tape:
            outputs = model.tapped_model(x, training=True)
            total = tf.reduce_sum(model.loss_per_row(y, outputs[0]))
        return outputs[1 : count + 1], tape.gradient(total, outputs[count + 1 :])

    rows.append(("tapped forward + backward to the pre-activations", median_ms(tapped_pass)))
    inputs, output_grads = tapped_pass()
    for layer, a, d in zip(model.ghost_layers, inputs, output_grads):
        @tf.function
        def pieces(layer=layer, a=a, d=d):
            squared, clipped = layer_pieces(layer, a, d)
            return [squared, *clipped(tf.ones_like(squared))]

        rows.append((f"{layer.name}: norms and clipped sum, input {tuple(a.shape[1:])}", median_ms(pieces)))
    for name, ms in rows:
        print(f"{name:55s} {ms:7.2f} ms")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="timed steps per mode (rounded up to whole blocks)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--block", type=int, default=10, help="steps a mode runs before the next takes its turn")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the Poisson-vs-shuffle epochs")
    parser.add_argument("--epoch-steps", type=int, default=60, help="steps of those epochs")
    parser.add_argument("--sampling-only", action="store_true", help="only the Poisson-vs-shuffle epochs")
    parser.add_argument("--breakdown", action="store_true", help="only where a ghost-clipped DP step's time goes")
    args = parser.parse_args(argv)
    from framework.quiet import import_tensorflow

    import_tensorflow()
    if args.breakdown:
        return breakdown(args.batch)
    best: dict = {}
    if not args.sampling_only:
        times = interleaved_step_times(args.steps, args.batch, args.block)
        medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
        for name, ms in medians.items():
            print(f"{name:45s} {ms:8.1f} ms/step", flush=True)
        plain = min((n for n in medians if n.startswith("plain")), key=medians.get)
        private = min((n for n in medians if n.startswith("DP") and "vectorized" not in n), key=medians.get)
        best = {"plain": plain, "DP": private}
        # the spread: the same ratio over each tenth of the steps
        tenth = max(len(times[plain]) // 10, 1)
        parts = [statistics.median(times[private][i:i + tenth]) / statistics.median(times[plain][i:i + tenth])
                 for i in range(0, len(times[plain]) - tenth + 1, tenth)]
        print(f"best DP / best plain over each tenth of the steps: {min(parts):.2f}-{max(parts):.2f} "
              f"(median {statistics.median(parts):.2f})")
    epochs: dict = {"poisson": [], "shuffle": []}
    for _ in range(args.rounds):
        for sampling in epochs:
            epochs[sampling].append(epoch_seconds(sampling, args.epoch_steps, args.batch))
    for sampling, seconds in epochs.items():
        print(f"DP epoch, {sampling:7s} batches  {statistics.median(seconds):6.2f} s  ({args.epoch_steps} steps of {args.batch})")
    print(f"cpu_count={os.cpu_count()} batch={args.batch}")
    if best:
        print(f"dp_step_ratio={medians[best['DP']] / medians[best['plain']]:.2f}")
    print(f"poisson_vs_shuffle={statistics.median(epochs['poisson']) / statistics.median(epochs['shuffle']):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
