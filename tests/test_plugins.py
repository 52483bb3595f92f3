"""Plugins: spec-named files and entry points register into the one registry; models reload with them."""

import json
import textwrap

import numpy as np
import pytest

from conftest import ROOT, SPECS, run_python, tiny_spec
from framework.errors import SpecError
from framework.registry import Registry, registry


def test_tempered_sigmoid_with_defaults_is_tanh():
    from framework.plugins import load_plugin_file

    module = load_plugin_file(ROOT / "plugins" / "tempered.py")
    x = np.linspace(-3, 3, 13, dtype="float32")
    np.testing.assert_allclose(module.TemperedSigmoid()(x), np.tanh(x), atol=1e-6)
    layer = module.TemperedSigmoid(scale=1.5, temperature=0.5, offset=0.2)
    assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()


def test_balanced_accuracy_is_mean_recall():
    from framework.plugins import load_plugin_file

    metric = load_plugin_file(ROOT / "plugins" / "balanced_accuracy.py").BalancedAccuracy()
    y_true = np.array([0, 0, 0, 0, 1, 1])
    y_pred = np.eye(2, dtype="float32")[[0, 0, 0, 1, 1, 0]]
    metric.update_state(y_true, y_pred)
    assert float(metric.result()) == pytest.approx((3 / 4 + 1 / 2) / 2)


@pytest.mark.parametrize("spec", ["digits_tempered.toml", "digits_npy.toml"])
def test_plugin_specs_check_and_run(cli, tmp_path, spec):
    assert cli("check", SPECS / spec)[0] == 0
    code, out, err = cli("run", SPECS / spec, "--reports", tmp_path, "--set", "train.epochs=1", "--set", "train.verbose=0")
    assert code == 0, err
    metrics = json.loads(next(tmp_path.iterdir()).joinpath("metrics.json").read_text())
    assert metrics["status"] == "completed"
    if spec == "digits_tempered.toml":
        assert "test_balanced_accuracy" in metrics


def test_list_names_the_plugin_source(cli):
    code, out, _ = cli("list", "layers", "--spec", SPECS / "digits_tempered.toml")
    line = next(l for l in out.splitlines() if l.strip().startswith("TemperedSigmoid"))
    assert "plugin" in line and "tempered.py" in line
    assert "built-in" in next(l for l in out.splitlines() if l.strip().startswith("Dense "))


def test_a_name_clash_names_both_sources(tmp_path):
    from framework.plugins import load_plugin_file

    for n in (1, 2):
        (tmp_path / f"p{n}.py").write_text(textwrap.dedent("""
            from framework.data.sources import DataSource
            from framework.registry import registry
            @registry.register("data_source", "twice")
            class Twice(DataSource):
                pass
        """))
    load_plugin_file(tmp_path / "p1.py")
    with pytest.raises(SpecError) as err:
        load_plugin_file(tmp_path / "p2.py")
    assert "p1.py" in str(err.value) and "p2.py" in str(err.value)


def test_a_plugin_cannot_take_a_builtin_name(tmp_path):
    from framework.plugins import load_plugin_file

    (tmp_path / "dense.py").write_text(
        "import keras\nfrom framework.registry import registry\n"
        "@registry.register('layer', 'Dense')\nclass MyDense(keras.layers.Layer):\n    pass\n"
    )
    with pytest.raises(SpecError, match="registered twice: by built-in and by plugin"):
        load_plugin_file(tmp_path / "dense.py")


def test_missing_plugin_file_is_a_spec_error(cli, write_spec):
    code, _, err = cli("check", "--schema-only", write_spec({**tiny_spec(), "plugins": ["nowhere.py"]}))
    assert code == 2 and "plugins[0]" in err and "plugin not found" in err


def test_unknown_names_suggest_plugin_names(tmp_path):
    from framework.data.sources import DataSource

    reg = Registry()  # a data source: a plugin layer class would also be registered with Keras's serialization
    reg.add("data_source", "TemperedSigmoid", type("TemperedSigmoid", (DataSource,), {}), source="plugin x.py")
    with pytest.raises(SpecError, match="did you mean 'TemperedSigmoid'"):
        reg.get("data_source", "TemperedSigmoind")


def test_entry_point_plugins_are_loaded(tmp_path, monkeypatch):
    from importlib import metadata

    import framework.plugins as plugins

    (tmp_path / "ep_plugin.py").write_text(
        "from framework.data.sources import DataSource\nfrom framework.registry import registry\n"
        "@registry.register('data_source', 'from_ep')\nclass FromEp(DataSource):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = metadata.EntryPoint(name="demo", value="ep_plugin", group=plugins.ENTRY_POINT_GROUP)
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: [ep] if group == plugins.ENTRY_POINT_GROUP else [])
    plugins.load_entry_points()
    assert registry.find("data_source", "from_ep").source == "entry point demo (ep_plugin)"


