"""Exact resume after SIGKILL at any instant: inside each stage of a checkpoint write, between epochs, and
mid-epoch. Each killed run is resumed and must end with the uninterrupted run's metrics and history.

The models have random state (Dropout, a Gaussian-noise augmentation, Poisson-sampled DP noise), so a
resume that replayed or skipped a random number would change the metrics.
"""

import json
import os
import re
import tomllib
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, run_in_process, run_outcome, tiny_spec
from framework.train.checkpoint import FAULT_ENV, STAGES

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}  # TensorFlow's error lines show: a run must print none
#: a TensorFlow C++ error line, e.g. tf.data's "E0000 ... use_unbounded_threadpool ..." from a rewritten parallel map
#: of a function with state (the Poisson batches, augmentation), printed in every such run before map_stateful
TF_ERROR_LINE = re.compile(r"^E\d{4} ", re.MULTILINE)
EPOCHS = 4

RANDOM_MLP = tiny_spec(
    name="random_mlp",
    model={"layers": [
        {"type": "Dense", "units": 16, "activation": "relu"},
        {"type": "Dropout", "rate": 0.3},
        {"type": "Dense", "units": 10, "activation": "softmax"},
    ]},
    augmentation={"steps": [{"type": "GaussianNoise", "stddev": 0.1}]},
    regularization={"early_stopping": {"monitor": "val_loss", "patience": 10}},
    train={"epochs": EPOCHS, "batch_size": 128, "verbose": 0},
)
DP_MLP = tiny_spec(
    name="dp_mlp",
    model={"layers": [
        {"type": "Dense", "units": 16, "activation": "tanh"},
        {"type": "Dropout", "rate": 0.2},
        {"type": "Dense", "units": 10, "activation": "softmax"},
    ]},
    # two augmented copies of each example per step: the augmentation layer runs in the model, its random state resumes;
    # clipped per example (tf.vectorized_map: each example's own Dropout mask); ghost clipping resumes in STOPPING_SPECS
    augmentation={"steps": [{"type": "GaussianNoise", "stddev": 0.1}]},
    privacy={"noise_multiplier": 1.0, "l2_norm_clip": 1.0, "reproducible_noise": True, "augmentation_multiplicity": 2,
             "clipping": "vectorized"},
    train={"epochs": EPOCHS, "batch_size": 128, "verbose": 0},
)
QUICKSTART_DROPOUT = tomllib.loads((ROOT / "specs" / "quickstart.toml").read_text())
QUICKSTART_DROPOUT["model"]["layers"].insert(-1, {"type": "Dropout", "rate": 0.3})
QUICKSTART_DROPOUT["train"].update(epochs=EPOCHS * 2, verbose=0)
SPECS = {"random_mlp": RANDOM_MLP, "dp_mlp": DP_MLP, "quickstart_dropout": QUICKSTART_DROPOUT}

def _spec_file(tmp_path_factory, name):
    import tomli_w

    path = tmp_path_factory.mktemp(name) / f"{name}.toml"
    path.write_text(tomli_w.dumps(SPECS[name]))
    return path


