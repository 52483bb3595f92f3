"""Spec loading: formats, overrides, and errors that name the file and the key path."""

import json
import tomllib

import pytest

from conftest import SPECS, tiny_spec
from framework.errors import SpecError
from framework.spec import load_spec
from framework.spec.load import apply_override, parse_key_path


def test_toml_and_json_give_the_same_resolved_spec(write_spec):
    data = tomllib.loads((SPECS / "quickstart.toml").read_text())
    toml_spec = load_spec(SPECS / "quickstart.toml")
    json_spec = load_spec(write_spec(data, "same.json"))
    assert toml_spec.resolved() == json_spec.resolved()


def test_defaults_are_resolved(write_spec):
    resolved = load_spec(write_spec(tiny_spec())).resolved()
    assert resolved["train"]["optimizer"] == {"type": "adam", "learning_rate": 0.001}
    assert resolved["train"]["jit_compile"] == "auto"
    assert resolved["data"]["test_split"] == 0.2


def test_overrides_address_nested_keys_and_list_items(write_spec):
    loaded = load_spec(
        SPECS / "quickstart.toml",
        ["train.epochs=3", "model.layers[0].filters=16", "train.optimizer.learning_rate=0.01", "data.scale=\"standard\""],
    )
    spec = loaded.spec
    assert spec.train.epochs == 3
    assert spec.model.layers[0].kwargs["filters"] == 16
    assert spec.train.optimizer.learning_rate == 0.01
    assert spec.data.scale == "standard"


def test_key_path_parsing():
    assert parse_key_path("model.layers[10].units") == ["model", "layers", 10, "units"]
    with pytest.raises(SpecError):
        parse_key_path("[0].x")


def test_unknown_override_key_is_a_spec_error_with_suggestion():
    with pytest.raises(SpecError) as err:
        load_spec(SPECS / "quickstart.toml", ["train.epoch=3"])
    assert err.value.path == "train.epoch" and "did you mean 'epochs'" in str(err.value)


def test_override_index_out_of_range():
    data = {"model": {"layers": [{}]}}
    with pytest.raises(SpecError, match="out of range"):
        apply_override(data, "model.layers[3].units=4")


@pytest.mark.parametrize(
    "mutate, path, message",
    [
        (lambda s: s["train"].update(epochz=3), "train.epochz", "did you mean 'epochs'"),
        (lambda s: s["train"].update(epochs="many"), "train.epochs", "integer"),
        (lambda s: s["train"].update(epochs=0), "train.epochs", "greater than or equal to 1"),
        (lambda s: s["data"].update(scale="foo"), "data.scale", "'standard'"),
        (lambda s: s["data"].update(source="sklearn:digitz"), "data.source", "did you mean 'digits'"),
        (lambda s: s["data"].update(source="csvv:x.csv"), "data.source", "did you mean 'csv'"),
        (lambda s: s["data"].update(source="csv:missing.csv"), "data.source", "file not found"),
        (lambda s: s.update(name="../../x"), "name", "should match pattern"),
        (lambda s: s.pop("model"), "model", "missing"),
        (lambda s: s["model"]["layers"][0].update(type=None), "model.layers[0]", "exactly one of 'type' or 'reuse'"),
    ],
)
def test_schema_errors_name_the_key(write_spec, mutate, path, message):
    spec = tiny_spec()
    mutate(spec)
    file = write_spec(spec, "bad.json")
    with pytest.raises(SpecError) as err:
        load_spec(file)
    text = str(err.value)
    assert f"{file}: {path}:" in text
    assert message in text


def test_toml_syntax_error_has_line_and_column(write_spec):
    with pytest.raises(SpecError, match=r"TOML syntax error.*line 2, column 6"):
        load_spec(write_spec('name = "x"\n[data\nsource = 1\n'))


def test_json_syntax_error_has_line_and_column(write_spec):
    with pytest.raises(SpecError, match=r"JSON syntax error.*line 1, column"):
        load_spec(write_spec('{"name": }', "bad.json"))


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "nope.toml")


def test_relative_paths_resolve_against_the_spec_folder(tmp_path, write_spec):
    (tmp_path / "d.csv").write_text("a,label\n1,0\n")
    spec = tiny_spec(data={"source": "csv:d.csv"})
    loaded = load_spec(write_spec(spec))
    assert loaded.spec.data.source == f"csv:{tmp_path / 'd.csv'}"


def test_schema_is_json_and_documents_options():
    from framework.spec.schema import Spec

    schema = json.loads(json.dumps(Spec.model_json_schema()))
    train = schema["$defs"]["TrainSpec"]["properties"]
    assert "description" in train["jit_compile"]
    assert train["epochs"]["default"] == 10


def test_a_data_path_given_with_set_is_relative_to_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "d.csv").write_text("a,label\n1,0\n")
    monkeypatch.chdir(tmp_path)
    loaded = load_spec(SPECS / "quickstart.toml", ["data.source=\"csv:d.csv\""])
    assert loaded.spec.data.source == f"csv:{tmp_path / 'd.csv'}"
