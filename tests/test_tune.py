"""Tuning: spaces inline, keras-tuner search in isolated trials, trials.csv, best.toml, resume, distributed."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, SPECS, free_ports, tiny_spec
from framework.errors import SpecError
from framework.spec import load_spec

FAST = ["--set", "train.epochs=2", "--set", "tune.max_trials=2"]


def test_spaces_are_found_named_and_defaulted():
    loaded = load_spec(SPECS / "digits_tune.toml")
    assert set(loaded.spaces) == {
        "model.layers[0].units", "model.layers[0].activation", "hidden_layers", "train.batch_size",
        "train.optimizer.learning_rate",
    }
    spec = loaded.spec  # run and check use the defaults
    assert spec.model.layers[0].kwargs["units"] == 64 and spec.model.layers[0].repeat == 1
    assert spec.train.batch_size == 32 and spec.train.optimizer.learning_rate == 1e-3


@pytest.mark.parametrize(
    "space, path, message",
    [
        ({"tune": "int", "min": 5, "max": 1}, "train.epochs", "'min' must be below 'max'"),
        ({"tune": "float", "min": 0, "max": 1, "log": True}, "train.epochs", "log range needs 'min' > 0"),
        ({"tune": "choice", "values": []}, "train.epochs", "non-empty"),
        ({"tune": "sometimes"}, "train.epochs", "'choice', 'int', 'float' or 'bool'"),
    ],
)
def test_bad_spaces_are_spec_errors(write_spec, space, path, message):
    spec = tiny_spec()
    spec["train"]["epochs"] = space
    with pytest.raises(SpecError) as err:
        load_spec(write_spec(spec, "s.json"))
    assert path in str(err.value) and message in str(err.value)


def test_repeat_stacks_a_layer(tmp_path):
    from framework.build import build_model
    from framework.spec.load import validate

    spec = tiny_spec(model={"layers": [{"type": "Dense", "units": 8, "repeat": 3, "name": "h"}, {"type": "Dense", "units": 10}]})
    model = build_model(validate(spec, file="s", base_dir=tmp_path))
    assert [l.name for l in model.layers[1:4]] == ["h_1", "h_2", "h_3"]


def test_check_and_schema_show_spaces(cli):
    code, out, _ = cli("check", SPECS / "digits_tune.toml")
    assert code == 0 and "hidden_layers: int from 1 to 3, default 1" in out
    code, out, _ = cli("schema")
    assert "SearchSpace" in json.loads(out)["$defs"]


def test_tune_without_spaces_is_a_clear_error(cli, write_spec):
    code, _, err = cli("tune", write_spec({**tiny_spec(), "tune": {"max_trials": 2}}))
    assert code == 2 and "has no search spaces" in err


@pytest.fixture(scope="module")
def fast_search(tmp_path_factory) -> Path:
    """specs/digits_tune.toml searched with FAST, once for the module: its reports folder."""
    from framework.cli import main

    reports = tmp_path_factory.mktemp("tuned")
    assert main(["tune", str(SPECS / "digits_tune.toml"), "--reports", str(reports), *FAST]) == 0
    return reports


def test_tune_writes_trials_and_a_best_spec_that_run_reproduces(cli, tmp_path, fast_search):
    folder = fast_search / "digits-tune-tune"
    trials = pd.read_csv(folder / "trials.csv")
    assert len(trials) == 2 and set(trials["status"]) == {"COMPLETED"}
    for column in ("trial", "hidden_layers", "train.optimizer.learning_rate", "val_accuracy", "seconds", "peak_rss_mb"):
        assert column in trials.columns
    assert (folder / "kt" / "oracle.json").exists()
    metrics = json.loads((folder / "metrics.json").read_text())
    best_score = trials["val_accuracy"].max()
    assert metrics["kind"] == "tune" and metrics["best_val_accuracy"] == pytest.approx(best_score)
    trial = json.loads(next((folder / "trials").glob("*/metrics.json")).read_text())
    assert trial["kind"] == "trial" and trial["steps_per_execution"] == 1  # recorded; "auto" for a 1-epoch trial

    assert cli("check", folder / "best.toml")[0] == 0
    code, _, err = cli("run", folder / "best.toml", "--reports", tmp_path / "runs")
    assert code == 0, err
    history = pd.read_csv(next((tmp_path / "runs").iterdir()) / "history.csv")
    assert history["val_accuracy"].max() == pytest.approx(best_score, abs=0.02)

    # the report table lists the search with its best objective
    code, out, _ = cli("report", fast_search, "--format", "json")
    rows = {row["run"]: row for row in json.loads(out)}
    assert rows["digits-tune-tune"]["best_val_accuracy"] == pytest.approx(best_score)


def test_tune_resumes_and_refuses_a_changed_space(cli, tmp_path, fast_search):
    import shutil

    shutil.copytree(fast_search / "digits-tune-tune", tmp_path / "digits-tune-tune")  # a search moved, then resumed
    code, _, err = cli("tune", SPECS / "digits_tune.toml", "--reports", tmp_path,
                       "--set", "train.epochs=2", "--set", "tune.max_trials=3")
    assert code == 0, err
    trials = pd.read_csv(tmp_path / "digits-tune-tune" / "trials.csv")
    assert len(trials) == 3  # two from before, one new
    code, _, err = cli("tune", SPECS / "digits_tune.toml", "--reports", tmp_path, *FAST,
                       "--set", 'train.batch_size={ tune = "choice", values = [16, 128] }')
    assert code == 2 and "search space changed" in err


def test_trial_memory_does_not_grow_and_workers_are_recycled(cli, tmp_path):
    code, _, err = cli("tune", SPECS / "digits_tune.toml", "--reports", tmp_path, "--set", "train.epochs=1",
                       "--set", "tune.max_trials=4", "--set", "tune.trials_per_worker=2")
    assert code == 0, err
    trials = pd.read_csv(tmp_path / "digits-tune-tune" / "trials.csv")
    # trials train in worker processes: the search process does not grow
    assert trials["search_rss_mb"].max() - trials["search_rss_mb"].min() < 20
    assert trials["peak_rss_mb"].iloc[-2:].max() < trials["peak_rss_mb"].iloc[:2].max() * 1.1
    # two trials per worker, then a fresh one: workers 1 1 2 2
    assert trials["worker"].tolist() == [w for w in dict.fromkeys(trials["worker"]) for _ in range(2)][:4]
    assert trials["worker"].nunique() == 2


def _kill_when_training_starts(pool, metrics: Path, limit: float = 120.0) -> None:
    """SIGKILL the pool's worker once ``metrics`` appears (its trial has started training)."""
    deadline = time.monotonic() + limit
    while not metrics.exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling for the file, not a fixed wait
    if metrics.exists() and pool.pid is not None:
        os.kill(pool.pid, signal.SIGKILL)


def test_a_worker_over_its_memory_limit_is_replaced_and_a_killed_worker_fails_only_its_trial(tmp_path):
    from framework.tuning.workers import TrialWorkers

    spec = tmp_path / "s.toml"
    spec.write_text((SPECS / "digits_tune.toml").read_text())
    pool = TrialWorkers(trials_per_worker=100, memory_mb=1.0, log=tmp_path / "w.log")  # every worker is "too big"
    request = {"spec_file": str(spec), "base_dir": str(SPECS), "overrides": ["train.epochs=1"], "values": {},
               "objective": "val_accuracy", "direction": "max"}
    try:
        first = pool.run({**request, "folder": str(tmp_path / "t0")}, tmp_path / "t0")
        assert "history" in first and pool.pid is None  # over the limit: that worker has stopped
        killer = threading.Thread(target=_kill_when_training_starts, args=(pool, tmp_path / "t2" / "metrics.json"))
        killer.start()  # the worker dies inside the trial, as when the OOM killer takes it
        killed = pool.run({**request, "folder": str(tmp_path / "t2")}, tmp_path / "t2")
        killer.join()
        assert "error" in killed and "signal 9" in killed["error"]
        after = pool.run({**request, "folder": str(tmp_path / "t3")}, tmp_path / "t3")
        assert "history" in after and pool.started == 3
        assert len({first["worker"], killed["worker"], after["worker"]}) == 3
    finally:
        pool.close()


