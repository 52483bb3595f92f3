"""An Embedding initialised from pretrained word vectors (word2vec or GloVe text format)."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from framework.errors import DataError
from framework.registry import registry


def read_word_vectors(path: str | Path) -> tuple[dict[str, np.ndarray], int]:
    """{word: vector} and the width from a text file: one ``word v1 v2 ...`` per line.

    word2vec's text format starts with a ``count width`` header line; GloVe's has none. Both are read.
    """
    vectors: dict[str, np.ndarray] = {}
    width = None
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                parts = line.rstrip().split(" ")
                if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    continue  # word2vec header
                if len(parts) < 2:
                    continue
                try:
                    values = np.asarray(parts[1:], dtype="float32")
                except ValueError:
                    raise DataError(f"{path}, line {number}: expected a word and numbers", path="vectors_file") from None
                if width is None:
                    width = len(values)
                elif len(values) != width:
                    raise DataError(f"{path}, line {number}: {len(values)} numbers, earlier lines have {width}", path="vectors_file")
                vectors[parts[0]] = values
    except OSError as exc:
        raise DataError(f"cannot read word vectors: {exc}", path="vectors_file") from None
    if width is None:
        raise DataError(f"{path} holds no word vectors", path="vectors_file")
    return vectors, width


@registry.register("layer")
@keras.saving.register_keras_serializable(package="framework")
class PretrainedEmbedding(keras.layers.Embedding):
    """An Embedding whose rows start as the pretrained vectors of the vocabulary's words.

    It follows a TextVectorization layer, whose vocabulary gives the row of each word. The vectors are copied in
    once the vocabulary is known (after TextVectorization is adapted); words without a vector keep their random
    start. ``pretrained_coverage`` in metrics.json is the share of the vocabulary that had a vector.

    Args:
        input_dim: Positive integer, the vocabulary size (TextVectorization's ``max_tokens``).
        vectors_file: Path of a word2vec or GloVe text file (one ``word v1 v2 ...`` per line), relative to the spec.
        output_dim: Positive integer, the vector width; default: the file's.
        **kwargs: keras.layers.Embedding's other arguments (``mask_zero``, ``trainable``, ``name``, ...).

    Example:

    ```toml
    layers = [
      { type = "TextVectorization", max_tokens = 10000, output_sequence_length = 40 },
      { type = "PretrainedEmbedding", input_dim = 10000, vectors_file = "data/vectors.txt", trainable = false },
    ]
    ```
    """

    def __init__(self, input_dim: int, vectors_file: str | None = None, output_dim: int | None = None, **kwargs):
        vectors = None  # read once: for the width here, and for the rows in load_vectors()
        if output_dim is None:
            if vectors_file is None:
                raise ValueError("give vectors_file (or output_dim)")
            vectors = read_word_vectors(vectors_file)
            output_dim = vectors[1]
        super().__init__(input_dim=input_dim, output_dim=output_dim, **kwargs)
        self.vectors_file = vectors_file
        self._vectors = vectors

    def load_vectors(self, vocabulary: list[str]) -> float:
        """Copy the file's vectors into the rows of ``vocabulary``'s words; returns the share found."""
        vectors, width = self._vectors or read_word_vectors(self.vectors_file)
        self._vectors = None  # not needed after the copy
        if width != self.output_dim:
            raise DataError(f"the vectors have width {width}, the layer {self.output_dim}", path="vectors_file")
        table = keras.ops.convert_to_numpy(self.embeddings).copy()
        found = 0
        for row, word in enumerate(vocabulary[: self.input_dim]):
            vector = vectors.get(word)
            if vector is not None:
                table[row] = vector
                found += 1
        self.embeddings.assign(table)
        return found / max(1, min(len(vocabulary), self.input_dim))

    def get_config(self):
        return {**super().get_config(), "vectors_file": self.vectors_file}


@registry.register("layer")
@keras.saving.register_keras_serializable(package="framework")
class Word2VecEmbedding(PretrainedEmbedding):
    """An Embedding whose rows start as Word2Vec vectors that gensim trains on the training split's text.

    It follows a TextVectorization layer. Before training, gensim's Word2Vec learns vectors from the training
    split's texts only (tokenized by that TextVectorization; validation and test text are never seen), and they
    are copied into the rows of the vocabulary's words. The vectors are cached by a hash of the text and the
    settings, so an identical second run reuses them; the run folder gets ``word2vec/vectors.txt`` and
    ``embedding.png`` (nearest neighbours of frequent words, a PCA of the top words). Needs the ``embeddings``
    extra (gensim). Refused with [privacy]: the vectors would be trained on the private text outside DP-SGD.

    Args:
        input_dim: Positive integer, the vocabulary size (TextVectorization's ``max_tokens``).
        vector_size: Positive integer, the vector width (the Embedding's ``output_dim``). Default 100.
        window: Positive integer, Word2Vec's context window. Default 5.
        min_count: Positive integer, words seen fewer times in the training split get no vector. Default 1.
        epochs: Positive integer, Word2Vec's passes over the text. Default 5.
        sg: 1 for skip-gram, 0 for CBOW. Default 1.
        seed: Integer, Word2Vec's seed (one worker thread, so the vectors repeat). Default 0.
        **kwargs: keras.layers.Embedding's other arguments (``mask_zero``, ``trainable``, ``name``, ...).

    Example:

    ```toml
    layers = [
      { type = "TextVectorization", max_tokens = 10000, output_sequence_length = 40 },
      { type = "Word2VecEmbedding", input_dim = 10000, vector_size = 32, window = 5, min_count = 1, epochs = 5, sg = 1 },
    ]
    ```
    """

    def __init__(self, input_dim: int, vector_size: int = 100, window: int = 5, min_count: int = 1, epochs: int = 5,
                 sg: int = 1, seed: int = 0, **kwargs):
        if kwargs.pop("vectors_file", None) is not None:
            raise ValueError("Word2VecEmbedding trains its own vectors; for a vectors_file use PretrainedEmbedding")
        if kwargs.get("output_dim", vector_size) != vector_size:
            raise ValueError("give the width as vector_size (output_dim is the same number)")
        kwargs.pop("output_dim", None)
        for name, value in (("vector_size", vector_size), ("window", window), ("min_count", min_count), ("epochs", epochs)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if sg not in (0, 1):
            raise ValueError(f"sg must be 1 (skip-gram) or 0 (CBOW), not {sg!r}")
        super().__init__(input_dim=input_dim, output_dim=vector_size, **kwargs)
        self.settings = {"vector_size": vector_size, "window": window, "min_count": min_count, "epochs": epochs,
                         "sg": int(sg), "seed": int(seed)}
        self.word2vec_facts: dict = {}

    def train_vectors(self, vectorizer, texts) -> None:
        """Train (or load from the cache) the vectors of the training texts; load_vectors() then copies them in."""
        from framework.build.word2vec import vectors_for

        vectors, self.word2vec_facts = vectors_for(vectorizer, texts, self.settings)
        self._vectors = (vectors, self.output_dim)

    def get_config(self):
        config = {**super().get_config(), **self.settings}
        config.pop("vectors_file", None)
        config.pop("output_dim", None)
        return config
