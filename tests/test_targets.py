"""Model outputs that cannot fit the labels: one clear spec error before training, and no run folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_spec
from framework.errors import SpecError

FIVE_UNITS = {"layers": [{"type": "Dense", "units": 16, "activation": "relu"}, {"type": "Dense", "units": 5, "activation": "softmax"}]}
NO_FLATTEN = {"layers": [
    {"type": "Conv2D", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"},
    {"type": "Dense", "units": 10, "activation": "softmax"},
]}


def _refused(code: int, err: str) -> str:
    assert code == 2, err
    messages = [line for line in err.strip().splitlines() if not line.endswith("...")]  # progress lines aside
    assert "Traceback" not in err and len(messages) == 1, err
    return err


def test_run_with_fewer_units_than_classes_stops_before_the_run_folder(cli, write_spec, tmp_path):
    reports = tmp_path / "reports"
    code, _, err = cli("run", write_spec(tiny_spec(model=FIVE_UNITS)), "--reports", reports)
    err = _refused(code, err)
    assert "layer 'dense_1' (Dense, 5 units)" in err and "data.label" in err and "10 classes" in err
    assert "set its units to 10" in err and "model.layers[1]" in err
    assert not reports.exists() or not any(reports.iterdir())


def test_run_with_a_dense_head_on_images_without_flatten_stops_before_the_run_folder(cli, write_spec, tmp_path):
    reports = tmp_path / "reports"
    spec = tiny_spec(data={"reshape": [8, 8, 1]}, model=NO_FLATTEN)
    code, _, err = cli("run", write_spec(spec), "--reports", reports)
    err = _refused(code, err)
    assert "layer 'dense' (Dense, 10 units)" in err and "data.label" in err
    assert "(None, 8, 8, 10)" in err and "Flatten" in err
    assert not reports.exists() or not any(reports.iterdir())


def test_check_catches_both_when_the_source_knows_its_classes(cli, write_spec):
    code, _, err = cli("check", write_spec(tiny_spec(model=FIVE_UNITS)))
    assert "layer 'dense_1' (Dense, 5 units)" in _refused(code, err) and "data.label" in err
    code, _, err = cli("check", write_spec(tiny_spec(data={"reshape": [8, 8, 1]}, model=NO_FLATTEN)))
    assert "Flatten" in _refused(code, err)
    code, out, err = cli("check", write_spec(tiny_spec()))
    assert code == 0, err


def _check(spec_dict, y, class_names=None, tmp_path=None):
    """check_outputs_fit_targets on a built (not trained) model, with ``y`` as every split's targets."""
    from framework.data.splits import Splits
    from framework.spec.load import validate
    from framework.train.prepare import build_and_compile, setup_backend
    from framework.train.targets import check_outputs_fit_targets

    spec = validate(spec_dict, file="spec.toml", base_dir=tmp_path)
    setup_backend(spec)
    built = build_and_compile(spec, (64,) if not spec.model.inputs else None, 1)
    splits = Splits(None, y, None, None, None, None, class_names=class_names)
    return check_outputs_fit_targets(built.model, splits, spec, built.one_hot)


def _dense_head(units, activation="softmax", **train):
    return tiny_spec(model={"layers": [{"type": "Dense", "units": units, "activation": activation}]}, train={**tiny_spec()["train"], **train})


def test_losses_and_label_kinds(tmp_path):
    labels = np.arange(10).repeat(3)
    assert _check(_dense_head(10), labels, tmp_path=tmp_path) == {"classes": 10}
    assert _check(_dense_head(10, loss="categorical_crossentropy"), labels, tmp_path=tmp_path) == {"classes": 10}
    with pytest.raises(SpecError, match=r"5 class scores.*data.label has 10 classes"):
        _check(_dense_head(5, loss="categorical_crossentropy"), labels, tmp_path=tmp_path)
    # one sigmoid unit for ten classes
    with pytest.raises(SpecError, match=r"binary_crossentropy.*10 classes.*units = 10"):
        _check(_dense_head(1, "sigmoid", loss="binary_crossentropy"), labels, tmp_path=tmp_path)
    assert _check(_dense_head(1, "sigmoid", loss="binary_crossentropy"), labels % 2, tmp_path=tmp_path) == {"classes": 2}
    # one-hot rows with the sparse loss
    with pytest.raises(SpecError, match="categorical_crossentropy"):
        _check(_dense_head(10), np.eye(10, dtype="int64")[labels], tmp_path=tmp_path)
    assert _check(_dense_head(10, loss="categorical_crossentropy"), np.eye(10, dtype="float32")[labels], tmp_path=tmp_path) == {"classes": 10}
    # class names must match the units
    with pytest.raises(SpecError, match="set its units to 3"):
        _check(_dense_head(10), labels % 3, class_names=["a", "b", "c"], tmp_path=tmp_path)


def test_regression_targets_keep_working(tmp_path):
    values = np.linspace(0, 1, 30, dtype="float32")
    assert _check(_dense_head(1, "linear", loss="mse", metrics=["mae"]), values, tmp_path=tmp_path) == {}
    with pytest.raises(SpecError, match="gives 10 values per example"):
        _check(_dense_head(10, "linear", loss="mse", metrics=["mae"]), values, tmp_path=tmp_path)
    two = np.stack([values, values], axis=1)
    assert _check(_dense_head(2, "linear", loss="mae", metrics=["mae"]), two, tmp_path=tmp_path) == {}
    # class ids with fractions are no class ids
    from framework.errors import DataError

    with pytest.raises(DataError, match="fractions"):
        _check(_dense_head(10), values, tmp_path=tmp_path)


def test_multi_output_targets_name_their_key(tmp_path):
    spec = tiny_spec(
        data={"targets": {"digit": "label", "even": "label % 2 == 0"}},
        model={
            "inputs": [{"name": "x", "shape": [64]}],
            "layers": [
                {"name": "trunk", "type": "Dense", "units": 8, "activation": "relu", "inputs": ["x"]},
                {"name": "digit", "type": "Dense", "units": 4, "activation": "softmax", "inputs": ["trunk"]},
                {"name": "even", "type": "Dense", "units": 1, "activation": "sigmoid", "inputs": ["trunk"]},
            ],
            "outputs": ["digit", "even"],
        },
        train={"epochs": 1, "loss": {"digit": "sparse_categorical_crossentropy", "even": "binary_crossentropy"},
               "metrics": {"digit": ["accuracy"], "even": ["accuracy"]}},
    )
    labels = np.arange(10)
    y = {"digit": labels, "even": (labels % 2 == 0).astype("int64")}
    with pytest.raises(SpecError, match=r"layer 'digit' \(Dense, 4 units\).*data.targets.digit has 10 classes") as err:
        _check(spec, y, tmp_path=tmp_path)
    assert err.value.path == "model.layers[1]"
    spec["model"]["layers"][1]["units"] = 10
    assert _check(spec, y, tmp_path=tmp_path) == {"classes_digit": 10, "classes_even": 2}


def test_a_good_run_reports_its_classes(cli, write_spec, tmp_path):
    code, out, err = cli("run", write_spec(tiny_spec()), "--reports", tmp_path / "r")
    assert code == 0, err
    folder = Path(re.search(r"run folder: (\S+)", out).group(1))
    assert json.loads((folder / "metrics.json").read_text())["classes"] == 10
