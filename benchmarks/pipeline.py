"""The input pipeline alone against the training step: the pipeline must not be the bottleneck.

    python benchmarks/pipeline.py [--epochs 3]

Examples per second through the framework's training tf.data pipeline (seeded per-epoch permutation,
gather, prefetch) with nothing consuming but iteration, against the examples per second of training the
MNIST MLP (or the digits MLP without ../shared/data) on that pipeline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    from framework.quiet import import_tensorflow

    import_tensorflow()
    from overhead import framework_epochs, spec_text

    from framework.data import load_splits
    from framework.data.pipeline import training_dataset
    from framework.spec import load_spec

    label, text = spec_text(args.epochs + 1)
    work = Path(tempfile.mkdtemp(prefix="pipeline-"))
    spec_file = work / "spec.toml"
    spec_file.write_text(text)
    spec = load_spec(spec_file).spec
    splits = load_splits(spec.data, spec.seed)
    dataset, shuffle = training_dataset(splits.x_train, splits.y_train, batch_size=spec.train.batch_size,
                                        data_spec=spec.data, seed=spec.seed)
    rates = []
    for epoch in range(args.epochs + 1):
        shuffle.on_epoch_begin(epoch)
        start = time.perf_counter()
        count = sum(int(x.shape[0]) for x, _ in dataset)
        rates.append(count / (time.perf_counter() - start))
    pipeline = statistics.median(rates[1:])
    _, steady_epoch = framework_epochs(spec_file, work / "reports")
    training = splits.train_size / steady_epoch
    print(f"{label}, batch {spec.train.batch_size}, {splits.train_size} training examples")
    print(f"| path | examples/s |\n|---|---|\n| tf.data pipeline alone | {pipeline:,.0f} |\n"
          f"| training (pipeline + step + validation) | {training:,.0f} |")
    print(f"pipeline_headroom={pipeline / training:.1f}x")


if __name__ == "__main__":
    main()
