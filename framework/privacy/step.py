"""The DP-SGD training step (Keras 3, TensorFlow backend).

Two ways to the clipped sum, chosen per model:

- **ghost** (every trainable layer is a Dense on 2-D inputs or a Conv2D): one forward and one backward pass
  give each such layer's inputs ``a`` and output gradients ``d``; an example's gradient norm is then
  ``|a_i|*|d_i|`` (Dense) or the norm of its patch-by-gradient product (Conv2D, ``layer_pieces``), and the
  clipped sum is assembled from the same ``a`` and ``d`` with no second backward pass, so per-example gradients of
  the whole model never exist;
- **vectorized** (anything else): per-example gradients of all variables with ``tf.vectorized_map``.

Both clip exactly the same way.

With augmentation multiplicity (De et al., 2022) each example arrives as ``copies`` consecutive rows, which the
model's augmentation layers transform differently; an example's gradient is the mean of its copies' gradients
(a Dense or Conv2D layer's kernel gradient is then a sum over copies as over positions), clipped once.

For each batch: per-example gradients, computed vectorized (``tf.vectorized_map``,
not a Python loop); each clipped to ``l2_norm_clip`` by its global norm; summed;
Gaussian noise with std ``noise_multiplier * l2_norm_clip`` added once; divided
by the expected batch size; applied by the spec's optimizer. Padding rows of a
Poisson batch carry weight 0 and contribute nothing. Regularization losses do
not depend on the data, so their gradient is added outside the clipped sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from framework.compat import inbound_nodes, loss_tracker, per_example_seeds


class DPSGDModel(keras.Model):
    """A functional model whose ``train_step`` is DP-SGD; build with ``DPSGDModel(inputs, outputs)``."""

    def configure_privacy(
        self, *, l2_norm_clip: float, noise_multiplier: float, expected_batch_size: float, loss,
        noise_state: tuple[int, int, int], allow_ghost: bool = True, augmentation_multiplicity: int = 1,
    ):
        """``noise_state``: the Philox state of the noise generator (secret: see privacy/randomness.py).
        ``augmentation_multiplicity``: augmented copies of each example per step, averaged before clipping."""
        self.l2_norm_clip = float(l2_norm_clip)
        self.noise_multiplier = float(noise_multiplier)
        self.expected_batch_size = float(expected_batch_size)
        self.copies = int(augmentation_multiplicity)
        # one loss value per example: a Loss object's call() skips its reduction; loss functions already do
        self.loss_per_row = loss.call if isinstance(loss, keras.losses.Loss) else loss
        # kept in a list so Keras does not track it; its state variable is in dp_state_variables() for checkpoints
        self.noise_generators = [tf.random.Generator.from_state(tf.constant(noise_state, tf.int64), alg="philox")]
        self.ghost_layers = ghost_layers(self) if allow_ghost else None
        self.clipping = "ghost" if self.ghost_layers is not None else "vectorized"
        self.augmentation_split = leading_augmentation(self) if self.clipping == "vectorized" else None
        if self.ghost_layers:
            tapped = [layer.input for layer in self.ghost_layers] + [layer.output for layer in self.ghost_layers]
            self.tapped_model = keras.Model(self.inputs, [*self.outputs, *tapped])

    def dp_state_variables(self) -> list:
        """The noise generator's state, which a checkpoint must carry (not among Keras's variables)."""
        return [generator.state for generator in getattr(self, "noise_generators", [])]

    def ghost_clipped_sum(self, x, y, weights):
        """The clipped gradient sum from each layer's inputs and output gradients (see the module docstring).

        ``x``, ``y``, ``weights``: one row per copy, each example's ``copies`` rows consecutive."""
        count = len(self.ghost_layers)
        with tf.GradientTape() as tape:
            outputs = self.tapped_model(x, training=True)
            predictions, inputs, pre_activations = outputs[0], outputs[1 : count + 1], outputs[count + 1 :]
            # an example's loss is the mean over its copies
            row_weights = tf.cast(weights, predictions.dtype) / self.copies
            total = tf.reduce_sum(self.loss_per_row(y, predictions) * row_weights)
        output_grads = tape.gradient(total, pre_activations)
        self._batch_loss = total / tf.maximum(tf.reduce_sum(row_weights), 1.0)
        xla = bool(self.jit_compile)
        pieces = [layer_pieces(layer, a, d, xla, self.copies)
                  for layer, a, d in zip(self.ghost_layers, inputs, output_grads)]
        norms = tf.sqrt(tf.add_n([squared for squared, _ in pieces]))
        factors = tf.minimum(1.0, self.l2_norm_clip / (norms + 1e-12))
        by_variable = {}
        for layer, (_, clipped) in zip(self.ghost_layers, pieces):
            for variable, grad in zip(layer.trainable_variables, clipped(factors)):
                by_variable[id(variable)] = grad
        return [by_variable[id(v)] for v in self.trainable_variables], predictions

    def clipped_gradient_sum(self, x, y, weights):
        """Sum over the batch of each example's gradient clipped to l2_norm_clip, and the predictions (rows as in
        ``ghost_clipped_sum``)."""
        variables = self.trainable_variables
        copies = self.copies
        forward = self
        if self.augmentation_split is not None:  # on the whole batch: inside the map their draws would loop over rows
            for layer in self.augmentation_split.layers:
                x = layer(x, training=True)
            forward = self.augmentation_split.rest

        def one_example(example):
            xi, yi, index = example  # the example's copies, (copies, ...), and its row in the batch
            with tf.GradientTape() as tape, per_example_seeds(forward, index):  # its own Dropout masks
                prediction = forward(xi, training=True)
                loss = tf.reduce_mean(self.loss_per_row(yi, prediction))  # the mean over the copies
            return tape.gradient(loss, variables), prediction

        grouped = tf.nest.map_structure(lambda t: tf.reshape(t, tf.concat([[-1, copies], tf.shape(t)[1:]], 0)), (x, y))
        grouped = (*grouped, tf.range(tf.shape(grouped[1])[0], dtype=tf.int64))
        weights = tf.reshape(weights, [-1, copies])[:, 0]
        if self.clipping != "loop":
            # traced in a graph of its own: a failed attempt leaves no half-converted ops in the step's graph, which
            # would still run (they hold the random layers' state updates)
            # warn=False: no notice for the ops it loops over (the per-example random draws, by design)
            vectorized = tf.function(lambda elems: tf.vectorized_map(one_example, elems, warn=False), autograph=False)
            try:
                per_example, predictions = vectorized(grouped)
            except (TypeError, ValueError, NotImplementedError):
                # TensorFlow cannot vectorize some ops (e.g. a GRU after LayerNormalization): one example at a
                # time instead; slower, the same clipped sum
                self.clipping = "loop"
        if self.clipping == "loop":
            per_example, predictions = tf.map_fn(
                one_example, grouped,
                fn_output_signature=([tf.TensorSpec(v.shape, v.dtype) for v in variables],
                                     tf.TensorSpec([copies, *self.outputs[0].shape[1:]], self.outputs[0].dtype)),
            )
        squared = [tf.reduce_sum(tf.reshape(tf.square(g), [tf.shape(g)[0], -1]), axis=1) for g in per_example]
        norms = tf.sqrt(tf.add_n(squared))
        factors = tf.minimum(1.0, self.l2_norm_clip / (norms + 1e-12)) * tf.cast(weights, norms.dtype)
        summed = [tf.tensordot(factors, g, axes=1) for g in per_example]
        return summed, tf.reshape(predictions, tf.concat([[-1], tf.shape(predictions)[2:]], 0))

    def train_step(self, data):
        x, y, weights = keras.utils.unpack_x_y_sample_weight(data)
        if weights is None:
            weights = tf.ones(tf.shape(y)[:1])
        examples = tf.reduce_sum(weights)
        if self.copies > 1:  # each example's copies in consecutive rows; the model's augmentation layers vary them
            x, y, weights = tf.nest.map_structure(lambda t: tf.repeat(t, self.copies, axis=0), (x, y, weights))
        clipped_sum = self.ghost_clipped_sum if self.ghost_layers else self.clipped_gradient_sum
        summed, predictions = clipped_sum(x, y, weights)
        std = self.noise_multiplier * self.l2_norm_clip
        generator = self.noise_generators[0]
        noisy = [(g + generator.normal(tf.shape(g), stddev=std, dtype=g.dtype)) / self.expected_batch_size for g in summed]
        if self.losses:  # data-independent penalties: exact gradient, outside the clipped sum
            with tf.GradientTape() as tape:
                penalty = tf.add_n(self.losses)
            noisy = [n + g if g is not None else n for n, g in zip(noisy, tape.gradient(penalty, self.trainable_variables))]
        self.optimizer.apply(noisy, self.trainable_variables)
        if self.ghost_layers:  # the data loss is known from the ghost pass; add the penalties as compute_loss would
            loss = self._batch_loss + (tf.add_n(self.losses) if self.losses else 0.0)
        else:
            loss = self.compute_loss(x=x, y=y, y_pred=predictions, sample_weight=weights)
        loss_tracker(self).update_state(loss, sample_weight=examples)  # what Keras's own step logs
        return self.compute_metrics(x, y, predictions, sample_weight=weights)


