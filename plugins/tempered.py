"""Tempered sigmoid activation (Papernot et al., 2021): scale * sigmoid(temperature * x) - offset.

With scale=2, temperature=2, offset=1 it is tanh. Bounded activations keep
gradient norms small, which helps DP-SGD: less is lost to clipping.

    [model]
    layers = [ { type = "Dense", units = 64 }, { type = "TemperedSigmoid", temperature = 2.0 }, ... ]
"""

import keras

from framework.registry import registry


@registry.register("layer")
class TemperedSigmoid(keras.layers.Layer):
    def __init__(self, scale=2.0, temperature=2.0, offset=1.0, **kwargs):
        super().__init__(**kwargs)
        if temperature <= 0 or scale <= 0:
            raise ValueError(f"`scale` and `temperature` must be > 0, got scale={scale}, temperature={temperature}")
        self.scale, self.temperature, self.offset = float(scale), float(temperature), float(offset)

    def call(self, inputs):
        return self.scale * keras.ops.sigmoid(self.temperature * inputs) - self.offset

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "temperature": self.temperature, "offset": self.offset}