def test_model_with_plugin_layer_reloads_in_a_new_process(cli, tmp_path):
    assert cli("run", SPECS / "digits_tempered.toml", "--reports", tmp_path, "--set", "train.epochs=1", "--set", "train.verbose=0")[0] == 0
    folder = next(tmp_path.iterdir())
    params = json.loads((folder / "metrics.json").read_text())["params"]
    plugins = [str(ROOT / "plugins" / "tempered.py"), str(ROOT / "plugins" / "balanced_accuracy.py")]
    # one fresh process, in this order: plain Keras cannot load the model without the plugins; the run folder
    # knows its plugins (load_run_model imports them itself); with the plugin files loaded, plain Keras can
    code = textwrap.dedent(f"""
        import keras
        from framework.plugins import load_plugin_file
        from framework.reports.run_folder import load_run_model

        def keras_load():
            try:
                return "LOADED " + str(keras.saving.load_model({str(folder / 'model.keras')!r}, safe_mode=True).count_params())
            except Exception as exc:
                return f"FAILED {{exc}}"

        print("WITHOUT", keras_load())
        print("RUN_FOLDER LOADED", load_run_model({str(folder)!r}).count_params())
        for plugin in {plugins!r}:
            load_plugin_file(plugin)
        print("WITH", keras_load())
    """)
    result = run_python(code, timeout=120)
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    shown = result.stdout + result.stderr[-2000:]
    without = result.stdout.split("RUN_FOLDER")[0]  # Keras's message spans lines
    assert lines.get("WITHOUT", "").startswith("FAILED") and "TemperedSigmoid" in without, shown
    assert lines.get("RUN_FOLDER") == f"LOADED {params}", shown
    assert lines.get("WITH") == f"LOADED {params}", shown


def test_plugin_and_keras_callbacks_from_the_spec(cli, tmp_path, write_spec):
    (tmp_path / "cb.py").write_text(textwrap.dedent("""
        import keras
        from framework.registry import registry

        @registry.register("callback")
        class CountEpochs(keras.callbacks.Callback):
            def __init__(self, path):
                super().__init__()
                self.path = path

            def on_epoch_end(self, epoch, logs=None):
                with open(self.path, "a") as handle:
                    handle.write(f"{epoch}\\n")
    """))
    spec = tiny_spec(train={"epochs": 2, "verbose": 0, "callbacks": [
        {"type": "CountEpochs", "path": str(tmp_path / "epochs.txt")}, {"type": "TerminateOnNaN"}]})
    spec["plugins"] = ["cb.py"]
    assert cli("run", write_spec(spec, "s.json"), "--reports", tmp_path / "r")[0] == 0
    assert (tmp_path / "epochs.txt").read_text().split() == ["0", "1"]
    spec["train"]["callbacks"] = [{"type": "CountEpoch"}]
    code, _, err = cli("check", write_spec(spec, "bad.json"))
    assert code == 2 and "train.callbacks[0].type" in err and "did you mean 'CountEpochs'" in err


def test_a_run_whose_plugin_is_gone_names_it(cli, tmp_path, write_spec):
    # a layer of its own, so this process can run it: no other plugin registers that name
    (tmp_path / "vanishing.py").write_text(textwrap.dedent("""
        import keras
        from framework.registry import registry

        @registry.register("layer")
        class VanishingScale(keras.layers.Layer):
            def call(self, inputs):
                return 0.5 * inputs
    """))
    spec = tiny_spec(model={"layers": [{"type": "VanishingScale"}, *tiny_spec()["model"]["layers"]]})
    spec["plugins"] = ["vanishing.py"]
    code, _, err = cli("run", write_spec(spec, "s.json"), "--reports", tmp_path / "r")
    assert code == 0, err
    (tmp_path / "vanishing.py").unlink()
    folder = next((tmp_path / "r").iterdir())
    code = ("from framework.errors import RunError\nfrom framework.reports.run_folder import load_run_model\n"
            f"try:\n    load_run_model({str(folder)!r})\nexcept RunError as exc:\n    print('RUNERROR', exc)\n")
    out = run_python(code).stdout  # a fresh process, which never imported the layer
    assert "RUNERROR" in out and "needs the plugin" in out and "vanishing.py" in out, out
