"""The registry: every built-in provider in one place, each kind checks what it takes, no import cycle;
and run-folder files written atomically still get the umask's mode."""

import os
import stat
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT, run_python
from framework.errors import SpecError
from framework.registry import BUILTIN, LIST_WORDS, NameClash, Registry, WrongKind


def _python(code: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return run_python(code, timeout=timeout)


# --- every kind is listed -------------------------------------------------------------------


def test_list_augmentations_in_a_fresh_process():
    # a fresh interpreter: in this one some test may already have imported framework.build.augment
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-m", "framework", "list", "augmentations"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    names = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")}
    assert {"RandomFlip", "RandomRotation", "GaussianNoise", "MixUp", "CutMix"} <= names
    assert "augmentation (0)" not in result.stdout


def test_list_with_no_kind_shows_every_kind_but_layers(cli):
    code, out, _ = cli("list")
    assert code == 0
    counts = {line.split()[0]: int(line.split("(")[1].split(")")[0]) for line in out.splitlines() if not line.startswith(" ")}
    assert set(counts) == set(LIST_WORDS) - {"layer"}
    assert all(n > 0 for n in counts.values()), counts
    assert "  RandomFlip " in out


def test_importing_the_registry_imports_no_keras():
    result = _python("""
        import sys
        import framework.registry
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("keras", "tensorflow"))
        print("HEAVY", heavy)
    """)
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr[-2000:]


# --- no import cycle ----------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["framework.registry", "framework.plugins", "framework.data.sources", "framework.data.generated"])
def test_each_module_imports_first_in_a_fresh_interpreter(module):
    result = _python(f"""
        import {module}
        from framework.registry import BUILTIN, registry
        # importing a built-in module neither loads entry points nor runs providers half-way through its import
        print("EP", registry._entry_points_loaded)
        sources = registry.entries("data_source")
        print("SOURCES", sorted(sources))
        print("SOURCE OF", {{e.source for e in sources.values()}})
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "EP False" in result.stdout
    assert "SOURCES ['csv', 'generated', 'images', 'keras', 'npz', 'parquet', 'sklearn', 'tfrecord']" in result.stdout
    assert "SOURCE OF {'built-in'}" in result.stdout


def test_builtins_imported_by_a_plugin_stay_builtin():
    # plugins/npy_folder.py is the first to import framework.data.sources here: its sources are still built-ins
    result = _python("""
        from framework.plugins import load_plugin_file
        load_plugin_file("plugins/npy_folder.py")
        from framework.registry import registry
        for name, entry in registry.entries("data_source").items():
            print("ENTRY", name, "|", entry.source)
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" ", 1)[1].split(" | ") for line in result.stdout.splitlines() if line.startswith("ENTRY"))
    assert lines["npyfolder"].startswith("plugin ") and lines["npyfolder"].endswith("npy_folder.py")
    assert {lines[n] for n in ("csv", "npz", "sklearn", "keras", "generated")} == {BUILTIN}


# --- each kind checks what it takes ------------------------------------------------------------


def _keras():
    import keras

    return keras


def _good_objects():
    keras = _keras()
    from framework.data.sources import DataSource

    def a_loss(y_true, y_pred):
        return y_pred

    return [
        ("layer", type("MyLayer", (keras.layers.Layer,), {})),
        ("layer", keras.layers.Dense),
        ("augmentation", type("MyFlip", (keras.layers.RandomFlip,), {})),
        ("data_source", type("MySource", (DataSource,), {})),
        ("callback", type("MyCallback", (keras.callbacks.Callback,), {})),
        ("optimizer", keras.optimizers.Adam),
        ("lr_schedule", keras.optimizers.schedules.ExponentialDecay),
        ("loss", a_loss),
        ("loss", keras.losses.Huber),
        ("metric", a_loss),
        ("metric", keras.metrics.Mean),
    ]


def _bad_objects():
    keras = _keras()

    def a_function():
        pass

    class Plain:
        pass

    class Layer:  # a Layer, but not Keras's
        pass

    return [
        ("layer", a_function, "keras.layers.Layer"),
        ("layer", Plain, "keras.layers.Layer"),
        ("layer", type("Fake", (Layer,), {}), "keras.layers.Layer"),
        ("layer", keras.layers.Dense(2), "keras.layers.Layer"),  # an instance, not a class
        ("augmentation", keras.callbacks.Callback, "keras.layers.Layer"),
        ("data_source", Plain, "framework.data.sources.DataSource"),
        ("data_source", a_function, "framework.data.sources.DataSource"),
        ("callback", keras.layers.Dense, "keras.callbacks.Callback"),
        ("optimizer", keras.optimizers.schedules.ExponentialDecay, "keras.optimizers.Optimizer"),
        ("lr_schedule", a_function, "LearningRateSchedule"),
        ("loss", keras.metrics.Mean, "keras.losses.Loss"),
        ("loss", "mse", "keras.losses.Loss"),
        ("metric", Plain, "keras.metrics.Metric"),
    ]


