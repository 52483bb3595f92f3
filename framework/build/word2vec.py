"""Word2Vec vectors trained (with gensim) on the training split's text, for ``Word2VecEmbedding``.

The sentences are the training split's texts, tokenized by the model's own TextVectorization (its standardize
and split), so the vectors' words are the vocabulary's words. Validation and test text never reach gensim.

Trained vectors are cached, keyed by a hash of the tokenized text and the settings: a second identical run
(or a resume) loads them instead of training again, and any change to the text or a setting changes the key.
The cache folder is ``$FRAMEWORK_CACHE_DIR/word2vec`` (default ``~/.cache/framework/word2vec``); each run gets
its own copy in ``RUN/word2vec/`` (``vectors.txt`` in word2vec text format, usable as a PretrainedEmbedding
``vectors_file``, and ``word2vec.json``) and the figure ``RUN/embedding.png``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from framework.errors import SpecError

SETTINGS = ("vector_size", "window", "min_count", "epochs", "sg", "seed")
FOLDER = "word2vec"
FIGURE = "embedding.png"


def cache_root() -> Path:
    base = os.environ.get("FRAMEWORK_CACHE_DIR")
    return (Path(base) if base else Path.home() / ".cache" / "framework") / FOLDER


def tokenize(vectorizer, texts) -> list[list[str]]:
    """The tokens TextVectorization makes of each text (its standardize and split), before the vocabulary."""
    from framework.compat import text_tokens

    return text_tokens(vectorizer, np.asarray(texts, dtype=object).reshape(-1))


def text_hash(sentences: list[list[str]], settings: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for sentence in sentences:
        digest.update(("\x1f".join(sentence) + "\x1e").encode("utf-8"))
    return digest.hexdigest()[:20]


def write_vectors(path: Path, words: list[str], vectors: np.ndarray) -> None:
    """word2vec's text format: a ``count width`` header, then ``word v1 v2 ...`` per line (most frequent first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(f"{len(words)} {vectors.shape[1]}\n")
        for word, vector in zip(words, vectors):
            handle.write(word + " " + " ".join(f"{v:.6g}" for v in vector) + "\n")
    os.replace(tmp, path)


def train_vectors(sentences: list[list[str]], settings: dict[str, Any]) -> tuple[list[str], np.ndarray]:
    """(words by frequency, vectors) from gensim's Word2Vec; one worker, so a seed gives the same vectors."""
    try:
        from gensim.models import Word2Vec
    except ImportError:
        raise SpecError(
            "Word2VecEmbedding needs gensim: pip install 'framework[embeddings]' (or pip install gensim)",
            path="model.layers",
        ) from None
    sentences = [s for s in sentences if s]
    if not sentences:
        raise SpecError("Word2VecEmbedding: the training split has no words to learn vectors from", path="model.layers")
    model = Word2Vec(
        sentences=sentences, vector_size=settings["vector_size"], window=settings["window"],
        min_count=settings["min_count"], epochs=settings["epochs"], sg=settings["sg"], seed=settings["seed"],
        workers=1,
    )
    words = list(model.wv.index_to_key)
    if not words:
        raise SpecError(
            f"Word2VecEmbedding: no word occurs min_count = {settings['min_count']} times in the training split",
            path="model.layers",
        )
    return words, np.asarray(model.wv.vectors, dtype="float32")


def vectors_for(vectorizer, texts, settings: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """{word: vector} trained on ``texts`` (the training split), from the cache when the same text and settings
    were seen before; and facts for metrics.json."""
    from framework.build.blocks.embedding import read_word_vectors

    sentences = tokenize(vectorizer, texts)
    key = text_hash(sentences, settings)
    folder = cache_root() / key
    vectors_file = folder / "vectors.txt"
    cached = vectors_file.exists()
    if cached:
        vectors, _ = read_word_vectors(vectors_file)
    else:
        started = time.perf_counter()
        words, table = train_vectors(sentences, settings)
        seconds = round(time.perf_counter() - started, 2)
        write_vectors(vectors_file, words, table)
        counts: dict[str, int] = {}
        for sentence in sentences:
            for word in sentence:
                counts[word] = counts.get(word, 0) + 1
        info = {"hash": key, "settings": settings, "sentences": len(sentences), "words": len(words), "seconds": seconds,
                "top_words": [[w, counts.get(w, 0)] for w in words[:50]]}
        (folder / "word2vec.json").write_text(json.dumps(info, indent=2))
        vectors = dict(zip(words, table))
    facts = {"word2vec_hash": key, "word2vec_cached": cached, "word2vec_words": len(vectors)}
    return vectors, facts


def copy_into_run(run_folder: str | Path, facts: dict[str, Any] | None) -> None:
    """Copy the vectors this run used into RUN/word2vec/ and draw RUN/embedding.png (no-op without Word2Vec)."""
    key = (facts or {}).get("word2vec_hash")
    if not key:
        return
    source = cache_root() / key
    target = Path(run_folder) / FOLDER
    if not source.exists():
        return
    shutil.copytree(source, target, dirs_exist_ok=True)
    try:
        embedding_figure(target / "vectors.txt", Path(run_folder) / FIGURE)
    except Exception as exc:  # noqa: BLE001 - a figure must not fail the run
        (target / "figure_error.txt").write_text(str(exc))


# --- the figure ---------------------------------------------------------------------------------


def nearest_neighbours(vectors: dict[str, np.ndarray], word: str, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` words of highest cosine similarity to ``word``."""
    words = [w for w in vectors if w != word]
    if not words or word not in vectors:
        return []
    table = np.stack([vectors[w] for w in words])
    query = vectors[word]
    sims = table @ query / (np.linalg.norm(table, axis=1) * np.linalg.norm(query) + 1e-12)
    order = np.argsort(-sims)[:k]
    return [(words[i], float(sims[i])) for i in order]


def pca_2d(table: np.ndarray) -> np.ndarray:
    centred = table - table.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def embedding_figure(vectors_file: Path, out: Path, top: int = 40, probes: int = 4) -> Path:
    """Nearest neighbours of the most frequent words (left) and a 2-D PCA of the top words (right); words of
    4+ letters, so that "the" and "of" do not fill the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from framework.build.blocks.embedding import read_word_vectors

    vectors, _ = read_word_vectors(vectors_file)  # in file order: most frequent first
    content = [w for w in vectors if len(w) >= 4] or list(vectors)  # past "the", "a", "of": words with a meaning
    words = content[:top]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.8), gridspec_kw={"width_ratios": [1, 1.4]})
    lines = []
    for word in content[:probes]:
        neighbours = nearest_neighbours(vectors, word)
        lines.append(f"{word}:")
        lines.extend(f"    {w}  {s:+.2f}" for w, s in neighbours)
    left.text(0.0, 1.0, "\n".join(lines), va="top", family="monospace", fontsize=8)
    left.set_title("nearest neighbours (cosine) of frequent words", fontsize=9)
    left.axis("off")
    if len(words) >= 3:
        points = pca_2d(np.stack([vectors[w] for w in words]))
        right.scatter(points[:, 0], points[:, 1], s=10)
        for (x, y), word in zip(points, words):
            right.annotate(word, (x, y), fontsize=7)
    right.set_title(f"PCA of the {len(words)} most frequent words of 4+ letters", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
