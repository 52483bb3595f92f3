"""The framework against Ludwig on the same job, whole process, timed from the outside as overhead.py does.

The job (benchmarks/digits_mlp.toml): scikit-learn digits scaled to 0..1 (x 0.0625), the framework's split
(test_split 0.2, stratified, sklearn train_test_split with random_state = the spec's seed 0; no validation
split), a 64 -> 128 -> 64 -> 10 relu MLP with a softmax output, Adam lr 1e-3, 30 epochs, batch 32, on CPU.
In Ludwig: 64 number inputs (passthrough, no normalization), a concat combiner with fully connected layers of
128 and 64 relu units, a category output (its classifier: one linear layer and softmax), no early stopping, no
per-epoch evaluation, nothing saved; then it predicts the test rows once.

Ludwig needs Python >= 3.12, so it lives in its own venv outside the repository:

    ~/.pyenv/versions/3.12.1/bin/python -m venv /work/ludwig-venv
    /work/ludwig-venv/bin/pip install torch   # the CPU index (--index-url https://download.pytorch.org/whl/cpu) if reachable
    /work/ludwig-venv/bin/pip install "ludwig==0.17.*"

Run (each round runs the framework and Ludwig jobs back to back as subprocesses, in alternating order):

    /work/ludwig-venv/bin/python benchmarks/ludwig_digits.py --rounds 3 --framework-python .venv/bin/python

Prints each run's wall time, the medians and ranges, both test accuracies, and last ludwig_ratio=<framework
median / Ludwig median>. `--job` runs the Ludwig job once in this process (what each round times).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START = time.perf_counter()

ROOT = Path(__file__).resolve().parents[1]
INSTALL = __doc__.split("own venv outside the repository:\n\n")[1].split("\n\n")[0]
SEED = 0


def ludwig_job() -> None:
    """Train and test the job in Ludwig in this process; print test accuracy and the seconds spent importing."""
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    # PyTorch's OpenMP threads busy-wait; on a machine whose cores are busy with other work that makes each tiny
    # step ~100x slower (measured here). Passive waiting removes that artefact and does not limit the threads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import logging

    import pandas as pd
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    started = time.perf_counter()
    from ludwig.api import LudwigModel

    import_seconds = time.perf_counter() - started
    digits = load_digits()
    x = (digits.data * 0.0625).astype("float32")
    columns = [f"p{i}" for i in range(64)]
    frame = pd.DataFrame(x, columns=columns).assign(label=digits.target.astype(str))
    # The framework's split (framework/data/splits.py: _split): the same call, seed and stratification.
    train, test = train_test_split(range(len(frame)), test_size=0.2, random_state=SEED, stratify=digits.target)
    config = {
        "input_features": [{"name": c, "type": "number", "preprocessing": {"normalization": None}} for c in columns],
        "output_features": [{"name": "label", "type": "category"}],
        "combiner": {"type": "concat", "fc_layers": [{"output_size": 128}, {"output_size": 64}], "activation": "relu"},
        "trainer": {
            "epochs": 30, "batch_size": 32, "learning_rate": 0.001,
            "optimizer": {"type": "adam", "eps": 1e-7},  # Keras's Adam epsilon (Ludwig's default is 1e-8)
            "gradient_clipping": {"clipglobalnorm": None},  # Ludwig clips to global norm 0.5 by default; Keras not
            "early_stop": -1, "evaluate_training_set": False, "skip_all_evaluation": True,
        },
    }
    model = LudwigModel(config, logging_level=logging.ERROR, backend="local")
    with tempfile.TemporaryDirectory() as out:
        model.train(
            training_set=frame.iloc[train], output_directory=out, random_seed=SEED,
            skip_save_training_description=True, skip_save_training_statistics=True, skip_save_model=True,
            skip_save_progress=True, skip_save_log=True, skip_save_processed_input=True,
        )
        predictions, _ = model.predict(frame.iloc[test], output_directory=out,
                                       skip_save_predictions=True, skip_save_unprocessed_output=True)
    # The fraction right, as Keras's accuracy (Ludwig's evaluate() reports its own "accuracy", which differs).
    accuracy = (predictions["label_predictions"].astype(str).to_numpy() == frame["label"].iloc[test].to_numpy()).mean()
    print(f"test_accuracy={accuracy:.4f} import_seconds={import_seconds:.2f} "
          f"wall_seconds={time.perf_counter() - START:.2f}")


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--framework-python", default=str(ROOT / ".venv" / "bin" / "python"))
    parser.add_argument("--job", action="store_true", help="run the Ludwig job once, in this process")
    args = parser.parse_args()
    if importlib.util.find_spec("ludwig") is None:
        print(f"skipped: Ludwig is not installed for {sys.executable}. Install it with\n\n{INSTALL}\n\n"
              f"and run this script with /work/ludwig-venv/bin/python.")
        return
    if args.job:
        ludwig_job()
        return
    reports = Path(tempfile.mkdtemp(prefix="ludwig-digits-"))
    commands = {
        "framework": [args.framework_python, "-m", "framework", "run", "benchmarks/digits_mlp.toml", "--reports", str(reports)],
        "ludwig": [sys.executable, __file__, "--job"],
    }
    walls = {"framework": [], "ludwig": []}
    outputs = {}
    for round_ in range(args.rounds):
        for name in ("framework", "ludwig") if round_ % 2 == 0 else ("ludwig", "framework"):
            seconds, outputs[name] = timed(commands[name])
            walls[name].append(seconds)
            print(f"round {round_ + 1} {name:9s} whole process {seconds:.2f} s", flush=True)
    fw_accuracy = json.loads((max(reports.iterdir()) / "metrics.json").read_text())["test_accuracy"]
    ludwig = dict(item.split("=") for item in outputs["ludwig"].splitlines()[-1].split())  # its last line
    each = [f / lw for f, lw in zip(walls["framework"], walls["ludwig"])]
    medians = {name: statistics.median(values) for name, values in walls.items()}
    print(f"\nwhole process (digits MLP 64-128-64-10, 30 epochs, batch 32, CPU; {args.rounds} rounds):")
    print(f"  framework {medians['framework']:.2f} s (range {min(walls['framework']):.2f}-{max(walls['framework']):.2f}) "
          f"test accuracy {fw_accuracy:.4f}")
    print(f"  ludwig    {medians['ludwig']:.2f} s (range {min(walls['ludwig']):.2f}-{max(walls['ludwig']):.2f}) "
          f"test accuracy {float(ludwig['test_accuracy']):.4f} (importing Ludwig {ludwig['import_seconds']} s, last run)")
    print(f"  per-round ratio framework/ludwig: median {statistics.median(each):.3f} (rounds {min(each):.3f}-{max(each):.3f})")
    print(f"ludwig_ratio={medians['framework'] / medians['ludwig']:.3f}")


if __name__ == "__main__":
    main()
