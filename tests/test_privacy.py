"""DP-SGD: the clipped sum, the noise, the accounting, the spec checks, XLA, the audit."""

import json
import tomllib

import numpy as np
import pandas as pd
import pytest

from conftest import SPECS, tiny_spec
from framework.errors import SpecError
from framework.privacy import accounting
from framework.spec.load import validate

PRIVACY = {"l2_norm_clip": 1.0, "noise_multiplier": 1.0}
NOISE_STEP = {"steps": [{"type": "GaussianNoise", "stddev": 0.1}]}


def dp_model(tmp_path, privacy=PRIVACY, optimizer=None, shape=(64,), **sections):
    from framework.train.prepare import build_and_compile, setup_backend

    silent = privacy.get("noise_multiplier") == 0.0  # specs refuse sigma = 0; the arithmetic tests need it
    if silent:
        privacy = {**privacy, "noise_multiplier": 1.0}
    spec = validate(tiny_spec(privacy=privacy, **({"train": {"optimizer": optimizer}} if optimizer else {}), **sections),
                    file="s", base_dir=tmp_path)
    setup_backend(spec)
    built = build_and_compile(spec, shape, steps_per_epoch=10, train_examples=1000)
    if silent:
        built.model.noise_multiplier = 0.0
    return spec, built


def naive_clipped_sum(model, x, y, weights, clip):
    """The clipped gradient sum the slow way: one example at a time, in float64."""
    import keras
    import tensorflow as tf

    expected = [np.zeros(v.shape, "float64") for v in model.trainable_variables]
    for i in range(len(y)):
        with tf.GradientTape() as tape:
            loss = keras.losses.sparse_categorical_crossentropy(y[i : i + 1], model(x[i : i + 1], training=True))
        grads = [g.numpy().astype("float64") for g in tape.gradient(loss, model.trainable_variables)]
        norm = np.sqrt(sum(np.sum(g**2) for g in grads))
        for e, g in zip(expected, grads):
            e += weights[i] * g * min(1.0, clip / norm)
    return expected


def test_clipped_per_example_gradients_match_a_naive_loop(tmp_path):
    import tensorflow as tf

    _, built = dp_model(tmp_path, privacy={"l2_norm_clip": 0.05, "noise_multiplier": 0.0})
    model = built.model
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 64)).astype("float32")
    y = rng.integers(0, 10, 8)
    weights = np.array([1, 1, 1, 1, 1, 1, 0, 1], "float32")  # one padding row
    summed, _ = model.clipped_gradient_sum(tf.constant(x), tf.constant(y), tf.constant(weights))
    for got, want in zip(summed, naive_clipped_sum(model, x, y, weights, clip=0.05)):
        np.testing.assert_allclose(got.numpy(), want, atol=1e-6)


CNN = {"input_shape": [8, 8, 1], "layers": [
    {"type": "Conv2D", "filters": 4, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "tanh"},
    {"type": "Conv2D", "filters": 3, "kernel_size": 2, "padding": "valid"},
    {"type": "Flatten"}, {"type": "Dense", "units": 10, "activation": "softmax"}]}


# its second Conv2D's patches (3x3x16 = 144 values) are cut by a gather, the first's by a one-hot convolution
CNN_WIDE = {"input_shape": [8, 8, 1], "layers": [
    {"type": "Conv2D", "filters": 16, "kernel_size": 3, "padding": "same", "activation": "tanh"},
    {"type": "Conv2D", "filters": 3, "kernel_size": 3, "strides": 2, "padding": "valid"},
    {"type": "Flatten"}, {"type": "Dense", "units": 10, "activation": "softmax"}]}


# the benchmarked tanh CNN: its first Conv2D's kernel gradients come from the depthwise filter gradient, its second's
# from patches cut by a gather
MNIST_CNN = {"input_shape": [28, 28, 1], "layers": tomllib.loads((SPECS / "mnist_dp.toml").read_text())["model"]["layers"]}


