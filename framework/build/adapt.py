"""Layers that learn from the data before training: TextVectorization's vocabulary, pretrained word vectors.

They see the training split only, so validation and test words stay unseen, as they would in use.
"""

from __future__ import annotations

from typing import Any

from framework.compat import inbound_nodes
from framework.errors import SpecError


def _layers_on_inputs(model) -> list[tuple[Any, str]]:
    """(layer, model input name) for layers called directly on a model input."""
    by_tensor = {id(t): t.name for t in model.inputs}  # a keras.Input's tensor carries the input's name
    found = []
    for layer in model.layers:
        for node in inbound_nodes(layer):
            for tensor in node.input_tensors:
                if id(tensor) in by_tensor:
                    found.append((layer, by_tensor[id(tensor)]))
    return found


def adapt_to_data(model, x_train) -> dict[str, Any]:
    """Adapt TextVectorization layers on the training inputs, then fill PretrainedEmbedding rows
    (a Word2VecEmbedding's vectors are trained here first, on the training split's text).

    Returns facts for metrics.json (vocabulary size, pretrained coverage).
    """
    import keras

    from framework.build.blocks import PretrainedEmbedding, Word2VecEmbedding

    facts: dict[str, Any] = {}
    vocabulary = vectorizer = texts = None
    for layer, input_name in _layers_on_inputs(model):
        data = x_train[input_name] if isinstance(x_train, dict) else x_train
        if isinstance(layer, keras.layers.Embedding) and getattr(data, "dtype", None) is not None and data.dtype.kind in "iu":
            top = int(data.max())
            if top >= layer.input_dim:
                raise SpecError(
                    f"Embedding '{layer.name}' has input_dim = {layer.input_dim}, but its input '{input_name}' has ids up "
                    f"to {top}; set input_dim to at least {top + 1}", path="model.layers",
                )
        if isinstance(layer, keras.layers.TextVectorization):
            layer.adapt(data, batch_size=1024)
            vocabulary = layer.get_vocabulary()
            vectorizer, texts = layer, data
            facts["vocabulary_size"] = len(vocabulary)
    for layer in model.layers:
        if isinstance(layer, PretrainedEmbedding):
            if vocabulary is None:
                raise SpecError(
                    "PretrainedEmbedding needs a TextVectorization layer on the text input: its vocabulary says "
                    "which word each row is", path="model.layers",
                )
            if isinstance(layer, Word2VecEmbedding):  # vectors trained on the training split's text only
                layer.train_vectors(vectorizer, texts)
                facts.update(layer.word2vec_facts)
            facts["pretrained_coverage"] = round(layer.load_vectors(vocabulary), 4)
    return facts
