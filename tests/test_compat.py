"""framework/compat.py is the one place that reaches into library internals: each accessor still works with
the installed Keras, TensorFlow and keras-tuner, and nothing else in the package reaches in."""

import re
from pathlib import Path

from conftest import ROOT

INTERNALS = re.compile(r"keras\.src|tensorflow\.python|keras_tuner\.src|kymatio\.scattering2d|_read_array_header|\._loss_tracker|_inbound_nodes|\._preprocess\(|_run_exitfuncs")


def test_every_accessor_works_with_the_installed_libraries():
    import keras

    from framework import compat

    compat.set_op_determinism(False)
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


def test_no_other_module_uses_library_internals():
    offenders = []
    for path in (ROOT / "framework").rglob("*.py"):
        if path.name == "compat.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if INTERNALS.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "library internals outside framework/compat.py:\n" + "\n".join(offenders)
