"""The model families: text + Transformer, forecasting windows, seq2seq, multi-task, fine-tuning, distillation."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED_DATA, SPECS, tiny_spec
from framework.errors import SpecError
from framework.spec.load import load_spec, validate


def metrics_of(out: str) -> dict:
    folder = re.search(r"run folder: (\S+)", out).group(1)
    return json.loads((Path(folder) / "metrics.json").read_text())


def folder_of(out: str) -> Path:
    return Path(re.search(r"run folder: (\S+)", out).group(1))


def run_briefly(cli, spec: Path, reports: Path, epochs: int) -> str:
    """`run SPEC` for a few quiet epochs; returns its stdout after checking it succeeded."""
    code, out, err = cli("run", spec, "--reports", reports, "--set", f"train.epochs={epochs}", "--set", "train.verbose=0")
    assert code == 0, err
    return out


def copy_with_data(tmp_path, name: str) -> Path:
    """A shipped spec and the shipped data folder it reads, side by side in tmp_path."""
    shutil.copytree(SPECS / "data", tmp_path / "data", dirs_exist_ok=True)
    return Path(shutil.copy(SPECS / name, tmp_path / name))


# --- text ------------------------------------------------------------------------------------


def _words(texts) -> set[str]:
    """Tokens as TextVectorization's default standardization makes them (lower case, ASCII punctuation stripped)."""
    strip = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'
    return {w for t in texts for w in re.sub(strip, "", t.lower()).split()}


def test_text_vocabulary_comes_from_the_training_split_only(tmp_path):
    from framework.data import load_splits
    from framework.train.prepare import build_and_compile, setup_backend

    spec_path = copy_with_data(tmp_path, "movie_transformer.toml")
    spec = load_spec(spec_path).spec
    setup_backend(spec)
    splits = load_splits(spec.data, spec.seed)
    built = build_and_compile(spec, splits.example_shape, 1, train_examples=splits.train_size, train_inputs=splits.x_train)
    vectorizer = next(l for l in built.model.layers if type(l).__name__ == "TextVectorization")
    vocabulary = set(vectorizer.get_vocabulary()[2:])  # past padding and [UNK]
    held_out_only = _words(splits.x_test) - _words(splits.x_train)
    assert held_out_only and not (held_out_only & vocabulary)
    assert vocabulary <= _words(splits.x_train)
    assert built.facts["vocabulary_size"] == len(vectorizer.get_vocabulary())


def test_text_run_end_to_end_and_the_saved_model_reads_raw_strings(cli, tmp_path):
    import keras

    spec = copy_with_data(tmp_path, "movie_transformer.toml")
    out = run_briefly(cli, spec, tmp_path / "r", epochs=1)
    metrics = metrics_of(out)
    assert metrics["status"] == "completed" and 0 <= metrics["test_accuracy"] <= 1
    model = keras.saving.load_model(folder_of(out) / "model.keras")
    probabilities = model.predict(np.array(["a wonderful film", "dull and tedious"], dtype=object), verbose=0)
    assert probabilities.shape == (2, 2)


def test_pretrained_vectors_fill_the_embedding_and_stay_frozen(cli, tmp_path):
    import keras

    spec = copy_with_data(tmp_path, "movie_transformer.toml")
    vectors = {"film": [0.5] * 4, "movie": [-0.25] * 4, "the": [1.0, 0.0, 0.0, 1.0]}
    (tmp_path / "vectors.txt").write_text("3 4\n" + "".join(f"{w} {' '.join(map(str, v))}\n" for w, v in vectors.items()))
    code, out, err = cli(
        "run", spec, "--reports", tmp_path / "r", "--set", "train.epochs=1", "--set", "train.verbose=0",
        "--set", f'model.layers[1]={{type="PretrainedEmbedding", input_dim=10000, vectors_file="{tmp_path / "vectors.txt"}", mask_zero=true, trainable=false}}',
    )
    assert code == 0, err
    metrics = metrics_of(out)
    assert 0 < metrics["pretrained_coverage"] < 1
    model = keras.saving.load_model(folder_of(out) / "model.keras")
    vocabulary = next(l for l in model.layers if type(l).__name__ == "TextVectorization").get_vocabulary()
    table = next(l for l in model.layers if type(l).__name__ == "PretrainedEmbedding").get_weights()[0]
    for word, vector in vectors.items():
        np.testing.assert_allclose(table[vocabulary.index(word)], vector)  # after a training epoch: frozen


