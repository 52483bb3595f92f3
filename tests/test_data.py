"""Data sources, splits and scaling."""

import numpy as np
import pytest

from framework.data import load_splits
from framework.errors import DataError, SpecError
from framework.spec.schema import DataSpec


def data_spec(tmp_path, **kwargs):
    return DataSpec.model_validate(kwargs, context={"base_dir": str(tmp_path)})


@pytest.mark.parametrize("name, features, classes", [("digits", 64, 10), ("iris", 4, 3), ("wine", 13, 3), ("breast_cancer", 30, 2)])
def test_sklearn_sources(tmp_path, name, features, classes):
    splits = load_splits(data_spec(tmp_path, source=f"sklearn:{name}"), seed=0)
    assert splits.x_train.shape[1:] == (features,)
    assert len(np.unique(splits.y_train)) == classes
    assert splits.x_train.dtype == np.float32


def test_splits_are_seeded_and_stratified(tmp_path):
    spec = data_spec(tmp_path, source="sklearn:digits", test_split=0.2, validation_split=0.1)
    a, b, c = load_splits(spec, seed=3), load_splits(spec, seed=3), load_splits(spec, seed=4)
    assert np.array_equal(a.y_test, b.y_test) and not np.array_equal(a.y_test, c.y_test)
    sizes = a.sizes()
    assert sizes["test"] == 360 and sizes["validation"] == 144 and sizes["train"] == 1293
    # stratified: every class's share of the test split is within one example of its share overall
    for label in range(10):
        overall = np.mean(np.concatenate([a.y_train, a.y_val, a.y_test]) == label)
        assert abs(np.sum(a.y_test == label) - overall * 360) <= 1


def test_standard_scaling_is_fitted_on_train_only(tmp_path):
    splits = load_splits(data_spec(tmp_path, source="sklearn:wine", scale="standard"), seed=0)
    assert np.allclose(splits.x_train.mean(axis=0), 0, atol=1e-4)
    assert not np.allclose(splits.x_test.mean(axis=0), 0, atol=1e-4)
    assert len(splits.preprocessing["shift"]) == 13


def test_reshape_and_numeric_scale(tmp_path):
    splits = load_splits(data_spec(tmp_path, source="sklearn:digits", scale=0.0625, reshape=[8, 8, 1]), seed=0)
    assert splits.example_shape == (8, 8, 1)
    assert splits.x_train.max() <= 1.0


def test_bad_reshape_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError) as err:
        load_splits(data_spec(tmp_path, source="sklearn:digits", reshape=[7, 7]), seed=0)
    assert err.value.path == "data.reshape"


def test_csv_source_with_string_labels(tmp_path):
    rows = ["a,b,kind"] + [f"{i},{i * 2},{'spam' if i % 3 == 0 else 'ham'}" for i in range(60)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    splits = load_splits(data_spec(tmp_path, source="csv:d.csv", label="kind", features=["a", "b"]), seed=0)
    assert splits.class_names == ["ham", "spam"]
    assert splits.x_train.shape[1:] == (2,)
    assert len(splits.x_test) == 12


def test_csv_errors(tmp_path):
    (tmp_path / "d.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="label column 'label' is not in"):
        load_splits(data_spec(tmp_path, source="csv:d.csv"), seed=0)
    (tmp_path / "e.csv").write_text("a,label\n")
    with pytest.raises(DataError, match="no rows"):
        load_splits(data_spec(tmp_path, source="csv:e.csv"), seed=0)


def test_npz_keras_layout_keeps_its_test_split(digits_npz):
    splits = load_splits(data_spec(digits_npz.parent, source=f"npz:{digits_npz.name}", validation_split=0.1), seed=0)
    assert len(splits.x_test) == 397 and len(splits.x_train) + len(splits.x_val) == 1400


def test_npz_xy_layout_and_mismatch(tmp_path):
    np.savez(tmp_path / "xy.npz", x=np.zeros((50, 3)), y=np.arange(50) % 2)
    assert load_splits(data_spec(tmp_path, source="npz:xy.npz"), seed=0).x_train.shape[1:] == (3,)
    np.savez(tmp_path / "bad.npz", x=np.zeros((50, 3)), y=np.zeros(40))
    with pytest.raises(DataError, match="50 inputs but 40 labels"):
        load_splits(data_spec(tmp_path, source="npz:bad.npz"), seed=0)


def test_corrupt_npz_is_a_data_error(tmp_path):
    (tmp_path / "c.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="cannot read NPZ"):
        load_splits(data_spec(tmp_path, source="npz:c.npz"), seed=0)


def test_keras_source_offline_names_the_cache(tmp_path, monkeypatch):
    import keras

    def offline():
        raise OSError("no network")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DataError) as err:
        load_splits(data_spec(tmp_path, source="keras:mnist"), seed=0)
    assert ".keras/datasets" in err.value.message and "npz:PATH" in err.value.message


def test_corrupt_csv_is_a_data_error(tmp_path):
    (tmp_path / "bad.csv").write_bytes(b"\x00\xff\xfe garbage \x00\n\x01,\x02\n")
    with pytest.raises(DataError):
        load_splits(data_spec(tmp_path, source="csv:bad.csv"), seed=0)


def test_test_inputs_of_another_shape_are_a_data_error(tmp_path):
    np.savez(tmp_path / "s.npz", x_train=np.zeros((40, 4)), y_train=np.arange(40) % 2, x_test=np.zeros((10, 5)), y_test=np.zeros(10))
    with pytest.raises(DataError, match="shape"):
        load_splits(data_spec(tmp_path, source="npz:s.npz", validation_split=0.0), seed=0)
