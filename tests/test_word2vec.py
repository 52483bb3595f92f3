"""Word2VecEmbedding: vectors trained by gensim on the training split's text, cached by a hash, drawn."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import SPECS
from framework.build.word2vec import text_hash

pytest.importorskip("gensim")

LAYER = 'model.layers[1]={{type="Word2VecEmbedding", input_dim=10000, vector_size=16, window=3, min_count=1, epochs=2, sg=1, mask_zero=true, trainable={trainable}}}'


def _folder(out: str) -> Path:
    return Path(re.search(r"run folder: (\S+)", out).group(1))


def _spec(tmp_path) -> Path:
    shutil.copytree(SPECS / "data", tmp_path / "data", dirs_exist_ok=True)
    return Path(shutil.copy(SPECS / "movie_transformer.toml", tmp_path / "movie_transformer.toml"))


def _words(texts) -> set[str]:
    strip = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'
    return {w for t in texts for w in re.sub(strip, "", str(t).lower()).split()}


def _vector_words(path: Path) -> set[str]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]  # past the "count width" header
    return {line.split(" ", 1)[0] for line in lines}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAMEWORK_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "word2vec"


def _run(cli, spec, reports, *sets, trainable="true"):
    code, out, err = cli(
        "run", spec, "--reports", reports, "--set", "train.epochs=1", "--set", "train.verbose=0",
        "--set", LAYER.format(trainable=trainable), *[a for s in sets for a in ("--set", s)],
    )
    assert code == 0, err
    folder = _folder(out)
    return folder, json.loads((folder / "metrics.json").read_text())


def _build(spec_path, *sets, trainable="true"):
    """The spec's model built as a run builds it (the vectors trained or read from the cache): (spec, splits, facts)."""
    from framework.data import load_splits
    from framework.spec.load import load_spec
    from framework.train.prepare import build_and_compile, setup_backend

    spec = load_spec(spec_path, [LAYER.format(trainable=trainable), *sets]).spec
    setup_backend(spec)
    splits = load_splits(spec.data, spec.seed)
    built = build_and_compile(spec, splits.example_shape, 1, train_examples=splits.train_size, train_inputs=splits.x_train)
    return spec, splits, built.facts


def test_word2vec_run_end_to_end_cached_and_drawn(cli, tmp_path, cache):
    import keras

    spec = _spec(tmp_path)
    folder, metrics = _run(cli, spec, tmp_path / "r", trainable="false")
    assert metrics["status"] == "completed"
    assert metrics["word2vec_cached"] is False and metrics["pretrained_coverage"] > 0.9
    assert (folder / "word2vec" / "vectors.txt").exists() and (folder / "embedding.png").stat().st_size > 1000
    assert "embedding.png" in (folder / "report.html").read_text()
    # the frozen rows are the trained vectors, and the saved model loads back
    model = keras.saving.load_model(folder / "model.keras")
    vocabulary = next(l for l in model.layers if type(l).__name__ == "TextVectorization").get_vocabulary()
    table = next(l for l in model.layers if type(l).__name__ == "Word2VecEmbedding").get_weights()[0]
    line = (folder / "word2vec" / "vectors.txt").read_text().splitlines()[1].split(" ")
    np.testing.assert_allclose(table[vocabulary.index(line[0])], np.asarray(line[1:], dtype="float32"), rtol=1e-4, atol=1e-5)

    # a second run with the same vectors (trainable now) reads the cache and records it; building with another
    # setting trains new ones
    again_folder, again = _run(cli, spec, tmp_path / "r")
    assert again["word2vec_cached"] is True and again["word2vec_hash"] == metrics["word2vec_hash"]
    assert (again_folder / "word2vec" / "vectors.txt").read_text() == (folder / "word2vec" / "vectors.txt").read_text()
    _, _, other = _build(spec, "model.layers[1].window=2")
    assert other["word2vec_cached"] is False and other["word2vec_hash"] != metrics["word2vec_hash"]
    assert len(list(cache.iterdir())) == 2


def test_word2vec_sees_the_training_split_only(tmp_path, cache):
    _, splits, facts = _build(_spec(tmp_path))
    words = _vector_words(cache / facts["word2vec_hash"] / "vectors.txt")
    held_out_only = (_words(splits.x_test) | _words(splits.x_val)) - _words(splits.x_train)
    assert held_out_only, "the sample must have held-out-only words for this test to mean anything"
    assert not (held_out_only & words), "validation/test words leaked into the Word2Vec vectors"
    assert words <= _words(splits.x_train)


def test_the_hash_follows_the_text_and_the_settings():
    settings = {"vector_size": 8, "window": 5, "min_count": 1, "epochs": 5, "sg": 1, "seed": 0}
    base = text_hash([["a", "good", "film"]], settings)
    assert text_hash([["a", "good", "film"]], dict(settings)) == base
    assert text_hash([["a", "bad", "film"]], settings) != base
    assert text_hash([["a", "good", "film"]], {**settings, "sg": 0}) != base
    assert text_hash([["a", "good"], ["film"]], settings) != base  # sentence boundaries count


def test_word2vec_on_private_text_is_refused_with_a_reason(cli, tmp_path, cache):
    spec = _spec(tmp_path)
    with open(spec, "a") as handle:
        handle.write('\n[privacy]\nl2_norm_clip = 1.0\nnoise_multiplier = 1.0\n')
    code, out, err = cli("check", spec, "--set", LAYER.format(trainable="true"))
    assert code != 0
    assert "Word2VecEmbedding" in err and "private training text" in err


@pytest.mark.parametrize("setting, words", [("sg=2", "sg"), ("window=0", "window"),
                                             ('vectors_file="v.txt"', "PretrainedEmbedding")])
def test_bad_settings_are_refused(cli, tmp_path, cache, setting, words):
    spec = _spec(tmp_path)
    (tmp_path / "v.txt").write_text("film 1 2\n")
    setting = setting.replace("v.txt", str(tmp_path / "v.txt"))  # --set paths are relative to the current folder
    code, out, err = cli("check", spec, "--set", LAYER.format(trainable="true"), "--set", f"model.layers[1].{setting}")
    assert code != 0 and words in err
