"""framework/compat.py is the one place that reaches into library internals: each accessor still works with
the installed Keras, TensorFlow and keras-tuner, and nothing else in the package reaches in."""

import re

import numpy as np
import pytest

from conftest import ROOT

INTERNALS = re.compile(r"keras\.src|tensorflow\.python|keras_tuner\.src|kymatio\.scattering2d|_read_array_header|\._loss_tracker|_inbound_nodes|\._preprocess\(|_run_exitfuncs|\._symbolic_build\(|\._flatten_layers\(")


def test_every_accessor_works_with_the_installed_libraries():
    import keras

    from framework import compat

    compat.set_op_determinism(True)
    assert compat.op_determinism()
    compat.set_op_determinism(False)
    assert not compat.op_determinism()
    assert issubclass(keras.layers.RandomFlip, compat.image_preprocessing_base())
    inputs = keras.Input((3,))
    dense = keras.layers.Dense(2)
    model = keras.Model(inputs, dense(inputs))
    assert len(compat.inbound_nodes(dense)) == 1
    model.compile("sgd", "mse")
    assert hasattr(compat.loss_tracker(model), "update_state")
    assert callable(compat.tensorflow_trainer().reduce_per_replica)
    compat.quiet_keras_tuner()
    vectorizer = keras.layers.TextVectorization()
    assert compat.text_tokens(vectorizer, ["A good, GOOD film!", ""]) == [["a", "good", "good", "film"], []]
    assert callable(compat.kymatio_scattering2d()(J=1, shape=(4, 4)).scattering)
    dropout = keras.layers.Dropout(0.5, seed=1)
    nested = keras.Sequential([keras.Input((64,)), dropout])
    outer = keras.Model(inputs := keras.Input((64,)), nested(inputs))
    generator = dropout.seed_generator
    with compat.per_example_seeds(outer, 3):  # the nested model's Dropout draws with the example's index
        assert dropout.seed_generator is not generator and dropout.seed_generator.state is generator.state
        masks = [dropout(keras.ops.ones((1, 64)), training=True) for _ in range(2)]
    assert dropout.seed_generator is generator and dropout.seed_generator in dropout._seed_generators
    assert list(keras.ops.convert_to_numpy(generator.state)) == [1, 2]  # advanced once per draw, as before
    assert not (keras.ops.convert_to_numpy(masks[0]) == keras.ops.convert_to_numpy(masks[1])).all()


def test_no_other_module_uses_library_internals():
    offenders = []
    for path in (ROOT / "framework").rglob("*.py"):
        if path.name == "compat.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if INTERNALS.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "library internals outside framework/compat.py:\n" + "\n".join(offenders)


def test_keras_scikit_learn_and_pyplot_integrations_load_on_first_use():
    """A fresh process importing TensorFlow through the framework loads neither scikit-learn nor matplotlib (about
    1 s of start-up); Keras's wrappers and galleries still work when read. Fails when Keras imports them elsewhere."""
    from conftest import run_python

    code = """
import sys
from framework.quiet import import_tensorflow
import_tensorflow()
print("loaded:", sorted(m for m in ("sklearn", "scipy.stats", "matplotlib") if m in sys.modules))
import threading
import keras, sklearn.base
read = []
threads = [threading.Thread(target=lambda: read.append(keras.wrappers.SKLearnClassifier)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
assert len(read) == 4 and len(set(read)) == 1, read  # run once, seen whole by every thread
assert issubclass(keras.wrappers.SKLearnClassifier, sklearn.base.BaseEstimator)
from keras.wrappers import *
assert SKLearnRegressor.__module__ == "keras.src.wrappers.sklearn_wrapper"
import keras.src.visualization.plot_image_gallery as gallery
assert callable(keras.visualization.plot_image_gallery) and gallery.plt is sys.modules["matplotlib.pyplot"]
print("integrations work")
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded: []" in result.stdout and "integrations work" in result.stdout, result.stdout + result.stderr[-2000:]


@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
def test_per_example_seeds_give_each_example_and_layer_its_own_draws(jit):
    """Inside tf.vectorized_map, two Dropout layers seeded 10 and 11 (as the framework numbers them): every example
    gets its own mask, and no example's mask in one layer repeats another example's in the other (an index added
    to the seed, not folded in, made layer 10's example k + 1 draw layer 11's example k)."""
    import keras
    import tensorflow as tf

    from framework import compat

    inputs = keras.Input((64,))
    first, second = keras.layers.Dropout(0.5, seed=10), keras.layers.Dropout(0.5, seed=11)
    model = keras.Model(inputs, [first(inputs), second(inputs)])

    def one_example(example):
        x, index = example
        with compat.per_example_seeds(model, index):
            return tuple(model(x[None], training=True))

    @tf.function(jit_compile=jit)
    def masks(x):
        inner = tf.function(lambda e: tf.vectorized_map(one_example, e), autograph=False)
        return inner((x, tf.range(tf.shape(x)[0], dtype=tf.int64)))

    a, b = (m.numpy()[:, 0] != 0 for m in masks(tf.ones((6, 64))))
    rows = [tuple(row) for row in np.concatenate([a, b])]
    assert len(set(rows)) == 12, "two examples or two layers drew the same mask"
    assert list(first.seed_generator.state.numpy()) == [10, 1]  # one step: the generator advanced once
