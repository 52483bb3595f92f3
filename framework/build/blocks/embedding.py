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

    In a spec, after a TextVectorization layer (whose vocabulary gives the row of each word)::

        { type = "PretrainedEmbedding", input_dim = 10000, vectors_file = "data/vectors.txt", trainable = false }

    ``output_dim`` is the file's vector width. Words without a vector keep their random start. The
    vectors are copied in once the vocabulary is known (after TextVectorization is adapted);
    ``pretrained_coverage`` in metrics.json is the share of the vocabulary that had a vector.
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
