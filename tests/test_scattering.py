"""Scattering2D (kymatio's wavelet scattering as a layer) and fixed features computed once before training: the
layer's values, its config and saving, and a DP run on top of it whose saved model reads raw images."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, run_outcome

pytest.importorskip("kymatio")


SCATTER_DP = {
    "name": "scatter_dp", "seed": 3,
    "data": {"source": "sklearn:digits", "scale": 0.0625, "reshape": [8, 8, 1], "validation_split": 0.1,
             "class_names": [str(i) for i in range(10)]},
    "model": {"layers": [{"type": "Scattering2D", "J": 2},
                         {"type": "GroupNormalization", "groups": 27, "center": False, "scale": False},
                         {"type": "Flatten"}, {"type": "Dense", "units": 10, "activation": "softmax"}]},
    "train": {"epochs": 2, "batch_size": 128, "verbose": 0, "optimizer": {"type": "sgd", "learning_rate": 2.0,
                                                                         "momentum": 0.9}},
    "privacy": {"l2_norm_clip": 0.1, "noise_multiplier": 1.0, "reproducible_noise": True},
}


def test_the_layer_gives_kymatio_s_coefficients_channels_last_and_round_trips(tmp_path):
    import keras
    from kymatio.scattering2d.frontend.numpy_frontend import ScatteringNumPy2D

    from framework.build.blocks import Scattering2D

    images = np.random.default_rng(0).uniform(size=(3, 16, 12, 2)).astype("float32")
    layer = Scattering2D(J=2, L=4)
    out = keras.ops.convert_to_numpy(layer(images))
    assert out.shape == (3, 4, 3, 2 * layer.coefficients()) == (3, *layer.compute_output_shape((None, 16, 12, 2))[1:])
    expected = ScatteringNumPy2D(J=2, shape=(16, 12), L=4)(images.transpose(0, 3, 1, 2))  # (3, 2, K, 4, 3)
    np.testing.assert_allclose(out, expected.reshape(3, -1, 4, 3).transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-5)
    inputs = keras.Input((16, 12, 2))
    model = keras.Model(inputs, Scattering2D.from_config(layer.get_config())(inputs))
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(reloaded(images, training=False)), out, rtol=1e-5, atol=1e-6)


def test_a_size_the_scales_do_not_divide_is_a_spec_error_at_the_layer(cli, write_spec):
    spec = {**SCATTER_DP, "data": {**SCATTER_DP["data"], "reshape": [64, 1, 1]}}
    code, _, err = cli("check", write_spec(spec))
    assert code == 2 and "model.layers[0]" in err and "divisible by 4" in err


@pytest.fixture(scope="module")
def scatter_dp_run(tmp_path_factory):
    """SCATTER_DP trained once, in this process."""
    from framework.spec.load import load_spec_input
    from framework.train.run import run_experiment

    return run_experiment(load_spec_input(SCATTER_DP), tmp_path_factory.mktemp("scatter") / "reports")


def test_a_dp_run_trains_on_features_computed_once_and_saves_a_model_of_raw_images(scatter_dp_run):
    from framework.api import open_run
    from framework.data import load_splits

    result = scatter_dp_run
    prepared = result.prepared
    assert prepared.splits.x_train.shape[1:] == (2, 2, 81)  # the scattering coefficients, computed once
    assert prepared.model.input_shape[1:] == (2, 2, 81) and prepared.model.clipping == "ghost"
    assert [type(layer).__name__ for layer in prepared.built.features.layers] == ["InputLayer", "Scattering2D"]
    assert result.metrics["status"] == "completed" and result.metrics["test_accuracy"] > 0.5

    saved = open_run(result.folder.path).model  # model.keras: the whole declared model, flat, on raw 8x8 digits
    assert [type(layer).__name__ for layer in saved.layers] == [
        "InputLayer", "Scattering2D", "GroupNormalization", "Flatten", "Dense", "Activation"]
    raw = load_splits(prepared.spec.data, prepared.spec.seed)
    predicted = np.asarray(saved(raw.x_test, training=False)).argmax(axis=1)  # called directly: no predict trace
    assert abs(float(np.mean(predicted == raw.y_test)) - result.metrics["test_accuracy"]) <= 1 / len(raw.y_test)


@pytest.mark.slow
def test_a_dp_run_on_fixed_features_killed_after_an_epoch_resumes_exactly(scatter_dp_run, tmp_path):
    """Killed just after epoch 1's checkpoint, then resumed: the features are computed again from the stored
    examples, and the run ends as the uninterrupted one did (its DP noise continues, not replayed)."""
    from framework.train.checkpoint import FAULT_ENV
    from framework.train.run import resume_experiment

    spec_file = tmp_path / "scatter_dp.json"
    spec_file.write_text(json.dumps(SCATTER_DP))
    killed = subprocess.run([sys.executable, "-m", "framework", "run", str(spec_file), "--reports", str(tmp_path / "killed")],
                            cwd=ROOT, env={**os.environ, FAULT_ENV: "1:renamed", "TF_CPP_MIN_LOG_LEVEL": "3"},
                            capture_output=True, text=True, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    folder = next((tmp_path / "killed").iterdir())
    assert resume_experiment(folder).metrics["resumed_from_epoch"] == 1
    (metrics, history), (want_metrics, want_history) = run_outcome(folder), run_outcome(scatter_dp_run.folder.path)
    assert metrics == want_metrics
    pd.testing.assert_frame_equal(history, want_history)