@dataclass
class AugmentationSplit:
    """A model's leading random augmentation layers, and the rest of it as a model of its own (the same layers).
    Not a Keras layer, so the DP model does not track it as one of its own."""

    layers: list
    rest: keras.Model


def leading_augmentation(model) -> AugmentationSplit | None:
    """The augmentation layers (framework/build/augment.py's kinds) that a one-input model applies first, in a
    chain from its input, split from the rest; None when there are none. Per-example clipping runs these on the whole
    batch first: inside ``tf.vectorized_map`` each example's own draws (compat.per_example_seeds) take a loop over the
    examples, and a layer whose generator that does not reach would draw once for all of them."""
    from framework.build.augment import keras_augmentations

    kinds = tuple(keras_augmentations().values())
    if len(model.inputs) != 1:
        return None
    layers, previous = [], model.inputs[0]
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if not isinstance(layer, kinds) or len(inbound_nodes(layer)) != 1 or layer.input is not previous:
            break
        layers.append(layer)
        previous = layer.output
    if not layers:
        return None
    return AugmentationSplit(layers, keras.Model(previous, model.outputs))


def ghost_layers(model) -> list | None:
    """The trainable layers when ghost clipping covers all of them, else None."""
    trainable = [layer for layer in model.layers if layer.trainable_weights]
    for layer in trainable:
        if len(inbound_nodes(layer)) != 1:
            return None  # shared layers: one input/output pair per call
        if getattr(layer, "activation", None) not in (None, keras.activations.linear):
            return None  # the tapped output must be the pre-activation
        if type(layer) is keras.layers.Dense:
            if len(layer.input.shape) != 2:
                return None
        elif type(layer) is keras.layers.Conv2D:
            if layer.data_format != "channels_last" or tuple(layer.dilation_rate) != (1, 1) or layer.groups != 1:
                return None
        else:
            return None
        if [id(v) for v in layer.trainable_variables] != [id(v) for v in [layer.kernel, layer.bias][: 1 + layer.use_bias]]:
            return None
    return trainable


