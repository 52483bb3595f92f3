"""Using a finished run: predict, explain, export."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import SPECS, tiny_spec, train_run


def _model_and_tests(folder, count=20):
    from framework.use.trained import TrainedRun, test_examples

    run = TrainedRun.open(folder)
    x, y = test_examples(run, count)
    return run, x, y


# --- predict ---------------------------------------------------------------------------------


def test_predict_csv_and_npz_apply_the_runs_scaling(cli, image_run, tmp_path):
    from sklearn.datasets import load_digits

    run, _, _ = _model_and_tests(image_run)
    raw = load_digits().data[:12]  # raw pixel values 0..16, as the source gives them
    pd.DataFrame(raw, columns=[f"p{i}" for i in range(64)]).to_csv(tmp_path / "new.csv", index=False)
    np.savez(tmp_path / "new.npz", x=raw)
    expected = run.model.predict((raw * 0.0625).reshape(-1, 8, 8, 1).astype("float32"), verbose=0)
    code, out, err = cli("predict", image_run, tmp_path / "new.csv", "--output", tmp_path / "p.csv")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "p.csv")
    np.testing.assert_allclose(table[[f"p_{i}" for i in range(10)]].to_numpy(), expected, atol=1e-5)
    assert list(table["prediction"]) == list(expected.argmax(axis=1))
    code, out, err = cli("predict", image_run, tmp_path / "new.npz", "--output", tmp_path / "p.json")
    assert code == 0, err
    records = json.loads((tmp_path / "p.json").read_text())
    np.testing.assert_allclose([r["p_3"] for r in records], expected[:, 3], atol=1e-5)


def test_predict_a_folder_of_images(cli, tmp_path, digits_npz, write_spec):
    from PIL import Image

    from framework.use.trained import TrainedRun

    with np.load(digits_npz) as data:
        arrays = {k: (data[k] * 15).astype("uint8") if k.startswith("x") else data[k] for k in data.files}
    np.savez(tmp_path / "pixels.npz", **arrays)
    spec = write_spec(tiny_spec(
        data={"source": "npz:pixels.npz", "scale": 1 / 255, "reshape": [8, 8, 1]},
        model={"layers": [{"type": "Conv2D", "filters": 4, "kernel_size": 3}, {"type": "Flatten"},
                          {"type": "Dense", "units": 10, "activation": "softmax"}]},
    ))
    folder = train_run(spec, tmp_path / "r")
    images = tmp_path / "images"
    images.mkdir()
    for i in range(5):
        Image.fromarray(arrays["x_test"][i].reshape(8, 8)).save(images / f"digit{i}.png")
    code, out, err = cli("predict", folder, images)
    assert code == 0, err
    table = pd.read_csv(__import__("io").StringIO(out))
    assert list(table["input"]) == [f"digit{i}.png" for i in range(5)]
    model = TrainedRun.open(folder).model
    expected = model.predict(arrays["x_test"][:5].reshape(-1, 8, 8, 1).astype("float32") / 255, verbose=0)
    np.testing.assert_allclose(table[[f"p_{i}" for i in range(10)]].to_numpy(), expected, atol=1e-5)


def test_predict_text_from_a_text_file_and_a_csv(cli, text_run, tmp_path):
    run, _, _ = _model_and_tests(text_run)
    sentences = ["a moving, beautifully acted film", "tedious and far too long"]
    (tmp_path / "new.txt").write_text("\n".join(sentences) + "\n")
    pd.DataFrame({"text": sentences}).to_csv(tmp_path / "new.csv", index=False)
    expected = run.model.predict(np.array(sentences, dtype=object), verbose=0)
    for name in ("new.txt", "new.csv"):
        code, out, err = cli("predict", text_run, tmp_path / name)
        assert code == 0, err
        table = pd.read_csv(__import__("io").StringIO(out))
        np.testing.assert_allclose(table[["p_0", "p_1"]].to_numpy(), expected, atol=1e-5)
    pd.DataFrame({"txt": sentences}).to_csv(tmp_path / "wrong.csv", index=False)
    code, _, err = cli("predict", text_run, tmp_path / "wrong.csv")
    assert code == 2 and "column 'text'" in err and "did you mean 'txt'" in err and "Traceback" not in err


def test_predict_refuses_inputs_that_do_not_fit(cli, image_run, tmp_path):
    pd.DataFrame(np.ones((3, 10)), columns=[f"c{i}" for i in range(10)]).to_csv(tmp_path / "narrow.csv", index=False)
    code, _, err = cli("predict", image_run, tmp_path / "narrow.csv")
    assert code == 2 and "(10,)" in err and "(8, 8, 1)" in err
    (tmp_path / "notes.txt").write_text("hello\n")
    code, _, err = cli("predict", image_run, tmp_path / "notes.txt")
    assert code == 2 and "image data" in err
    code, _, err = cli("predict", image_run, tmp_path / "missing.csv")
    assert code == 2 and "not found" in err
    code, _, err = cli("predict", tmp_path, tmp_path / "narrow.csv")
    assert code == 2 and "not a finished run folder" in err


def test_predict_reads_the_runs_own_training_layout_and_names_the_input_file(cli, image_run, tmp_path):
    """An NPZ of (N, 8, 8) images for a run that reshaped to (8, 8, 1) (as an MNIST run reads (N, 28, 28))."""
    from sklearn.datasets import load_digits

    run, _, _ = _model_and_tests(image_run)
    images = load_digits().images[:12]  # (12, 8, 8), pixel values 0..16
    np.savez(tmp_path / "images.npz", x=images)
    expected = run.model.predict((images * 0.0625).reshape(-1, 8, 8, 1).astype("float32"), verbose=0)
    code, out, err = cli("predict", image_run, tmp_path / "images.npz")
    assert code == 0, err
    table = pd.read_csv(__import__("io").StringIO(out))
    np.testing.assert_allclose(table[[f"p_{i}" for i in range(10)]].to_numpy(), expected, atol=1e-5)
    # errors name the input file, not the word INPUT
    np.savez(tmp_path / "wrong.npz", x=np.ones((3, 7, 7)))
    code, _, err = cli("predict", image_run, tmp_path / "wrong.npz")
    assert code == 2 and f"{tmp_path / 'wrong.npz'}: examples of shape (7, 7)" in err and "INPUT" not in err
    code, _, err = cli("predict", image_run, tmp_path / "missing.csv")
    assert code == 2 and f"{tmp_path / 'missing.csv'}: not found" in err and "INPUT" not in err


# --- explain ---------------------------------------------------------------------------------


def test_explain_image_run_writes_maps_that_pass_the_deletion_check(cli, image_run):
    code, out, err = cli("explain", image_run, "--samples", "8")
    assert code == 0, err
    summary = json.loads((image_run / "explain" / "explain.json").read_text())
    assert summary["deletion_check"]["passes"], summary
    for name in ("saliency.png", "integrated_gradients.png"):
        assert (image_run / "explain" / name).stat().st_size > 1000
    page = (image_run / "report.html").read_text()
    assert "Explanations" in page and "explain/saliency.png" in page


def test_integrated_gradients_sum_to_the_score_difference(image_run):
    """IG's completeness: attributions add up to f(x) - f(baseline)."""
    from framework.use.explain import integrated_gradients, model_class_scores, predicted_classes

    run, x, _ = _model_and_tests(image_run, 4)
    classes, _ = predicted_classes(run.model, x)
    baseline = np.zeros_like(x)
    ig = integrated_gradients(run.model, x, baseline, classes, steps=64)
    expected = model_class_scores(run.model, x, classes) - model_class_scores(run.model, baseline, classes)
    np.testing.assert_allclose(ig.reshape(len(x), -1).sum(axis=1), expected, atol=0.03)


