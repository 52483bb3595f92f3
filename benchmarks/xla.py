"""XLA on against off, per model family, and what train.jit_compile = "auto" picks here.

    python benchmarks/xla.py [--epochs 4] [--only MNIST]

Each family's example spec runs with jit_compile = true and = false (deterministic ops off for both, since
Keras runs no XLA with them), a few epochs; the figure is training examples per second over the steady
epochs (the first, which traces and compiles, is left out).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
MNIST = ROOT.parent / "shared" / "data" / "mnist.npz"

FAMILIES = {
    "MLP (digits)": ("benchmarks/digits_mlp.toml", []),
    "MLP (MNIST, batch 128)": ("benchmarks/mnist_mlp.toml", [f"data.source=npz:{MNIST}"] if MNIST.exists() else []),
    "CNN (quickstart, digits)": ("specs/quickstart.toml", []),
    "GRU (sunspots windows)": ("specs/sunspots_gru.toml", ["regularization.early_stopping.patience=1000"]),
    "Transformer (movie sample)": ("specs/movie_transformer.toml", ["regularization.early_stopping.patience=1000"]),
    "Seq2seq GRU (number words)": ("specs/number_words_seq2seq.toml", ["data.train_limit=2000"]),
}


def examples_per_second(spec: str, overrides: list[str], xla: bool, epochs: int, reports: Path) -> tuple[float, bool]:
    import pandas as pd

    from framework.spec import load_spec
    from framework.train.run import run_experiment

    loaded = load_spec(ROOT / spec, [*overrides, f"train.epochs={epochs}", "train.verbose=0",
                                     f"train.jit_compile={'true' if xla else 'false'}", "train.deterministic=false"])
    folder = run_experiment(loaded, reports).folder.path
    metrics = json.loads((folder / "metrics.json").read_text())
    seconds = statistics.median(pd.read_csv(folder / "history.csv")["epoch_seconds"][1:])
    return metrics["train_examples"] / seconds, metrics["jit_compile"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--only", help="run only the families whose name contains this")
    args = parser.parse_args()
    from framework.quiet import import_tensorflow

    tf = import_tensorflow()
    from framework.spec import load_spec
    from framework.train.prepare import build_and_compile, setup_backend

    auto_spec = load_spec(ROOT / "specs/quickstart.toml").spec
    setup_backend(auto_spec)
    auto_xla = bool(build_and_compile(auto_spec, None, 1).model.jit_compile)
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    reports = Path(tempfile.mkdtemp(prefix="xla-"))
    print(f"device: {device}; jit_compile = \"auto\" resolves to XLA {'on' if auto_xla else 'off'}")
    print("| family | XLA off (examples/s) | XLA on (examples/s) | on / off | faster |")
    print("|---|---|---|---|---|")
    for name, (spec, overrides) in FAMILIES.items():
        if args.only and args.only not in name:
            continue
        off, _ = examples_per_second(spec, overrides, False, args.epochs, reports)
        on, ran = examples_per_second(spec, overrides, True, args.epochs, reports)
        print(f"| {name} | {off:,.0f} | {on:,.0f}{'' if ran else ' (did not run XLA)'} | {on / off:.2f} | "
              f"{'XLA' if on > off else 'graph mode'} |", flush=True)


if __name__ == "__main__":
    main()
