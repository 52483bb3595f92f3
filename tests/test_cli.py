"""End to end through the command line: run, check, report, schema, list, --help."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT, SPECS, tiny_spec

RUN_FILES = {"spec.toml", "resolved.json", "history.csv", "metrics.json", "model.keras", "summary.txt", "environment.json"}


def run_folder_of(reports):
    folders = [p for p in reports.iterdir() if p.is_dir()]
    assert len(folders) == 1
    return folders[0]


def test_quickstart_runs_end_to_end(cli, tmp_path):
    reports = tmp_path / "reports"
    code, out, err = cli("run", SPECS / "quickstart.toml", "--set", "train.epochs=2", "--set", "train.verbose=0", "--reports", reports)
    assert code == 0, err
    folder = run_folder_of(reports)
    assert folder.name.startswith("quickstart-")
    assert RUN_FILES <= {p.name for p in folder.iterdir()}
    assert f"run folder: {folder}" in out and "completed" in out

    metrics = json.loads((folder / "metrics.json").read_text())
    for key in ("name", "status", "test_accuracy", "test_loss", "params", "epochs", "seed", "jit_compile",
                "train_seconds", "examples_per_second"):
        assert key in metrics
    assert metrics["status"] == "completed" and metrics["epochs"] == 2 and metrics["jit_compile"] is False
    assert 0.0 <= metrics["test_accuracy"] <= 1.0

    resolved = json.loads((folder / "resolved.json").read_text())
    assert resolved["train"]["epochs"] == 2 and resolved["_overrides"] == ["train.epochs=2", "train.verbose=0"]
    history = pd.read_csv(folder / "history.csv")
    assert list(history["epoch"]) == [0, 1] and "val_accuracy" in history

    env = json.loads((folder / "environment.json").read_text())
    assert env["jit_compile"] is False and env["packages"]["keras"].startswith("3.")

    import keras

    model = keras.saving.load_model(folder / "model.keras")
    assert model.count_params() == metrics["params"]


def test_run_seed_flag_and_report_over_two_runs(cli, tmp_path, write_spec):
    reports = tmp_path / "reports"
    spec = write_spec(tiny_spec())
    assert cli("run", spec, "--reports", reports, "--seed", "1")[0] == 0
    assert cli("run", spec, "--reports", reports, "--seed", "2", "--set", "train.optimizer.learning_rate=0.01")[0] == 0

    code, out, _ = cli("report", reports, "--format", "csv")
    assert code == 0
    table = pd.read_csv(__import__("io").StringIO(out))
    assert len(table) == 2
    assert set(table["seed"]) == {1, 2}
    # only the spec keys that differ are shown by default
    assert "train.optimizer.learning_rate" in table.columns and "train.epochs" not in table.columns

    code, out, _ = cli("report", reports, "--format", "json", "--sort", "seed")
    assert [row["seed"] for row in json.loads(out)] == [1, 2]
    code, out, _ = cli("report", reports, "--format", "markdown")
    assert out.startswith("| run") and out.count("\n") == 4
    code, out, _ = cli("report", reports, "--columns", "seed,test_accuracy")
    assert out.split()[:2] == ["seed", "test_accuracy"]
    code, _, err = cli("report", reports, "--sort", "test_acc")
    assert code == 2 and "did you mean 'test_accuracy'" in err


def test_report_skips_damaged_folders(cli, tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metrics.json").write_text("{ half")
    code, out, err = cli("report", tmp_path)
    assert code == 0 and "skipping" in err and "no runs found" in out


def test_check_prints_summary_and_params(cli):
    code, out, _ = cli("check", SPECS / "quickstart.json")
    assert code == 0
    assert "Total params" in out and "valid spec 'quickstart-mlp', 17,226 parameters" in out


@pytest.mark.parametrize(
    "spec_text, expected",
    [
        ('name = "a"\n[data]\nsource = "sklearn:digits"\n[model]\nlayers = [{ type = "Dense", units = "many" }]\n',
         "model.layers[0].units"),
        ('name = "a"\n[data]\nsource = "sklearn:digits"\n[model]\nlayers = [{ type = "Densse", units = 10 }]\n',
         "did you mean 'Dense'"),
        ('name = "a"\n[data\nsource = "sklearn:digits"\n', "TOML syntax error"),
    ],
)
def test_check_spec_errors_exit_2_without_traceback(cli, write_spec, spec_text, expected):
    path = write_spec(spec_text)
    code, out, err = cli("check", path)
    assert code == 2
    assert expected in err and str(path) in err
    assert "Traceback" not in err + out


def test_missing_data_file_is_a_spec_error(cli, write_spec):
    code, _, err = cli("run", write_spec(tiny_spec(data={"source": "csv:gone.csv"})))
    assert code == 2 and "data.source: file not found" in err


def test_spec_error_during_run_writes_no_folder(cli, tmp_path, write_spec):
    reports = tmp_path / "reports"
    spec = write_spec(tiny_spec(model={"layers": [{"type": "Conv2D", "filters": 2, "kernel_size": 3}]}))
    code, _, err = cli("run", spec, "--reports", reports)
    assert code == 2 and "model.layers[0]" in err
    assert not reports.exists() or not any(reports.iterdir())


def test_schema_and_list(cli):
    code, out, _ = cli("schema")
    assert code == 0 and json.loads(out)["title"] == "Spec"
    code, out, _ = cli("list", "datasets")
    assert code == 0 and "sklearn" in out and "built-in" in out
    code, out, _ = cli("list", "layers")
    assert "Conv2D" in out and "MultiHeadAttention" in out


def _imports(*args):
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "framework", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    return result.returncode, result.stderr


def test_help_schema_and_validation_do_not_import_tensorflow():
    for args in (["--help"], ["schema"], ["check", "--schema-only", str(SPECS / "quickstart.toml")]):
        code, imports = _imports(*args)
        assert code == 0, imports
        assert "tensorflow" not in imports and "keras" not in imports, args
