"""Data stage: sources -> splits -> tf.data."""

__all__ = ["Splits", "load_splits"]


def __getattr__(name: str):
    # splits (numpy, pandas) load on first use, so that validating a spec, which looks data sources up, stays light
    if name in __all__:
        from framework.data import splits

        return getattr(splits, name)
    raise AttributeError(f"module 'framework.data' has no attribute {name!r}")
