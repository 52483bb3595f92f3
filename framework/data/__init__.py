"""Data stage: sources -> splits -> tf.data."""

from framework.data.splits import Splits, load_splits

__all__ = ["Splits", "load_splits"]