@pytest.mark.parametrize("model_section", [None, CNN, CNN_WIDE, MNIST_CNN], ids=["mlp", "cnn", "cnn-wide-patches", "mnist-cnn"])
def test_ghost_clipping_matches_the_naive_loop(tmp_path, model_section):
    import tensorflow as tf

    image = tuple(model_section["input_shape"]) if model_section else None
    sections = {"model": model_section, "shape": image} if model_section else {}
    _, built = dp_model(tmp_path, privacy={"l2_norm_clip": 0.05, "noise_multiplier": 0.0}, **sections)
    model = built.model
    assert model.clipping == "ghost"
    shape = (8, *image) if model_section else (8, 64)
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype("float32")
    y = rng.integers(0, 10, 8)
    weights = np.array([1, 1, 0, 1, 1, 1, 1, 1], "float32")
    ghost, _ = model.ghost_clipped_sum(tf.constant(x), tf.constant(y), tf.constant(weights))
    for got, want in zip(ghost, naive_clipped_sum(model, x, y, weights, clip=0.05)):
        np.testing.assert_allclose(got.numpy(), want, atol=1e-6)


@pytest.mark.parametrize("model_section, clipping", [(None, "auto"), (MNIST_CNN, "auto"), (None, "vectorized")],
                         ids=["mlp-ghost", "mnist-cnn-ghost", "mlp-vectorized"])
def test_augmented_copies_are_averaged_before_clipping(tmp_path, model_section, clipping):
    """Augmentation multiplicity: each example's copies (here made different by hand, as augmentation layers would)
    are consecutive rows; its gradient is the mean of theirs, clipped once. A sum instead of a mean, copies grouped
    across examples, or each copy clipped on its own would each miss the naive loop."""
    import keras
    import tensorflow as tf

    image = tuple(model_section["input_shape"]) if model_section else None
    sections = {"model": model_section, "shape": image} if model_section else {}
    _, built = dp_model(tmp_path, privacy={"l2_norm_clip": 0.05, "noise_multiplier": 0.0, "clipping": clipping}, **sections)
    model, copies = built.model, 3
    model.copies = copies
    assert model.clipping == ("ghost" if clipping == "auto" else "vectorized")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6 * copies, *(image or (64,)))).astype("float32")  # example i's copies: rows 3i, 3i+1, 3i+2
    y = np.repeat(rng.integers(0, 10, 6), copies)
    weights = np.repeat(np.array([1, 1, 0, 1, 1, 1], "float32"), copies)
    clipped_sum = model.ghost_clipped_sum if clipping == "auto" else model.clipped_gradient_sum
    for clip in (0.05, 1e3):  # every example clipped, then none (where the mean's scale shows)
        model.l2_norm_clip = clip
        got, _ = clipped_sum(tf.constant(x), tf.constant(y), tf.constant(weights))
        expected = [np.zeros(v.shape, "float64") for v in model.trainable_variables]
        for i in range(6):
            rows = slice(copies * i, copies * (i + 1))
            with tf.GradientTape() as tape:
                loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y[rows], model(x[rows], training=True)))
            grads = [g.numpy().astype("float64") for g in tape.gradient(loss, model.trainable_variables)]
            factor = min(1.0, clip / np.sqrt(sum(np.sum(g**2) for g in grads)))
            for e, g in zip(expected, grads):
                e += weights[copies * i] * factor * g
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g.numpy(), e, atol=1e-6, rtol=1e-5)


def test_per_example_clipping_draws_each_rows_own_augmentation(tmp_path):
    """Inside tf.vectorized_map a random layer draws once for every example; the vectorized path runs the model's
    leading augmentation layers on the whole batch first, so the same image sampled into every row (with two
    copies each) gets a different transformation in each row."""
    import tensorflow as tf

    _, built = dp_model(tmp_path, privacy={**PRIVACY, "clipping": "vectorized", "augmentation_multiplicity": 2},
                        augmentation=NOISE_STEP)
    model = built.model
    assert model.clipping == "vectorized" and [type(layer).__name__ for layer in model.augmentation_split.layers] == ["GaussianNoise"]
    x = np.repeat(np.random.default_rng(0).normal(size=(1, 64)).astype("float32"), 16, axis=0)
    _, predictions = model.clipped_gradient_sum(tf.constant(x), tf.constant(np.zeros(16, "int64")), tf.ones(16))
    assert len(np.unique(np.round(predictions.numpy(), 6), axis=0)) == 16


