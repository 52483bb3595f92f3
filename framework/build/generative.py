"""Generative models from [model]'s layer lists: the networks of a (conditional) VAE or GAN, and drawing samples.

A VAE (build/vae.py) or GAN (build/gan.py) is a keras.Model whose ``train_step`` trains its networks, so it
trains through the one engine (train/engine.py) like any model. Its networks are built here from the layer lists
with the same builder as a classifier (build/model.py), so layer names, arguments and errors are the same:

- encoder / discriminator: the example (with the label as extra channels or features when conditional), the
  declared layers, then a Dense head (the latent mean and log-variance, or one logit);
- decoder / generator: ``[z, one-hot label]`` concatenated, the declared layers, then a reshape to the example.

    >>> model = build_generative(spec, example_shape=(8, 8, 1), classes=10, steps_per_epoch=25)
    >>> images = generate(model.generator_network, np.arange(10), generation_facts(model), seed=0)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from framework.errors import DataError, SpecError
from framework.spec.schema import Spec


def _keras():
    import keras

    return keras


def label_channels_layer():
    """A layer that appends a one-hot label to an example: as features (1-D) or as constant channels (images)."""
    keras = _keras()

    @keras.saving.register_keras_serializable(package="framework")
    class LabelChannels(keras.layers.Layer):
        """``[x, one_hot] -> x`` with the label appended on the last axis, repeated over the other axes."""

        def call(self, inputs):
            x, label = inputs
            ops = keras.ops
            label = ops.cast(label, x.dtype)
            for _ in range(len(x.shape) - 2):
                label = ops.expand_dims(label, 1)
            label = ops.broadcast_to(label, (*ops.shape(x)[:-1], ops.shape(label)[-1]))
            return ops.concatenate([x, label], axis=-1)

        def compute_output_shape(self, shapes):
            x, label = shapes
            return (*x[:-1], x[-1] + label[-1])

    return LabelChannels


def _to_example(tensor, example_shape: tuple, part: str):
    """The last layer's output as an example: the same number of values, reshaped."""
    keras = _keras()
    size, wanted = int(np.prod(tensor.shape[1:])), int(np.prod(example_shape))
    if size != wanted:
        raise SpecError(
            f"the last layer outputs {tuple(tensor.shape[1:])} ({size} values), but an example has shape "
            f"{tuple(example_shape)} ({wanted} values); end with e.g. Dense(units={wanted})", path=f"model.{part}",
        )
    if tuple(tensor.shape[1:]) != tuple(example_shape):
        tensor = keras.layers.Reshape(tuple(example_shape), name=f"{part}_to_example")(tensor)
    return keras.layers.Activation("linear", dtype="float32", name=f"{part}_output")(tensor)


def sampling_layers(spec: Spec, part: str, z, label, example_shape: tuple):
    """A decoder's or generator's layers on tensors ``z`` and ``label``: the example tensor (the label ignored when
    not conditional)."""
    from framework.build.model import apply_layers

    keras = _keras()
    joined = keras.layers.Concatenate(name=f"{part}_z_and_label")([z, label]) if spec.model.conditional else z
    return _to_example(apply_layers(spec, part, joined), example_shape, part)


def reading_layers(spec: Spec, part: str, x, label, head_units: int):
    """An encoder's or discriminator's layers on tensors ``x`` and ``label``: ``Dense(head_units)`` of the declared
    layers' features."""
    from framework.build.model import apply_layers

    keras = _keras()
    seen = label_channels_layer()(name=f"{part}_with_label")([x, label]) if spec.model.conditional else x
    features = apply_layers(spec, part, seen)
    if len(features.shape) > 2:
        features = keras.layers.Flatten(name=f"{part}_flatten")(features)
    return keras.layers.Dense(head_units, dtype="float32", name=f"{part}_head")(features)


def network_inputs(example_shape: tuple, classes: int):
    """Input tensors ``(example, one-hot label)``."""
    keras = _keras()
    return keras.Input(tuple(example_shape), name="example"), keras.Input((classes,), name="label")