def test_file_arguments_are_relative_to_the_spec_or_to_the_current_folder_with_set(tmp_path, monkeypatch):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "v.txt").write_text("a 1\n")
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd" / "w.txt").write_text("a 1\n")
    spec = tiny_spec(model={"layers": [{"type": "PretrainedEmbedding", "input_dim": 5, "vectors_file": "v.txt"}]})
    import tomli_w

    (tmp_path / "specs" / "s.toml").write_text(tomli_w.dumps(spec))
    monkeypatch.chdir(tmp_path / "cwd")
    assert load_spec(tmp_path / "specs" / "s.toml").spec.model.layers[0].kwargs["vectors_file"] == str(tmp_path / "specs" / "v.txt")
    loaded = load_spec(tmp_path / "specs" / "s.toml", ['model.layers[0].vectors_file="w.txt"'])
    assert loaded.spec.model.layers[0].kwargs["vectors_file"] == str(tmp_path / "cwd" / "w.txt")
    with pytest.raises(SpecError) as err:
        load_spec(tmp_path / "specs" / "s.toml", ['model.layers[0].vectors_file="missing.txt"'])
    assert err.value.path == "model.layers[0]" and "file not found" in err.value.message


def test_word2vec_and_glove_text_formats(tmp_path):
    from framework.build.blocks import read_word_vectors

    (tmp_path / "w2v.txt").write_text("2 3\ncat 1 2 3\ndog 4 5 6\n")
    (tmp_path / "glove.txt").write_text("cat 1 2 3\ndog 4 5 6\n")
    for name in ("w2v.txt", "glove.txt"):
        vectors, width = read_word_vectors(tmp_path / name)
        assert width == 3 and sorted(vectors) == ["cat", "dog"]
        np.testing.assert_allclose(vectors["dog"], [4, 5, 6])


def test_transformer_block_respects_padding_and_round_trips_its_config():
    import keras

    from framework.build.blocks import TransformerEncoder

    keras.utils.set_random_seed(0)
    embedding = keras.layers.Embedding(20, 8, mask_zero=True)
    block = TransformerEncoder(num_heads=2, key_dim=4, ff_dim=16)
    padded, short = keras.Input(shape=(6,), dtype="int32"), keras.Input(shape=(3,), dtype="int32")
    with_padding = keras.Model(padded, block(embedding(padded)))
    without = keras.Model(short, block(embedding(short)))
    tokens = np.array([[5, 6, 7, 0, 0, 0]])
    # padded positions are not attended to: the real positions' outputs ignore the padding that follows
    np.testing.assert_allclose(
        with_padding.predict(tokens, verbose=0)[0, :3], without.predict(tokens[:, :3], verbose=0)[0], atol=1e-5
    )
    clone = TransformerEncoder.from_config(block.get_config())
    assert (clone.num_heads, clone.key_dim, clone.ff_dim) == (2, 4, 16)


def test_blocks_are_listed(cli):
    code, out, _ = cli("list", "layers")
    assert code == 0
    for name in ("TransformerEncoder", "PositionEmbedding", "GRUDecoder", "PretrainedEmbedding", "TextVectorization"):
        assert name in out


def test_schema_has_the_new_sections(cli):
    code, out, _ = cli("schema")
    schema = json.loads(out)
    text = json.dumps(schema)
    for key in ("distill", "window", "targets", "init_from", "freeze", "sequence"):
        assert f'"{key}"' in text


# --- forecasting -----------------------------------------------------------------------------