def layer_pieces(layer, a, d, xla: bool = False, copies: int = 1):
    """(per-example squared gradient norm, factors -> clipped gradient sums of the layer's variables).

    ``copies``: rows per example (augmentation multiplicity), consecutive; ``d`` already holds the 1/copies of their
    mean, so an example's kernel gradient is the sum over its copies' rows, like a sum over positions.

    A Conv2D's norms come from each example's kernel gradient (kh*kw*cin x cout), whose sum weighted by the clipping
    factors is also the clipped sum, so the norm is the norm of what is added. Not from the ghost norm (Li et al.,
    2021: the sum of the products of each example's Gram matrices of its patches and of its output gradients):
    in float32 that sum cancels catastrophically when the patches share a large offset, e.g. saturated tanh or ReLU
    activations, and an example whose norm it underestimates would escape clipping (benchmarks/RESULTS.md).
    """
    a, d = tf.cast(a, tf.float32), tf.cast(d, tf.float32)
    batch = tf.shape(a)[0] // copies  # examples
    if isinstance(layer, keras.layers.Conv2D):
        channels = d.shape[-1]
        size = layer.kernel_size[0] * layer.kernel_size[1] * a.shape[-1]
        d_rows = tf.reshape(d, [batch, -1, channels])  # each example's positions (of all its copies)
        if a.shape[-1] == 1 and not xla and not tf.config.list_logical_devices("GPU"):  # XLA: ~500x slower
            per_copy = single_channel_kernel_gradients(layer, a, d)
            per_example = per_copy if copies == 1 else tf.reduce_sum(
                tf.reshape(per_copy, [batch, copies, size, channels]), axis=1)
        else:
            patches = tf.reshape(conv_patches(layer, a), [batch, -1, size])
            per_example = tf.matmul(patches, d_rows, transpose_a=True)
        # per_example: (batch, kh*kw*cin, cout), each example's kernel gradient
        squared = squared_norms(per_example, xla)
        bias_rows = tf.reduce_sum(d_rows, axis=1)

        def clipped(factors):
            kernel = tf.reshape(tf.tensordot(factors, per_example, axes=1), layer.kernel.shape)
            return [kernel, tf.tensordot(factors, bias_rows, axes=1)][: 1 + layer.use_bias]
    elif copies == 1:  # a Dense layer: each example's kernel gradient is a_i d_i^T, whose norm is |a_i| |d_i|
        squared = tf.reduce_sum(tf.square(a), axis=1) * tf.reduce_sum(tf.square(d), axis=1)
        bias_rows = d

        def clipped(factors):
            scaled = d * factors[:, None]
            return [tf.matmul(a, scaled, transpose_a=True), tf.reduce_sum(scaled, axis=0)][: 1 + layer.use_bias]
    else:  # a Dense layer, several copies: each example's kernel gradient is the sum of its copies' a d^T
        squared = dense_copies_squared_norms(a, d, copies)
        bias_rows = tf.reduce_sum(tf.reshape(d, [batch, copies, d.shape[-1]]), axis=1)

        def clipped(factors):
            scaled = d * tf.repeat(factors, copies)[:, None]
            return [tf.matmul(a, scaled, transpose_a=True), tf.reduce_sum(scaled, axis=0)][: 1 + layer.use_bias]

    if layer.use_bias:
        squared = squared + tf.reduce_sum(tf.square(bias_rows), axis=1)
    return squared, clipped


