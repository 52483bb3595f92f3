"""A wavelet scattering transform (Bruna & Mallat, 2013) as a Keras layer: fixed, handcrafted image features."""

from __future__ import annotations

import keras

from framework.registry import registry


@registry.register("layer")
@keras.saving.register_keras_serializable(package="framework")
class Scattering2D(keras.layers.Layer):
    """kymatio's 2-D scattering transform of each channel of a (height, width, channels) image.

    The output has ``height / 2**J`` by ``width / 2**J`` positions and ``channels * K`` features per position, with
    ``K = 1 + J*L + L**2 * J*(J-1)/2`` for the default ``max_order = 2`` (81 for J = 2, L = 8). The layer has no
    weights and does not depend on the data, so it costs no privacy budget: on top of it, a linear model or small
    CNN trained with DP-SGD learns faster than on raw pixels (Tramèr & Boneh, 2021). As the first layers of a
    model, it is computed once per example before training, not in every step; the saved model still starts with
    it, so `predict` reads raw images. Needs ``kymatio`` (``pip install 'framework[scattering]'``).

    Args:
        J: Positive integer, the number of scales: the output is 2**J times smaller in each spatial dimension.
        L: Positive integer, the number of wavelet orientations.
        max_order: 1 or 2, the highest order of scattering coefficients.
        **kwargs: keras.layers.Layer's arguments (``name``, ``dtype``, ...).

    Example:

    ```toml
    [model]
    layers = [
      { type = "Scattering2D", J = 2 },                 # 28x28x1 -> 7x7x81
      { type = "GroupNormalization", groups = 27, center = false, scale = false },
      { type = "Flatten" },
      { type = "Dense", units = 10, activation = "softmax" },
    ]
    ```
    """

    #: no weights, no randomness, nothing fitted: the engine computes it once per example (build/model.py)
    fixed_features = True

    def __init__(self, J: int = 2, L: int = 8, max_order: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.J, self.L, self.max_order = int(J), int(L), int(max_order)
        self.transform = None

    def build(self, input_shape):
        from framework.compat import kymatio_scattering2d

        height, width = input_shape[1], input_shape[2]
        if len(input_shape) != 4 or height is None or width is None:
            raise ValueError(f"Scattering2D needs images of a known (height, width, channels); got {input_shape}")
        if height % 2**self.J or width % 2**self.J:
            raise ValueError(f"Scattering2D(J={self.J}) needs a height and width divisible by {2**self.J}; got "
                             f"{height}x{width}")
        self.transform = kymatio_scattering2d()(J=self.J, shape=(height, width), L=self.L, max_order=self.max_order)

    def call(self, inputs):
        import tensorflow as tf  # kymatio's transform is TensorFlow code

        x = tf.transpose(tf.cast(inputs, "float32"), [0, 3, 1, 2])  # (batch, channels, height, width)
        s = self.transform.scattering(x)  # (batch, channels, K, height', width')
        shape = tf.shape(s)
        s = tf.reshape(s, [shape[0], shape[1] * shape[2], shape[3], shape[4]])
        return tf.transpose(s, [0, 2, 3, 1])

    def coefficients(self) -> int:
        """K, the scattering coefficients per input channel."""
        return 1 + self.J * self.L + (self.L**2 * self.J * (self.J - 1) // 2 if self.max_order == 2 else 0)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, height // 2**self.J, width // 2**self.J, channels * self.coefficients())

    def get_config(self):
        return {**super().get_config(), "J": self.J, "L": self.L, "max_order": self.max_order}
