"""The benchmark MLP written by hand in plain Keras, as a user would without the framework.

    python benchmarks/handwritten_mlp.py [--epochs 30] [--batch-size 32] [--steps-per-execution 1]

The job of the Ludwig comparison: scikit-learn digits scaled to 0..1, a 64 -> 128 -> 64 -> 10 MLP, Adam,
the same seeded 80/20 split the framework uses. Prints test accuracy and the whole-process wall time.
``--steps-per-execution``: Keras's compile argument; 1 (Keras's default) as a user would write it, or the value the
framework's run used (benchmarks/overhead.py passes it) for a comparison at the same settings.
"""

from __future__ import annotations

import argparse
import os
import time

START = time.perf_counter()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps-per-execution", type=int, default=1)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(x, digits.target, test_size=0.2, random_state=0, stratify=digits.target)
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"], steps_per_execution=args.steps_per_execution)
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=0)
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    print(f"test_accuracy={accuracy:.4f} wall_seconds={time.perf_counter() - START:.2f}")


if __name__ == "__main__":
    main()
