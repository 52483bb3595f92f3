"""DP-SGD for generative models: the networks that see real examples train with the DP step of privacy/step.py.

- **VAE**: encoder and decoder both see the real example, so the whole VAE is one ``DPSGDModel`` whose per-example
  loss is the negative ELBO; the reparameterisation noise is drawn for the batch before the per-example gradients
  (an input of the model), so each example's gradient is a function of that example alone.
- **GAN**: the discriminator sees real examples; each real example and the fake made for its label form one pair
  whose discriminator loss is clipped as one example (a ``DPSGDModel`` over the pair). The generator sees only the
  discriminator's output, so its updates are post-processing; it draws its labels uniformly at random and uses the
  expected batch size, so neither the private labels nor the Poisson batch's size reach it.

Accounting, Poisson sampling and the secret noise seeds are the classifier's (privacy/plan.py, sampling.py,
randomness.py): one private step per batch, so ``model.optimizer.iterations`` counts the accountant's steps.

    >>> vae = private_vae(spec, example_shape=(28, 28, 1), classes=10, latent_dim=16, ...)
    >>> vae.configure_privacy(l2_norm_clip=1.0, noise_multiplier=1.1, expected_batch_size=256, loss=vae.row_loss, ...)
"""

from __future__ import annotations

import keras
from keras import ops

from framework.compat import loss_tracker
from framework.privacy.step import DPSGDModel


def vae_rows(x_flat, packed, latent_dim: int, reconstruction: str, beta: float = 1.0):
    """(loss, reconstruction, kl) per example from ``packed = [reconstruction values, mean, log_var]``."""
    from framework.build.vae import elbo_terms

    size = ops.shape(x_flat)[1]
    out, mean = packed[:, :size], packed[:, size : size + latent_dim]
    log_var = packed[:, size + latent_dim :]
    rows, kl = elbo_terms(x_flat, out, mean, log_var, reconstruction)
    return rows + beta * kl, rows, kl


class PrivateVAE(DPSGDModel):
    """A VAE as one functional DP-SGD model: ``[x, one_hot, noise] -> [reconstruction, mean, log_var]``."""

    kind = "vae"

    def setup(self, *, decoder, latent_dim: int, classes: int, conditional: bool, beta: float, reconstruction: str,
              seed: int):
        self.decoder = decoder
        self.latent_dim, self.classes, self.conditional = latent_dim, classes, conditional
        self.beta, self.reconstruction = float(beta), reconstruction
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = [keras.metrics.Mean(name=n) for n in ("reconstruction", "kl", "elbo")]

    def row_loss(self, x_flat, packed):
        return vae_rows(x_flat, packed, self.latent_dim, self.reconstruction, self.beta)[0]

    @property
    def generator_network(self):
        return self.decoder.get()

    @property
    def metrics(self):
        return [loss_tracker(self), *self.trackers]

    def batch_inputs(self, x, labels):
        """The model's inputs for a batch: [x, one-hot labels, the reparameterisation noise], and x flattened."""
        one_hot = ops.one_hot(ops.cast(labels, "int32"), self.classes)
        noise = keras.random.normal((ops.shape(x)[0], self.latent_dim), seed=self.seed_generator)
        return [x, one_hot, noise], ops.reshape(x, (ops.shape(x)[0], -1))

    def train_step(self, data):
        x, labels, weights = keras.utils.unpack_x_y_sample_weight(data)
        inputs, target = self.batch_inputs(x, labels)
        super().train_step((inputs, target, weights))
        return {"loss": loss_tracker(self).result()}  # dropped before logging: computed on private data

    def membership_losses(self, x, labels, batch_size: int = 256):
        """The negative ELBO per example: the membership audit's loss (privacy/audit.py)."""
        from framework.build.generative import batched_rows

        def rows(xb, yb):
            inputs, target = self.batch_inputs(xb, yb)
            return vae_rows(target, self(inputs, training=False), self.latent_dim, self.reconstruction)[0]

        return batched_rows(rows, x, labels, batch_size)

    def test_step(self, data):
        x, labels, weights = keras.utils.unpack_x_y_sample_weight(data)
        inputs, target = self.batch_inputs(x, labels)
        loss, reconstruction, kl = vae_rows(target, self(inputs, training=False), self.latent_dim,
                                            self.reconstruction, self.beta)
        for tracker, value in zip([loss_tracker(self), *self.trackers], (loss, reconstruction, kl, -(reconstruction + kl))):
            tracker.update_state(value, sample_weight=weights)
        return {t.name: t.result() for t in self.metrics}


def private_vae(spec, *, example_shape: tuple, classes: int, latent_dim: int, **settings) -> PrivateVAE:
    """The VAE of the spec's encoder and decoder layers as one flat DP-SGD model (no nested networks, so ghost
    clipping applies when every layer with weights is a Dense or Conv2D)."""
    from framework.build.generative import network_inputs, reading_layers, sampling_layers
    from framework.build.model import connect_model

    x, label = network_inputs(example_shape, classes)
    noise = keras.Input((latent_dim,), name="noise")
    stats = reading_layers(spec, "encoder", x, label, 2 * latent_dim)
    mean, log_var = stats[:, :latent_dim], stats[:, latent_dim:]
    z = mean + ops.exp(0.5 * log_var) * noise
    out = sampling_layers(spec, "decoder", z, label, example_shape)
    packed = keras.layers.Concatenate(dtype="float32")([keras.layers.Flatten()(out), mean, log_var])
    model = connect_model([x, label, noise], packed, settings.pop("name", "vae"), PrivateVAE,
                          "; the layers of model.encoder and model.decoder share one graph here: give them different names")
    model.setup(decoder=_Subgraph([z, label], out, f"{model.name}_decoder"), latent_dim=latent_dim, classes=classes,
                **settings)
    return model


class _Subgraph:
    """A part of a functional graph made into a model of its own when first asked for.

    Making it calls its layers again (Keras clones the graph from an inner tensor), so it waits until after
    ``configure_privacy`` has chosen ghost clipping, which needs each layer called once. A plain object, so Keras
    does not track it as a layer of the model holding it.
    """

    def __init__(self, inputs, outputs, name: str):
        self.inputs, self.outputs, self.name, self.model = inputs, outputs, name, None

    def get(self):
        if self.model is None:
            self.model = keras.Model(self.inputs, self.outputs, name=self.name)
        return self.model


def pair_loss(kind: str):
    """The discriminator's loss per (real, fake) pair from the pair model's logits ``[r, f]``."""

    def rows(_, logits):
        real, fake = logits[:, 0], logits[:, 1]
        if kind == "hinge":
            return ops.relu(1.0 - real) + ops.relu(1.0 + fake)
        return ops.softplus(-real) + ops.softplus(fake)

    return rows


def private_discriminator(discriminator, example_shape: tuple, classes: int) -> DPSGDModel:
    """``[real, fake, one_hot] -> [D(real), D(fake)]``: one clipped gradient per real example and its fake."""
    real = keras.Input(tuple(example_shape), name="real")
    fake = keras.Input(tuple(example_shape), name="fake")
    label = keras.Input((classes,), name="label")
    logits = keras.layers.Concatenate(dtype="float32")([discriminator([real, label]), discriminator([fake, label])])
    return DPSGDModel(inputs=[real, fake, label], outputs=logits, name="private_discriminator")