def test_each_kind_takes_its_own_objects():
    reg = Registry()
    for i, (kind, obj) in enumerate(_good_objects()):
        # BUILTIN: a plugin source would also register layer classes with Keras's serialization, process-wide
        assert reg.add(kind, f"good{i}", obj, source=BUILTIN) is obj
        assert reg.get(kind, f"good{i}") is obj


def test_each_kind_refuses_the_wrong_object():
    reg = Registry()
    for i, (kind, obj, expected) in enumerate(_bad_objects()):
        with pytest.raises(WrongKind) as err:
            reg.add(kind, f"bad{i}", obj, source="plugin bad.py")
        message = str(err.value)
        assert message.startswith(f"{kind} 'bad{i}' (registered by plugin bad.py) must be"), message
        assert expected in message, message
        assert reg.find(kind, f"bad{i}") is None
    assert issubclass(WrongKind, SpecError) and issubclass(WrongKind, TypeError)


def test_the_decorator_checks_too():
    reg = Registry()
    with pytest.raises(WrongKind, match="data_source 'nope' must be a subclass of framework.data.sources.DataSource; "
                                        "got the class .*Nope"):
        @reg.register("data_source", "nope", source=BUILTIN)
        class Nope:
            pass


def test_a_plugin_registering_the_wrong_thing_is_a_spec_error_naming_it(tmp_path):
    from framework.plugins import load_plugin_file

    (tmp_path / "wrong.py").write_text(textwrap.dedent("""
        from framework.registry import registry

        @registry.register("layer", "NotALayer")
        def not_a_layer(x):
            return x
    """))
    with pytest.raises(SpecError) as err:
        load_plugin_file(tmp_path / "wrong.py")
    message = str(err.value)
    assert "layer 'NotALayer'" in message and "wrong.py" in message and "keras.layers.Layer" in message
    from framework.registry import registry

    assert registry.find("layer", "NotALayer") is None


def test_a_builtin_provider_clashing_with_a_builtin_is_refused():
    from framework.data.sources import DataSource

    reg = Registry()
    first, second = type("One", (DataSource,), {}), type("Two", (DataSource,), {})
    reg.add("data_source", "same", first, source=BUILTIN)
    reg.add_provider("data_source", lambda: {"same": second, "other": second})
    with pytest.raises(NameClash, match="data_source 'same' is registered twice"):
        reg.entries("data_source")


# --- run-folder files and the umask -----------------------------------------------------------------


@pytest.fixture
def umask():
    previous = os.umask(0o022)
    os.umask(previous)

    def set_umask(mask):
        os.umask(mask)

    yield set_umask
    os.umask(previous)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_current_umask_reads_the_umask(umask):
    from framework.reports.run_folder import current_umask

    for mask in (0o022, 0o077, 0o002):
        umask(mask)
        assert current_umask() == mask


def test_write_atomic_files_have_the_umask_mode(tmp_path, umask):
    from framework.reports import run_folder as rf

    umask(0o022)
    rf.write_atomic(tmp_path / "summary.txt", "hello\n")
    rf.write_json(tmp_path / "metrics.json", {"a": 1})
    with open(tmp_path / "plain.txt", "w") as handle:
        handle.write("x")
    assert _mode(tmp_path / "summary.txt") == _mode(tmp_path / "metrics.json") == _mode(tmp_path / "plain.txt") == 0o644
    assert (tmp_path / "summary.txt").read_text() == "hello\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    umask(0o077)
    rf.write_atomic(tmp_path / "private.txt", "x")
    assert _mode(tmp_path / "private.txt") == 0o600


def test_write_atomic_keeps_an_existing_files_mode(tmp_path, umask):
    from framework.reports import run_folder as rf

    umask(0o022)
    target = tmp_path / "report.html"
    target.write_text("old")
    target.chmod(0o640)
    rf.write_atomic(target, "new")
    assert target.read_text() == "new" and _mode(target) == 0o640
