"""Poisson-sampled training batches of fixed size: each example joins each step's batch with
probability q = batch_size / N; batches are padded to one size (weight 0 on padding) so XLA
compiles once. The draw depends only on (seed, epoch, step), so resumed runs see the same batches.
"""

from __future__ import annotations

import math


def padded_size(batch_size: int) -> int:
    """Six standard deviations above the expected size: a larger draw is truncated (p < 1e-8)."""
    return batch_size + math.ceil(6 * math.sqrt(batch_size)) + 1


def poisson_dataset(x, y, *, batch_size: int, seed: int, steps_per_epoch: int, augment=None, prefetch: bool = True):
    """Returns (dataset of (x, y, weight) batches, callback to pass to fit)."""
    import tensorflow as tf

    from framework.data.pipeline import _epoch_callback

    count = len(y)
    rate = batch_size / count
    size = padded_size(batch_size)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    features, targets = tf.constant(x), tf.constant(y)

    def batch(step):
        draw = tf.random.stateless_uniform([count], seed=tf.stack([tf.constant(seed, tf.int64), epoch * steps_per_epoch + step]))
        chosen = tf.where(draw < rate)[:size, 0]
        padding = size - tf.shape(chosen)[0]
        index = tf.pad(chosen, [[0, padding]])
        weight = tf.pad(tf.ones_like(chosen, dtype=tf.float32), [[0, padding]])
        return tf.gather(features, index), tf.gather(targets, index), weight

    ds = tf.data.Dataset.range(steps_per_epoch).map(batch)
    if augment is not None:
        ds = ds.map(lambda xb, yb, wb: (*augment(xb, yb), wb), num_parallel_calls=tf.data.AUTOTUNE)
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds, _epoch_callback(epoch)
