"""Declarative deep-learning experiments on Keras 3.

A spec file (TOML or JSON) flows one way through the package:
``spec`` (load, validate) -> ``data`` (sources, splits, tf.data) -> ``build``
(Keras model) -> ``train`` (fit, evaluate) -> ``reports`` (run folder, tables).

Importing this package does not import TensorFlow.
"""

__version__ = "0.1.0"