def test_per_example_clipping_draws_each_examples_own_dropout_mask(tmp_path, caplog):
    """Inside tf.vectorized_map a Dropout layer's seed is read once for every example; with each example's index
    folded into it (compat.per_example_seeds), the same input in every row gets a different mask in each, the next
    step draws new masks, and no notice about the random ops' loop is printed."""
    import tensorflow as tf

    layers = [{"type": "Dense", "units": 64, "activation": "tanh"}, {"type": "Dropout", "rate": 0.5},
              {"type": "Dense", "units": 10, "activation": "softmax"}]
    _, built = dp_model(tmp_path, privacy={**PRIVACY, "clipping": "vectorized"}, model={"layers": layers})
    model = built.model
    assert model.augmentation_split is None
    x = tf.constant(np.repeat(np.random.default_rng(0).normal(size=(1, 64)).astype("float32"), 16, axis=0))
    step = tf.function(lambda: model.clipped_gradient_sum(x, tf.constant(np.zeros(16, "int64")), tf.ones(16))[1])
    with caplog.at_level("WARNING", logger="tensorflow"):
        first, second = step().numpy(), step().numpy()
    assert not [r for r in caplog.records if "while_loop" in r.getMessage()]
    assert model.clipping == "vectorized"  # not the one-example-at-a-time fallback, which also draws per example
    assert len(np.unique(np.round(first, 6), axis=0)) == 16
    assert not np.allclose(first, second)


def test_dense_norms_over_copies_hold_when_the_copies_nearly_cancel():
    """Copies of one example have nearly the same inputs; when their output gradients cancel, the Gram-product sum
    for a Dense layer's norm cancels too. The norm must still be at least the true one (float64 here), and close."""
    import keras
    import tensorflow as tf

    from framework.privacy.step import layer_pieces

    copies, rng = 4, np.random.default_rng(0)
    layer = keras.layers.Dense(8)
    a = (30 + rng.normal(size=(5 * copies, 64)) * 1e-3).astype("float32")
    layer(a)
    d = rng.normal(size=(5, copies, 8))
    d = (d - d.mean(axis=1, keepdims=True)).reshape(5 * copies, 8).astype("float32")
    squared, clipped = layer_pieces(layer, tf.constant(a), tf.constant(d), copies=copies)
    a64, d64 = a.astype("float64").reshape(5, copies, 64), d.astype("float64").reshape(5, copies, 8)
    kernels = np.einsum("bki,bko->bio", a64, d64)
    true = (kernels**2).sum(axis=(1, 2)) + (d64.sum(axis=1) ** 2).sum(axis=1)
    assert np.all(squared.numpy().astype("float64") >= true), (squared.numpy(), true)
    np.testing.assert_allclose(squared.numpy(), true, rtol=1e-2)
    kernel, bias = clipped(tf.ones([5]))
    np.testing.assert_allclose(kernel.numpy(), kernels.sum(axis=0), atol=1e-4)


@pytest.mark.parametrize("xla", [False, True], ids=["xla-off", "xla-compiled"])
def test_conv_norms_hold_when_patches_share_a_large_offset(xla):
    """Activations near a large common value (saturated units) and output gradients that cancel over positions: the
    Gram-matrix ghost norm loses every digit there in float32 (down to zero or below, so the example would escape
    clipping); each norm must be its kernel gradient's, computed in float64 here. Both ways of summing the squares
    (XLA compiles only one of them)."""
    import keras
    import tensorflow as tf

    from framework.privacy.step import conv_patches, layer_pieces

    layer = keras.layers.Conv2D(64, 3, use_bias=False)
    rng = np.random.default_rng(0)
    a = (30 + rng.normal(size=(4, 6, 6, 16)) * 1e-3).astype("float32")
    layer(a)
    d = rng.normal(size=(4, 4, 4, 64))
    d = (d - d.mean(axis=(1, 2), keepdims=True)).astype("float32")
    norms = tf.function(lambda a, d: layer_pieces(layer, a, d, xla)[0], jit_compile=xla)
    squared = norms(tf.constant(a), tf.constant(d))
    patches = conv_patches(layer, tf.constant(a), method="extract").numpy().reshape(4, 16, -1).astype("float64")
    kernel_gradients = np.einsum("btk,btc->bkc", patches, d.reshape(4, 16, 64).astype("float64"))
    np.testing.assert_allclose(np.sqrt(squared.numpy()), np.sqrt((kernel_gradients**2).sum(axis=(1, 2))), rtol=1e-3)


@pytest.mark.parametrize("size, channels, kernel, strides, padding", [
    (28, 1, 8, 2, "same"), (13, 16, 4, 2, "valid"), (9, 3, 3, 1, "same"), (10, 2, (3, 2), (2, 1), "same"), (7, 5, 2, 3, "valid"),
])
def test_one_hot_convolution_and_gather_cut_the_same_patches_as_extract_patches(size, channels, kernel, strides, padding):
    import keras
    import tensorflow as tf

    from framework.privacy.step import conv_patches

    layer = keras.layers.Conv2D(4, kernel, strides=strides, padding=padding)
    a = tf.constant(np.random.default_rng(0).normal(size=(3, size, size + 1, channels)).astype("float32"))
    layer(a)
    extracted = conv_patches(layer, a, method="extract")
    for method in ("one_hot", "gather"):
        cut = conv_patches(layer, a, method=method)
        assert cut.shape == extracted.shape, method
        np.testing.assert_array_equal(cut.numpy(), extracted.numpy())  # bit for bit: copies, not sums


@pytest.mark.parametrize("size, kernel, strides, padding", [(28, 8, 2, "same"), (9, 3, 1, "valid"), (10, (3, 2), (2, 1), "same")])
def test_single_channel_kernel_gradients_equal_the_patches_product(size, kernel, strides, padding):
    import keras
    import tensorflow as tf

    from framework.privacy.step import conv_patches, single_channel_kernel_gradients

    rng = np.random.default_rng(0)
    layer = keras.layers.Conv2D(4, kernel, strides=strides, padding=padding)
    a = tf.constant(rng.normal(size=(3, size, size, 1)).astype("float32"))
    d = tf.constant(rng.normal(size=tuple(layer(a).shape)).astype("float32"))
    patches = tf.reshape(conv_patches(layer, a, method="extract"), [3, -1, int(np.prod(layer.kernel_size))])
    expected = tf.matmul(patches, tf.reshape(d, [3, -1, 4]), transpose_a=True)
    np.testing.assert_allclose(single_channel_kernel_gradients(layer, a, d).numpy(), expected.numpy(), atol=1e-5)


def test_layers_ghost_clipping_does_not_cover_use_the_vectorized_path(tmp_path):
    layers = [{"type": "Dense", "units": 8}, {"type": "LayerNormalization"}, {"type": "Dense", "units": 10, "activation": "softmax"}]
    _, built = dp_model(tmp_path, model={"layers": layers})
    assert built.model.clipping == "vectorized"


def test_without_noise_and_clipping_the_update_is_plain_sgd(tmp_path):
    import keras
    import tensorflow as tf

    _, built = dp_model(tmp_path, privacy={"l2_norm_clip": 1e9, "noise_multiplier": 0.0},
                        optimizer={"type": "sgd", "learning_rate": 0.1})
    model = built.model
    x = np.random.default_rng(1).normal(size=(64, 64)).astype("float32")
    y = np.arange(64) % 10
    before = [v.numpy().copy() for v in model.trainable_variables]
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(y, model(x, training=True))
        loss = tf.reduce_mean(loss)
    grads = tape.gradient(loss, model.trainable_variables)
    model.train_step((tf.constant(x), tf.constant(y)))
    for b, g, v in zip(before, grads, model.trainable_variables):
        np.testing.assert_allclose(v.numpy(), b - 0.1 * g.numpy(), atol=1e-6)