def test_integrated_gradients_are_the_same_whatever_the_batch_of_path_points(image_run, text_run):
    """All examples' path points share batches: however many points a batch holds, each example's sum is the same."""
    import tensorflow as tf

    from framework.use.explain import (ScaledEmbedding, class_scores, integrated_gradients, predicted_classes,
                                       text_layers, token_attributions)
    from framework.use.trained import TrainedRun

    run, x, _ = _model_and_tests(image_run, 3)
    classes, _ = predicted_classes(run.model, x)
    baseline = np.zeros_like(x)
    whole = integrated_gradients(run.model, x, baseline, classes, steps=8)
    np.testing.assert_allclose(integrated_gradients(run.model, x, baseline, classes, steps=8, batch_size=5), whole,
                               rtol=1e-4, atol=1e-6)
    assert not np.allclose(whole[0], whole[1])  # each example its own attributions

    model = TrainedRun.open(text_run).model
    texts = np.array(["a truly wonderful film", "dull and far too long", "not bad at all"], dtype=object)
    classes, outputs = predicted_classes(model, texts)
    _, ig = token_attributions(model, texts, classes, steps=64)
    for batch_size in (7, 2):  # two path points per batch (a partial last batch), and one (fewer rows than texts)
        _, ig_small_batches = token_attributions(model, texts, classes, steps=64, batch_size=batch_size)
        np.testing.assert_allclose(ig_small_batches, ig, rtol=1e-4, atol=1e-6)
    # completeness over the embedding: the tokens' IG adds up to f(x) - f(zero embedding)
    _, embedding = text_layers(model)
    with tf.GradientTape() as tape, ScaledEmbedding(embedding, tape) as hook:
        hook.alpha = 0.0
        at_zero = class_scores(model(tf.constant(texts), training=False), classes).numpy()
    at_texts = class_scores(tf.constant(outputs), classes).numpy()
    np.testing.assert_allclose(ig.sum(axis=1), at_texts - at_zero, atol=0.02)


def test_explain_text_run_highlights_tokens(cli, text_run):
    code, out, err = cli("explain", text_run, "--samples", "24")
    assert code == 0, err
    summary = json.loads((text_run / "explain" / "explain.json").read_text())
    assert summary["kind"] == "text" and summary["deletion_check"]["passes"], summary
    snippet = (text_run / "explain" / "tokens.html").read_text()
    assert snippet.count("<span") > 50
    assert "token-attributions" in (text_run / "report.html").read_text()


