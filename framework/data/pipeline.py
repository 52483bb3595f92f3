"""numpy arrays -> tf.data pipelines: shuffle, batch, augment (training only), cache, prefetch."""

from __future__ import annotations


def make_dataset(x, y, *, batch_size: int, data_spec, seed: int, training: bool, augment=None):
    """A batched dataset. ``augment(x, y) -> (x, y)`` runs on training batches, after the cache."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if data_spec.cache:
        ds = ds.cache()
    if training and data_spec.shuffle:
        ds = ds.shuffle(data_spec.shuffle_buffer or len(y), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if training and augment is not None:
        ds = ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if data_spec.prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds
