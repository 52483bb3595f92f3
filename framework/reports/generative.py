"""What a generative run reports: its samples, and how useful and how real they are.

- ``samples.png``: a grid of samples, a row per class when the model is conditional;
- ``synthetic_accuracy``: the classification accuracy score (Ravuri & Vinyals, 2019): the fixed classifier below,
  trained only on generated labelled examples (as many as the real training split, classes balanced), tested on the
  real test split;
- ``fid``: the Fréchet distance between the real test split and as many generated examples (for the same labels),
  in the feature space of the fixed classifier's penultimate layer (Dense 128) trained on the real training split.
  Its real-data test accuracy is ``real_accuracy``: the ceiling for ``synthetic_accuracy``. A private run uses no
  real training example here: its feature classifier trains on the test split, and it has no ``real_accuracy``.

The fixed classifier (the same for every run, so runs compare): for images (H, W, C), Conv2D 16 3x3 ReLU, max-pool,
Conv2D 32 3x3 ReLU, max-pool, Dense 128 ReLU, Dense softmax; for flat features, Dense 256 ReLU, Dense 128 ReLU, Dense
softmax. Adam 1e-3, batch 128, 5 epochs and at least ``model.score_steps`` steps (1000 unless the spec says; small
data sets get more epochs), seeded from the spec's seed.

    >>> frechet_distance(features_a, features_b)   # 0 for identical Gaussians
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

CLASSIFIER_EPOCHS = 5
CLASSIFIER_BATCH = 128
FEATURES = "features"
GRID_COLUMNS = 10


def evaluation_classifier(example_shape: tuple, classes: int, seed: int):
    """The fixed classifier of the module docstring, compiled."""
    import keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    x = inputs = keras.Input(tuple(example_shape))
    if len(example_shape) == 3:
        for filters in (16, 32):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
            x = layers.MaxPooling2D(padding="same")(x)
        x = layers.Flatten()(x)
    else:
        x = layers.Flatten()(x) if len(example_shape) > 1 else x
        x = layers.Dense(256, activation="relu")(x)
    features = layers.Dense(128, activation="relu", name=FEATURES)(x)
    model = keras.Model(inputs, layers.Dense(classes, activation="softmax")(features))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def train_classifier(x, y, classes: int, seed: int, min_steps: int):
    import tensorflow as tf

    model = evaluation_classifier(x.shape[1:], classes, seed)
    steps = max(CLASSIFIER_EPOCHS * math.ceil(len(x) / CLASSIFIER_BATCH), min_steps)
    # one pass of `steps` reshuffled batches: the same updates as that many epochs, without each epoch's overhead
    data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).repeat().batch(CLASSIFIER_BATCH)
    model.fit(data, steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0)
    return model


def accuracy(model, x, y) -> float:
    return float(np.mean(model.predict(x, batch_size=512, verbose=0).argmax(axis=1) == y))


def features_of(model, x) -> np.ndarray:
    import keras

    extractor = keras.Model(model.inputs, model.get_layer(FEATURES).output)
    return np.asarray(extractor.predict(x, batch_size=512, verbose=0), dtype="float64")


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` of two sets of feature rows (Heusel et al., 2017)."""
    from scipy import linalg

    a, b = np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings():  # dead ReLU features make the product singular: handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(root).all():  # offset both covariances slightly, as common FID code does
            offset = np.eye(len(cov_a)) * 1e-6
            root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    root = np.real(root)
    return float(max(0.0, np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root)))


def generative_scores(network, facts: dict, splits, seed: int, min_steps: int, private: bool = False) -> dict[str, Any]:
    """synthetic_accuracy (conditional models only), fid and real_accuracy, as in the module docstring. ``private``
    (a DP run): the private training split is not used; fid's feature classifier trains on the (public) test split
    instead, and real_accuracy is left out. ``min_steps``: the classifiers' least number of steps (model.score_steps)."""
    from framework.build.generative import balanced_labels, generate

    classes = facts["classes"]
    y_test = np.asarray(splits.y_test)
    x_real, y_real = (splits.x_test, y_test) if private else (splits.x_train, np.asarray(splits.y_train))
    real = train_classifier(x_real, y_real, classes, seed, min_steps)
    fakes = generate(network, y_test, facts, seed + 1)
    scores: dict[str, Any] = {"fid": round(frechet_distance(features_of(real, splits.x_test), features_of(real, fakes)), 4)}
    if not private:
        scores["real_accuracy"] = accuracy(real, splits.x_test, y_test)
    if facts["conditional"]:
        labels = balanced_labels(len(splits.y_train), classes)
        synthetic = train_classifier(generate(network, labels, facts, seed + 2), labels, classes, seed, min_steps)
        scores["synthetic_accuracy"] = accuracy(synthetic, splits.x_test, y_test)
    return scores


def write_samples(network, facts: dict, class_names: list[str] | None, path: Path, seed: int) -> Path:
    """samples.png: a row of GRID_COLUMNS samples per class (conditional), else GRID_COLUMNS rows of samples."""
    from framework.build.generative import generate
    from framework.reports.plots import sample_grid

    classes = facts["classes"]
    if facts["conditional"]:
        labels = np.repeat(np.arange(classes), GRID_COLUMNS)
        names = list(class_names) if class_names else [str(c) for c in range(classes)]
    else:
        labels, names = np.zeros(GRID_COLUMNS * GRID_COLUMNS, dtype="int64"), None
    images = generate(network, labels, facts, seed)
    return sample_grid(images, path, names, GRID_COLUMNS)


def finish_generative(folder, prepared) -> dict[str, Any]:
    """Save the generator as model.keras (reloaded and compared), write samples.png, and score the samples."""
    import keras

    from framework.reports import plots
    from framework.reports import run_folder as rf

    model, facts, spec = prepared.model, prepared.built.facts, prepared.spec
    network = model.generator_network
    network.save(folder.file(rf.MODEL))
    z = np.random.default_rng(0).standard_normal((4, facts["latent_dim"])).astype("float32")
    one_hot = np.eye(facts["classes"], dtype="float32")[np.arange(4) % facts["classes"]]
    rf.verify_saved_model(folder.path, network, [z, one_hot])
    write_samples(network, facts, prepared.splits.class_names, folder.file(plots.SAMPLES), spec.seed)
    scores = generative_scores(network, facts, prepared.splits, spec.seed, spec.model.score_steps,
                               private=spec.dp is not None)
    keras.utils.set_random_seed(spec.seed)  # the scores reseeded Keras; later steps start from the spec's seed
    return scores
