"""Self-attention blocks: a Transformer encoder block and learned position embeddings."""

from __future__ import annotations

import keras

from framework.registry import registry


@registry.register("layer")
@keras.saving.register_keras_serializable(package="framework")
class TransformerEncoder(keras.layers.Layer):
    """Multi-head self-attention and a feed-forward layer, each with a residual connection and layer norm.

    The output has the input's shape, so blocks stack. Padding masks (``Embedding(mask_zero=True)``) are
    respected: padded positions are not attended to.

    Args:
        num_heads: Positive integer, the number of attention heads.
        key_dim: Positive integer, the size of each head's queries and keys.
        ff_dim: Positive integer, the width of the feed-forward layer's hidden layer.
        dropout: Float between 0 and 1, dropout on the attention weights and on each residual branch.
        **kwargs: keras.layers.Layer's arguments (``name``, ``dtype``, ``trainable``, ...).

    Example:

    ```toml
    layers = [
      { type = "Embedding", input_dim = 10000, output_dim = 32, mask_zero = true },
      { type = "PositionEmbedding", max_length = 40 },
      { type = "TransformerEncoder", num_heads = 2, key_dim = 16, ff_dim = 64, dropout = 0.1 },
      { type = "GlobalAveragePooling1D" },
    ]
    ```
    """

    def __init__(self, num_heads: int, key_dim: int, ff_dim: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.key_dim, self.ff_dim, self.dropout = num_heads, key_dim, ff_dim, dropout
        self.supports_masking = True
        self.attention = keras.layers.MultiHeadAttention(num_heads=num_heads, key_dim=key_dim, dropout=dropout)
        self.attention_norm = keras.layers.LayerNormalization(epsilon=1e-6)
        self.feed_forward_in = keras.layers.Dense(ff_dim, activation="relu")
        self.feed_forward_out = None  # sized to the input's width in build()
        self.feed_forward_norm = keras.layers.LayerNormalization(epsilon=1e-6)
        self.drop = keras.layers.Dropout(dropout)

    def build(self, input_shape):
        width = input_shape[-1]
        self.attention.build(input_shape, input_shape)
        self.attention_norm.build(input_shape)
        self.feed_forward_in.build(input_shape)
        self.feed_forward_out = keras.layers.Dense(width)
        self.feed_forward_out.build((*input_shape[:-1], self.ff_dim))
        self.feed_forward_norm.build(input_shape)

    def call(self, inputs, mask=None, training=None):
        attended = self.attention(inputs, inputs, query_mask=mask, value_mask=mask, training=training)
        hidden = self.attention_norm(inputs + self.drop(attended, training=training))
        fed = self.feed_forward_out(self.feed_forward_in(hidden))
        return self.feed_forward_norm(hidden + self.drop(fed, training=training))

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "ff_dim": self.ff_dim, "dropout": self.dropout}


@registry.register("layer")
@keras.saving.register_keras_serializable(package="framework")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned embedding of each position to a sequence (self-attention alone ignores order).

    Takes a sequence of vectors (batch, length, width) and returns it with a trained vector per position added;
    masks pass through.

    Args:
        max_length: Positive integer, the longest sequence it will see (e.g. TextVectorization's
            ``output_sequence_length``).
        **kwargs: keras.layers.Layer's arguments (``name``, ``dtype``, ``trainable``, ...).

    Example:

    ```toml
    layers = [
      { type = "Embedding", input_dim = 10000, output_dim = 32, mask_zero = true },
      { type = "PositionEmbedding", max_length = 40 },
    ]
    ```
    """

    def __init__(self, max_length: int, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length
        self.supports_masking = True

    def build(self, input_shape):
        self.positions = self.add_weight(
            name="positions", shape=(self.max_length, input_shape[-1]), initializer="glorot_uniform"
        )

    def call(self, inputs):
        length = keras.ops.shape(inputs)[1]
        return inputs + keras.ops.cast(self.positions[None, :length], inputs.dtype)

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "max_length": self.max_length}