def dense_copies_squared_norms(a, d, copies: int):
    """An upper bound, tight to float32's rounding, on each example's squared kernel-gradient norm
    ``|sum_k a_k d_k^T|^2 = sum_kl (a_k . a_l)(d_k . d_l)`` over its ``copies`` rows of a Dense layer's inputs ``a``
    and output gradients ``d``, without writing out the (inputs x units) gradients.

    Copies of one example have nearly the same inputs, and their gradients may nearly cancel, so the sum of Gram
    products cancels: it is taken in float64 and the bound on its rounding error, ``gamma * (sum_k |a_k| |d_k|)^2``
    with ``gamma`` twice ``(inputs + units + copies^2) * 2^-53``, is added, and the result raised by float32's
    rounding before it is rounded to float32, so the norm is never underestimated (an underestimated norm would let
    an example past the clip).
    """
    a_rows = tf.reshape(tf.cast(a, tf.float64), [-1, copies, a.shape[-1]])
    d_rows = tf.reshape(tf.cast(d, tf.float64), [-1, copies, d.shape[-1]])
    gram_products = tf.matmul(a_rows, a_rows, transpose_b=True) * tf.matmul(d_rows, d_rows, transpose_b=True)
    squared = tf.reduce_sum(gram_products, axis=[1, 2])
    scale = tf.reduce_sum(tf.norm(a_rows, axis=2) * tf.norm(d_rows, axis=2), axis=1)
    gamma = 2.0 * (a.shape[-1] + d.shape[-1] + copies**2) * 2.0**-53
    return tf.cast((tf.maximum(squared, 0.0) + gamma * tf.square(scale)) * (1.0 + 2.0**-23), tf.float32)


def squared_norms(per_example, xla: bool = False):
    """Each example's squared norm of ``per_example`` (batch, rows, cols). Outside XLA by one fused reduction
    (``reduce_euclidean_norm``, squared), which on CPU takes half the time of squaring into a new tensor and summing
    it (the MNIST CNN's second layer: 0.49 against 0.91 ms, benchmarks/RESULTS.md); XLA has no kernel for it and
    fuses the square and the sum itself."""
    if xla:
        return tf.reduce_sum(tf.square(per_example), axis=[1, 2])
    return tf.square(tf.math.reduce_euclidean_norm(per_example, axis=[1, 2]))


