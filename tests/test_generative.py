"""Generative models (issue 18): a conditional VAE and GAN declared in a spec, trained through the one engine,
their reports (samples.png, synthetic_accuracy, fid, the ELBO), the `sample` command, synthetic data mixed into a
training split, the refusals, and exact resume of a GAN (two optimizers, a latent-code generator) after a kill.
Tiny digits runs throughout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, SPECS, run_outcome

from framework.train.checkpoint import FAULT_ENV

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
DATA = {"source": "sklearn:digits", "scale": 0.0625, "reshape": [8, 8, 1], "validation_split": 0.1}
TINY_CVAE = {
    "name": "tiny_cvae", "seed": 1, "data": {**DATA, "train_limit": 600},
    "model": {"kind": "vae", "latent_dim": 4, "score_steps": 200,
              "encoder": [{"type": "Flatten"}, {"type": "Dense", "units": 64, "activation": "relu"}],
              "decoder": [{"type": "Dense", "units": 64, "activation": "relu"},
                          {"type": "Dense", "units": 64, "activation": "sigmoid"}]},
    "train": {"epochs": 2, "batch_size": 64, "verbose": 0},
}
TINY_CGAN = {
    "name": "tiny_cgan", "seed": 2, "data": {**DATA, "train_limit": 400},
    "model": {"kind": "gan", "latent_dim": 8, "gan_loss": "hinge", "discriminator_steps": 2, "score_steps": 20,
              "generator": [{"type": "Dense", "units": 32, "activation": "relu"},
                            {"type": "Dense", "units": 64, "activation": "sigmoid"}],
              "discriminator": [{"type": "Conv2D", "filters": 8, "kernel_size": 3, "activation": "leaky_relu"},
                                {"type": "Flatten"}]},
    "train": {"epochs": 3, "batch_size": 64, "verbose": 0, "optimizer": {"type": "adam", "learning_rate": 1e-3}},
}


def _with(spec: dict, **changes) -> dict:
    out = json.loads(json.dumps(spec))
    for key, value in changes.items():
        section, _, leaf = key.partition("__")
        if leaf:
            out[section][leaf] = value
        else:
            out[section] = value
    return out


@pytest.fixture(scope="module")
def cvae_run(tmp_path_factory):
    """A tiny conditional VAE trained through the Python API, once for the module."""
    import framework

    tmp = tmp_path_factory.mktemp("cvae")
    return framework.run(TINY_CVAE, reports=tmp / "reports")


def test_a_conditional_vae_trains_and_reports_its_samples(cvae_run):
    folder, metrics = cvae_run.folder, cvae_run.metrics
    assert metrics["status"] == "completed" and metrics["generative"] == "vae" and metrics["classes"] == 10
    assert (folder / "samples.png").stat().st_size > 1000 and "samples.png" in (folder / "report.html").read_text()
    assert 0.0 <= metrics["synthetic_accuracy"] <= 1.0 and metrics["synthetic_accuracy"] > 0.2  # better than chance
    assert 0.0 <= metrics["real_accuracy"] <= 1.0 and metrics["fid"] >= 0.0
    assert metrics["test_elbo"] == pytest.approx(-(metrics["test_reconstruction"] + metrics["test_kl"]), rel=1e-4)
    history = cvae_run.history
    assert len(history) == 2 and {"elbo", "kl", "reconstruction", "val_elbo"} <= set(history.columns)
    import framework

    assert cvae_run.model.kind == "vae"  # the trained VAE; model.keras is its decoder: [z, one-hot label] -> example
    generator = framework.open_run(folder).model
    assert [tuple(i.shape[1:]) for i in generator.inputs] == [(4,), (10,)] and generator.output_shape[1:] == (8, 8, 1)


def test_generative_metrics_appear_in_report_and_compare(cli, cvae_run, tmp_path):
    code, out, err = cli("report", cvae_run.folder.parent, "--format", "csv")
    assert code == 0, err
    row = pd.read_csv(__import__("io").StringIO(out)).iloc[0]
    assert row["synthetic_accuracy"] == pytest.approx(cvae_run.metrics["synthetic_accuracy"])
    assert "fid" in row and "test_elbo" in row
    import shutil

    from framework.reports.compare import compare_runs

    other = Path(shutil.copytree(cvae_run.folder, tmp_path / f"{cvae_run.folder.name}x"))
    (other / "metrics.json").write_text(json.dumps({**cvae_run.metrics, "run": other.name, "fid": 1.0}))
    _, metrics, _ = compare_runs([cvae_run.folder, other])
    assert {"synthetic_accuracy", "fid", "test_elbo"} <= set(metrics["metric"])


def test_frechet_distance_is_small_for_the_same_distribution_and_large_for_noise():
    from framework.reports.generative import frechet_distance

    rng = np.random.default_rng(0)
    real = rng.normal(size=(2000, 8)) @ rng.normal(size=(8, 8))
    again = rng.normal(size=(2000, 8)) @ np.linalg.cholesky(np.cov(real, rowvar=False)).T + real.mean(axis=0)
    noise = rng.uniform(-3, 3, size=(2000, 8))
    assert 0.0 <= frechet_distance(real, again) < 0.1 * frechet_distance(real, noise)
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-6)


def test_sample_writes_an_npz_a_spec_trains_on(cli, cvae_run, tmp_path, write_spec):
    path = tmp_path / "synthetic.npz"
    code, _, err = cli("sample", cvae_run.folder, 200, "--output", path, "--seed", 3)
    assert code == 0, err
    with np.load(path) as npz:
        x, y = npz["x"], npz["y"]
    assert x.shape == (200, 8, 8, 1) and np.bincount(y).tolist() == [20] * 10
    assert 0 <= x.min() and x.max() <= 16.0 + 1e-4  # the data's own units: 0..16 pixels, as sklearn:digits gives them
    spec = {"name": "on_synthetic", "seed": 1, "data": {"source": f"npz:{path}", "scale": 0.0625, "reshape": [8, 8, 1]},
            "model": {"layers": [{"type": "Flatten"}, {"type": "Dense", "units": 10, "activation": "softmax"}]},
            "train": {"epochs": 1, "verbose": 0}}
    code, _, err = cli("run", write_spec(spec), "--reports", tmp_path / "r")
    assert code == 0, err


def test_synthetic_examples_join_the_training_split_at_the_declared_ratio(cvae_run, tmp_path):
    import framework

    spec = {"name": "mixed", "seed": 1, "data": {**DATA, "train_limit": 300,
                                                 "synthetic": {"run": str(cvae_run.folder), "ratio": 0.5}},
            "model": {"layers": [{"type": "Flatten"}, {"type": "Dense", "units": 10, "activation": "softmax"}]},
            "train": {"epochs": 1, "verbose": 0}}
    run = framework.run(spec, reports=tmp_path)
    assert run.metrics["real_train_examples"] == 300 and run.metrics["synthetic_examples"] == 150
    assert run.metrics["train_examples"] == 450
    sizes = json.loads((run.folder / "preprocessing.json").read_text())["sizes"]
    assert sizes["test"] == 360 and sizes["validation"] > 0  # validation and test stay real


def test_a_conditional_gan_trains_through_the_cli(cli, tmp_path, write_spec):
    code, _, err = cli("run", write_spec(_with(TINY_CGAN, train__tensorboard=True)), "--reports", tmp_path / "r")
    assert code == 0, err
    folder = next((tmp_path / "r").iterdir())
    metrics = json.loads((folder / "metrics.json").read_text())
    history = pd.read_csv(folder / "history.csv")
    assert {"d_loss", "g_loss", "val_d_loss"} <= set(history.columns) and len(history) == 3
    assert (folder / "samples.png").exists() and 0 <= metrics["synthetic_accuracy"] <= 1 and metrics["fid"] >= 0
    assert any((folder / "tensorboard").rglob("events.out.tfevents.*"))


@pytest.mark.parametrize("changes, path", [
    ({"model__encoder": [{"type": "Dense", "units": 8}, {"type": "BatchNormalization"}],
      "privacy": {"noise_multiplier": 1.0}}, "model.encoder[1].type"),
    ({"model__decoder": []}, "model.decoder"),
    ({"model__layers": [{"type": "Dense", "units": 10}]}, "model.layers"),
    ({"model__encoder": [{"type": "Dense", "unitz": 8}]}, "model.encoder[0].unitz"),
    ({"data": {**DATA, "scale": 1.0}}, "data.scale"),  # 0..16 pixels for a Bernoulli reconstruction
    ({"model__decoder": [{"type": "Dense", "units": 60, "activation": "sigmoid"}]}, "model.decoder"),
    ({"model__encoder": [{"type": "Flatten"}, {"type": "Dense", "units": 8, "name": "hidden"}],  # one flat graph
      "model__decoder": [{"type": "Dense", "units": 64, "name": "hidden", "activation": "sigmoid"}],
      "data": {**DATA, "class_names": [str(i) for i in range(10)]}, "privacy": {"noise_multiplier": 1.0}}, "model"),
])
def test_generative_mistakes_are_spec_errors_at_the_key(cli, tmp_path, write_spec, changes, path):
    code, _, err = cli("run", write_spec(_with(TINY_CVAE, **changes)), "--reports", tmp_path)
    assert code == 2 and path in err and "Traceback" not in err, err


def test_batch_normalization_in_a_private_discriminator_is_refused_by_check(cli, write_spec):
    spec = _with(TINY_CGAN, model__discriminator=[{"type": "Flatten"}, {"type": "BatchNormalization"}],
                 privacy={"noise_multiplier": 1.0})
    code, _, err = cli("check", write_spec(spec), "--schema-only")
    assert code == 2 and "model.discriminator[1].type" in err and "BatchNormalization" in err
    generator_bn = _with(TINY_CGAN, privacy={"noise_multiplier": 1.0},
                         model__generator=[{"type": "Dense", "units": 32}, {"type": "BatchNormalization"},
                                           {"type": "Dense", "units": 64, "activation": "sigmoid"}])
    code, _, err = cli("check", write_spec(generator_bn, "g.json"), "--schema-only")
    # the fakes of the private step are made from the private batch's labels: the generator may not mix them either
    assert code == 2 and "model.generator[1].type" in err and "BatchNormalization" in err


def test_a_private_generative_model_needs_public_class_names(cli, write_spec, digits_npz, tmp_path):
    spec = _with(TINY_CVAE, data={"source": f"npz:{digits_npz}", "scale": 0.0625, "reshape": [8, 8, 1]},
                 privacy={"noise_multiplier": 1.0})
    code, _, err = cli("run", write_spec(spec), "--reports", tmp_path / "r")
    assert code == 2 and "data.class_names" in err and "Traceback" not in err, err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_synthetic_examples_are_scaled_as_this_run_scales_its_data(cvae_run):
    from framework.data import load_splits
    from framework.data.synthetic import mix_synthetic
    from framework.spec.load import validate

    spec = validate({"name": "raw", "data": {**DATA, "scale": "none", "train_limit": 100,
                                             "synthetic": {"run": str(cvae_run.folder), "ratio": 1.0}},
                     "model": {"layers": [{"type": "Flatten"}, {"type": "Dense", "units": 10}]}},
                    file="raw.toml", base_dir=ROOT)
    splits = load_splits(spec.data, 1)
    mix_synthetic(splits, spec.data.synthetic)
    real, generated = splits.x_train[:100], splits.x_train[100:]
    assert len(generated) == 100 and real.max() > 10  # digits' own units: 0..16, not the generator run's 0..1
    assert generated.max() > 4 and abs(float(generated.mean()) - float(real.mean())) < 3


def test_the_score_classifier_trains_for_score_steps_or_five_epochs():
    from framework.reports.generative import train_classifier

    x = np.random.default_rng(0).random((300, 8, 8, 1), dtype="float32")
    y = np.arange(300) % 3
    assert int(train_classifier(x, y, 3, seed=0, min_steps=40).optimizer.iterations) == 40
    assert int(train_classifier(x, y, 3, seed=0, min_steps=10).optimizer.iterations) == 15  # 5 epochs of 3 batches


def test_digits_cvae_spec_checks(cli):
    code, _, err = cli("check", SPECS / "digits_cvae.toml")
    assert code == 0, err


def _run(spec, reports, env=None):
    return subprocess.run([sys.executable, "-m", "framework", "run", str(spec), "--reports", str(reports)],
                          cwd=ROOT, env={**ENV, **(env or {})}, capture_output=True, text=True, check=False)


def test_a_gan_killed_mid_run_resumes_exactly(cli, tmp_path, write_spec):
    """Both optimizers' states and the latent-code generator are in the checkpoint: the resumed run's history and
    scores are the uninterrupted run's."""
    spec = write_spec(_with(TINY_CGAN, train__steps_per_execution=3), "gan.json")  # the custom step, 3 per call
    assert cli("run", spec, "--reports", tmp_path / "straight")[0] == 0
    straight = run_outcome(next((tmp_path / "straight").iterdir()))
    assert straight[0]["steps_per_execution"] == 3
    killed = _run(spec, tmp_path / "killed", {FAULT_ENV: "2:state"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    folder = next((tmp_path / "killed").iterdir())
    code, _, err = cli("run", "--resume", folder)
    assert code == 0, err
    metrics, history = run_outcome(folder)
    pd.testing.assert_frame_equal(history, straight[1])
    assert metrics == straight[0]


@pytest.mark.parametrize("base", ["vae", "gan"])
def test_a_private_generative_run_spends_a_recomputable_epsilon_and_withholds_training_logs(tmp_path, base):
    from test_privacy_paths import _recomputed_epsilon

    import framework

    spec = _with(TINY_CVAE if base == "vae" else TINY_CGAN,
                 privacy={"noise_multiplier": 1.0, "l2_norm_clip": 1.0, "reproducible_noise": True, "audit": True},
                 train__epochs=1)
    if base == "gan":
        spec["model"]["discriminator_steps"] = 1
    run = framework.run(spec, reports=tmp_path)
    metrics = run.metrics
    assert metrics["status"] == "completed" and metrics["steps"] == metrics["steps_per_epoch"]
    assert metrics["epsilon"] == pytest.approx(_recomputed_epsilon(metrics), rel=1e-9)
    assert "real_accuracy" not in metrics and 0 <= metrics["synthetic_accuracy"] <= 1  # no private example scored
    assert 0 <= metrics["audit_auc"] <= 1
    assert all(c.startswith(("val_", "epsilon", "epoch")) for c in run.history.columns)  # training logs withheld


def test_a_private_gan_takes_one_discriminator_step_per_batch(cli, write_spec):
    spec = _with(TINY_CGAN, privacy={"noise_multiplier": 1.0})
    code, _, err = cli("check", write_spec(spec), "--schema-only")
    assert code == 2 and "model.discriminator_steps" in err


def test_predict_on_a_generative_run_points_to_sample(cli, cvae_run, tmp_path):
    code, _, err = cli("predict", cvae_run.folder, tmp_path / "x.npz")
    assert code == 2 and "generative run" in err and "sample" in err


def test_the_private_vae_is_one_flat_graph_whose_ghost_clipping_matches_a_naive_loop(tmp_path):
    import tensorflow as tf

    from framework.build.generative import build_generative
    from framework.spec.load import validate
    from framework.train.prepare import setup_backend

    conditional = _with(TINY_CVAE, privacy={"noise_multiplier": 1.0, "l2_norm_clip": 0.5},
                        data={**DATA, "class_names": [str(i) for i in range(10)]})
    conditional["model"]["conditional"] = True
    spec = validate(conditional, file="s", base_dir=tmp_path)
    setup_backend(spec)
    model, _, _ = build_generative(spec, (8, 8, 1), classes=10, steps_per_epoch=10, train_examples=600)
    assert model.clipping == "ghost"
    model.noise_multiplier = 0.0
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(6, 8, 8, 1)).astype("float32")
    labels = rng.integers(0, 10, 6)
    weights = np.array([1, 1, 0, 1, 1, 1], "float32")
    inputs, target = model.batch_inputs(tf.constant(x), tf.constant(labels))
    ghost, _ = model.ghost_clipped_sum(inputs, target, tf.constant(weights))
    expected = [np.zeros(v.shape, "float64") for v in model.trainable_variables]
    for i in range(len(x)):
        with tf.GradientTape() as tape:
            loss = model.row_loss(target[i : i + 1], model([t[i : i + 1] for t in inputs], training=True))
        grads = [g.numpy().astype("float64") for g in tape.gradient(loss, model.trainable_variables)]
        factor = weights[i] * min(1.0, 0.5 / np.sqrt(sum(np.sum(g**2) for g in grads)))
        for e, g in zip(expected, grads):
            e += factor * g
    for got, want in zip(ghost, expected):
        np.testing.assert_allclose(got.numpy(), want, atol=1e-5)
    decoder = model.generator_network  # made after the DP step chose ghost clipping; shares the trained weights
    assert {id(v) for v in decoder.weights} < {id(v) for v in model.weights}


def test_samples_draw_z_at_the_declared_temperature():
    import keras

    from framework.build.generative import generate

    z, label = keras.Input((3,)), keras.Input((2,))
    network = keras.Model([z, label], keras.layers.Concatenate()([z, label]))  # shows the z it was given
    cold = generate(network, np.array([0, 1, 1]), {"latent_dim": 3, "classes": 2, "temperature": 0.5}, seed=7)
    plain = generate(network, np.array([0, 1, 1]), {"latent_dim": 3, "classes": 2}, seed=7)
    np.testing.assert_allclose(cold[:, :3], 0.5 * plain[:, :3], rtol=1e-6)
    np.testing.assert_array_equal(cold[:, 3:], [[1, 0], [0, 1], [0, 1]])


def test_the_audit_command_on_a_generative_run_says_to_audit_during_training(cli, cvae_run):
    code, _, err = cli("audit", cvae_run.folder)
    assert code == 2 and "privacy.audit = true" in err and "Traceback" not in err
