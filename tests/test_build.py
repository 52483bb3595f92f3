"""The builder: list form, graph form with a shared layer and two outputs, and build-time spec errors."""

import pytest

from conftest import tiny_spec
from framework.build import build_model
from framework.errors import SpecError
from framework.spec.load import validate


def spec_of(data, tmp_path):
    return validate(data, file="spec.toml", base_dir=tmp_path)


def test_list_form_builds_in_order(tmp_path):
    model = build_model(spec_of(tiny_spec(), tmp_path))
    assert [type(l).__name__ for l in model.layers] == ["InputLayer", "Dense", "Dense"]
    assert model.input_shape == (None, 64)
    assert model.output_shape == (None, 10)


def test_graph_form_shared_layer_and_two_outputs(tmp_path):
    model_section = {
        "inputs": [{"name": "left", "shape": [64]}, {"name": "right", "shape": [64]}],
        "layers": [
            {"name": "encoder", "type": "Dense", "units": 8, "activation": "relu", "inputs": ["left"]},
            {"name": "encoder_right", "reuse": "encoder", "inputs": ["right"]},
            {"name": "joined", "type": "Concatenate", "inputs": ["encoder", "encoder_right"]},
            {"name": "digit", "type": "Dense", "units": 10, "activation": "softmax", "inputs": ["joined"]},
            {"name": "same", "type": "Dense", "units": 1, "activation": "sigmoid", "inputs": ["joined"]},
        ],
        "outputs": ["digit", "same"],
    }
    model = build_model(spec_of(tiny_spec(model=model_section), tmp_path))
    assert len(model.inputs) == 2 and len(model.outputs) == 2
    assert model.output_names == ["digit", "same"]
    encoder = model.get_layer("encoder")
    # the shared layer is one layer object called twice: one kernel
    assert len(encoder._inbound_nodes) == 2
    assert sum(1 for l in model.layers if l.name.startswith("encoder")) == 1
    assert model.count_params() == (64 * 8 + 8) + (16 * 10 + 10) + (16 + 1)


def test_nested_layer_tables_become_layers(tmp_path):
    model_section = {
        "input_shape": [8, 8],
        "layers": [
            {"type": "Bidirectional", "layer": {"type": "GRU", "units": 4}},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
    }
    model = build_model(spec_of(tiny_spec(model=model_section), tmp_path))
    assert model.output_shape == (None, 10)
    assert type(model.layers[1].forward_layer).__name__ == "GRU"


@pytest.mark.parametrize(
    "layers, path, message",
    [
        ([{"type": "Dense", "units": "many"}], "model.layers[0].units", "expected a positive integer"),
        ([{"type": "Densse", "units": 4}], "model.layers[0].type", "did you mean 'Dense'"),
        ([{"type": "Dense", "unitz": 4}], "model.layers[0].unitz", "did you mean 'units'"),
        ([{"type": "Conv2D", "filters": 4, "kernel_size": 3}], "model.layers[0]", "does not fit its input of shape (None, 64)"),
        ([{"type": "Dense", "units": 4, "inputs": ["nowhere"]}], "model.layers[0].inputs", "unknown inputs"),
        ([{"reuse": "ghost"}], "model.layers[0].reuse", "not an earlier layer"),
        ([{"type": "Dense", "units": 4, "activation": {"type": {"x": 1}}}], "model.layers[0].activation.type",
         "expected the name of a layer"),
    ],
)
def test_build_errors_name_the_layer(tmp_path, layers, path, message):
    with pytest.raises(SpecError) as err:
        build_model(spec_of(tiny_spec(model={"layers": layers}), tmp_path))
    assert err.value.path == path
    assert message in err.value.message


def test_declared_input_shape_must_match_data(tmp_path):
    spec = spec_of(tiny_spec(model={"input_shape": [32], "layers": [{"type": "Dense", "units": 2}]}), tmp_path)
    with pytest.raises(SpecError) as err:
        build_model(spec, data_shape=(64,))
    assert err.value.path == "model.input_shape"


def test_mixed_precision_keeps_outputs_float32(tmp_path):
    import keras

    spec = spec_of(tiny_spec(train={"mixed_precision": True}), tmp_path)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_model(spec)
        assert model.layers[1].compute_dtype == "float16"
        assert model.layers[-1].compute_dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