def _run(spec, reports, env=None, *extra):
    return subprocess.run(
        [sys.executable, "-m", "framework", "run", str(spec), "--reports", str(reports), *extra],
        cwd=ROOT, env={**ENV, **(env or {})}, capture_output=True, text=True,
    )


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run of each spec, computed once."""
    cache = {}

    def get(name):
        if name not in cache:
            spec = _spec_file(tmp_path_factory, name)
            reports = tmp_path_factory.mktemp(f"{name}-straight")
            run_in_process("run", spec, "--reports", reports)  # the killed runs are new processes
            cache[name] = (spec, run_outcome(next(reports.iterdir())))
        return cache[name]

    return get


def _resume_and_compare(cli, folder, expected):
    code, _, err = cli("run", "--resume", folder)
    assert code == 0, err
    metrics, history = run_outcome(folder)
    want_metrics, want_history = expected
    assert metrics == want_metrics
    pd.testing.assert_frame_equal(history, want_history)
    assert not (Path(folder) / "backup").exists()  # removed once the run completed
    return json.loads((Path(folder) / "metrics.json").read_text())


# One stage in the quick suite (inside the write; a kill just after the switch is killed_after_epoch_3's below);
# all of them with -m slow.
QUICK_STAGES = ("state",)


@pytest.mark.parametrize("stage", [s if s in QUICK_STAGES else pytest.param(s, marks=pytest.mark.slow) for s in STAGES])
def test_kill_inside_each_stage_of_a_checkpoint_write_resumes_exactly(cli, tmp_path, straight, stage):
    spec, expected = straight("random_mlp")
    proc = _run(spec, tmp_path, {FAULT_ENV: f"2:{stage}"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not TF_ERROR_LINE.search(proc.stderr), proc.stderr  # augmentation mapped in the pipeline
    folder = next(tmp_path.iterdir())
    assert json.loads((folder / "metrics.json").read_text())["status"] == "running"
    metrics = _resume_and_compare(cli, folder, expected)
    # killed while epoch 2's checkpoint was incomplete: back to epoch 1; once it was renamed: epoch 2
    assert metrics["resumed_from_epoch"] == (2 if stage in ("renamed", "pruned") else 1)
    assert metrics["epochs"] == EPOCHS and metrics["train_seconds"] > 0
    assert metrics["examples_per_second"] == pytest.approx(metrics["train_examples"] * EPOCHS / metrics["train_seconds"], rel=0.01)


def test_dp_run_killed_mid_write_resumes_exactly_with_reproducible_noise(cli, tmp_path, straight):
    spec, expected = straight("dp_mlp")
    proc = _run(spec, tmp_path, {FAULT_ENV: "3:state"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not TF_ERROR_LINE.search(proc.stderr), proc.stderr  # the Poisson batches mapped in the pipeline
    metrics = _resume_and_compare(cli, next(tmp_path.iterdir()), expected)
    assert metrics["resumed_from_epoch"] == 2 and metrics["steps"] == EPOCHS * metrics["steps_per_epoch"]
    assert metrics["augmentation"] == "model" and metrics["augmentation_multiplicity"] == 2
    assert metrics["dp_clipping"] == "vectorized"
    from test_privacy_paths import _recomputed_epsilon

    assert metrics["epsilon"] == pytest.approx(_recomputed_epsilon(metrics), rel=1e-9)  # epsilon after a resume


@pytest.fixture(scope="module")
def killed_after_epoch_3(tmp_path_factory, straight):
    """random_mlp killed once epoch 3's checkpoint was written and the older ones pruned: its run folder, which
    each test copies."""
    spec, _ = straight("random_mlp")
    reports = tmp_path_factory.mktemp("killed-after-3")
    assert _run(spec, reports, {FAULT_ENV: "3:pruned"}).returncode == -signal.SIGKILL
    return next(reports.iterdir())


def _copy(folder, tmp_path):
    import shutil

    return Path(shutil.copytree(folder, tmp_path / folder.name))


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_one(cli, tmp_path, straight, killed_after_epoch_3):
    _, expected = straight("random_mlp")
    folder = _copy(killed_after_epoch_3, tmp_path)
    newest = sorted((folder / "backup").iterdir())[-1]
    (newest / "state.npz").write_bytes(b"")  # as a failing disk would leave it
    metrics = _resume_and_compare(cli, folder, expected)
    assert metrics["resumed_from_epoch"] == 2


def test_resume_refuses_an_edited_resolved_json(cli, tmp_path, killed_after_epoch_3):
    folder = _copy(killed_after_epoch_3, tmp_path)
    resolved = folder / "resolved.json"
    resolved.write_text(resolved.read_text().replace('"epochs": 4', '"epochs": 40'))
    code, _, err = cli("run", "--resume", folder)
    assert code == 2 and "resolved.json was changed" in err and "Traceback" not in err
    resolved.write_text("{ not json")
    code, _, err = cli("run", "--resume", folder)
    assert code == 2 and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["random_mlp", "dp_mlp", "quickstart_dropout"])
def test_sigkill_at_random_moments_resumes_exactly(cli, tmp_path, straight, name):
    """Kills at 12 moments spread over the run (mid-epoch, mid-write, between epochs), each then resumed."""
    spec, expected = straight(name)
    rng = np.random.default_rng(0)
    for i in range(12):
        reports = tmp_path / f"kill{i}"
        log = tmp_path / f"kill{i}.log"
        with open(log, "w") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "framework", "run", str(spec), "--reports", str(reports)],
                cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=stderr,
            )
            deadline = time.time() + 120
            while not list(reports.glob("*/backup")) and proc.poll() is None and time.time() < deadline:
                time.sleep(0.005)
            assert reports.exists(), log.read_text()[-2000:]
            time.sleep(float(rng.uniform(0, 1.5)))  # a random instant after the first checkpoint appears
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        folder = next(reports.iterdir())
        if json.loads((folder / "metrics.json").read_text())["status"] == "completed":
            continue
        _resume_and_compare(cli, folder, expected)


STOPPING_SPECS = {
    "max_epsilon": tiny_spec(name="capped", train={"epochs": 40, "verbose": 0}, privacy={
        "l2_norm_clip": 1.0, "noise_multiplier": 2.0, "max_epsilon": 0.9, "reproducible_noise": True}),  # 3 epochs
    # no later epoch can beat the first by 10: stopped after epoch 2, ending with epoch 1's (best) weights
    "early_stopping": tiny_spec(name="early", train={"epochs": 40, "verbose": 0}, regularization={
        "early_stopping": {"monitor": "val_loss", "patience": 1, "min_delta": 10.0, "restore_best_weights": True}}),
}


# max_epsilon in the quick suite; early stopping (the same stopped state, and its best weights) with -m slow
@pytest.mark.parametrize("stopper", ["max_epsilon", pytest.param("early_stopping", marks=pytest.mark.slow)])
def test_a_run_that_stopped_itself_stays_stopped_after_a_kill(cli, tmp_path, write_spec, stopper):
    """Killed after max_epsilon or early stopping stopped it (during evaluation or saving): the resume trains no
    further epoch, and ends as the uninterrupted run did (early stopping: with the best epoch's weights)."""
    path = write_spec(STOPPING_SPECS[stopper], "stopping.json")
    assert cli("run", path, "--reports", tmp_path / "straight")[0] == 0
    straight = next((tmp_path / "straight").iterdir())
    stopped_at = json.loads((straight / "metrics.json").read_text())["epochs"]
    assert stopped_at < 40
    assert _run(path, tmp_path / "killed", {FAULT_ENV: f"{stopped_at}:pruned"}).returncode == -signal.SIGKILL
    metrics = _resume_and_compare(cli, next((tmp_path / "killed").iterdir()), run_outcome(straight))
    assert metrics["epochs"] == stopped_at
    if stopper == "max_epsilon":
        assert metrics["epsilon"] <= 0.9


def test_resume_refuses_changed_training_data(cli, tmp_path, write_spec):
    rows = ["a,b,label"] + [f"{i % 7},{i % 5},{i % 3}" for i in range(90)]
    data = tmp_path / "rows.csv"
    data.write_text("\n".join(rows) + "\n")
    spec = tiny_spec(data={"source": "csv:rows.csv", "scale": 0.1, "validation_split": 0.2}, train={"epochs": 3, "verbose": 0},
                     model={"layers": [{"type": "Dense", "units": 3, "activation": "softmax"}]})
    assert _run(write_spec(spec, "rows.json"), tmp_path / "r", {FAULT_ENV: "1:pruned"}).returncode == -signal.SIGKILL
    data.write_text("\n".join(rows + [f"{i % 7},{i % 5},{i % 3}" for i in range(30)]) + "\n")
    code, _, err = cli("run", "--resume", next((tmp_path / "r").iterdir()))
    assert code == 2 and "training data changed" in err and "Traceback" not in err


def test_a_run_failed_on_a_non_finite_loss_keeps_no_checkpoint_and_is_not_resumed(cli, tmp_path, write_spec):
    spec = tiny_spec(data={"scale": 1e30}, train={"epochs": 3, "verbose": 0})
    code, _, _ = cli("run", write_spec(spec), "--reports", tmp_path / "r")
    folder = next((tmp_path / "r").iterdir())
    assert code == 1 and not (folder / "backup").exists()
    code, _, err = cli("run", "--resume", folder)
    assert code == 2 and "non-finite" in err