def test_windows_and_chronological_splits():
    from framework.data.windows import make_windows

    x = np.arange(10.0)[:, None]
    windows, targets = make_windows(x, np.arange(10.0), size=3, horizon=2, stride=3)
    np.testing.assert_array_equal(windows[:, :, 0], [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(targets, [4, 7])


def test_forecast_run_reports_mae_beside_the_naive_baseline(cli, tmp_path):
    from framework.data import load_splits

    spec_path = copy_with_data(tmp_path, "sunspots_gru.toml")
    metrics = metrics_of(run_briefly(cli, spec_path, tmp_path / "r", epochs=2))
    assert metrics["test_mae"] > 0
    # the baseline by hand: the test part is the last 20% of the years, each predicted by the year before
    series = pd.read_csv(SPECS / "data" / "sunspots_yearly.csv")["SUNACTIVITY"].to_numpy()
    test_rows = series[len(series) - round(len(series) * 0.2):]
    expected = np.mean(np.abs(test_rows[12:] - test_rows[11:-1]))
    assert metrics["test_naive_mae"] == pytest.approx(expected)
    splits = load_splits(load_spec(spec_path).spec.data, 0)
    assert splits.x_train.shape[1:] == (12, 1)
    code, out, _ = cli("report", tmp_path / "r")
    assert "test_naive_mae" in out and "test_mae" in out


# --- sequence to sequence --------------------------------------------------------------------


def test_number_words_and_the_character_encoding():
    from framework.data.generated import number_words
    from framework.data.sequences import CharVocabulary

    assert number_words(0) == "zero"
    assert number_words(7019) == "seven thousand nineteen"
    assert number_words(342) == "three hundred forty-two"
    vocabulary = CharVocabulary.fit(["123", "42"])
    ids = vocabulary.encode(["42"], 5, end=True)
    assert vocabulary.decode(ids[0]) == "42"


# a seq2seq run's test_exact_match and its character vocabulary: tests/test_use.py::test_predict_seq2seq_...


def test_greedy_decoding_feeds_back_its_own_outputs():
    """A fake model that starts from its source's first character and counts up from its own previous output:
    greedy decoding must then count up, each source from its own start, in batches or not."""
    from framework.data.sequences import END, START, CharVocabulary, SequenceEncoding, greedy_decode

    vocabulary = CharVocabulary(list("0123456789"))
    encoding = SequenceEncoding(vocabulary, vocabulary, 2, 4, "source", "decoder_input")
    six = vocabulary.encode(["6"], 1)[0, 0]

    class Counter:
        def predict_on_batch(self, inputs):
            decoder, source = inputs["decoder_input"], inputs["source"]
            out = np.zeros((*decoder.shape, vocabulary.size))
            for row in range(decoder.shape[0]):
                for t in range(decoder.shape[1]):
                    previous = decoder[row, t]
                    nxt = source[row, 0] if previous == START else (previous + 1 if previous < six else END)
                    out[row, t, nxt] = 1
            return out

    assert greedy_decode(Counter(), encoding, ["0"]) == ["0123"]  # four steps, no end reached
    sources = ["0", "5", "3", "6", "4"]
    expected = ["0123", "56", "3456", "6", "456"]
    assert greedy_decode(Counter(), encoding, sources) == expected
    assert greedy_decode(Counter(), encoding, sources, batch_size=2) == expected

    class MirroredCounter(Counter):  # under a multi-replica strategy only predict() splits a batch correctly
        distribute_strategy = type("Strategy", (), {"num_replicas_in_sync": 2})()

        def predict(self, inputs, **_):
            return Counter.predict_on_batch(self, inputs)

        def predict_on_batch(self, inputs):
            raise AssertionError("predict_on_batch under a multi-replica strategy")

    assert greedy_decode(MirroredCounter(), encoding, sources) == expected


# --- multi-task ------------------------------------------------------------------------------


def test_multitask_run_reports_each_outputs_metrics(cli, tmp_path):
    spec = Path(shutil.copy(SPECS / "digits_multitask.toml", tmp_path))
    metrics = metrics_of(run_briefly(cli, spec, tmp_path / "r", epochs=1))
    for key in ("test_digit_accuracy", "test_even_accuracy", "test_digit_loss", "test_even_loss"):
        assert key in metrics
    assert metrics["test_even_accuracy"] > 0.5


def test_targets_are_derived_from_label_columns():
    from framework.data.targets import derive_targets

    table = pd.DataFrame({"label": [3, 4, 9]})
    targets = derive_targets(table, {"digit": "label", "even": "label % 2 == 0", "big": "label >= 5"})
    np.testing.assert_array_equal(targets["even"], [0, 1, 0])
    np.testing.assert_array_equal(targets["big"], [0, 0, 1])


# --- spec errors that say why ----------------------------------------------------------------


@pytest.mark.parametrize(
    "sections, path, words",
    [
        ({"augmentation": {"steps": [{"type": "GaussianNoise", "stddev": 0.1}]}}, "augmentation.steps", "strings"),
        ({"privacy": {"noise_multiplier": 1.0}}, "privacy", "TextVectorization"),
    ],
)
def test_text_data_refuses_what_does_not_apply(tmp_path, sections, path, words):
    (tmp_path / "t.csv").write_text("text,label\na b,0\n")
    spec = tiny_spec(data={"source": "csv:t.csv", "text": "text", "scale": "none"}, **sections)
    with pytest.raises(SpecError) as err:
        validate(spec, file="s", base_dir=tmp_path)
    assert err.value.path == path and words in err.value.message


def test_text_from_a_numeric_source_is_a_data_error(cli, write_spec):
    spec = tiny_spec(data={"source": "sklearn:digits", "text": "text", "scale": "none"}, model={"layers": [
        {"type": "TextVectorization", "max_tokens": 50}, {"type": "Embedding", "input_dim": 50, "output_dim": 4},
        {"type": "GlobalAveragePooling1D"}, {"type": "Dense", "units": 10, "activation": "softmax"}]})
    code, _, err = cli("run", write_spec(spec))
    assert code == 2 and "data.source" in err and "text inputs" in err and "Traceback" not in err


def test_spec_errors_for_targets_sequences_and_distillation(tmp_path):
    with pytest.raises(SpecError) as err:
        validate(tiny_spec(data={"targets": {"a": "label", "b": "label % 2"}}), file="s", base_dir=tmp_path)
    assert err.value.path == "data.targets"
    with pytest.raises(SpecError) as err:
        validate(tiny_spec(data={"source": "generated:number_words", "sequence": {}, "scale": "none"}), file="s", base_dir=tmp_path)
    assert err.value.path == "model.inputs" and "decoder_input" in err.value.message
    with pytest.raises(SpecError) as err:
        validate(tiny_spec(distill={"teacher": "latest:x"}, privacy={"noise_multiplier": 1.0}), file="s", base_dir=tmp_path)
    assert err.value.path == "distill" and "epsilon" in err.value.message
    with pytest.raises(SpecError) as err:
        validate(tiny_spec(model={"init_from": "nowhere", "layers": [{"type": "Dense", "units": 10}]}), file="s", base_dir=tmp_path)
    assert err.value.path == "model.init_from"


# --- pre-train -> fine-tune, distillation ----------------------------------------------------


def test_finetune_loads_weights_by_name_and_keeps_frozen_layers(cli, tmp_path):
    import keras

    reports = tmp_path / "r"
    for name in ("digits_pretrain.toml", "digits_finetune.toml"):
        shutil.copy(SPECS / name, tmp_path)
    out = run_briefly(cli, tmp_path / "digits_pretrain.toml", reports, epochs=1)
    pretrained = keras.saving.load_model(folder_of(out) / "model.keras")
    out = run_briefly(cli, tmp_path / "digits_finetune.toml", reports, epochs=2)
    metrics = metrics_of(out)
    assert metrics["init_layers"] == ["conv1", "conv2", "hidden"] and metrics["frozen"] == ["conv1", "conv2"]
    resolved = json.loads((folder_of(out) / "resolved.json").read_text())
    assert resolved["model"]["init_from"] == metrics["init_from"] and "latest:" not in metrics["init_from"]
    tuned = keras.saving.load_model(folder_of(out) / "model.keras")
    for name in ("conv1", "conv2"):
        for a, b in zip(pretrained.get_layer(name).get_weights(), tuned.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert not np.allclose(pretrained.get_layer("hidden").get_weights()[0], tuned.get_layer("hidden").get_weights()[0])

    code, _, err = cli("run", tmp_path / "digits_finetune.toml", "--reports", reports, "--set", "model.freeze=[\"conv9\"]")
    assert code == 2 and "model.freeze[0]" in err and "did you mean" in err
    code, _, err = cli("run", tmp_path / "digits_finetune.toml", "--reports", tmp_path / "empty")
    assert code == 2 and "no completed run named 'digits_pretrain'" in err


def test_distillation_reports_student_beside_teacher(cli, tmp_path):
    reports = tmp_path / "r"
    for name in ("quickstart.toml", "digits_distill.toml"):
        shutil.copy(SPECS / name, tmp_path)
    teacher = metrics_of(run_briefly(cli, tmp_path / "quickstart.toml", reports, epochs=1))
    student = metrics_of(run_briefly(cli, tmp_path / "digits_distill.toml", reports, epochs=1))
    assert student["teacher_params"] == teacher["params"] and student["teacher_test_accuracy"] == teacher["test_accuracy"]
    assert student["params"] == 64 * 16 + 16 + 16 * 10 + 10  # the teacher's weights are not the student's
    code, out, _ = cli("report", reports, "--where", "name == 'digits_distill'")
    assert "teacher_test_accuracy" in out and "teacher_params" in out


def test_distillation_loss():
    """alpha = 1 is the plain loss; a teacher that agrees with the student adds nothing; one that disagrees adds."""
    import keras

    from framework.train.distill import DistillationModel

    inputs = keras.Input(shape=(4,))
    outputs = keras.layers.Dense(3, activation="softmax")(inputs)
    x, y = np.random.default_rng(0).normal(size=(8, 4)).astype("float32"), np.arange(8) % 3
    student = DistillationModel(inputs, outputs)
    student.compile(loss="sparse_categorical_crossentropy")
    plain = float(student.compute_loss(x, y, student(x), training=False))
    object.__setattr__(student, "teacher", keras.Model(inputs, outputs))  # the same network: KL = 0
    student.alpha, student.temperature = 0.3, 2.0
    assert float(student.compute_loss(x, y, student(x), training=True)) == pytest.approx(0.3 * plain, rel=1e-5)
    other = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    object.__setattr__(student, "teacher", other)
    assert float(student.compute_loss(x, y, student(x), training=True)) > 0.3 * plain


# --- real data (slow) ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "mnist.npz").exists(), reason="needs ../shared/data/mnist.npz")
def test_mnist_cnn_reaches_99_percent(cli, tmp_path):
    code, out, err = cli("run", SPECS / "mnist_cnn.toml", "--reports", tmp_path, "--set",
                         f"data.source=npz:{SHARED_DATA / 'mnist.npz'}", "--set", "train.verbose=0")
    assert code == 0, err
    assert metrics_of(out)["test_accuracy"] >= 0.99


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "movie_snippets.csv.gz").exists(), reason="needs ../shared/data/movie_snippets.csv.gz")
def test_movie_reviews_reach_075(cli, tmp_path):
    spec = copy_with_data(tmp_path, "movie_transformer.toml")
    code, out, err = cli("run", spec, "--reports", tmp_path / "r", "--set",
                         f"data.source=csv:{SHARED_DATA / 'movie_snippets.csv.gz'}", "--set", "train.verbose=0")
    assert code == 0, err
    assert metrics_of(out)["test_accuracy"] >= 0.75
