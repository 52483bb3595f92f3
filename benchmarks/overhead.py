"""What the framework costs over the same model written by hand in plain Keras.

    python benchmarks/overhead.py [--rounds 7] [--epochs 10] [--steady-only]

1. Steady epoch: the framework's `run` and a hand-written Keras loop train the same MLP (784 -> 256 -> 128 -> 10 on
   MNIST from ../shared/data, else 64 -> 256 -> 128 -> 10 on digits) with the same tf.data pipeline
   (framework.data.pipeline), epochs, batch size, optimizer and validation data, in two threads of one new process
   per round that take turns an epoch at a time (a slow spell of the machine, or of the process, hits both alike).
   A side's epoch is the time it holds the turn, from the start of one epoch to the start of the next, so the
   framework's end-of-epoch work counts (but its backup and CSV log, written in a thread as in a run, overlap the
   other side's next epoch); the first epoch (tracing) and the last are left out.
2. Whole process: `python -m framework run benchmarks/digits_mlp.toml` against
   `python benchmarks/handwritten_mlp.py`, the same job (the Ludwig comparison), alternately, as subprocesses.

Both sides run Keras at the same settings: the hand-written model is compiled with the `steps_per_execution` the
framework's run compiled (train.steps_per_execution, "auto": several batches per compiled call). In 2., the
hand-written script also runs with Keras's default of one batch per call, as a user would write it; that third
process is reported beside the ratio, not in it.

In 1., each framework epoch and the hand-written epoch that ran right after it make a pair, and overhead_ratio is
the median of all rounds' pair ratios (a slow spell of a few seconds spoils a pair or two, not a round); in 2., each
round's two processes run back to back in alternating order, and whole_process_ratio is the median of the per-round
ratios. Both print their spread over the rounds (lowest to highest). The
last two lines are whole_process_ratio=<median> and overhead_ratio=<median> (with --steady-only, overhead_ratio only).
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


class Lockstep:
    """Two trainings in two threads of one process take turns an epoch at a time; ``seconds[side]`` holds the
    side's epochs, each from its start to the start of its next epoch (the last epoch is not timed)."""

    def __init__(self, first: str, second: str):
        import threading

        self.condition = threading.Condition()
        self.turn = first
        self.other = {first: second, second: first}
        self.finished: set[str] = set()
        self.seconds: dict[str, list[float]] = {first: [], second: []}
        self.steps_per_execution: dict[str, int] = {}  # what each side's compiled model runs per call

    def wait(self, side: str) -> None:
        with self.condition:
            self.condition.wait_for(lambda: self.turn == side or self.other[side] in self.finished)

    def hand_over(self, side: str, finished: bool = False) -> None:
        with self.condition:
            if finished:
                self.finished.add(side)
            self.turn = self.other[side]
            self.condition.notify_all()

    def callback(self, side: str):
        import keras

        lockstep = self

        class TakeTurns(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                lockstep.steps_per_execution[side] = int(self.model.steps_per_execution)
                if epoch > 0:
                    # not waited for here: the framework's backup and history.csv are written in a thread, which in a
                    # run overlaps its own next epoch (it waits at that epoch's end); here it overlaps the other
                    # side's, whose clock gets the write's few ms of CPU (its disk waits slow neither)
                    lockstep.seconds[side].append(time.perf_counter() - self.started)
                    lockstep.hand_over(side)
                    lockstep.wait(side)
                self.started = time.perf_counter()

        return TakeTurns


def framework_training(spec_file: Path, reports: Path, lockstep: Lockstep) -> None:
    """`run` on the spec, with the turn-taking callback registered as a plugin callback and added to the spec."""
    from framework.registry import registry
    from framework.spec import load_spec
    from framework.train.run import run_experiment

    registry.add("callback", "TakeTurns", lockstep.callback("framework"))
    run_experiment(load_spec(spec_file, ['train.callbacks=[{type="TakeTurns"}]']), reports)


def handwritten_training(spec_file: Path, lockstep: Lockstep) -> None:
    """The same model, data and pipeline in plain Keras: no run folder, no callbacks but the turn-taking one."""
    import keras

    from framework.data import load_splits
    from framework.data.pipeline import evaluation_dataset, training_dataset
    from framework.spec import load_spec

    spec = load_spec(spec_file).spec
    keras.utils.set_random_seed(spec.seed)  # no clear_session: the other side's model lives in this process
    splits = load_splits(spec.data, spec.seed)
    model = keras.Sequential([
        keras.Input(splits.example_shape),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=lockstep.steps_per_execution["framework"])  # what the framework's run compiled
    batch = spec.train.batch_size
    train, shuffle = training_dataset(splits.x_train, splits.y_train, batch_size=batch, data_spec=spec.data, seed=spec.seed)
    val = evaluation_dataset(splits.x_val, splits.y_val, batch_size=batch, data_spec=spec.data)
    turns = lockstep.callback("handwritten")()
    model.fit(train, validation_data=val, epochs=spec.train.epochs, callbacks=[shuffle, turns], shuffle=False, verbose=0)
    model.evaluate(evaluation_dataset(splits.x_test, splits.y_test, batch_size=batch, data_spec=spec.data), verbose=0)


def lockstep_round(spec_file: Path, reports: Path) -> dict[str, list[float]]:
    """Both trainings in this process, taking turns an epoch at a time; each side's timed epochs but the first.
    The framework runs in the main thread (it may install signal handlers) and starts first, so that its backend
    set-up (clear_session) happens before the hand-written model exists."""
    import threading

    lockstep = Lockstep("framework", "handwritten")
    errors: list[BaseException] = []

    def handwritten():
        lockstep.wait("handwritten")
        try:
            handwritten_training(spec_file, lockstep)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            lockstep.hand_over("handwritten", finished=True)

    thread = threading.Thread(target=handwritten, daemon=True)
    thread.start()
    try:
        framework_training(spec_file, reports, lockstep)
    finally:
        lockstep.hand_over("framework", finished=True)
        thread.join()
    if errors:
        raise errors[0]
    return {side: seconds[1:] for side, seconds in lockstep.seconds.items()}  # the first epoch traces


def whole_process(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, result.stdout


def lockstep_in_new_process(spec_file: Path, reports: Path) -> dict[str, list[float]]:
    """One lockstep round in a fresh process."""
    command = [sys.executable, __file__, "--child", "--spec", str(spec_file), "--reports", str(reports)]
    _, stdout = whole_process(command)
    return json.loads(stdout.strip().splitlines()[-1])


def child(spec_file: Path, reports: Path) -> None:
    from framework.quiet import import_tensorflow

    import_tensorflow()
    print(json.dumps(lockstep_round(spec_file, reports)))


def ratios(pairs: dict[str, list[float]]) -> tuple[float, float, float]:
    """Median, lowest and highest of the per-round ratios framework / hand-written."""
    each = [f / h for f, h in zip(pairs["framework"], pairs["handwritten"])]
    return statistics.median(each), min(each), max(each)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steady-only", action="store_true", help="only the steady-epoch rounds")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--reports", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.spec, args.reports)
    label, text = spec_text(args.epochs)
    work = Path(tempfile.mkdtemp(prefix="overhead-"))
    spec_file = work / "overhead.toml"
    spec_file.write_text(text)
    steady = {"framework": [], "handwritten": []}
    pair_ratios: list[float] = []  # framework epoch k / hand-written epoch k, which ran right after it
    round_ratios: list[float] = []
    for round_ in range(args.rounds):
        epochs = lockstep_in_new_process(spec_file, work / "reports")
        for name, seconds in epochs.items():
            steady[name] += seconds
        pairs = [f / h for f, h in zip(epochs["framework"], epochs["handwritten"])]
        pair_ratios += pairs
        round_ratios.append(statistics.median(pairs))
        print(f"round {round_ + 1} steady epochs: framework {statistics.median(epochs['framework']):.3f} s, hand-written "
              f"{statistics.median(epochs['handwritten']):.3f} s (medians of {len(pairs)} each); median of the epoch "
              f"pairs' ratios {round_ratios[-1]:.3f}", flush=True)
    epoch_ratio = statistics.median(pair_ratios)
    epoch_low, epoch_high = min(round_ratios), max(round_ratios)
    if args.steady_only:
        print(f"overhead_ratio={epoch_ratio:.3f} (rounds {epoch_low:.3f}-{epoch_high:.3f})")
        return None

    walls = {"framework": [], "handwritten": [], "keras_defaults": []}
    outputs = {}
    commands = {
        "framework": [sys.executable, "-m", "framework", "run", "benchmarks/digits_mlp.toml", "--reports", str(work / "wall")],
        "handwritten": [sys.executable, "benchmarks/handwritten_mlp.py", "--steps-per-execution", "<the framework's>"],
        "keras_defaults": [sys.executable, "benchmarks/handwritten_mlp.py"],
    }
    batches_per_call = None
    for round_ in range(args.rounds):
        order = list(commands)[round_ % 3:] + list(commands)[:round_ % 3]  # each side first in turn; the framework
        for name in order:  # first of all, so the hand-written side can take the value its run recorded
            if batches_per_call is None and name == "framework":
                whole_process(commands["framework"])  # not timed: the value that ran (train.steps_per_execution)
                ran = json.loads((next((work / "wall").iterdir()) / "metrics.json").read_text())
                batches_per_call = ran["steps_per_execution"]
                commands["handwritten"][-1] = str(batches_per_call)
            seconds, outputs[name] = whole_process(commands[name])
            walls[name].append(seconds)
            print(f"round {round_ + 1} {name:14s} whole process {seconds:.2f} s", flush=True)

    runs = sorted((work / "wall").iterdir())
    fw_accuracy = json.loads((runs[-1] / "metrics.json").read_text())["test_accuracy"]
    hw_accuracy = float(outputs["handwritten"].split("test_accuracy=")[1].split()[0])
    wall_ratio, wall_low, wall_high = ratios(walls)
    print()
    print(f"steady epoch ({label}, batch 128, {args.rounds} rounds of {args.epochs} epochs each, taking turns, "
          f"each round a new process):")
    print(f"  framework {statistics.median(steady['framework']):.3f} s   hand-written "
          f"{statistics.median(steady['handwritten']):.3f} s (medians of all timed epochs)   ratio {epoch_ratio:.3f} "
          f"(median of {len(pair_ratios)} epoch pairs; per round {epoch_low:.3f}-{epoch_high:.3f})")
    print(f"whole process (digits MLP 64-128-64-10, 30 epochs, batch 32; {args.rounds} rounds):")
    print(f"  framework    {statistics.median(walls['framework']):.2f} s (test accuracy {fw_accuracy:.4f})")
    print(f"  hand-written {statistics.median(walls['handwritten']):.2f} s (test accuracy {hw_accuracy:.4f}; "
          f"steps_per_execution={batches_per_call}, as the framework ran)")
    print(f"  ratio {wall_ratio:.3f} (rounds {wall_low:.3f}-{wall_high:.3f})")
    default_ratio, _, _ = ratios({"framework": walls["framework"], "handwritten": walls["keras_defaults"]})
    print(f"  hand-written with Keras's default steps_per_execution=1: {statistics.median(walls['keras_defaults']):.2f} s "
          f"(framework / it: {default_ratio:.3f})")
    print(f"whole_process_ratio={wall_ratio:.3f}")
    print(f"overhead_ratio={epoch_ratio:.3f}")


if __name__ == "__main__":
    main()
