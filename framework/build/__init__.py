"""Build stage: spec -> Keras model."""

from framework.build.model import build_model

__all__ = ["build_model"]
