"""What the editor and `check --schema-only` know without TensorFlow: the catalogue of types, the printed JSON
Schema, `list --verbose` and `describe`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tomllib

import jsonschema
import pytest

from conftest import ROOT, SPECS, tiny_spec


@pytest.fixture(scope="module")
def validator():
    from framework.spec.json_schema import spec_json_schema

    schema = spec_json_schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _read(path):
    return tomllib.loads(path.read_text()) if path.suffix == ".toml" else json.loads(path.read_text())


def _errors(validator, data) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(data)]


# --- the catalogue ---------------------------------------------------------------------------


def test_catalogue_matches_the_installed_keras():
    from framework.quiet import import_tensorflow
    from framework.spec import catalogue

    import_tensorflow()
    assert catalogue.dumps(catalogue.generate()) == catalogue.PATH.read_text(encoding="utf-8"), (
        "framework/spec/catalogue.json is stale: run python -m framework.spec.catalogue"
    )


def test_catalogue_knows_keras_and_the_frameworks_blocks():
    from framework.spec import catalogue

    dense = catalogue.lookup("layer", "Dense")
    args = {a["name"]: a for a in dense["args"]}
    assert args["units"]["required"] and args["use_bias"]["default"] is True
    assert args["name"].get("base") and args["dtype"].get("base") and args["trainable"].get("base")
    assert "rank" not in {a["name"] for a in catalogue.lookup("layer", "Conv2D")["args"]}  # Conv2D sets it itself
    assert catalogue.lookup("optimizer", "adam") is catalogue.lookup("optimizer", "Adam")
    for block in ("PositionEmbedding", "TransformerEncoder", "GRUDecoder", "PretrainedEmbedding"):
        entry = catalogue.lookup("layer", block)
        assert entry["class"].startswith("framework.build.blocks.") and entry["doc"]
        own = [a for a in entry["args"] if not a.get("base")]
        # the blocks' docstrings document every argument of their own, Keras style
        assert own and all(a.get("doc") for a in own[:3]), block
    standardize = next(a for a in catalogue.lookup("layer", "TextVectorization")["args"] if a["name"] == "standardize")
    assert standardize["choices"] == ["lower_and_strip_punctuation", "lower", "strip_punctuation", None]
    assert "mse" in catalogue.load()["kinds"]["loss"]["extra_names"]


# --- the printed JSON Schema -----------------------------------------------------------------


def test_every_spec_in_specs_and_examples_is_valid_against_the_printed_schema(validator):
    files = sorted([*SPECS.glob("*.toml"), *SPECS.glob("*.json"), *(ROOT / "framework" / "examples").glob("*.toml")])
    assert len(files) > 15
    for path in files:
        assert _errors(validator, _read(path)) == [], path


def test_printed_schema_is_the_cli_schema(cli):
    from framework.spec.json_schema import spec_json_schema

    code, out, _ = cli("schema")
    assert code == 0 and json.loads(out) == json.loads(json.dumps(spec_json_schema()))


def test_schema_flags_unknown_types_arguments_and_names(validator):
    def errors(**sections):
        return "\n".join(_errors(validator, tiny_spec(**sections)))

    assert errors() == ""
    assert "'Densse' is not one of" in errors(model={"layers": [{"type": "Densse", "units": 10}]})
    assert "'unitz' was unexpected" in errors(model={"layers": [{"type": "Dense", "unitz": 10}]})
    assert "'units' is a required property" in errors(model={"layers": [{"type": "Dense"}]})
    assert "'unitz' was unexpected" in errors(
        model={"layers": [{"type": "Bidirectional", "layer": {"type": "LSTM", "units": 4}}, {"type": "Dense", "unitz": 1}]})
    assert "'RandomFlipp'" in errors(augmentation={"steps": [{"type": "RandomFlipp"}]})
    assert "'mode2' was unexpected" in errors(augmentation={"steps": [{"type": "RandomFlip", "mode2": "x"}]})
    assert "'adamm'" in errors(train={"optimizer": {"type": "adamm"}})
    assert "'beta_11' was unexpected" in errors(train={"optimizer": {"type": "adam", "beta_11": 0.9}})
    assert "'EarlyStop'" in errors(train={"callbacks": [{"type": "EarlyStop"}]})
    assert "'sparse_crossentropy'" in errors(train={"loss": "sparse_crossentropy"})
    assert "'acuracy'" in errors(train={"metrics": ["acuracy"]})
    assert "'acuracy'" in errors(train={"metrics": {"out": ["acuracy"]}})
    # a schedule's initial rate and decay steps are the framework's to fill in
    assert errors(train={"lr_schedule": {"type": "CosineDecay"}}) == ""
    assert "'lower2' is not one of" in errors(
        model={"layers": [{"type": "TextVectorization", "standardize": "lower2"}, {"type": "Dense", "units": 2}]})


def test_schema_accepts_search_spaces_wherever_a_value_stands_except_data(validator):
    space = {"tune": "choice", "values": [16, 32]}
    spec = tiny_spec(
        model={"layers": [{"type": {"tune": "choice", "values": ["Dense"]}, "units": space, "activation": "relu"},
                          {"type": "Dense", "units": 10, "activation": {"tune": "choice", "values": ["softmax"]}}]},
        train={"batch_size": space, "optimizer": {"type": "adam", "learning_rate": {"tune": "float", "min": 1e-4, "max": 1e-2}},
               "metrics": [{"tune": "choice", "values": ["accuracy", "acc"]}], "loss": {"tune": "choice", "values": ["mse"]}},
        regularization={"dropout": {"tune": "float", "min": 0.0, "max": 0.5}},
    )
    assert _errors(validator, spec) == []
    assert _errors(validator, tiny_spec(data={"source": "sklearn:digits", "test_split": space}))
    assert _errors(validator, tiny_spec(train={"batch_size": {"tune": "often", "values": [1]}}))


def test_schema_allows_dollar_schema_and_leaves_plugin_types_free(validator):
    assert _errors(validator, {"$schema": "./schema.json", **tiny_spec()}) == []
    plugin_spec = tiny_spec(plugins=["layers.py"], model={"layers": [{"type": "MyLayer", "anything": 1},
                                                                     {"type": "Dense", "units": 10}]})
    assert _errors(validator, plugin_spec) == []
    # a plugin cannot replace a built-in, so a built-in's arguments are checked all the same
    plugin_spec["model"]["layers"][1] = {"type": "Dense", "unitz": 10}
    assert "'unitz' was unexpected" in "\n".join(_errors(validator, plugin_spec))


# --- check --schema-only, describe and list --verbose: no TensorFlow --------------------------


def _imports(*args, cwd=ROOT):
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "framework", *map(str, args)],
                            cwd=cwd, capture_output=True, text=True, timeout=120)
    return result.returncode, result.stdout, result.stderr, time.perf_counter() - start


def test_schema_only_check_rejects_unknown_types_and_arguments_without_tensorflow(write_spec):
    densse = write_spec(tiny_spec(model={"layers": [{"type": "Densse", "units": 10}]}), "densse.toml")
    unitz = write_spec(tiny_spec(model={"layers": [{"type": "Dense", "unitz": 10}]}), "unitz.toml")
    code, _, err, seconds = _imports("check", "--schema-only", densse)
    assert code == 2 and "model.layers[0].type: unknown layer 'Densse' (did you mean 'Dense'?)" in err, err
    assert "tensorflow" not in err and "keras" not in err.replace("python -m framework", "")
    code, _, err, seconds = _imports("check", "--schema-only", unitz)
    assert code == 2 and "model.layers[0].unitz: Dense has no argument 'unitz' (did you mean 'units'?)" in err, err
    assert "it takes: units, activation, use_bias" in err
    assert "import time:" in err and "tensorflow" not in err
    assert seconds < 5  # about 0.3 s on an idle machine; generous for a loaded one


def test_schema_only_check_in_process(cli, write_spec):
    code, out, err = cli("check", "--schema-only", write_spec({"$schema": "./schema.json", **tiny_spec()}, "s.json"))
    assert code == 0, err
    for bad, expected in (
        (tiny_spec(train={"optimizer": {"type": "adam", "beta_11": 0.9}}), "train.optimizer.beta_11: adam has no argument 'beta_11' (did you mean 'beta_1'?)"),
        (tiny_spec(train={"loss": "sparse_crossentropy"}), "train.loss: unknown loss 'sparse_crossentropy'"),
        (tiny_spec(train={"metrics": ["acuracy"]}), "train.metrics[0]: unknown metric 'acuracy' (did you mean 'accuracy'?)"),
        (tiny_spec(augmentation={"steps": [{"type": "RandomFlip", "mod": "horizontal"}]}),
         "augmentation.steps[0].mod: RandomFlip has no argument 'mod' (did you mean 'mode'?)"),
        (tiny_spec(model={"layers": [{"type": "Bidirectional", "layer": {"type": "LSTM", "unit": 4}}]}),
         "model.layers[0].layer.unit: LSTM has no argument 'unit' (did you mean 'units'?)"),
    ):
        code, _, err = cli("check", "--schema-only", write_spec(bad))
        assert code == 2 and expected in err, err


def test_schema_only_check_accepts_types_a_plugin_registers(cli, write_spec, tmp_path):
    (tmp_path / "nothing.py").write_text("# a plugin that would register MyLayer\n")
    spec = tiny_spec(plugins=["nothing.py"], model={"layers": [{"type": "MyLayer", "size": 3}, {"type": "Dense", "units": 10}]})
    code, out, err = cli("check", "--schema-only", write_spec(spec))
    assert code == 0 and "valid spec" in out, err
    spec["model"]["layers"][1] = {"type": "Dense", "unitz": 10}  # built-ins are still checked
    code, _, err = cli("check", "--schema-only", write_spec(spec))
    assert code == 2 and "did you mean 'units'" in err


def test_build_error_for_an_unknown_argument_lists_the_valid_ones(cli, write_spec):
    code, _, err = cli("check", write_spec(tiny_spec(model={"layers": [{"type": "Dense", "unitz": 10}]})))
    assert code == 2 and "model.layers[0].unitz: Dense has no argument 'unitz' (did you mean 'units'?)" in err
    assert "it takes: units, activation, use_bias" in err and "name" in err.split("it takes:")[1]


def test_describe_and_list_verbose_read_the_catalogue_without_tensorflow():
    code, out, err, _ = _imports("describe", "Dense")
    assert code == 0 and "tensorflow" not in err, err
    assert out.startswith("Dense: layer") and "Just your regular densely-connected NN layer." in out
    assert "units" in out and "required" in out and '"glorot_uniform"' in out and "keras.layers.Layer's: " in out
    code, out, err, _ = _imports("list", "layers", "--verbose")
    assert code == 0 and "tensorflow" not in err
    assert "TransformerEncoder - Multi-head self-attention" in out
    assert "num_heads (required), key_dim (required), ff_dim (required), dropout = 0.0" in out


def test_describe_in_process(cli):
    code, out, _ = cli("describe", "TransformerEncoder")
    assert code == 0 and "num_heads" in out and "Positive integer, the number of attention heads." in out
    code, out, _ = cli("describe", "adam")
    assert code == 0 and out.startswith("adam = Adam: optimizer") and "beta_1" in out
    code, out, _ = cli("describe", "CosineDecay")
    assert "the framework fills in initial_learning_rate, decay_steps" in out
    code, out, _ = cli("describe", "mse")
    assert code == 0 and "loss and metric name" in out
    code, _, err = cli("describe", "Densse")
    assert code == 2 and "did you mean 'Dense'" in err
    code, out, _ = cli("list", "optimizers", "-v")
    assert code == 0 and "Adam (also: adam) - " in out


def test_a_catalogue_of_another_keras_checks_no_names(cli, write_spec, monkeypatch):
    from framework.spec import catalogue

    assert catalogue.describes_installed_keras()
    monkeypatch.setattr(catalogue, "describes_installed_keras", lambda: False)
    from framework.errors import FrameworkWarning

    with pytest.warns(FrameworkWarning, match="catalogue.json describes Keras"):
        code, out, err = cli("check", "--schema-only", write_spec(tiny_spec(model={"layers": [{"type": "Densse"}]})))
    assert code == 0 and "valid spec" in out


def test_describe_and_list_verbose_know_a_plugins_types(cli):
    plugin = ROOT / "plugins" / "tempered.py"
    code, out, err = cli("describe", "TemperedSigmoid", "--plugin", plugin)
    assert code == 0, err
    assert out.startswith("TemperedSigmoid: layer") and f"from plugin {plugin}" in out and "temperature" in out
    code, out, _ = cli("list", "layers", "--verbose", "--plugin", plugin)
    assert code == 0 and f"TemperedSigmoid [plugin {plugin}]" in out