def single_channel_kernel_gradients(layer, a, d):
    """Each example's kernel gradient of a Conv2D on one input channel, (batch, kh*kw, cout), as one depthwise
    filter gradient with the examples as channels: on CPU several times faster than cutting the patches (the MNIST
    CNN's first layer; see benchmarks/dp_overhead.py), and the same sums. Not under XLA, whose CPU version of this
    op is hundreds of times slower."""
    kh, kw = layer.kernel_size
    sh, sw = layer.strides
    batch, rows, cols, cout = tf.shape(d)[0], tf.shape(d)[1], tf.shape(d)[2], d.shape[-1]
    examples_as_channels = tf.transpose(a, [3, 1, 2, 0])  # (1, height, width, batch)
    gradients = tf.reshape(tf.transpose(d, [1, 2, 0, 3]), [1, rows, cols, batch * cout])  # channel b*cout + c
    kernels = tf.nn.depthwise_conv2d_backprop_filter(
        examples_as_channels, tf.stack([kh, kw, batch, cout]), gradients, strides=[1, sh, sw, 1],
        padding=layer.padding.upper(),
    )  # (kh, kw, batch, cout)
    return tf.reshape(tf.transpose(kernels, [2, 0, 1, 3]), [batch, kh * kw, cout])


#: patches of at most this many values (kh * kw * input channels) are cut with a one-hot convolution
ONE_HOT_PATCH_LIMIT = 128


def conv_patches(layer, a, method: str | None = None):
    """Each output position's input patch, (batch, rows, cols, kh*kw*cin) in the kernel's order, as ``layer`` reads it.

    Three ways, the same values bit for bit (each copies, none sums):

    - ``"one_hot"``: a convolution whose filter is the identity (one 1 per output channel; each output is one input
      value plus zeros, and oneDNN flushes subnormal values to zero). On CPU several times faster than the others for
      small patches, e.g. the 8x8x1 patches of the MNIST CNN's first layer; its cost grows with the patch size squared.
      Not on a GPU, where cuDNN may round (TF32, Winograd).
    - ``"gather"``: one ``tf.gather`` of the (padded) input's pixel rows, ``cin`` values each, at indices known when
      the function is traced; for the second layer's 4x4x16 patches 2-3x faster than ``extract_patches`` on CPU
      (see benchmarks/RESULTS.md). Needs the input's height and width at trace time.
    - ``"extract"``: ``tf.image.extract_patches``, when the height or width is not known.

    ``method``: force one way (tests); by default the first that applies.
    """
    kh, kw = layer.kernel_size
    sh, sw = layer.strides
    height, width, channels = a.shape[1:]
    size = kh * kw * channels
    if method is None:
        if size <= ONE_HOT_PATCH_LIMIT and not tf.config.list_logical_devices("GPU"):
            method = "one_hot"
        else:
            method = "gather" if height is not None and width is not None else "extract"
    if method == "one_hot":
        identity = tf.reshape(tf.eye(size, dtype=a.dtype), [kh, kw, channels, size])
        return tf.nn.conv2d(a, identity, strides=[1, sh, sw, 1], padding=layer.padding.upper())
    if method == "gather":
        return gathered_patches(a, (kh, kw), (sh, sw), layer.padding)
    return tf.image.extract_patches(a, sizes=[1, kh, kw, 1], strides=[1, sh, sw, 1], rates=[1, 1, 1, 1],
                                    padding=layer.padding.upper())


def gathered_patches(a, kernel_size: tuple[int, int], strides: tuple[int, int], padding: str):
    """``extract_patches`` as one gather of pixel rows (``a``'s height and width must be static)."""
    (kh, kw), (sh, sw) = kernel_size, strides
    height, width, channels = a.shape[1:]
    if padding == "same":  # TensorFlow's: the odd pixel of padding goes after
        rows, cols = -(-height // sh), -(-width // sw)
        pad_rows, pad_cols = max((rows - 1) * sh + kh - height, 0), max((cols - 1) * sw + kw - width, 0)
        a = tf.pad(a, [[0, 0], [pad_rows // 2, pad_rows - pad_rows // 2], [pad_cols // 2, pad_cols - pad_cols // 2], [0, 0]])
        height, width = height + pad_rows, width + pad_cols
    else:
        rows, cols = (height - kh) // sh + 1, (width - kw) // sw + 1
    # pixel index of kernel cell (i, j) at output position (p, q), in (p, q, i, j) order
    p, q, i, j = np.meshgrid(np.arange(rows), np.arange(cols), np.arange(kh), np.arange(kw), indexing="ij")
    pixels = ((p * sh + i) * width + q * sw + j).reshape(-1).astype(np.int32)
    flat = tf.reshape(a, [-1, height * width, channels])
    return tf.reshape(tf.gather(flat, pixels, axis=1), [-1, rows, cols, kh * kw * channels])
