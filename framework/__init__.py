"""Declarative deep-learning experiments on Keras 3.

A spec (TOML, JSON or a dict) flows one way through the package:
``spec`` (load, validate) -> ``data`` (sources, splits, tf.data) -> ``build``
(Keras model) -> ``train`` (the engine: fit, checkpoints, DP step) -> ``reports`` (run folder, tables).

The Python API mirrors the CLI::

    import framework
    r = framework.run("specs/quickstart.toml", overrides=["train.epochs=5"])
    r.metrics["test_accuracy"], r.history, r.model
    framework.load("reports")          # one row per run

Importing this package does not import TensorFlow.
"""

__version__ = "0.1.0"

from framework.api import Run, check, load, open_run, run, sample, tune  # noqa: E402  (api imports TensorFlow lazily)

__all__ = ["Run", "__version__", "check", "load", "open_run", "run", "sample", "tune"]
