"""The framework's own layers and blocks, registered beside Keras's layers (``python -m framework list layer``)."""

from framework.build.blocks.decoder import GRUDecoder
from framework.build.blocks.embedding import PretrainedEmbedding, Word2VecEmbedding, read_word_vectors
from framework.build.blocks.scattering import Scattering2D
from framework.build.blocks.text import one_line_standardizer
from framework.build.blocks.transformer import PositionEmbedding, TransformerEncoder

__all__ = [
    "GRUDecoder", "PositionEmbedding", "PretrainedEmbedding", "Scattering2D", "TransformerEncoder", "Word2VecEmbedding", "one_line_standardizer",
    "read_word_vectors",
]