def test_explain_tabular_run_writes_a_feature_table(cli, tabular_run, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "shap", None)  # as without the 'explain' extra
    code, out, err = cli("explain", tabular_run)
    assert code == 0, err
    summary = json.loads((tabular_run / "explain" / "explain.json").read_text())
    assert summary["kind"] == "tabular" and summary["method"].startswith("integrated gradients")
    assert summary["deletion_check"]["passes"], summary
    importance = pd.read_csv(tabular_run / "explain" / "feature_importance.csv")
    assert len(importance) == 64


def test_explain_tabular_with_shap(cli, tabular_run):
    pytest.importorskip("shap")
    code, out, err = cli("explain", tabular_run, "--samples", "3")
    assert code == 0, err
    summary = json.loads((tabular_run / "explain" / "explain.json").read_text())
    assert summary["method"].startswith("SHAP") and summary["deletion_check"]["passes"], summary


# --- export ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["keras", "savedmodel", "tflite"])
def test_export_reloads_and_agrees(cli, image_run, fmt):
    code, out, err = cli("export", image_run, "--format", fmt)
    assert code == 0, err
    difference = float(out.split("max |difference| = ")[1].split()[0])
    assert difference < 1e-4


def test_export_text_run_as_savedmodel_serves_raw_strings(cli, text_run):
    import tensorflow as tf

    code, out, err = cli("export", text_run, "--format", "savedmodel")
    assert code == 0, err
    assert float(out.split("max |difference| = ")[1].split()[0]) < 1e-4
    loaded = tf.saved_model.load(str(text_run / "export" / "savedmodel"))
    served = loaded.serve(tf.constant(["a fine film"]))
    assert served.shape == (1, 2)


def test_a_new_process_reloads_the_frameworks_own_layers(text_run, tmp_path):
    """The saved text model uses PositionEmbedding and TransformerEncoder; a fresh process must know them."""
    import subprocess
    import sys

    (tmp_path / "one.txt").write_text("a fine film\n")
    result = subprocess.run([sys.executable, "-m", "framework", "predict", str(text_run), str(tmp_path / "one.txt")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("input,prediction,p_0,p_1")


def test_tflite_refuses_string_inputs_with_a_reason(cli, text_run):
    code, _, err = cli("export", text_run, "--format", "tflite")
    assert code == 2 and "string ops" in err and "savedmodel" in err


@pytest.fixture(scope="module")
def seq2seq_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seq2seq")
    return train_run(shutil.copy(SPECS / "number_words_seq2seq.toml", tmp), tmp / "r", "train.epochs=1", "data.train_limit=640")


def test_predict_seq2seq_decodes_greedily_and_exports_with_two_inputs(cli, seq2seq_run, tmp_path):
    from framework.data.sequences import greedy_decode

    metrics = json.loads((seq2seq_run / "metrics.json").read_text())  # greedy decoding's exact match, reported
    assert metrics["status"] == "completed" and 0 <= metrics["test_exact_match"] <= 1
    preprocessing = json.loads((seq2seq_run / "preprocessing.json").read_text())
    assert preprocessing["sequence"]["target_chars"] == list("0123456789")
    run, _, _ = _model_and_tests(seq2seq_run)
    words = ["three hundred forty-two", "seventeen"]
    (tmp_path / "words.txt").write_text("\n".join(words) + "\n")
    code, out, err = cli("predict", seq2seq_run, tmp_path / "words.txt")
    assert code == 0, err
    table = pd.read_csv(__import__("io").StringIO(out), dtype=str, keep_default_na=False)
    assert list(table["input"]) == words
    assert list(table["prediction"]) == greedy_decode(run.model, run.encoding(), words)
    code, out, err = cli("export", seq2seq_run, "--format", "savedmodel")
    assert code == 0, err
    assert float(out.split("max |difference| = ")[1].split()[0]) < 1e-4


def test_predict_forecast_windows_from_rows(cli, tmp_path):
    from framework.data.splits import apply_scaling
    from framework.data.windows import make_windows
    from framework.use.trained import TrainedRun

    shutil.copytree(SPECS / "data", tmp_path / "data")
    folder = train_run(shutil.copy(SPECS / "sunspots_gru.toml", tmp_path), tmp_path / "r", "train.epochs=2")
    rows = pd.read_csv(SPECS / "data" / "sunspots_yearly.csv").head(20)
    rows.to_csv(tmp_path / "recent.csv", index=False)
    code, out, err = cli("predict", folder, tmp_path / "recent.csv")
    assert code == 0, err
    table = pd.read_csv(__import__("io").StringIO(out))
    assert len(table) == 20 - 12 + 1 and table["input"][0] == "rows 0-11 -> row 12"
    run = TrainedRun.open(folder)
    windows, _ = make_windows(rows[["SUNACTIVITY"]].to_numpy("float32"), np.zeros(20), 12, 0, 1)
    expected = run.model.predict(apply_scaling(windows, run.preprocessing), verbose=0)[:, 0]
    np.testing.assert_allclose(table["prediction"], expected, rtol=1e-5)
