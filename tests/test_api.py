"""The Python API (framework.run/check/tune/load/open_run), versioned run folders, and tune trials as runs."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, tiny_spec
from framework.errors import RunError, SpecError

FIXTURE_V2 = ROOT / "tests" / "fixtures" / "run_v2"


def test_run_a_dict_spec_returns_metrics_history_and_model(tmp_path):
    import framework

    spec = tiny_spec(train={"epochs": 2, "verbose": 0})
    r = framework.run(spec, reports=tmp_path, overrides=["train.batch_size=32"], seed=5)
    assert 0 < r.metrics["test_accuracy"] <= 1 and r.metrics["seed"] == 5
    assert r.history.shape[0] == 2 and "val_accuracy" in r.history
    assert r.model.count_params() == r.metrics["params"]
    assert r.spec["train"]["batch_size"] == 32
    kept = json.loads((r.folder / "spec.json").read_text())  # the dict as given, not 0 bytes
    assert kept == spec
    again = framework.open_run(r.folder)
    assert again.metrics == r.metrics and again.model.count_params() == r.metrics["params"]
    table = framework.load(tmp_path)
    assert list(table["run"]) == [r.folder.name]


def test_toml_text_and_check(tmp_path):
    import framework

    text = 'name = "t"\n[data]\nsource = "sklearn:iris"\n[model]\nlayers = [{ type = "Dense", units = 3, activation = "softmax" }]\n'
    assert framework.check(text, schema_only=True).name == "t"
    assert framework.check(text).count_params() == 15
    with pytest.raises(SpecError, match="model.layers"):
        framework.check({"name": "t", "data": {"source": "sklearn:iris"}, "model": {"layers": [{"type": "Densse"}]}})


def test_tune_leaves_a_run_folder_per_trial_that_report_and_compare_read(cli, tmp_path):
    import framework

    spec = tiny_spec(tune={"max_trials": 2, "objective": "val_accuracy"})
    spec["model"]["layers"][0]["units"] = {"tune": "choice", "values": [8, 16]}
    trials = framework.tune(spec, reports=tmp_path)
    folder = Path(trials.attrs["folder"])
    runs = sorted((folder / "trials").iterdir())
    assert len(runs) == len(trials) == 2
    for run in runs:
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["status"] == "completed" and metrics["kind"] == "trial" and "val_accuracy" in metrics
        assert len(pd.read_csv(run / "history.csv")) == 1
    code, out, err = cli("report", folder, "--format", "csv")
    assert code == 0, err
    assert all(run.name in out for run in runs)
    code, out, err = cli("compare", *runs)
    assert code == 0, err
    assert "model.layers[0].units" in out


def test_the_version_2_fixture_resumes_predicts_and_opens(cli, tmp_path):
    import framework

    folder = Path(shutil.copytree(FIXTURE_V2, tmp_path / "run"))
    assert json.loads((folder / "resolved.json").read_text())["spec_version"] == 2
    code, _, err = cli("run", "--resume", folder)
    assert code == 0, err
    r = framework.open_run(folder)
    assert r.metrics["status"] == "completed" and r.metrics["resumed_from_epoch"] == 1 and len(r.history) == 2
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.savez(tmp_path / "x.npz", x=digits.data[:5])
    code, out, err = cli("predict", folder, tmp_path / "x.npz")
    assert code == 0, err
    assert len(out.strip().splitlines()) == 6


def test_older_spec_versions_are_upgraded_and_newer_ones_refused(tmp_path):
    from framework.spec.load import validate_resolved
    from framework.spec.upgrade import SPEC_VERSION, upgrade

    resolved = json.loads((FIXTURE_V2 / "resolved.json").read_text())
    v1 = {k: v for k, v in resolved.items() if k != "spec_version"}
    v1["privacy"] = {"l2_norm_clip": 1.0, "noise_multiplier": 1.0}  # version 1 had no reproducible_noise
    v1["data"]["scale"] = "standard"  # refused for new private runs, readable in an old one
    spec = validate_resolved(v1, tmp_path)
    assert spec.privacy.reproducible_noise is True  # version 1 drew its noise from the seed
    with pytest.raises(RunError, match="newer framework"):
        upgrade({**resolved, "spec_version": SPEC_VERSION + 1})


def test_a_disabled_privacy_section_stays_in_resolved_json(tmp_path):
    from framework.spec.load import validate

    spec = validate(tiny_spec(privacy={"enabled": False, "noise_multiplier": 1.0}), file="s", base_dir=tmp_path)
    assert spec.dp is None and spec.model_dump(mode="json")["privacy"]["enabled"] is False


def test_max_epsilon_and_the_epsilon_log_hold_inside_tune_trials(cli, write_spec, tmp_path):
    spec = tiny_spec(train={"epochs": 50, "verbose": 0}, tune={"max_trials": 1, "objective": "val_accuracy"},
                     privacy={"l2_norm_clip": 1.0, "noise_multiplier": 2.0, "max_epsilon": 1.0})
    spec["train"]["batch_size"] = {"tune": "choice", "values": [64]}
    code, _, err = cli("tune", write_spec(spec, "t.json"), "--reports", tmp_path / "r")
    assert code == 0, err
    assert "spends privacy" in err  # the search's choices are not counted in any trial's epsilon: said
    run = next(next((tmp_path / "r").iterdir()).joinpath("trials").iterdir())
    metrics = json.loads((run / "metrics.json").read_text())
    history = pd.read_csv(run / "history.csv")
    assert 1 < metrics["epochs"] < 50 and len(history) == metrics["epochs"]
    assert history["epsilon"].iloc[-1] <= 1.0 and metrics["epsilon"] <= 1.0
