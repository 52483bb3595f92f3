"""A (conditional) variational autoencoder whose ``train_step`` maximises the ELBO (Kingma & Welling, 2014).

Per example: ``reconstruction = -log p(x | z, y)`` summed over the example's values (Bernoulli: binary
cross-entropy; Gaussian with unit variance: half the squared error), ``kl = KL(q(z | x, y) || N(0, I))``,
``loss = reconstruction + beta * kl`` and ``elbo = -(reconstruction + kl)`` in nats. All four are logged per epoch
(history.csv), and ``evaluate`` gives ``test_elbo``.

    >>> vae = VAE(encoder, decoder, latent_dim=16, classes=10, conditional=True, beta=1.0, reconstruction="bce", seed=0)
    >>> vae.compile(optimizer="adam"); vae.fit(dataset_of_x_and_labels)
"""

from __future__ import annotations

import keras
import tensorflow as tf  # the TensorFlow backend: train_step takes its gradients with a tape
from keras import ops

from framework.build.generative_model import GenerativeModel


def elbo_terms(x, out, mean, log_var, reconstruction: str):
    """(-log p(x | z), KL(q(z | x) || N(0, I))) per example, summed over each example's values; ``reconstruction``
    "bce" (Bernoulli) or "mse" (Gaussian with unit variance: half the squared error)."""
    x = ops.cast(x, out.dtype)
    if reconstruction == "bce":
        clipped = ops.clip(out, 1e-7, 1 - 1e-7)
        rows = -(x * ops.log(clipped) + (1 - x) * ops.log(1 - clipped))
    else:
        rows = 0.5 * ops.square(x - out)
    rows = ops.sum(ops.reshape(rows, (ops.shape(rows)[0], -1)), axis=1)
    kl = -0.5 * ops.sum(1 + log_var - ops.square(mean) - ops.exp(log_var), axis=1)
    return rows, kl


class VAE(GenerativeModel):
    kind, sampler = "vae", "decoder"

    def __init__(self, encoder, decoder, *, beta: float, reconstruction: str, **kwargs):
        super().__init__(metric_names=("loss", "reconstruction", "kl", "elbo"), **kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.beta, self.reconstruction = float(beta), reconstruction
        self.built = True

    def call(self, inputs, training=False):
        x, labels = inputs
        return self.terms(x, labels, training)[2]

    def terms(self, x, labels, training):
        """(reconstruction, kl) per example, and the reconstructions."""
        one_hot = ops.one_hot(ops.cast(labels, "int32"), self.classes)
        stats = self.encoder([x, one_hot], training=training)
        mean, log_var = stats[:, : self.latent_dim], stats[:, self.latent_dim :]
        noise = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        z = mean + ops.exp(0.5 * log_var) * noise
        out = self.decoder([z, one_hot], training=training)
        reconstruction, kl = elbo_terms(x, out, mean, log_var, self.reconstruction)
        return reconstruction, kl, out

    def per_example_loss(self, x, labels, training=True):
        reconstruction, kl, _ = self.terms(x, labels, training)
        return reconstruction + self.beta * kl, reconstruction, kl

    def membership_losses(self, x, labels, batch_size: int = 256):
        """The negative ELBO per example: the membership audit's loss (privacy/audit.py)."""
        from framework.build.generative import batched_rows

        def rows(xb, yb):
            reconstruction, kl, _ = self.terms(xb, yb, False)
            return reconstruction + kl

        return batched_rows(rows, x, labels, batch_size)

    def _record(self, loss_rows, reconstruction, kl, weights):
        for tracker, value in zip(self.trackers, (loss_rows, reconstruction, kl, -(reconstruction + kl))):
            tracker.update_state(value, sample_weight=weights)
        return {t.name: t.result() for t in self.trackers}

    def train_step(self, data):
        x, labels, weights, _ = self.read_batch(data)
        with tf.GradientTape() as tape:
            rows, reconstruction, kl = self.per_example_loss(x, labels)
            loss = ops.sum(rows * weights) / ops.maximum(ops.sum(weights), 1.0)
            if self.losses:
                loss = loss + ops.sum(self.losses)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return self._record(rows, reconstruction, kl, weights)

    def test_step(self, data):
        x, labels, weights, _ = self.read_batch(data)
        rows, reconstruction, kl = self.per_example_loss(x, labels, training=False)
        return self._record(rows, reconstruction, kl, weights)
