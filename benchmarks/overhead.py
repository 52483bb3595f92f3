"""What the framework costs over the same model written by hand in plain Keras.

    python benchmarks/overhead.py [--rounds 7] [--epochs 8]

1. Steady epoch, each training in a new process: the framework's `run` and a hand-written Keras loop train the same MLP
   (784 -> 256 -> 128 -> 10 on MNIST from ../shared/data, else 64 -> 256 -> 128 -> 10 on digits) with the same
   tf.data pipeline (framework.data.pipeline), epochs, batch size, optimizer and validation data, in
   interleaved rounds. A steady epoch is fit()'s wall time less the first epoch (tracing), divided by the
   remaining epochs, so the framework's end-of-epoch work (backup, CSV log) counts.
2. Whole process: `python -m framework run benchmarks/digits_mlp.toml` against
   `python benchmarks/handwritten_mlp.py`, the same job (the Ludwig comparison), alternately, as subprocesses.

Each round runs the two back to back, in alternating order, and gives one ratio; the figures are the medians of
the per-round ratios, with their spread (lowest to highest), since a ratio of two medians mixes rounds that ran
under different load. The last two lines are whole_process_ratio=<median> and overhead_ratio=<median>.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist.npz"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def spec_text(epochs: int) -> tuple[str, str]:
    if MNIST.exists():
        data = f'source = "npz:{MNIST}"\nscale = 0.00392156862745098\nreshape = [784]\nvalidation_split = 0.1'
        label = "MNIST MLP 784-256-128-10"
    else:
        data = 'source = "sklearn:digits"\nscale = 0.0625\nvalidation_split = 0.1'
        label = "digits MLP 64-256-128-10"
    return label, f"""
