"""A (conditional) GAN whose ``train_step`` makes ``discriminator_steps`` discriminator updates, then one generator
update (Goodfellow et al., 2014; conditional: Mirza & Osindero, 2014).

Losses on the discriminator's logits ``r`` (real) and ``f`` (generated, for the real batch's labels):

- ``bce`` (non-saturating): ``d_loss = softplus(-r) + softplus(f)``, ``g_loss = softplus(-f)``;
- ``hinge``: ``d_loss = relu(1 - r) + relu(1 + f)``, ``g_loss = -f``.

The compiled optimizer trains the discriminator, ``generator_optimizer`` (same type, its own state) the
generator; both are in the checkpoint. Logged per epoch: ``d_loss``, ``g_loss`` and ``loss`` (their sum, which the
non-finite stop watches).

    >>> gan = GAN(generator, discriminator, latent_dim=32, classes=10, conditional=True, loss="bce",
    ...           discriminator_steps=1, seed=0)
    >>> gan.compile(optimizer=keras.optimizers.Adam(2e-4), generator_optimizer=keras.optimizers.Adam(2e-4))
"""

from __future__ import annotations

import keras
import tensorflow as tf  # the TensorFlow backend: train_step takes its gradients with a tape
from keras import ops

from framework.build.generative_model import GenerativeModel
from framework.compat import loss_tracker


class GAN(GenerativeModel):
    kind, sampler = "gan", "generator"

    def __init__(self, generator, discriminator, *, loss: str, discriminator_steps: int, **kwargs):
        super().__init__(metric_names=("loss", "d_loss", "g_loss"), **kwargs)
        self.generator, self.discriminator = generator, discriminator
        self.adversarial_loss, self.discriminator_steps = loss, int(discriminator_steps)
        self.built = True

    private = None  # with [privacy]: the DP-SGD model of the discriminator's (real, fake) pairs

    def make_private(self, pair_model, expected_batch_size: int):
        """Train the discriminator with ``pair_model``'s DP-SGD step (privacy/generative.py)."""
        self.private, self.expected_batch_size = pair_model, int(expected_batch_size)

    def dp_state_variables(self) -> list:
        return self.private.dp_state_variables() if self.private is not None else []

    @property
    def clipping(self):
        return self.private.clipping

    def compile(self, *, optimizer, generator_optimizer, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        self.generator_optimizer = generator_optimizer
        # each optimizer holds state for its own network only, created now so a checkpoint can restore it
        self.optimizer.build(self.discriminator.trainable_variables)
        self.generator_optimizer.build(self.generator.trainable_variables)

    def generative_state_variables(self) -> list:
        """The generator's optimizer state (the discriminator's is ``self.optimizer``'s)."""
        return list(self.generator_optimizer.variables)

    def call(self, inputs, training=False):
        z, one_hot = inputs
        return self.generator([z, one_hot], training=training)

    def _fakes(self, one_hot, training):
        z = keras.random.normal((ops.shape(one_hot)[0], self.latent_dim), seed=self.seed_generator)
        return self.generator([z, one_hot], training=training)

    def discriminator_rows(self, real_logits, fake_logits):
        """The discriminator's loss per example (real example i and the fake made for its label)."""
        if self.adversarial_loss == "hinge":
            return ops.relu(1.0 - real_logits[:, 0]) + ops.relu(1.0 + fake_logits[:, 0])
        return ops.softplus(-real_logits[:, 0]) + ops.softplus(fake_logits[:, 0])

    def generator_rows(self, fake_logits):
        if self.adversarial_loss == "hinge":
            return -fake_logits[:, 0]
        return ops.softplus(-fake_logits[:, 0])

    def discriminator_update(self, x, one_hot, weights):
        """One discriminator step; returns its loss."""
        fakes = self._fakes(one_hot, training=True)
        if self.private is not None:  # each (real, fake) pair clipped as one example, then noise
            self.private.train_step(([x, fakes, one_hot], ops.zeros_like(weights), weights))
            return loss_tracker(self.private).result()
        with tf.GradientTape() as tape:
            rows = self.discriminator_rows(self.discriminator([x, one_hot], training=True),
                                           self.discriminator([fakes, one_hot], training=True))
            loss = _mean(rows, weights)
            if self.discriminator.losses:
                loss = loss + ops.sum(self.discriminator.losses)
        variables = self.discriminator.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    def train_step(self, data):
        x, _, weights, one_hot = self.read_batch(data)
        for _ in range(self.discriminator_steps):
            d_loss = self.discriminator_update(x, one_hot, weights)
        if self.private is not None:  # public labels and batch size: the private batch's stay out of the generator
            labels = keras.random.randint((self.expected_batch_size,), 0, self.classes, seed=self.seed_generator)
            one_hot = ops.one_hot(labels, self.classes)
            weights = ops.ones((self.expected_batch_size,))
        with tf.GradientTape() as tape:
            fake_logits = self.discriminator([self._fakes(one_hot, training=True), one_hot], training=True)
            g_loss = _mean(self.generator_rows(fake_logits), weights)
            if self.generator.losses:
                g_loss = g_loss + ops.sum(self.generator.losses)
        variables = self.generator.trainable_variables
        self.generator_optimizer.apply(tape.gradient(g_loss, variables), variables)
        return self._record(d_loss, g_loss)

    def test_step(self, data):
        x, _, weights, one_hot = self.read_batch(data)
        fake_logits = self.discriminator([self._fakes(one_hot, training=False), one_hot], training=False)
        real_logits = self.discriminator([x, one_hot], training=False)
        d_loss = _mean(self.discriminator_rows(real_logits, fake_logits), weights)
        return self._record(d_loss, _mean(self.generator_rows(fake_logits), weights))

    def membership_losses(self, x, labels, batch_size: int = 256):
        """The discriminator's loss on each real example: the membership audit's loss (privacy/audit.py)."""
        from framework.build.generative import batched_rows

        def rows(xb, yb):
            logits = self.discriminator([xb, ops.one_hot(ops.cast(yb, "int32"), self.classes)], training=False)
            return ops.relu(1.0 - logits[:, 0]) if self.adversarial_loss == "hinge" else ops.softplus(-logits[:, 0])

        return batched_rows(rows, x, labels, batch_size)

    def _record(self, d_loss, g_loss):
        for tracker, value in zip(self.trackers, (d_loss + g_loss, d_loss, g_loss)):
            tracker.update_state(value)
        return {t.name: t.result() for t in self.trackers}


def _mean(rows, weights):
    return ops.sum(rows * weights) / ops.maximum(ops.sum(weights), 1.0)
