"""numpy arrays -> tf.data pipelines: shuffle, batch, cache, prefetch."""

from __future__ import annotations

import numpy as np


def make_dataset(x, y, *, batch_size: int, data_spec, seed: int, training: bool):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if data_spec.cache:
        ds = ds.cache()
    if training and data_spec.shuffle:
        buffer = data_spec.shuffle_buffer or len(np.asarray(x) if not isinstance(x, dict) else next(iter(x.values())))
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if data_spec.prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds
