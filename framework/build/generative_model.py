"""What a generative model (build/vae.py, build/gan.py) shares: its generation facts, the latent-code generator the
checkpoint carries, its metric trackers, and how a batch is read.

    >>> class VAE(GenerativeModel):
    ...     kind, sampler = "vae", "decoder"
"""

from __future__ import annotations

import keras
from keras import ops


class GenerativeModel(keras.Model):
    kind = ""  # "vae" or "gan"
    sampler = ""  # the attribute holding the network that makes examples from [z, one-hot label]

    def __init__(self, *, latent_dim: int, classes: int, conditional: bool, seed: int, metric_names: tuple, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim, self.classes, self.conditional = latent_dim, classes, conditional
        # z and the reparameterisation noise: a variable, so a checkpoint carries it and a resumed run draws the same
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = [keras.metrics.Mean(name=n) for n in metric_names]

    @property
    def generator_network(self):
        """``[z, one_hot] -> example``: what is saved as model.keras and what `sample` draws from."""
        return getattr(self, self.sampler)

    @property
    def metrics(self):
        return self.trackers

    def read_batch(self, data):
        """(x, class ids, weights: ones unless a Poisson batch's padding, one-hot labels)."""
        x, labels, weights = keras.utils.unpack_x_y_sample_weight(data)
        weights = ops.ones(ops.shape(labels)[:1]) if weights is None else ops.cast(weights, "float32")
        return x, labels, weights, ops.one_hot(ops.cast(labels, "int32"), self.classes)