def sampling_network(spec: Spec, part: str, example_shape: tuple, classes: int, latent_dim: int):
    """A decoder or generator: ``[z, one_hot] -> example`` (the label ignored when not conditional)."""
    from framework.build.model import connect_model, model_name

    keras = _keras()
    z, label = keras.Input((latent_dim,), name="z"), keras.Input((classes,), name="label")
    return connect_model([z, label], sampling_layers(spec, part, z, label, example_shape), model_name(spec, part))


def reading_network(spec: Spec, part: str, example_shape: tuple, classes: int, head_units: int):
    """An encoder or discriminator: ``[example, one_hot] -> Dense(head_units)`` of the declared layers' features."""
    from framework.build.model import connect_model, model_name

    x, label = network_inputs(example_shape, classes)
    return connect_model([x, label], reading_layers(spec, part, x, label, head_units), model_name(spec, part))


def class_count(splits, spec: Spec) -> int:
    """How many classes the labels have: the named classes, else the largest label id + 1. Under [privacy] the
    count must be public (data.class_names or the source's own), not read off the private labels."""
    if splits is not None and spec.dp is not None and not spec.data.class_names:
        from framework.data.sources import open_source

        known = open_source(spec.data).known_classes()
        if splits.class_names and not splits.class_names_from_labels:
            known = len(splits.class_names)  # named by the source itself
        if not known:
            from framework.errors import SpecError

            raise SpecError("a private generative model cannot read how many classes there are off the private "
                            "labels (the count would be released unprotected); name them, e.g. class_names = "
                            "[\"0\", \"1\", ...]", path="data.class_names")
        return int(known)
    if splits is not None:
        if splits.class_names:
            return len(splits.class_names)
        y = np.asarray(splits.y_train)
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise DataError(f"a generative model needs one class id per example (integers from 0); got {y.dtype} "
                            f"labels of shape {y.shape}", path="data.label")
        return int(y.max()) + 1
    if spec.data.class_names:
        return len(spec.data.class_names)
    from framework.data.sources import open_source

    return open_source(spec.data).known_classes() or 1  # `check` without data: the label only sizes an input


def check_generative_inputs(spec: Spec, x_train) -> None:
    """A Bernoulli reconstruction (and the samples' grid) need values in [0, 1]."""
    if x_train is None or isinstance(x_train, dict):
        if isinstance(x_train, dict):
            raise DataError("a generative model reads one input array", path="data.source")
        return
    if spec.model.kind == "vae" and spec.model.reconstruction == "bce":
        low, high = float(np.min(x_train)), float(np.max(x_train))
        if low < 0 or high > 1:
            span = "go outside it" if spec.dp is not None else f"span [{low:.3g}, {high:.3g}]"  # private: no values
            raise DataError(
                f"model.reconstruction = \"bce\" needs inputs in [0, 1]; the scaled training inputs {span}; set "
                "data.scale (e.g. 0.0625 for 0-16 pixels) or use reconstruction = \"mse\"", path="data.scale",
            )


