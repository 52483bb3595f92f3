"""numpy arrays -> tf.data pipelines.

Training batches follow a seeded permutation that is a function of the epoch
number alone (not of how many epochs this process has run), so a resumed run
sees exactly the order an uninterrupted run would. Augmentation is mapped over
training batches only.
"""

from __future__ import annotations


def epoch_callback(epoch_variable):
    import keras

    class EpochShuffle(keras.callbacks.Callback):
        """Tells the training pipeline which epoch's permutation to draw."""

        def on_epoch_begin(self, epoch, logs=None):
            epoch_variable.assign(epoch)

    return EpochShuffle()


def map_stateful(ds, function):
    """``ds.map(function)`` for a function with state (variable reads, random augmentation layers), elements in order:
    in parallel, except under TensorFlow's deterministic ops, where tf.data runs such a function one element at a
    time anyway, and its rewrite of a parallel map logs an error line (TensorFlow 2.21) in every run's output."""
    import tensorflow as tf

    from framework.compat import op_determinism

    if op_determinism():
        return ds.map(function)
    return ds.map(function, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def training_dataset(x, y, *, batch_size: int, data_spec, seed, augment=None):
    """Returns (dataset, callback): the callback must be passed to fit() so each epoch draws its own order.

    ``seed``: an int, or an int64 tf.Variable (DP runs keep their batch order secret and in the checkpoint).
    """
    import tensorflow as tf

    count = len(next(iter(y.values()))) if isinstance(y, dict) else len(y)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    features, targets = tf.nest.map_structure(tf.constant, x), tf.nest.map_structure(tf.constant, y)

    def order(_):
        if not data_spec.shuffle:
            return tf.data.Dataset.range(count)
        keys = tf.random.stateless_uniform([count], seed=tf.stack([tf.cast(seed, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(tf.argsort(keys))

    ds = tf.data.Dataset.from_tensors(0).flat_map(order).batch(batch_size)
    # flat_map hides the length; Keras needs it to end epochs without a warning
    ds = ds.apply(tf.data.experimental.assert_cardinality(-(-count // batch_size)))
    ds = ds.map(lambda idx: tf.nest.map_structure(lambda t: tf.gather(t, idx), (features, targets)))
    if augment is not None:
        ds = map_stateful(ds, augment)
    if data_spec.prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds, epoch_callback(epoch)


def evaluation_dataset(x, y, *, batch_size: int, data_spec):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if data_spec.cache:
        ds = ds.cache()
    ds = ds.batch(batch_size)
    if data_spec.prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds
