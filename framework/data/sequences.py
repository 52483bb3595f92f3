"""Sequence-to-sequence data: strings <-> character ids, with vocabularies from the training split only.

Ids: 0 padding, 1 start, 2 end, 3 unknown, then the characters seen in training. The model reads
the source ids and, with teacher forcing, the target shifted right (start + target); it learns to
emit the target followed by the end id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAD, START, END, UNKNOWN = 0, 1, 2, 3
RESERVED = 4


@dataclass
class CharVocabulary:
    chars: list[str]

    @classmethod
    def fit(cls, texts) -> "CharVocabulary":
        return cls(sorted({c for t in texts for c in t}))

    @property
    def size(self) -> int:
        return RESERVED + len(self.chars)

    def encode(self, texts, length: int, *, start: bool = False, end: bool = False) -> np.ndarray:
        """Ids padded with 0 (or cut) to ``length``."""
        index = {c: i + RESERVED for i, c in enumerate(self.chars)}
        out = np.zeros((len(texts), length), dtype="int32")
        for row, text in enumerate(texts):
            ids = ([START] if start else []) + [index.get(c, UNKNOWN) for c in text] + ([END] if end else [])
            ids = ids[:length]
            out[row, : len(ids)] = ids
        return out

    def decode(self, ids) -> str:
        """Characters up to the first end (or padding) id."""
        chars = []
        for i in ids:
            i = int(i)
            if i in (END, PAD):
                break
            if i >= RESERVED:
                chars.append(self.chars[i - RESERVED])
        return "".join(chars)


@dataclass
class SequenceEncoding:
    """How a seq2seq run turns strings into ids; saved in preprocessing.json so predict can repeat it."""

    source: CharVocabulary
    target: CharVocabulary
    source_length: int
    target_length: int  # the target plus its end id
    source_input: str
    decoder_input: str

    @classmethod
    def fit(cls, sources, targets, spec) -> "SequenceEncoding":
        return cls(
            CharVocabulary.fit(sources), CharVocabulary.fit(targets),
            max(len(s) for s in sources), max(len(t) for t in targets) + 1,
            spec.source_input, spec.decoder_input,
        )

    def inputs(self, sources, targets=None) -> dict[str, np.ndarray]:
        """Model inputs: source ids, and the teacher-forcing decoder input when targets are given."""
        out = {self.source_input: self.source.encode(sources, self.source_length)}
        if targets is not None:
            out[self.decoder_input] = self.target.encode(targets, self.target_length, start=True)
        return out

    def labels(self, targets) -> np.ndarray:
        return self.target.encode(targets, self.target_length, end=True)

    def to_json(self) -> dict:
        return {
            "source_chars": self.source.chars, "target_chars": self.target.chars,
            "source_length": self.source_length, "target_length": self.target_length,
            "source_input": self.source_input, "decoder_input": self.decoder_input,
        }

    @classmethod
    def from_json(cls, data: dict) -> "SequenceEncoding":
        return cls(
            CharVocabulary(data["source_chars"]), CharVocabulary(data["target_chars"]),
            data["source_length"], data["target_length"], data["source_input"], data["decoder_input"],
        )


def greedy_decode(model, encoding: SequenceEncoding, sources, batch_size: int = 256) -> list[str]:
    """Decode one id at a time, feeding the model its own previous outputs (no teacher forcing).

    The decoder must be causal (a recurrent layer): its output at step t reads decoder inputs up to t
    only, so the not-yet-decoded positions can stay padding and every step has the same shapes.
    """
    source_ids = encoding.source.encode(sources, encoding.source_length)
    decoded = np.zeros((len(sources), encoding.target_length), dtype="int32")
    decoder_in = np.zeros_like(decoded)
    decoder_in[:, 0] = START
    strategy = getattr(model, "distribute_strategy", None)
    if strategy is not None and strategy.num_replicas_in_sync > 1:  # predict() splits a batch over the replicas
        predict = lambda inputs: model.predict(inputs, batch_size=batch_size, verbose=0)  # noqa: E731
    else:  # predict_on_batch: no dataset built per decoding step
        predict = model.predict_on_batch
    for start in range(0, len(sources), batch_size):
        rows = slice(start, start + batch_size)
        for step in range(encoding.target_length):
            probabilities = np.asarray(predict(
                {encoding.source_input: source_ids[rows], encoding.decoder_input: decoder_in[rows]}))
            decoded[rows, step] = probabilities[:, step].argmax(axis=-1)
            if step + 1 < encoding.target_length:
                decoder_in[rows, step + 1] = decoded[rows, step]
    return [encoding.target.decode(row) for row in decoded]


def exact_match(predicted: list[str], expected) -> float:
    return float(np.mean([p == e for p, e in zip(predicted, expected)]))