name = "overhead"
seed = 0
[data]
{data}
[model]
layers = [
  {{ type = "Dense", units = 256, activation = "relu" }},
  {{ type = "Dense", units = 128, activation = "relu" }},
  {{ type = "Dense", units = 10, activation = "softmax" }},
]
[train]
epochs = {epochs}
batch_size = 128
deterministic = false   # plain Keras's default, for both
verbose = 0
"""


def steady_epochs(fit_seconds: float, epoch_seconds: list[float]) -> float:
    """Seconds per epoch after the first, everything in fit() included (callbacks' end-of-epoch work too)."""
    return (fit_seconds - epoch_seconds[0]) / (len(epoch_seconds) - 1)


def framework_epochs(spec_file: Path, reports: Path) -> tuple[float, float]:
    """(first epoch, steady epoch) seconds of `run`."""
    import pandas as pd

    from framework.spec import load_spec
    from framework.train.run import run_experiment

    result = run_experiment(load_spec(spec_file), reports)
    epochs = list(pd.read_csv(result.folder.path / "history.csv")["epoch_seconds"])
    return epochs[0], steady_epochs(result.metrics["train_seconds"], epochs)


def handwritten_epochs(spec_file: Path) -> tuple[float, float]:
    """The same model, data and pipeline in plain Keras: no run folder, no callbacks but the timer."""
    import keras

    from framework.data import load_splits
    from framework.data.pipeline import evaluation_dataset, training_dataset
    from framework.spec import load_spec
    from framework.train.callbacks import epoch_timer

    spec = load_spec(spec_file).spec
    keras.utils.clear_session(free_memory=True)
    keras.utils.set_random_seed(spec.seed)
    splits = load_splits(spec.data, spec.seed)
    model = keras.Sequential([
        keras.Input(splits.example_shape),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    batch = spec.train.batch_size
    train, shuffle = training_dataset(splits.x_train, splits.y_train, batch_size=batch, data_spec=spec.data, seed=spec.seed)
    val = evaluation_dataset(splits.x_val, splits.y_val, batch_size=batch, data_spec=spec.data)
    timer = epoch_timer()
    start = time.perf_counter()
    history = model.fit(train, validation_data=val, epochs=spec.train.epochs, callbacks=[shuffle, timer], shuffle=False, verbose=0)
    fit_seconds = time.perf_counter() - start
    model.evaluate(evaluation_dataset(splits.x_test, splits.y_test, batch_size=batch, data_spec=spec.data), verbose=0)
    epochs = list(history.history["epoch_seconds"])
    return epochs[0], steady_epochs(fit_seconds, epochs)


def whole_process(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, result.stdout


def steady_epoch_in_new_process(name: str, spec_file: Path, reports: Path) -> tuple[float, float]:
    """(first epoch, steady epoch) of one training in a fresh process, so neither side inherits the other's state."""
    command = [sys.executable, __file__, "--child", name, "--spec", str(spec_file), "--reports", str(reports)]
    _, stdout = whole_process(command)
    first, steady = json.loads(stdout.strip().splitlines()[-1])
    return first, steady


def child(name: str, spec_file: Path, reports: Path) -> None:
    from framework.quiet import import_tensorflow

    import_tensorflow()
    first, steady = framework_epochs(spec_file, reports) if name == "framework" else handwritten_epochs(spec_file)
    print(json.dumps([first, steady]))


def ratios(pairs: dict[str, list[float]]) -> tuple[float, float, float]:
    """Median, lowest and highest of the per-round ratios framework / hand-written."""
    each = [f / h for f, h in zip(pairs["framework"], pairs["handwritten"])]
    return statistics.median(each), min(each), max(each)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--child", choices=("framework", "handwritten"), help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--reports", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.spec, args.reports)
    label, text = spec_text(args.epochs)
    work = Path(tempfile.mkdtemp(prefix="overhead-"))
    spec_file = work / "overhead.toml"
    spec_file.write_text(text)
    steady = {"framework": [], "handwritten": []}
    for round_ in range(args.rounds):
        order = ("framework", "handwritten") if round_ % 2 == 0 else ("handwritten", "framework")
        for name in order:
            first, epoch = steady_epoch_in_new_process(name, spec_file, work / "reports")
            steady[name].append(epoch)
            print(f"round {round_ + 1} {name:11s} steady epoch {epoch:.3f} s (first epoch {first:.3f} s)", flush=True)

    walls = {"framework": [], "handwritten": []}
    outputs = {}
    commands = {
        "framework": [sys.executable, "-m", "framework", "run", "benchmarks/digits_mlp.toml", "--reports", str(work / "wall")],
        "handwritten": [sys.executable, "benchmarks/handwritten_mlp.py"],
    }
    for round_ in range(args.rounds):
        order = ("framework", "handwritten") if round_ % 2 == 0 else ("handwritten", "framework")
        for name in order:
            seconds, outputs[name] = whole_process(commands[name])
            walls[name].append(seconds)
            print(f"round {round_ + 1} {name:11s} whole process {seconds:.2f} s", flush=True)

    runs = sorted((work / "wall").iterdir())
    fw_accuracy = json.loads((runs[-1] / "metrics.json").read_text())["test_accuracy"]
    hw_accuracy = float(outputs["handwritten"].split("test_accuracy=")[1].split()[0])
    epoch_ratio, epoch_low, epoch_high = ratios(steady)
    wall_ratio, wall_low, wall_high = ratios(walls)
    print()
    print(f"steady epoch ({label}, batch 128, {args.rounds} rounds x {args.epochs - 1} epochs, each a new process):")
    print(f"  framework {statistics.median(steady['framework']):.3f} s   hand-written "
          f"{statistics.median(steady['handwritten']):.3f} s   ratio {epoch_ratio:.3f} (rounds {epoch_low:.3f}-{epoch_high:.3f})")
    print(f"whole process (digits MLP 64-128-64-10, 30 epochs, batch 32; {args.rounds} rounds):")
    print(f"  framework    {statistics.median(walls['framework']):.2f} s (test accuracy {fw_accuracy:.4f})")
    print(f"  hand-written {statistics.median(walls['handwritten']):.2f} s (test accuracy {hw_accuracy:.4f})")
    print(f"  ratio {wall_ratio:.3f} (rounds {wall_low:.3f}-{wall_high:.3f})")
    print(f"whole_process_ratio={wall_ratio:.3f}")
    print(f"overhead_ratio={epoch_ratio:.3f}")


if __name__ == "__main__":
    main()
