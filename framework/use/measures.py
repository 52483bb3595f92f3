"""Measures of an explanation, per explained example.

- ``attribution_entropy``: the Shannon entropy (bits) of the normalised absolute attribution p_i = |a_i| / sum |a|.
  Low: the explanation rests on a few positions; high: it is spread out. ``attribution_entropy_normalised``
  divides by log2(n), so 1 is a uniform spread over all n positions and 0 one single position.
- ``information_gain``: H(model output | top-k removed) - H(model output | only the top-k kept), in bits, where H
  is the entropy of the model's predicted class distribution and "removed" sets a position to the baseline
  (pixels/features) or drops it (tokens). Positive: the top-k positions carry what makes the model sure.
  ``k`` is the same share the deletion check deletes. Keeping only a tenth of an image's pixels is far from
  the training data, so this is often negative for images: the model is surer with the top tenth removed than
  with only it left. Hence also:
- ``information_gain_vs_random``: H(model output | k random positions removed) subtracted from
  H(model output | top-k removed): positive when removing the top positions leaves the model less sure than
  removing as many random ones -- the deletion check's question asked in bits instead of probability.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np


def attribution_entropy(importance: np.ndarray) -> tuple[float, float]:
    """(entropy in bits, entropy / log2(n)) of |importance| normalised to sum 1; (0, 0) when it is all zero."""
    values = np.abs(np.asarray(importance, dtype="float64")).reshape(-1)
    total = values.sum()
    if values.size < 2 or total <= 0 or not np.isfinite(total):
        return 0.0, 0.0
    p = values[values > 0] / total
    bits = float(-(p * np.log2(p)).sum())
    return bits, bits / float(np.log2(values.size))


def predictive_entropy(outputs: np.ndarray) -> np.ndarray:
    """Entropy (bits) of each row's class distribution; one column is a sigmoid's P(class 1)."""
    outputs = np.asarray(outputs, dtype="float64")
    if outputs.shape[1] == 1:
        outputs = np.concatenate([1 - outputs, outputs], axis=1)
    p = np.clip(outputs, 1e-12, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    return -(p * np.log2(p)).sum(axis=1)


def keep_and_remove(x: np.ndarray, baseline: np.ndarray, importance: np.ndarray, fraction: float, seed: int = 0):
    """(x with only its top-``fraction`` positions kept, x with them removed, x with as many random ones removed);
    a removed position is set to the baseline."""
    rng = np.random.default_rng(seed)
    flat = importance.reshape(len(x), -1)
    k = max(1, int(round(fraction * flat.shape[1])))
    kept, removed, random = np.broadcast_to(baseline, x.shape).copy(), x.copy(), x.copy()
    kept_v, removed_v, random_v = (v.reshape(len(x), flat.shape[1], -1) for v in (kept, removed, random))
    x_v = x.reshape(len(x), flat.shape[1], -1)
    base_v = np.broadcast_to(baseline, x.shape).reshape(len(x), flat.shape[1], -1)
    for i in range(len(x)):
        top = np.argsort(-flat[i])[:k]
        kept_v[i, top] = x_v[i, top]
        removed_v[i, top] = base_v[i, top]
        chosen = rng.choice(flat.shape[1], k, replace=False)
        random_v[i, chosen] = base_v[i, chosen]
    return kept_v.reshape(x.shape), removed_v.reshape(x.shape), random_v.reshape(x.shape)


def measure_arrays(predict: Callable, x, baseline, importance, fraction: float) -> list[dict[str, Any]]:
    """Per-example measures for pixel or feature attributions."""
    kept, removed, random = keep_and_remove(x, baseline, importance, fraction)
    return _rows(predict, x, kept, removed, random, importance)


def measure_tokens(predict: Callable, tokens_per_text, fraction: float, seed: int = 0) -> list[dict[str, Any]]:
    """Per-example measures for token attributions; ``tokens_per_text`` holds (tokens, importance) pairs.
    A removed token is dropped from the text."""
    rng = np.random.default_rng(seed)
    full, kept, removed, random, importance = [], [], [], [], []
    for tokens, values in tokens_per_text:
        k = max(1, int(round(fraction * len(tokens))))
        top = set(np.argsort(-np.asarray(values))[:k].tolist())
        chosen = set(rng.choice(len(tokens), k, replace=False).tolist()) if tokens else set()
        full.append(" ".join(tokens))
        kept.append(" ".join(t for j, t in enumerate(tokens) if j in top))
        removed.append(" ".join(t for j, t in enumerate(tokens) if j not in top))
        random.append(" ".join(t for j, t in enumerate(tokens) if j not in chosen))
        importance.append(values)
    as_array = lambda texts: np.array(texts, dtype=object)  # noqa: E731
    return _rows(predict, *(as_array(v) for v in (full, kept, removed, random)), importance)


def _rows(predict, x, kept, removed, random, importance) -> list[dict[str, Any]]:
    h_full, h_kept, h_removed, h_random = (predictive_entropy(predict(v)) for v in (x, kept, removed, random))
    rows = []
    for i, values in enumerate(importance):
        bits, normalised = attribution_entropy(values)
        rows.append({
            "attribution_entropy": round(bits, 4), "attribution_entropy_normalised": round(normalised, 4),
            "predictive_entropy": round(float(h_full[i]), 4), "entropy_top_kept": round(float(h_kept[i]), 4),
            "entropy_top_removed": round(float(h_removed[i]), 4),
            "entropy_random_removed": round(float(h_random[i]), 4),
            "information_gain": round(float(h_removed[i] - h_kept[i]), 4),
            "information_gain_vs_random": round(float(h_removed[i] - h_random[i]), 4),
        })
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Means over the examples, for explain.json."""
    if not rows:
        return {}
    return {f"mean_{k}": round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}
