"""Spec stage: load a TOML/JSON file, apply overrides, validate against the schema."""

from framework.spec.load import LoadedSpec, load_spec
from framework.spec.schema import Spec

__all__ = ["LoadedSpec", "Spec", "load_spec"]