def test_noise_std_is_sigma_times_clip_over_batch(tmp_path):
    import tensorflow as tf

    sigma, clip = 2.0, 0.5
    # 19,210 weights: the sample std of the (secret, so each run's own) noise is within 0.5% of its std at one
    # standard error, so the 5% tolerance is ten of them (with the tiny MLP's 1,210 it was 2.5, and failed 1 run in 80)
    wide = {"layers": [{"type": "Dense", "units": 256, "activation": "relu"}, {"type": "Dense", "units": 10, "activation": "softmax"}]}
    _, built = dp_model(tmp_path, privacy={"l2_norm_clip": clip, "noise_multiplier": sigma},
                        optimizer={"type": "sgd", "learning_rate": 1.0}, model=wide)
    model = built.model
    before = [v.numpy().copy() for v in model.trainable_variables]
    x = np.zeros((64, 64), "float32")
    # every row is padding: the clipped sum is zero and the update is the noise alone
    model.train_step((tf.constant(x), tf.constant(np.zeros(64, "int64")), tf.constant(np.zeros(64, "float32"))))
    deltas = np.concatenate([(b - v.numpy()).ravel() for b, v in zip(before, model.trainable_variables)])
    assert deltas.size == 19210 and deltas.std() == pytest.approx(sigma * clip / 64, rel=0.05)
    assert abs(deltas.mean()) < 3 * sigma * clip / 64 / np.sqrt(deltas.size) * 3


