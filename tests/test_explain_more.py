"""explain --method (saliency, ig, shap, lime, all), LIME on known answers, and the measures of explanations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from framework.use import measures


def _summary(run):
    return json.loads((run / "explain" / "explain.json").read_text())


# --- the measures -------------------------------------------------------------------------------


def test_attribution_entropy_known_values():
    assert measures.attribution_entropy(np.ones(8)) == pytest.approx((3.0, 1.0))  # uniform over 8: 3 bits, the max
    assert measures.attribution_entropy(np.array([0.0, -5.0, 0.0, 0.0])) == (0.0, 0.0)  # one position
    bits, normalised = measures.attribution_entropy(np.array([1.0, 1.0, 0.0, 0.0]))
    assert bits == pytest.approx(1.0) and normalised == pytest.approx(0.5)


def test_predictive_entropy_and_information_gain_on_a_known_model():
    assert measures.predictive_entropy(np.array([[0.5, 0.5], [1.0, 0.0]])) == pytest.approx([1.0, 0.0], abs=1e-6)
    assert measures.predictive_entropy(np.array([[0.5]])) == pytest.approx([1.0])  # a sigmoid's one column

    def predict(x):  # sure of class 1 when feature 0 is present, unsure without it; the other features do nothing
        p = np.where(x[:, 0] > 0.5, 0.99, 0.5)
        return np.stack([1 - p, p], axis=1)

    x = np.ones((3, 10), dtype="float32")
    right = np.zeros((3, 10)); right[:, 0] = 1.0  # the attribution that names feature 0
    wrong = np.zeros((3, 10)); wrong[:, 5] = 1.0
    good = measures.measure_arrays(predict, x, np.zeros_like(x), right, 0.1)
    bad = measures.measure_arrays(predict, x, np.zeros_like(x), wrong, 0.1)
    h_sure = float(measures.predictive_entropy(np.array([[0.01, 0.99]]))[0])
    assert good[0]["information_gain"] == pytest.approx(1.0 - h_sure, abs=1e-3)  # removed: 1 bit; kept: sure
    assert bad[0]["information_gain"] == pytest.approx(h_sure - 1.0, abs=1e-3)  # the other way round
    assert good[0]["attribution_entropy"] == 0.0


def _reads_feature_zero(x):  # sure of class 1 with feature 0 present, unsure without; the others do nothing
    p = np.where(np.asarray(x)[:, 0] > 0.5, 0.99, 0.5)
    return np.stack([1 - p, p], axis=1)


def test_deletion_and_insertion_curves_on_a_known_model():
    x = np.ones((2, 10), dtype="float32")
    baseline, classes = np.zeros_like(x), np.array([1, 1])
    right = measures.importance_orders(np.eye(10)[[0, 0]])  # feature 0 first
    wrong = measures.importance_orders(np.tile(np.arange(10.0), (2, 1)))  # feature 0 last
    deletion, insertion = measures.curves_arrays(_reads_feature_zero, x, baseline, right, classes, steps=10)
    assert deletion.shape == (2, 11) and deletion[0, 0] == pytest.approx(0.99) and deletion[0, 1:] == pytest.approx(0.5)
    assert insertion[0, 0] == pytest.approx(0.5) and insertion[0, 1:] == pytest.approx(0.99)
    assert measures.area(deletion)[0] == pytest.approx(0.5 + 0.49 / 20)  # 0.99 -> 0.5 over the first tenth
    late_deletion, _ = measures.curves_arrays(_reads_feature_zero, x, baseline, wrong, classes, steps=10)
    assert measures.area(late_deletion)[0] == pytest.approx(0.99 - 0.49 / 20)
    randoms = [measures.random_orders(2, 10, s) for s in range(3)]
    found = measures.curve_measures(
        lambda o: measures.curves_arrays(_reads_feature_zero, x, baseline, o, classes, steps=10), right, randoms)
    assert found["beats_random"] and found["deletion_auc"] < found["deletion_auc_random"] < 0.99
    assert found["insertion_auc"] > found["insertion_auc_random"]


def test_token_curves_and_stability_known_values():
    def predict(texts):
        p = np.array([0.9 if "good" in str(t).split() else 0.2 for t in texts])
        return np.stack([1 - p, p], axis=1)

    tokens = [(["a", "good", "long", "film"], np.array([0.0, 1.0, 0.1, 0.2]))]
    deletion, insertion = measures.curves_tokens(predict, tokens, [np.array([1, 3, 2, 0])], np.array([1]), steps=4)
    assert deletion[0] == pytest.approx([0.9, 0.2, 0.2, 0.2, 0.2]) and insertion[0] == pytest.approx([0.2, 0.9, 0.9, 0.9, 0.9])
    assert measures.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert measures.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(measures.spearman([1, 1, 1], [1, 2, 3]))
    # compared only where a copy is unchanged: position 0 differs, positions 1..3 agree in rank
    assert measures.stability([np.array([9.0, 1, 2, 3])], [[np.array([-5.0, 1, 2, 3])]], [[np.array([1, 2, 3])]]) == 1.0
    copies = measures.noisy_tokens([["a", "b", "c", "d", "e"]], copies=2)
    assert all(texts[0].count(measures.UNKNOWN_TOKEN) == 1 and len(kept[0]) == 4 for texts, kept in copies)


# --- LIME on known answers -----------------------------------------------------------------------


def test_lime_tabular_recovers_a_linear_models_weights():
    pytest.importorskip("lime")
    from framework.use.lime_methods import lime_tabular

    rng = np.random.default_rng(0)
    weights = np.array([2.0, -1.0, 0.5, 0.0, 0.0])
    background = rng.normal(size=(500, 5)).astype("float32")

    def predict(x):  # P(class 1) linear in x in the range LIME samples
        p = np.clip(0.5 + 0.02 * np.asarray(x) @ weights, 0, 1)
        return p[:, None]

    x = np.zeros((1, 5), dtype="float32")
    found = lime_tabular(predict, x, background, np.array([1]), 1, samples=2000, discretize=False)[0]
    expected = 0.02 * weights * background.std(axis=0)  # LIME's weights are per standard deviation of a feature
    np.testing.assert_allclose(found, expected, atol=0.005)


def test_lime_text_finds_the_word_the_model_reads():
    pytest.importorskip("lime")
    from framework.use.lime_methods import lime_text

    def predict(texts):
        p = np.array([0.9 if "good" in str(t).split() else 0.2 for t in texts])
        return np.stack([1 - p, p], axis=1)

    tokens = ["a", "good", "long", "film"]
    weights = lime_text(predict, [tokens], np.array([1]), 2, samples=200)[0]
    assert int(np.argmax(weights)) == 1 and weights[1] > 0.5 and np.abs(np.delete(weights, 1)).max() < 0.05


# --- through the CLI ---------------------------------------------------------------------------


def _evidence(run, methods):
    """explain/methods.csv: per method deletion and insertion AUC, the random order's, stability and seconds;
    at least one method beats the random order on deletion AUC. Also on the page and printed."""
    table = pd.read_csv(run / "explain" / "methods.csv").set_index("method")
    assert set(table.index) == set(methods)
    columns = ["deletion_auc", "deletion_auc_random", "insertion_auc", "insertion_auc_random", "beats_random",
               "stability", "seconds"]
    assert set(columns) <= set(table.columns)
    assert table[columns].notna().all().all(), table
    assert table[["deletion_auc", "insertion_auc", "deletion_auc_random"]].apply(lambda c: c.between(0, 1)).all().all()
    assert (table["seconds"] > 0).all() and table["stability"].between(-1, 1).all()
    assert (table["deletion_auc"] < table["deletion_auc_random"]).any(), table
    assert (table["beats_random"] == (table["deletion_auc"] < table["deletion_auc_random"])).all()
    page = (run / "report.html").read_text()
    assert "deletion AUC" in page and "explain/deletion_insertion.png" in page
    metrics = json.loads((run / "metrics.json").read_text())  # a classification run: calibration in metrics.json
    assert 0 <= metrics["test_ece"] <= 1 and metrics["test_entropy"] >= 0 and (run / "calibration.png").exists()
    return table


def test_explain_all_methods_on_images(cli, image_run):
    pytest.importorskip("lime")
    pytest.importorskip("skimage")
    code, out, err = cli("explain", image_run, "--method", "all", "--samples", "4")
    assert code == 0, err
    summary = _summary(image_run)
    assert set(summary["methods"]) == {"saliency", "ig", "lime"}
    for m, entry in summary["methods"].items():
        assert entry["deletion_check"]["passes"], (m, entry)
        assert 0 < entry["measures"]["mean_attribution_entropy"] <= np.log2(64)
    for name in ("lime.png", "attribution_grid.png", "saliency.png", "integrated_gradients.png"):
        assert (image_run / "explain" / name).stat().st_size > 1000
    table = pd.read_csv(image_run / "explain" / "measures.csv")
    assert len(table) == 3 * 4 and {"attribution_entropy", "information_gain", "information_gain_vs_random"} <= set(table.columns)
    assert "attribution entropy" in out and "lime" in out
    assert "explain/attribution_grid.png" in (image_run / "report.html").read_text()
    table = _evidence(image_run, ["saliency", "ig", "lime"])
    assert table["beats_random"].all()  # on the quickstart's digits every method beats the random order
    assert "deletion AUC" in out and "stability" in out


def test_explain_lime_on_tabular(cli, tabular_run):
    pytest.importorskip("lime")
    code, out, err = cli("explain", tabular_run, "--method", "lime", "--samples", "4")
    assert code == 0, err
    summary = _summary(tabular_run)
    assert summary["method"] == "LIME (tabular)" and summary["deletion_check"]["passes"], summary
    assert len(pd.read_csv(tabular_run / "explain" / "feature_importance.csv")) == 64
    assert (tabular_run / "explain" / "feature_importance.png").exists()
    assert len(pd.read_csv(tabular_run / "explain" / "measures.csv")) == 4
    _evidence(tabular_run, ["lime"])


def test_explain_all_on_tabular_writes_the_evidence_table(cli, tabular_run):
    pytest.importorskip("lime")
    code, out, err = cli("explain", tabular_run, "--method", "all", "--samples", "4")
    assert code == 0, err
    methods = ["saliency", "ig", "lime"] + (["shap"] if "shap" in _summary(tabular_run)["methods"] else [])
    _evidence(tabular_run, methods)
    assert "insertion AUC" in out


def test_explain_lime_and_all_on_text(cli, text_run):
    pytest.importorskip("lime")
    code, out, err = cli("explain", text_run, "--method", "all", "--samples", "6")
    assert code == 0, err
    summary = _summary(text_run)
    assert set(summary["methods"]) == {"saliency", "ig", "lime"}
    snippet = (text_run / "explain" / "tokens.html").read_text()
    assert "LIME (tokens)" in snippet and snippet.count("<span") > 30
    table = pd.read_csv(text_run / "explain" / "measures.csv")
    assert set(table["method"]) == {"saliency", "ig", "lime"} and table["attribution_entropy"].ge(0).all()
    assert {"deletion_auc", "insertion_auc", "deletion_auc_random"} <= set(table.columns)
    _evidence(text_run, ["saliency", "ig", "lime"])


def test_a_method_that_does_not_cover_the_kind_is_refused(cli, image_run):
    code, out, err = cli("explain", image_run, "--method", "shap")
    assert code != 0 and "shap" in err and "tabular" in err


def test_lime_missing_is_a_clear_error(cli, tabular_run, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "lime" else real(name, *a))
    code, out, err = cli("explain", tabular_run, "--method", "lime")
    assert code != 0 and "framework[explain]" in err
