"""The DP-SGD training step (Keras 3, TensorFlow backend).

For each batch: per-example gradients, computed vectorized (``tf.vectorized_map``,
not a Python loop); each clipped to ``l2_norm_clip`` by its global norm; summed;
Gaussian noise with std ``noise_multiplier * l2_norm_clip`` added once; divided
by the expected batch size; applied by the spec's optimizer. Padding rows of a
Poisson batch carry weight 0 and contribute nothing. Regularization losses do
not depend on the data, so their gradient is added outside the clipped sum.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class DPSGDModel(keras.Model):
    """A functional model whose ``train_step`` is DP-SGD; build with ``DPSGDModel(inputs, outputs)``."""

    def configure_privacy(self, *, l2_norm_clip: float, noise_multiplier: float, expected_batch_size: float, loss, seed: int):
        self.l2_norm_clip = float(l2_norm_clip)
        self.noise_multiplier = float(noise_multiplier)
        self.expected_batch_size = float(expected_batch_size)
        self.per_example_loss = loss
        self.noise_seed = keras.random.SeedGenerator(seed)

    def clipped_gradient_sum(self, x, y, weights):
        """Sum over the batch of each example's gradient clipped to l2_norm_clip, and the predictions."""
        variables = self.trainable_variables

        def one_example(example):
            xi, yi = example
            with tf.GradientTape() as tape:
                prediction = self(tf.nest.map_structure(lambda t: tf.expand_dims(t, 0), xi), training=True)
                loss = self.per_example_loss(tf.expand_dims(yi, 0), prediction)
            return tape.gradient(loss, variables), prediction[0]

        per_example, predictions = tf.vectorized_map(one_example, (x, y))
        squared = [tf.reduce_sum(tf.reshape(tf.square(g), [tf.shape(g)[0], -1]), axis=1) for g in per_example]
        norms = tf.sqrt(tf.add_n(squared))
        factors = tf.minimum(1.0, self.l2_norm_clip / (norms + 1e-12)) * tf.cast(weights, norms.dtype)
        summed = [tf.tensordot(factors, g, axes=1) for g in per_example]
        return summed, predictions

    def train_step(self, data):
        x, y, weights = keras.utils.unpack_x_y_sample_weight(data)
        if weights is None:
            weights = tf.ones(tf.shape(y)[:1])
        summed, predictions = self.clipped_gradient_sum(x, y, weights)
        std = self.noise_multiplier * self.l2_norm_clip
        noisy = [
            (g + keras.random.normal(tf.shape(g), stddev=std, dtype=g.dtype, seed=self.noise_seed)) / self.expected_batch_size
            for g in summed
        ]
        if self.losses:  # data-independent penalties: exact gradient, outside the clipped sum
            with tf.GradientTape() as tape:
                penalty = tf.add_n(self.losses)
            noisy = [n + g if g is not None else n for n, g in zip(noisy, tape.gradient(penalty, self.trainable_variables))]
        self.optimizer.apply(noisy, self.trainable_variables)
        loss = self.compute_loss(x=x, y=y, y_pred=predictions, sample_weight=weights)
        self._loss_tracker.update_state(loss, sample_weight=tf.reduce_sum(weights))  # what Keras's own step logs
        return self.compute_metrics(x, y, predictions, sample_weight=weights)
