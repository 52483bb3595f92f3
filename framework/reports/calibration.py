"""Uncertainty and calibration of a classifier's test predictions (every classification run's report).

- ``test_entropy``: the mean predictive entropy, in bits, of the predicted class distribution on the test
  split: 0 when every prediction is certain, log2(classes) when every one is uniform.
- ``test_ece``: the expected calibration error with 15 equal-width bins on the top-class confidence:
  sum over bins of (share of examples in the bin) * |accuracy in the bin - mean confidence in the bin|.
  0: when the model says 80%, it is right 80% of the time; near 1: confident and wrong.
- ``calibration.png``: the reliability diagram, accuracy against confidence per bin (plots.reliability_diagram).

A sigmoid's one column (P(class 1)) counts as the two classes (1 - p, p).
"""

from __future__ import annotations

from typing import Any

import numpy as np

BINS = 15


def as_classes(probabilities) -> np.ndarray:
    """(n, classes) probabilities; a sigmoid's one column becomes two."""
    p = np.asarray(probabilities, dtype="float64")
    if p.ndim != 2:
        raise ValueError("probabilities must be (examples, classes)")
    if p.shape[1] == 1:
        p = np.concatenate([1 - p, p], axis=1)
    return p


def are_probabilities(probabilities) -> bool:
    """Whether the outputs are class probabilities (a softmax's rows, or a sigmoid's one column): a model with
    integer targets and another output (a regression) gets no calibration."""
    p = np.asarray(probabilities, dtype="float64")
    if p.ndim != 2 or p.size == 0 or not np.isfinite(p).all() or p.min() < -1e-6 or p.max() > 1 + 1e-6:
        return False
    return p.shape[1] == 1 or bool(np.allclose(p.sum(axis=1), 1.0, atol=1e-3))


def predictive_entropy(probabilities) -> np.ndarray:
    """Each row's entropy in bits."""
    p = np.clip(as_classes(probabilities), 1e-12, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    return -(p * np.log2(p)).sum(axis=1)


def reliability_bins(probabilities, labels, bins: int = BINS) -> list[dict[str, float]]:
    """Per equal-width bin of the top-class confidence: its edges, count, mean confidence and accuracy
    (confidence and accuracy are None for an empty bin)."""
    p = as_classes(probabilities)
    labels = np.asarray(labels).reshape(-1).astype(int)
    confidence = p.max(axis=1)
    correct = p.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)  # (lower, upper]; 0 in the first
    rows = []
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        rows.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": count,
                     "confidence": float(confidence[inside].mean()) if count else None,
                     "accuracy": float(correct[inside].mean()) if count else None})
    return rows


def expected_calibration_error(probabilities, labels, bins: int = BINS) -> float:
    rows = reliability_bins(probabilities, labels, bins)
    total = sum(r["count"] for r in rows)
    if total == 0:
        return 0.0
    return float(sum(r["count"] / total * abs(r["accuracy"] - r["confidence"]) for r in rows if r["count"]))


def calibration_metrics(probabilities, labels, bins: int = BINS) -> dict[str, Any]:
    """``test_ece`` and ``test_entropy`` for metrics.json; none when the outputs are not probabilities."""
    if not are_probabilities(probabilities):
        return {}
    return {"test_ece": round(expected_calibration_error(probabilities, labels, bins), 6),
            "test_entropy": round(float(predictive_entropy(probabilities).mean()), 6)}
