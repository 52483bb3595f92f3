"""[augmentation] and [regularization]: each part is shown to act, and bad values are spec errors."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import tiny_spec
from framework.errors import SpecError
from framework.spec.load import validate


def spec_of(data, tmp_path):
    return validate(data, file="spec.toml", base_dir=tmp_path)


def image_spec(**sections):
    return tiny_spec(
        data={"source": "sklearn:digits", "scale": 0.0625, "reshape": [8, 8, 1], "validation_split": 0.1},
        model={"layers": [{"type": "Flatten"}, {"type": "Dense", "units": 16, "activation": "relu"},
                          {"type": "Dense", "units": 10, "activation": "softmax"}]},
        **sections,
    )


def test_kernel_regularization_loss_is_coefficient_times_norm(tmp_path):
    from framework.build import build_model

    spec = spec_of(tiny_spec(regularization={"l2": 0.01, "l1": 0.001}), tmp_path)
    model = build_model(spec)
    kernels = [l.kernel.numpy() for l in model.layers if hasattr(l, "kernel")]
    expected = sum(0.01 * np.sum(k**2) + 0.001 * np.sum(np.abs(k)) for k in kernels)
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-5)


def test_a_layer_overrides_the_global_penalty(tmp_path):
    from framework.build import build_model

    layers = [{"type": "Dense", "units": 16, "kernel_regularizer": {"l2": 0.5}},
              {"type": "Dense", "units": 10, "kernel_regularizer": False}]
    model = build_model(spec_of(tiny_spec(model={"layers": layers}, regularization={"l2": 0.01}), tmp_path))
    k = model.layers[1].kernel.numpy()
    assert model.layers[2].kernel_regularizer is None
    assert float(sum(model.losses)) == pytest.approx(0.5 * np.sum(k**2), rel=1e-5)


def test_dropout_follows_hidden_dense_layers_only(tmp_path):
    from framework.build import build_model

    model = build_model(spec_of(tiny_spec(regularization={"dropout": 0.25}), tmp_path))
    assert [type(l).__name__ for l in model.layers] == ["InputLayer", "Dense", "Dropout", "Dense"]
    assert model.layers[2].rate == 0.25


def test_weight_decay_and_clipping_reach_the_optimizer(tmp_path):
    from framework.train.compile import make_optimizer

    spec = spec_of(tiny_spec(regularization={"weight_decay": 1e-4, "clip_norm": 1.0}), tmp_path)
    optimizer = make_optimizer(spec, steps_per_epoch=10)
    assert optimizer.weight_decay == pytest.approx(1e-4) and optimizer.clipnorm == 1.0


def test_label_smoothing_changes_the_loss_as_its_formula_says(tmp_path):
    from framework.train.compile import resolve_losses

    eps, k = 0.1, 3
    loss = resolve_losses(spec_of(tiny_spec(regularization={"label_smoothing": eps}), tmp_path), one_hot=True)
    y = np.array([[0, 1, 0]], "float32")
    p = np.array([[0.2, 0.7, 0.1]], "float32")
    smoothed = y * (1 - eps) + eps / k
    assert float(loss(y, p)) == pytest.approx(float(-np.sum(smoothed * np.log(p))), rel=1e-5)


def _prepared(tmp_path, write_spec, data):
    from framework.spec import load_spec
    from framework.train.prepare import prepare

    return prepare(load_spec(write_spec(data)))


def test_augmentation_changes_training_batches_only(tmp_path, write_spec):
    steps = [{"type": "RandomTranslation", "height_factor": 0.3, "width_factor": 0.3}]
    data = image_spec(augmentation={"steps": steps, "placement": "pipeline"})
    data["data"]["shuffle"] = False
    prepared = _prepared(tmp_path, write_spec, data)
    assert prepared.built.augmentation.placement == "pipeline"
    x_train = next(iter(prepared.train_ds))[0].numpy()
    assert not np.allclose(x_train, prepared.splits.x_train[: len(x_train)])
    for ds, x in ((prepared.val_ds, prepared.splits.x_val), (prepared.test_ds, prepared.splits.x_test)):
        batch = next(iter(ds))[0].numpy()
        np.testing.assert_array_equal(batch, x[: len(batch)])


def test_augmentation_in_the_model_is_inactive_at_evaluation(tmp_path, write_spec):
    steps = [{"type": "RandomTranslation", "height_factor": 0.3, "width_factor": 0.3}]
    prepared = _prepared(tmp_path, write_spec, image_spec(augmentation={"steps": steps, "placement": "model"}))
    model, x = prepared.model, prepared.splits.x_test[:16]
    assert type(model.layers[1]).__name__ == "RandomTranslation"
    np.testing.assert_allclose(model(x, training=False), model(x, training=False))
    assert not np.allclose(model(x, training=True), model(x, training=False))
    # the pipeline is left clean
    batch = next(iter(prepared.train_ds))[0].numpy()
    assert any(np.allclose(batch[0], row) for row in prepared.splits.x_train)


@pytest.mark.parametrize("mixer", [{"type": "MixUp", "alpha": 1.0}, {"type": "CutMix", "factor": 1.0}])
def test_mixup_and_cutmix_labels_are_mixtures(tmp_path, write_spec, mixer):
    prepared = _prepared(tmp_path, write_spec, image_spec(augmentation={"steps": [mixer]}))
    assert prepared.built.one_hot
    _, y = next(iter(prepared.train_ds))
    y = y.numpy()
    assert y.shape[1] == 10
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all((y > 0).sum(axis=1) <= 2)
    assert np.any((y > 0.01) & (y < 0.99)), "some labels are strict mixtures"
    _, y_test = next(iter(prepared.test_ds))
    assert set(np.unique(y_test.numpy())) <= {0.0, 1.0}


def test_early_stopping_stops_and_restores_best_weights(cli, tmp_path, write_spec):
    import keras

    from framework.data import load_splits
    from framework.spec import load_spec

    reports = tmp_path / "reports"
    # min_delta is so large that only the first epoch counts as an improvement
    es = {"monitor": "val_loss", "patience": 2, "min_delta": 100.0, "restore_best_weights": True}
    path = write_spec(tiny_spec(train={"epochs": 20, "batch_size": 64, "verbose": 0}, regularization={"early_stopping": es}))
    assert cli("run", path, "--reports", reports)[0] == 0
    folder = next(reports.iterdir())
    metrics = json.loads((folder / "metrics.json").read_text())
    history = pd.read_csv(folder / "history.csv")
    assert metrics["epochs"] == 3 and metrics["early_stopped"] and metrics["best_epoch"] == 1
    # the saved model has the first epoch's weights: its validation loss is epoch 1's
    spec = load_spec(path).spec
    splits = load_splits(spec.data, spec.seed)
    model = keras.saving.load_model(folder / "model.keras")
    val_loss = model.evaluate(splits.x_val, splits.y_val, verbose=0, return_dict=True)["loss"]
    assert val_loss == pytest.approx(history["val_loss"][0], rel=1e-4)
    assert val_loss != pytest.approx(history["val_loss"].iloc[-1], rel=1e-4)


def test_reduce_lr_on_plateau_lowers_the_learning_rate(cli, tmp_path, write_spec):
    reports = tmp_path / "reports"
    plateau = {"monitor": "loss", "factor": 0.5, "patience": 0, "min_lr": 0.0}
    # learning rate 0: the loss cannot improve, so every epoch is a plateau
    spec = tiny_spec(train={"epochs": 3, "verbose": 0, "optimizer": {"type": "sgd", "learning_rate": 1e-12}},
                     regularization={"reduce_lr_on_plateau": plateau})
    assert cli("run", write_spec(spec), "--reports", reports)[0] == 0
    history = pd.read_csv(next(reports.iterdir()) / "history.csv")
    assert list(history["learning_rate"]) == pytest.approx([1e-12, 5e-13, 2.5e-13], rel=1e-3)


def test_sections_are_in_resolved_json_and_report_columns(cli, tmp_path, write_spec):
    reports = tmp_path / "reports"
    steps = [{"type": "GaussianNoise", "stddev": 0.1}]
    assert cli("run", write_spec(tiny_spec()), "--reports", reports)[0] == 0
    assert cli("run", write_spec(tiny_spec(augmentation={"steps": steps}, regularization={"l2": 1e-4}), "r.toml"),
               "--reports", reports)[0] == 0
    code, out, _ = cli("report", reports, "--format", "csv")
    table = pd.read_csv(__import__("io").StringIO(out))
    assert {"regularization.l2", "augmentation.steps[0].type", "augmentation"} <= set(table.columns)
    assert set(table["augmentation"]) == {"none", "pipeline"}


@pytest.mark.parametrize(
    "sections, path, message",
    [
        ({"regularization": {"dropout": -0.1}}, "regularization.dropout", "greater than or equal to 0"),
        ({"regularization": {"l2": -1}}, "regularization.l2", "greater than or equal to 0"),
        ({"regularization": {"clip_norm": 1.0, "clip_value": 1.0}}, "regularization", "choose one gradient clipping"),
        ({"regularization": {"early_stopping": {"patiense": 3}}}, "regularization.early_stopping.patiense", "did you mean 'patience'"),
        ({"augmentation": {"placement": "gpu"}}, "augmentation.placement", "'pipeline'"),
    ],
)
def test_bad_values_are_schema_errors(tmp_path, sections, path, message):
    with pytest.raises(SpecError) as err:
        spec_of(tiny_spec(**sections), tmp_path)
    assert path in str(err.value) and message in str(err.value)


@pytest.mark.parametrize(
    "steps, path, message",
    [
        ([{"type": "RandomFlipp"}], "augmentation.steps[0].type", "did you mean 'RandomFlip'"),
        ([{"type": "RandomFlip"}], "augmentation.steps[0].type", "is an image augmentation, but the inputs have shape (64,)"),
        ([{"type": "GaussianNoise", "stdev": 0.1}], "augmentation.steps[0].stdev", "did you mean 'stddev'"),
    ],
)
def test_bad_augmentation_steps_are_build_errors(cli, write_spec, steps, path, message):
    code, _, err = cli("check", write_spec(tiny_spec(augmentation={"steps": steps})))
    assert code == 2 and path in err and message in err
