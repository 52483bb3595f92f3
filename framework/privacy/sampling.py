"""Poisson-sampled training batches: each example joins each step's batch with probability
q = batch_size / N, independently, as the accounting assumes.

A draw is never cut short: its size varies from step to step, and a batch is padded only up to the next
multiple of a small bucket (weight 0 on padding rows), so the few shapes that occur compile once each and
padding wastes at most ``bucket - 1`` rows. The draw depends only on (sampling seed, step), so a resumed run
sees the batches the uninterrupted run would have; the sampling seed is secret (see randomness.py) and is
a variable, so the checkpoint carries it.
"""

from __future__ import annotations


def bucket_size(batch_size: int) -> int:
    """Rows a batch is padded up to a multiple of: a few shapes, little padding."""
    return max(1, min(8, batch_size // 8))


def poisson_dataset(x, y, *, batch_size: int, seed_variable, steps_per_epoch: int, augment=None, prefetch: bool = True):
    """Returns (dataset of (x, y, weight) batches, callback to pass to fit).

    ``seed_variable``: an int64 tf.Variable holding the sampling seed.
    """
    import tensorflow as tf

    from framework.data.pipeline import epoch_callback, map_stateful

    count = len(y)
    rate = batch_size / count
    bucket = bucket_size(batch_size)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    features, targets = tf.constant(x), tf.constant(y)

    def batch(step):
        draw = tf.random.stateless_uniform([count], seed=tf.stack([seed_variable, epoch * steps_per_epoch + step]))
        chosen = tf.where(draw < rate)[:, 0]
        drawn = tf.shape(chosen, out_type=tf.int64)[0]
        size = tf.maximum(tf.constant(bucket, tf.int64), (drawn + bucket - 1) // bucket * bucket)
        padding = size - drawn
        index = tf.pad(chosen, [[0, padding]])
        weight = tf.pad(tf.ones_like(chosen, dtype=tf.float32), [[0, padding]])
        return tf.gather(features, index), tf.gather(targets, index), weight

    ds = map_stateful(tf.data.Dataset.range(steps_per_epoch), batch)  # batch() reads the seed and epoch variables
    if augment is not None:
        ds = map_stateful(ds, lambda xb, yb, wb: (*augment(xb, yb), wb))
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds, epoch_callback(epoch)
