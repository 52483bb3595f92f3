"""A recurrent decoder for sequence-to-sequence models."""

from __future__ import annotations

import keras

from framework.registry import registry


@registry.register("layer")
@keras.saving.register_keras_serializable(package="framework")
class GRUDecoder(keras.layers.Layer):
    """A GRU over a sequence, starting from a given state: called on ``[sequence, state]``.

    The state is an encoder's final output (a GRU with ``return_sequences = false``) of width ``units``. The
    decoder returns the whole sequence and is causal, so greedy decoding can feed back its own outputs; a padding
    mask on the sequence (``Embedding(mask_zero=True)``) is respected.

    Args:
        units: Positive integer, the width of the GRU's state and of each output step; the same as the encoder's.
        dropout: Float between 0 and 1, the fraction of the inputs dropped during training.
        **kwargs: keras.layers.Layer's arguments (``name``, ``dtype``, ``trainable``, ...).

    Example:

    ```toml
    [[model.layers]]
    name = "decoder"
    type = "GRUDecoder"
    units = 128
    inputs = ["decoder_embedding", "encoder"]   # [sequence, state]
    ```
    """

    def __init__(self, units: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.dropout = units, dropout
        self.supports_masking = True
        self.gru = keras.layers.GRU(units, return_sequences=True, dropout=dropout)

    def build(self, input_shape):
        sequence_shape, _ = input_shape
        self.gru.build(sequence_shape)

    def call(self, inputs, mask=None, training=None):
        sequence, state = inputs
        sequence_mask = mask[0] if isinstance(mask, (list, tuple)) else mask
        return self.gru(sequence, initial_state=[state], mask=sequence_mask, training=training)

    def compute_mask(self, inputs, mask=None):
        return mask[0] if isinstance(mask, (list, tuple)) else mask

    def compute_output_shape(self, input_shape):
        sequence_shape, _ = input_shape
        return (*sequence_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "dropout": self.dropout}