def test_epsilon_matches_dp_accounting_for_the_documented_settings():
    args = dict(noise_multiplier=1.1, sampling_rate=256 / 60000, steps=60 * 60000 // 256, delta=1e-5)
    assert accounting.epsilon(**args, accountant="rdp") == pytest.approx(2.60, abs=0.01)
    assert accounting.epsilon(**args, accountant="pld") == pytest.approx(2.38, abs=0.01)


def test_target_epsilon_calibrates_sigma():
    sigma = accounting.calibrate_noise(target_epsilon=3.0, sampling_rate=0.01, steps=1000, delta=1e-5, accountant="rdp")
    assert accounting.epsilon(noise_multiplier=sigma, sampling_rate=0.01, steps=1000, delta=1e-5, accountant="rdp") <= 3.0 + 1e-6
    assert accounting.epsilon(noise_multiplier=sigma * 0.97, sampling_rate=0.01, steps=1000, delta=1e-5, accountant="rdp") > 3.0


@pytest.mark.parametrize(
    "sections, message",
    [
        ({"model": {"layers": [{"type": "Dense", "units": 8}, {"type": "BatchNormalization"}, {"type": "Dense", "units": 10}]}},
         "GroupNormalization or LayerNormalization"),
        ({"augmentation": {"steps": [{"type": "MixUp"}]}}, "mixes examples"),
        ({"privacy": {"l2_norm_clip": 1.0}}, "exactly one of noise_multiplier or target_epsilon"),
        ({"privacy": {**PRIVACY, "microbatches": 4}}, "changes the sensitivity"),
        ({"privacy": {**PRIVACY, "l2_norm_clip": -1}}, "greater than 0"),
    ],
)
def test_spec_checks(tmp_path, sections, message):
    spec = tiny_spec(privacy=PRIVACY)
    spec.update(sections)
    with pytest.raises(SpecError, match=message):
        validate(spec, file="s", base_dir=tmp_path)


@pytest.mark.parametrize("sampling", ["poisson", "shuffle"])
def test_dp_run_reports_epsilon_every_epoch(cli, tmp_path, write_spec, sampling):
    """Poisson: through the CLI, with XLA. Shuffle: through the Python API, with two augmented copies of each example
    (augmentation multiplicity; its CLI path is tests/test_resume.py's DP run, killed and resumed)."""
    xla = sampling == "poisson"  # XLA through the DP step with Poisson's padded batch shapes; shuffle runs without it
    spec = tiny_spec(train={"epochs": 2, "verbose": 0, "jit_compile": xla, "batch_size": 512},  # few shapes to compile
                     privacy={"l2_norm_clip": 1.0, "noise_multiplier": 1.1, "sampling": sampling, "accountant": "pld"})
    if sampling == "poisson":
        code, _, err = cli("run", write_spec(spec), "--reports", tmp_path / "r")
        assert code == 0, err
    else:
        from framework.api import run

        spec["privacy"]["augmentation_multiplicity"] = 2
        spec["augmentation"] = NOISE_STEP
        finished = run(spec, reports=tmp_path / "r")
        assert finished.metrics["augmentation"] == "model" and finished.metrics["augmentation_multiplicity"] == 2
        assert finished.model.copies == 2 and any(type(layer).__name__ == "GaussianNoise" for layer in finished.model.layers)
    folder = next((tmp_path / "r").iterdir())
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["jit_compile"] is xla
    for key in ("epsilon", "delta", "noise_multiplier", "l2_norm_clip", "sampling", "accountant", "steps"):
        assert key in metrics
    assert metrics["delta"] < 1 / metrics["train_examples"] and metrics["delta_default"]
    history = pd.read_csv(folder / "history.csv")
    assert list(history["epsilon"].diff().dropna() > 0) == [True]
    assert history["epsilon"].iloc[-1] == pytest.approx(metrics["epsilon"])
    assert ("epsilon_note" in metrics) == (sampling == "shuffle")


def test_max_epsilon_stops_training(cli, tmp_path, write_spec):
    spec = tiny_spec(train={"epochs": 50, "verbose": 0}, privacy={"l2_norm_clip": 1.0, "noise_multiplier": 2.0, "max_epsilon": 0.9})
    assert cli("run", write_spec(spec), "--reports", tmp_path / "r")[0] == 0
    metrics = json.loads(next((tmp_path / "r").iterdir()).joinpath("metrics.json").read_text())
    assert 1 < metrics["epochs"] < 50 and metrics["epsilon"] <= 0.9
    spec["privacy"]["max_epsilon"] = 0.01
    code, _, err = cli("run", write_spec(spec, "tight.json"), "--reports", tmp_path / "r2")
    assert code == 2 and "privacy.max_epsilon" in err


def test_poisson_batches_vary_in_size_with_few_padded_shapes():
    import tensorflow as tf

    from framework.privacy.sampling import bucket_size, poisson_dataset

    x = np.arange(2000, dtype="float32").reshape(1000, 2)
    ds, _ = poisson_dataset(x, np.zeros(1000, "int64"), batch_size=50, seed_variable=tf.Variable(0, dtype=tf.int64),
                            steps_per_epoch=40)
    sizes, shapes = [], set()
    for xb, yb, wb in ds:
        shapes.add(tuple(xb.shape))
        sizes.append(float(wb.numpy().sum()))
    assert all(rows % bucket_size(50) == 0 for rows, _ in shapes) and len(shapes) < 15
    assert np.mean(sizes) == pytest.approx(50, rel=0.1) and np.std(sizes) > 2  # sizes vary, as Poisson's do


def test_audit_command_and_spec_switch(cli, tmp_path):
    code, _, err = cli("run", SPECS / "digits_dp.toml", "--reports", tmp_path, "--set", "train.epochs=2", "--set", "train.verbose=0")
    assert code == 0, err
    folder = next(tmp_path.iterdir())
    metrics = json.loads((folder / "metrics.json").read_text())
    assert 0.0 <= metrics["audit_auc"] <= 1.0 and "audit_advantage" in metrics
    code, out, _ = cli("audit", folder)
    assert code == 0 and "AUC" in out and "epsilon" in out


def test_hyperband_with_privacy_is_refused_at_the_tuner_key(cli, write_spec):
    spec = tiny_spec(privacy=PRIVACY, tune={"max_trials": 2, "tuner": "hyperband"})
    spec["train"]["batch_size"] = {"tune": "choice", "values": [32, 64]}
    code, _, err = cli("check", write_spec(spec, "hb.json"), "--schema-only")
    assert code == 2 and "tune.tuner" in err and "hyperband" in err and "Traceback" not in err, err


# tuning a private spec warns: tests/test_api.py::test_max_epsilon_and_the_epsilon_log_hold_inside_tune_trials



@pytest.mark.parametrize("step", ["Equalization", "RandAugment", "AugMix"])
def test_augmentations_that_equalize_over_the_batch_are_refused(cli, write_spec, step):
    """Keras's Equalization (also inside RandAugment and AugMix) takes one histogram of the whole batch: one example
    would change the others' inputs, outside what clipping bounds."""
    spec = tiny_spec(privacy=PRIVACY, augmentation={"steps": [{"type": step}]})
    code, _, err = cli("check", write_spec(spec, "eq.json"), "--schema-only")
    assert code == 2 and "augmentation.steps[0].type" in err and "whole batch" in err and "Traceback" not in err, err


def test_the_augmentations_taken_as_deterministic_draw_nothing():
    """DETERMINISTIC_AUGMENTATIONS (refused alone with multiplicity): none takes a seed, two calls in training mode on
    the same images agree, and no other Keras augmentation lacks a seed; a random step (RandomFlip) is the control."""
    import inspect

    import keras

    from framework.spec.sections.privacy import DETERMINISTIC_AUGMENTATIONS

    images = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    arguments = {"CenterCrop": {"height": 8, "width": 8}, "Resizing": {"height": 8, "width": 8},
                 "AutoContrast": {"value_range": (0, 255)}, "MaxNumBoundingBoxes": {"max_number": 2},
                 "ContrastLimitedAdaptiveHistogramEqualization": {"tile_grid_size": (4, 4)}}
    from framework.build.augment import keras_augmentations
    from framework.spec.sections.privacy import BATCH_HISTOGRAM_AUGMENTATIONS

    # every Keras augmentation without a seed is listed (or refused with privacy anyway)
    seedless = {name for name, layer_class in keras_augmentations().items()
                if "seed" not in inspect.signature(layer_class.__init__).parameters}
    assert seedless <= {*DETERMINISTIC_AUGMENTATIONS, *BATCH_HISTOGRAM_AUGMENTATIONS}, seedless
    for name in DETERMINISTIC_AUGMENTATIONS:
        layer_class = getattr(keras.layers, name)
        assert "seed" not in inspect.signature(layer_class.__init__).parameters, name
        layer = layer_class(**arguments[name])
        np.testing.assert_array_equal(layer(images, training=True), layer(images, training=True), err_msg=name)
    flip = keras.layers.RandomFlip(seed=1)
    assert not np.array_equal(flip(images, training=True), flip(images, training=True))


def test_random_crop_in_the_model_is_refused_before_training(cli, write_spec, tmp_path):
    """In the model RandomCrop crops while training only, so evaluation would crash on the next layer's shape."""
    spec = tiny_spec(data={"reshape": [8, 8, 1]}, privacy={**PRIVACY, "augmentation_multiplicity": 2},
                     augmentation={"steps": [{"type": "RandomCrop", "height": 6, "width": 6}]})
    code, _, err = cli("run", write_spec(spec, "crop.json"), "--reports", tmp_path / "r")
    assert code == 2 and "augmentation.steps[0].type" in err and "RandomTranslation" in err and "Traceback" not in err, err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_augmentation_multiplicity_accepts_a_random_step_beside_deterministic_ones(cli, write_spec):
    steps = [{"type": "CenterCrop", "height": 6, "width": 6}, {"type": "RandomFlip"}]
    spec = tiny_spec(data={"reshape": [8, 8, 1]}, privacy={**PRIVACY, "augmentation_multiplicity": 4},
                     augmentation={"steps": steps})
    code, _, err = cli("check", write_spec(spec, "m.json"), "--schema-only")
    assert code == 0, err


@pytest.mark.parametrize("sections, key, words", [
    ({}, "privacy.augmentation_multiplicity", "no steps"),
    ({"augmentation": {**NOISE_STEP, "placement": "pipeline"}}, "augmentation.placement", "must run in the model"),
    ({"data": {"reshape": [8, 8, 1]}, "augmentation": {"steps": [{"type": "CenterCrop", "height": 6, "width": 6}]}},
     "privacy.augmentation_multiplicity", "draw nothing at random"),
    ({"augmentation": NOISE_STEP, "model": {"kind": "vae", "encoder": [{"type": "Dense", "units": 8}],
                                            "decoder": [{"type": "Dense", "units": 8}]}},
     "privacy.augmentation_multiplicity", "VAE or GAN"),
])
def test_augmentation_multiplicity_is_refused_where_the_copies_could_not_differ(cli, write_spec, sections, key, words):
    spec = tiny_spec(privacy={**PRIVACY, "augmentation_multiplicity": 4}, **sections)
    spec["model"] = sections.get("model", spec["model"])  # a VAE's model table replaces the MLP's
    spec["data"] = {**spec["data"], **sections.get("data", {})}
    code, _, err = cli("check", write_spec(spec, "m.json"), "--schema-only")
    assert code == 2 and f": {key}: " in err and words in err and "Traceback" not in err, err

