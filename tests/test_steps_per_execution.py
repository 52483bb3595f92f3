"""train.steps_per_execution: several batches per compiled call make the same updates, in the same order, as one
batch per call (DP noise, Poisson batches, Dropout and augmentation included); "auto" falls back to 1 for callbacks
that act on batches; a bad value is one message at the key."""

import json

import pandas as pd
import pytest
from conftest import run_outcome, tiny_spec


def test_several_batches_per_call_train_exactly_as_one_per_call(tmp_path):
    from framework.spec.load import load_spec_input
    from framework.train.run import run_experiment

    # 2 epochs of Poisson batches (about 13 per epoch): 5 per call leaves a shorter last call in each epoch
    spec = tiny_spec(train={"epochs": 2, "batch_size": 128, "verbose": 0}, regularization={"dropout": 0.2},
                     augmentation={"steps": [{"type": "GaussianNoise", "stddev": 0.1}]},
                     privacy={"l2_norm_clip": 1.0, "noise_multiplier": 1.1, "reproducible_noise": True})
    outcomes = {}
    for steps in (1, 5):
        spec["train"]["steps_per_execution"] = steps
        result = run_experiment(load_spec_input(spec), tmp_path / str(steps))
        assert result.prepared.model.steps_per_execution == steps
        assert json.loads((result.folder.path / "environment.json").read_text())["steps_per_execution"] == steps
        outcomes[steps] = run_outcome(result.folder.path)
    (one, one_history), (five, five_history) = outcomes[1], outcomes[5]
    assert (one.pop("steps_per_execution"), five.pop("steps_per_execution")) == (1, 5)
    one.pop("resolved_digest"), five.pop("resolved_digest")  # the specs differ in that one key
    assert one == five and one["status"] == "completed"
    pd.testing.assert_frame_equal(one_history, five_history)


@pytest.mark.parametrize(("sections", "steps_per_epoch", "expected"), [
    ({}, 500, 16),  # 1 epoch of 500 steps
    ({}, 499, 1),  # shorter: tracing the loop would cost more than it saves
    ({"train": {"callbacks": [{"type": "EarlyStopping", "monitor": "val_loss"}]}}, 500, 16),  # acts on epochs only
    ({"train": {"callbacks": [{"type": "TerminateOnNaN"}]}}, 500, 1),  # acts on every batch
    ({"distribute": {"strategy": "mirrored", "cpu_devices": 2}}, 500, 1),  # Keras's multi-step loop fails there
])
def test_auto_is_16_batches_per_call_for_long_runs_without_batch_callbacks_or_distribution(sections, steps_per_epoch, expected):
    from framework.spec.load import load_spec_input
    from framework.train.compile import (
        AUTO_MIN_STEPS,
        AUTO_STEPS_PER_EXECUTION,
        steps_per_execution,
    )

    assert (AUTO_STEPS_PER_EXECUTION, AUTO_MIN_STEPS) == (16, 500)
    assert steps_per_execution(load_spec_input(tiny_spec(**sections)).spec, steps_per_epoch) == expected
    if "distribute" not in sections:  # a value given is taken as it is
        chosen = tiny_spec(**{**sections, "train": {**sections.get("train", {}), "steps_per_execution": 3}})
        assert steps_per_execution(load_spec_input(chosen).spec, steps_per_epoch) == 3


def test_a_run_records_the_value_auto_chose(tmp_path):
    from framework.spec.load import load_spec_input
    from framework.train.run import run_experiment

    # 4 epochs of 8-example batches on 1,293 digits: 648 steps, over AUTO_MIN_STEPS, so 16 batches per call
    result = run_experiment(load_spec_input(tiny_spec(train={"epochs": 4, "batch_size": 8, "verbose": 0})), tmp_path)
    assert result.metrics["steps_per_epoch"] == 162 and result.metrics["status"] == "completed"
    assert result.prepared.model.steps_per_execution == result.metrics["steps_per_execution"] == 16


def test_several_batches_per_call_with_mirrored_replicas_is_refused_at_the_key(cli, write_spec):
    spec = tiny_spec(train={"steps_per_execution": 4}, distribute={"strategy": "mirrored", "cpu_devices": 2})
    code, _, err = cli("check", write_spec(spec))
    assert code == 2 and "Traceback" not in err
    assert "train.steps_per_execution" in err and "set it to 1" in err


@pytest.mark.parametrize("value", [0, -2, 2.5, "many", True])
def test_a_bad_value_is_one_message_at_the_key(cli, write_spec, value):
    code, _, err = cli("check", write_spec(tiny_spec(train={"steps_per_execution": value})))
    assert code == 2 and "Traceback" not in err
    assert "train.steps_per_execution" in err and "whole number of batches" in err


@pytest.mark.parametrize("private", [False, True], ids=["plain", "dp"])
def test_the_first_train_step_creates_no_variables(private):
    """The compiled metrics' variables exist before fit (train/compile.py: build_compiled_state): a tf.function
    that creates variables on its first call is traced twice, and Keras's TensorFlow trainer would create them
    while tracing the first step (about 0.2 s of every run)."""
    from framework.spec.load import load_spec_input
    from framework.train.prepare import prepare

    spec = tiny_spec(privacy={"l2_norm_clip": 1.0, "noise_multiplier": 1.1}) if private else tiny_spec()
    prepared = prepare(load_spec_input(spec))
    model = prepared.model
    before = {v.path for v in model.variables + model.metrics_variables}
    assert any("accuracy" in path for path in before)
    model.fit(prepared.train_ds, epochs=1, verbose=0, callbacks=prepared.pipeline_callbacks, shuffle=False)
    assert {v.path for v in model.variables + model.metrics_variables} == before
    assert model.evaluate(prepared.test_ds, return_dict=True, verbose=0)["accuracy"] > 0  # reset, then counted


def test_compiled_state_built_early_picks_what_keras_picks_at_the_first_step():
    """Keras chooses an accuracy and a cross-entropy kind from the shapes of y and the output; building them early
    from the dataset's element_spec must choose as Keras's own first step does (a batch of 1 in place of unknown
    sizes chose another accuracy for a rank-1 output)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from framework.train.compile import build_compiled_state

    def model():
        inputs = keras.Input((4,))
        outputs = keras.layers.Reshape(())(keras.layers.Dense(1, activation="sigmoid", kernel_initializer="ones")(inputs))
        built = keras.Model(inputs, outputs)
        built.compile("sgd", loss="crossentropy", metrics=["accuracy"])
        return built

    rng = np.random.default_rng(0)
    data = tf.data.Dataset.from_tensor_slices((rng.normal(size=(32, 4)).astype("float32"), rng.integers(0, 2, 32).astype("float32"))).batch(8)
    early, keras_own = model(), model()
    assert build_compiled_state(early, data.element_spec)
    results = [m.evaluate(data, return_dict=True, verbose=0) for m in (early, keras_own)]
    assert results[0] == results[1]