def build_generative(spec: Spec, example_shape: tuple, classes: int, steps_per_epoch: int, plan=None,
                     train_examples: int | None = None):
    """The compiled VAE or GAN the spec declares (a keras.Model whose train_step trains it), and with [privacy] its
    privacy plan and DP seeds (None without, or without data as in `check`): (model, plan, seeds)."""
    from framework.train.compile import make_optimizer, steps_per_execution

    keras = _keras()
    if plan is not None and plan.model_layers():
        raise SpecError("a generative model takes augmentation in the pipeline, not in the model",
                        path="augmentation.placement")
    m = spec.model
    private = spec.dp is not None
    optimizers: dict[str, Any] = {}
    if m.kind == "vae":
        settings = dict(latent_dim=m.latent_dim, classes=classes, conditional=m.conditional, beta=m.beta,
                        reconstruction=m.reconstruction, seed=spec.seed, name=_name(spec))
        if private:  # one DP-SGD model whose per-example loss is the negative ELBO (privacy/generative.py)
            from framework.privacy.generative import private_vae

            model = private_vae(spec, example_shape=example_shape, **settings)
            loss, dp_model = model.row_loss, model
        else:
            from framework.build.vae import VAE

            encoder = reading_network(spec, "encoder", example_shape, classes, 2 * m.latent_dim)
            decoder = sampling_network(spec, "decoder", example_shape, classes, m.latent_dim)
            model = VAE(encoder, decoder, **settings)
    else:
        from framework.build.gan import GAN

        discriminator = reading_network(spec, "discriminator", example_shape, classes, 1)
        generator = sampling_network(spec, "generator", example_shape, classes, m.latent_dim)
        model = GAN(generator, discriminator, latent_dim=m.latent_dim, classes=classes, conditional=m.conditional,
                    loss=m.gan_loss, discriminator_steps=m.discriminator_steps, seed=spec.seed, name=_name(spec))
        optimizers = {"generator_optimizer": make_optimizer(_with_learning_rate(spec, m.generator_learning_rate),
                                                            steps_per_epoch)}
        if private:  # the discriminator's (real, fake) pairs train with DP-SGD (privacy/generative.py)
            from framework.privacy.generative import pair_loss, private_discriminator

            dp_model = private_discriminator(discriminator, example_shape, classes)
            model.make_private(dp_model, spec.train.batch_size)
            loss = pair_loss(m.gan_loss)
    per_call = steps_per_execution(spec, steps_per_epoch)
    try:
        model.compile(optimizer=make_optimizer(spec, steps_per_epoch), jit_compile=spec.train.jit_compile,
                      steps_per_execution=per_call, **optimizers)
        if private and m.kind == "gan":
            dp_model.compile(optimizer=model.optimizer, loss=loss, jit_compile=spec.train.jit_compile)
        elif private:
            model.compile(optimizer=model.optimizer, loss=loss, jit_compile=spec.train.jit_compile,
                          steps_per_execution=per_call)
    except SpecError:
        raise
    except Exception as exc:
        raise SpecError(f"cannot compile the model: {exc}", path="train") from None
    keras.ops.convert_to_numpy(model.seed_generator.state)  # exists before a checkpoint restores it
    privacy = seeds = None
    if private and train_examples is not None:
        from framework.privacy.plan import configure_private_model

        privacy, seeds = configure_private_model(dp_model, spec, train_examples, steps_per_epoch, loss)
    return model, privacy, seeds


def _name(spec: Spec) -> str:
    return spec.name.replace(".", "_")


def _with_learning_rate(spec: Spec, learning_rate: float | None) -> Spec:
    if learning_rate is None:
        return spec
    optimizer = spec.train.optimizer.model_copy(update={"learning_rate": learning_rate})
    return spec.model_copy(update={"train": spec.train.model_copy(update={"optimizer": optimizer})})


def generation_facts(model, temperature: float = 1.0) -> dict[str, Any]:
    """What `sample` needs to draw from the saved generator, for metrics.json."""
    return {"generative": model.kind, "latent_dim": model.latent_dim, "classes": model.classes,
            "conditional": model.conditional, "temperature": temperature}


def batched_rows(rows, x, y, batch_size: int) -> np.ndarray:
    """``rows(x_batch, y_batch)`` (a value per example) over the whole of ``x``, in batches, as one array."""
    import keras

    tensor = keras.ops.convert_to_tensor
    return np.concatenate([keras.ops.convert_to_numpy(rows(tensor(x[i : i + batch_size]), tensor(y[i : i + batch_size])))
                           for i in range(0, len(x), batch_size)])


def balanced_labels(count: int, classes: int) -> np.ndarray:
    """``count`` class ids, as equal a number of each class as ``count`` allows, in class order."""
    return np.sort(np.arange(count) % classes).astype("int64")


def generate(network, labels: np.ndarray, facts: dict, seed: int, batch_size: int = 512) -> np.ndarray:
    """Examples from a decoder or generator network for the given class ids, with z ~ N(0, t² I) drawn from
    ``seed``; ``facts``: :func:`generation_facts` (latent_dim, classes, temperature t, 1 when absent)."""
    labels = np.asarray(labels, dtype="int64")
    z = np.random.default_rng(seed).standard_normal((len(labels), facts["latent_dim"])).astype("float32")
    z *= np.float32(facts.get("temperature", 1.0))
    one_hot = np.eye(facts["classes"], dtype="float32")[labels]
    return np.asarray(network.predict([z, one_hot], batch_size=batch_size, verbose=0), dtype="float32")