def _wait_for_port(port: int, proc, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            try:
                proc.wait(timeout=0.2)  # returns at once if the chief died
            except subprocess.TimeoutExpired:
                pass
    raise AssertionError(f"the chief did not serve on port {port}: {proc.poll()}")


@pytest.mark.slow  # five processes that each import TensorFlow (~45 s on 2 cores)
def test_distributed_chief_and_two_workers_share_one_search(tmp_path):
    port = str(free_ports(1)[0])
    args = [sys.executable, "-m", "framework", "tune", str(SPECS / "digits_tune.toml"), "--reports", str(tmp_path),
            "--set", "train.epochs=1", "--set", "tune.max_trials=4"]
    base = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": port, "TF_CPP_MIN_LOG_LEVEL": "2"}
    chief = subprocess.Popen(args, env={**base, "KERASTUNER_TUNER_ID": "chief"}, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_port(int(port), chief)  # the chief serves the oracle before workers ask it for trials
    workers = [
        subprocess.Popen(args, env={**base, "KERASTUNER_TUNER_ID": f"tuner{i}"}, cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    for proc in workers + [chief]:
        out, err = proc.communicate(timeout=400)
        assert proc.returncode == 0, err[-2000:]
    trials = pd.read_csv(tmp_path / "digits-tune-tune" / "trials.csv")
    assert len(trials) == 4
    assert set(trials["tuner_id"]) == {"tuner0", "tuner1"}
    assert (tmp_path / "digits-tune-tune" / "best.toml").exists()


def test_failing_trials_end_in_a_message_not_a_traceback(cli, tmp_path, write_spec):
    (tmp_path / "d.csv").write_text("a,b\n" + "".join(f"{i},{i % 2}\n" for i in range(40)))
    spec = tiny_spec(data={"source": "csv:d.csv", "features": ["a"]}, tune={"max_trials": 2},
                     model={"layers": [{"type": "Dense", "units": {"tune": "int", "min": 2, "max": 4}}]})
    code, _, err = cli("tune", write_spec(spec, "t.json"), "--reports", tmp_path / "r")
    assert code == 2 and "no trial completed" in err and "label column 'label'" in err
    assert "Traceback" not in err
    metrics = json.loads((tmp_path / "r" / "tiny-tune" / "metrics.json").read_text())
    assert metrics["status"] == "failed"


def test_latest_run_references_are_pinned_for_every_trial(tmp_path, write_spec):
    """Trials are new processes: they get the run folder 'latest:NAME' meant when the search started."""
    from framework.spec import load_spec
    from framework.tuning.search import _pin_run_references

    reports = tmp_path / "reports"
    for stamp in ("20261128-100000-aaaaaa", "20261128-110000-bbbbbb"):
        run = reports / f"pre-{stamp}"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({"name": "pre", "status": "completed"}))
        (run / "model.keras").write_text("")
    spec = tiny_spec(model={"init_from": "latest:pre", "layers": [{"type": "Dense", "units": 10, "activation": "softmax"}]},
                     tune={"max_trials": 1})
    spec["model"]["layers"][0]["units"] = {"tune": "choice", "values": [10]}
    loaded = load_spec(write_spec(spec))
    _pin_run_references(loaded, reports)
    newest = str((reports / "pre-20261128-110000-bbbbbb").resolve())
    assert loaded.spec.model.init_from == newest
    assert loaded.overrides[-1] == f"model.init_from={json.dumps(newest)}"


def _tune_spec(**tune) -> dict:
    spec = tiny_spec(train={"epochs": 3, "verbose": 0, "tensorboard": True})
    spec["model"]["layers"][0]["units"] = {"tune": "choice", "values": [8, 16, 32], "name": "units"}
    spec["train"]["optimizer"] = {"learning_rate": {"tune": "float", "min": 1e-3, "max": 1e-2, "log": True}}
    spec["tune"] = {"objective": "val_accuracy", **tune}
    return spec


def test_hyperband_stops_at_max_trials_and_trials_csv_has_each_budget(cli, tmp_path, write_spec):
    """epochs 3, factor 3: hyperband alone would run 6 trials (3 at 1 epoch, the best continued to 3, then 2 at 3)."""
    from test_reports import hparams_in

    spec = write_spec(_tune_spec(tuner="hyperband", hyperband_factor=3, max_trials=4), "hb.json")
    code, out, err = cli("tune", spec, "--reports", tmp_path)
    assert code == 0, err
    folder = tmp_path / "tiny-tune"
    trials = pd.read_csv(folder / "trials.csv")
    assert len(trials) == 4
    assert list(trials["epochs"]) == [1, 1, 1, 3] and list(trials["initial_epoch"]) == [0, 0, 0, 1]
    best_first = trials.iloc[:3]["val_accuracy"].idxmax()
    assert trials["continued_from"].iloc[3] == trials["trial"].iloc[best_first]  # hyperband's tuner/trial_id
    assert not any(c.startswith("tuner/") for c in trials.columns)
    # one line per trial: n of N, the values, the objective, the best so far, the seconds
    lines = [l for l in out.splitlines() if l.startswith("trial ")]
    assert [l.split(":")[0] for l in lines] == [f"trial {n} of 4" for n in (1, 2, 3, 4)]
    assert all("units=" in l and "learning_rate=" in l and "-> val_accuracy " in l and "best" in l and l.endswith(" s")
               for l in lines)
    assert f"epochs=1->3 continuing trial {best_first + 1}" in lines[3]
    assert "Search: Running Trial" not in out  # not keras-tuner's own display
    # each trial's TensorBoard folder has the HParams of its search spaces, with hyperband's budget
    hparams, _ = hparams_in(folder / "trials" / f"trial_{trials['trial'].iloc[3]}" / "tensorboard")
    assert set(hparams) == {"units", "train.optimizer.learning_rate", "tuner/epochs", "tuner/initial_epoch", "tuner/trial_id"}
    assert hparams["units"] == trials["units"].iloc[3] and hparams["tuner/epochs"] == 3
    # continuing with another epoch budget is refused, as a changed space is
    code, _, err = cli("tune", spec, "--reports", tmp_path, "--set", "train.epochs=4")
    assert code == 2 and "train.epochs was 3, now 4" in err
    best = (folder / "best.toml").read_text()
    assert "from scratch for the full train.epochs = 3" in best


def test_max_seconds_stops_starting_new_trials(cli, tmp_path, write_spec):
    spec = write_spec(_tune_spec(max_trials=5, max_seconds=0.5), "t.json")
    code, out, err = cli("tune", spec, "--reports", tmp_path, "--set", "train.epochs=1", "--set", "train.tensorboard=false")
    assert code == 0, err
    folder = tmp_path / "tiny-tune"
    assert len(pd.read_csv(folder / "trials.csv")) == 1  # the first trial took longer than 0.5 s
    assert "tune.max_seconds = 0.5 s reached" in out
    assert json.loads((folder / "metrics.json").read_text())["stopped"] == "tune.max_seconds = 0.5 s reached"
