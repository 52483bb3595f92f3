"""Uncertainty and calibration in every classification run's report: the math on known answers, and a run's
metrics.json (test_ece, test_entropy), calibration.png and its page."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import SPECS
from framework.reports import calibration


def test_perfectly_calibrated_predictions_have_ece_near_zero():
    rng = np.random.default_rng(0)
    n = 100_000
    confidence = rng.uniform(0.5, 1.0, n)  # P(class 1); class 1 comes true with exactly that probability
    labels = (rng.uniform(size=n) < confidence).astype(int)
    probabilities = np.stack([1 - confidence, confidence], axis=1)
    assert calibration.expected_calibration_error(probabilities, labels) < 0.01
    assert calibration.expected_calibration_error(confidence[:, None], labels) < 0.01  # a sigmoid's one column


def test_confident_and_wrong_has_ece_one_and_known_entropies():
    wrong = np.tile([[0.0, 1.0, 0.0]], (50, 1))
    found = calibration.calibration_metrics(wrong, np.zeros(50, dtype=int))
    assert found["test_ece"] == pytest.approx(1.0) and found["test_entropy"] == pytest.approx(0.0, abs=1e-6)
    uniform = np.full((8, 4), 0.25)  # always 25% sure of class 0 (the first of the ties), right 2 of 8 times
    found = calibration.calibration_metrics(uniform, np.array([0, 0, 1, 2, 3, 1, 2, 3]))
    assert found["test_entropy"] == pytest.approx(2.0)  # log2(4) bits
    assert found["test_ece"] == pytest.approx(0.0)  # 25% sure, right 25% of the time: calibrated


def test_outputs_that_are_not_probabilities_get_no_calibration():
    assert calibration.calibration_metrics(np.array([[3.5], [-1.0]]), np.array([3, 0])) == {}  # a regression
    assert calibration.calibration_metrics(np.array([[0.7, 0.7]]), np.array([0])) == {}  # rows not summing to 1
    assert calibration.are_probabilities(np.array([[0.2], [0.9]]))


def test_ece_by_hand_on_two_bins():
    # 4 examples at confidence 0.9 (3 right) and 4 at 0.6 (all right): ECE = 0.5*|0.75-0.9| + 0.5*|1.0-0.6| = 0.275
    p = np.array([[0.9, 0.1]] * 4 + [[0.6, 0.4]] * 4)
    labels = np.array([0, 0, 0, 1, 0, 0, 0, 0])
    assert calibration.expected_calibration_error(p, labels) == pytest.approx(0.275)
    bins = calibration.reliability_bins(p, labels)
    assert len(bins) == 15 and sum(b["count"] for b in bins) == 8
    filled = [b for b in bins if b["count"]]
    assert [b["count"] for b in filled] == [4, 4] and filled[1]["accuracy"] == pytest.approx(0.75)


@pytest.mark.parametrize("spec", ["quickstart.toml", "quickstart.json", "movie_word2vec.toml"])
def test_a_classification_run_reports_calibration(tmp_path, spec):
    """Images, a table, and text: specs/movie_word2vec.toml on the shipped sample (Word2Vec on its training split)."""
    from framework.cli import main

    if spec == "movie_word2vec.toml":
        pytest.importorskip("gensim")
        shutil.copytree(SPECS / "data", tmp_path / "data")
    copied = shutil.copy(SPECS / spec, tmp_path)
    assert main(["run", str(copied), "--reports", str(tmp_path / "r"), "--set", "train.epochs=1",
                 "--set", "train.verbose=0"]) == 0
    run = next((tmp_path / "r").iterdir())
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["test_ece"] <= 1 and 0 <= metrics["test_entropy"] <= np.log2(10)
    assert (run / "calibration.png").stat().st_size > 1000
    assert 'src="calibration.png"' in (run / "report.html").read_text()
    if spec == "movie_word2vec.toml":  # the Word2Vec vectors and the neighbours figure are in the run folder
        assert metrics["pretrained_coverage"] > 0 and (run / "embedding.png").exists() and (run / "word2vec").is_dir()
