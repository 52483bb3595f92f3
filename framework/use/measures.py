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


# --- deletion and insertion curves, the random order, stability (issue 19) ----------------------------------
#
# Per method, ``explain`` writes explain/methods.csv: one row per method with
# - ``deletion_auc``: the area under the predicted class's probability while the positions (pixels, features,
#   tokens) are removed in order of attribution, most important first, in CURVE_STEPS equal steps from none to
#   all; a removed pixel or feature takes the baseline value, a removed token is dropped. Lower is better: the
#   probability falls fast when the positions the method names go first.
# - ``insertion_auc``: the same while positions are added to the baseline (the empty text) in that order.
#   Higher is better.
# - ``deletion_auc_random``, ``insertion_auc_random``: the same curves for random orders (the mean of
#   RANDOM_ORDERS), the baseline a method must beat; ``beats_random``: deletion_auc < deletion_auc_random.
# - ``stability``: the mean Spearman rank correlation between a method's attributions of an example and of
#   STABILITY_COPIES copies with small noise (pixels and features: Gaussian, NOISE_SCALE times the inputs'
#   standard deviation; text: about a tenth of the tokens, at least one, replaced by an unknown word, compared
#   on the other tokens). 1: the ranking does not move.
# - ``seconds``: the seconds one explanation takes (the method's time on the explained examples / their number).
# The areas are means over the explained examples, by the trapezoid rule over the removed share 0..1.

CURVE_STEPS = 16
RANDOM_ORDERS = 3
STABILITY_COPIES = 2
NOISE_SCALE = 0.05
UNKNOWN_TOKEN = "[UNK]"


def class_scores(outputs, classes) -> np.ndarray:
    """The predicted class's probability per row (a one-column output: that column, as the attributions use)."""
    outputs = np.asarray(outputs, dtype="float64")
    return outputs[:, 0] if outputs.shape[1] == 1 else outputs[np.arange(len(outputs)), np.asarray(classes)]


def area(curve: np.ndarray) -> np.ndarray:
    """The area under curves sampled at equal steps of the share 0..1 (last axis), by the trapezoid rule."""
    curve = np.asarray(curve, dtype="float64")
    return (curve[..., 1:] + curve[..., :-1]).sum(axis=-1) / (2 * (curve.shape[-1] - 1))


def _shares(steps: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, steps + 1)


def curves_arrays(predict: Callable, x, baseline, orders: np.ndarray, classes, steps: int = CURVE_STEPS):
    """(deletion, insertion) curves, each (examples, steps + 1), for pixel or feature positions taken in
    ``orders`` (examples, positions): position orders[i, 0] first. A position spans the last axis of an image
    (its channels)."""
    n, positions = orders.shape
    x = np.asarray(x)
    base = np.broadcast_to(baseline, x.shape)
    x_v, base_v = x.reshape(n, positions, -1), base.reshape(n, positions, -1)
    counts = np.round(_shares(steps) * positions).astype(int)
    deleted, inserted = [], []
    for k in counts:
        mask = np.zeros((n, positions), dtype=bool)
        np.put_along_axis(mask, orders[:, :k], True, axis=1)
        mask = mask[..., None]
        deleted.append(np.where(mask, base_v, x_v).reshape(x.shape))
        inserted.append(np.where(mask, x_v, base_v).reshape(x.shape))
    outputs = np.asarray(predict(np.concatenate(deleted + inserted).astype(x.dtype)))
    scores = class_scores(outputs, np.tile(np.asarray(classes), 2 * len(counts))).reshape(2, len(counts), n)
    return scores[0].T, scores[1].T


def curves_tokens(predict: Callable, tokens_per_text, orders: list[np.ndarray], classes, steps: int = CURVE_STEPS):
    """(deletion, insertion) curves for tokens: removed tokens are dropped, inserted ones join the empty text;
    the kept tokens stay in their order in the text."""
    counts = []
    texts_deleted, texts_inserted = [], []
    for s in _shares(steps):
        for (tokens, _), order in zip(tokens_per_text, orders):
            k = round(s * len(tokens))
            first = set(np.asarray(order[:k]).tolist())
            texts_deleted.append(" ".join(t for j, t in enumerate(tokens) if j not in first))
            texts_inserted.append(" ".join(t for j, t in enumerate(tokens) if j in first))
        counts.append(len(tokens_per_text))
    n = len(tokens_per_text)
    outputs = np.asarray(predict(np.array(texts_deleted + texts_inserted, dtype=object)))
    scores = class_scores(outputs, np.tile(np.asarray(classes), 2 * (steps + 1))).reshape(2, steps + 1, n)
    return scores[0].T, scores[1].T


def importance_orders(importance) -> np.ndarray:
    """Per example, the positions from the highest importance down (ties: the earlier position first)."""
    flat = np.asarray(importance, dtype="float64").reshape(len(importance), -1)
    return np.argsort(-flat, axis=1, kind="stable")


def random_orders(examples: int, positions: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(positions) for _ in range(examples)])


def curve_measures(curves: Callable, orders, random_orders_list) -> dict[str, Any]:
    """``curves(orders) -> (deletion, insertion)``: the areas for ``orders`` and, averaged, for each random
    order in ``random_orders_list``; also the mean curves, for the figure."""
    deletion, insertion = curves(orders)
    random = [curves(r) for r in random_orders_list]
    random_deletion = np.mean([d for d, _ in random], axis=0)
    random_insertion = np.mean([i for _, i in random], axis=0)
    found = {
        "deletion_auc": float(area(deletion).mean()), "deletion_auc_random": float(area(random_deletion).mean()),
        "insertion_auc": float(area(insertion).mean()), "insertion_auc_random": float(area(random_insertion).mean()),
    }
    found["beats_random"] = bool(found["deletion_auc"] < found["deletion_auc_random"])
    found["per_example"] = {"deletion_auc": area(deletion), "insertion_auc": area(insertion),
                            "deletion_auc_random": area(random_deletion), "insertion_auc_random": area(random_insertion)}
    found["curves"] = {"deletion": deletion.mean(axis=0), "insertion": insertion.mean(axis=0),
                       "deletion_random": random_deletion.mean(axis=0), "insertion_random": random_insertion.mean(axis=0)}
    return found


def spearman(a, b) -> float:
    """Spearman's rank correlation of two equally long vectors; nan when one is constant."""
    from scipy.stats import rankdata

    a, b = rankdata(np.asarray(a, dtype="float64").reshape(-1)), rankdata(np.asarray(b, dtype="float64").reshape(-1))
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def noisy_arrays(x: np.ndarray, copies: int = STABILITY_COPIES, scale: float = NOISE_SCALE, seed: int = 0) -> list[np.ndarray]:
    """Copies of x with Gaussian noise of ``scale`` times x's standard deviation."""
    rng = np.random.default_rng(seed + 1)
    sigma = scale * float(np.std(x)) or scale
    return [(x + rng.normal(0.0, sigma, x.shape)).astype(x.dtype) for _ in range(copies)]


def noisy_tokens(tokens_per_text: list[list[str]], copies: int = STABILITY_COPIES, share: float = 0.1, seed: int = 0):
    """Copies of each token list with about ``share`` of the tokens (at least one) replaced by an unknown word,
    and per copy and text the positions left as they were."""
    rng = np.random.default_rng(seed + 1)
    found = []
    for _ in range(copies):
        texts, unchanged = [], []
        for tokens in tokens_per_text:
            k = max(1, round(share * len(tokens))) if len(tokens) > 2 else 0
            replaced = set(rng.choice(len(tokens), k, replace=False).tolist()) if k else set()
            texts.append([UNKNOWN_TOKEN if j in replaced else t for j, t in enumerate(tokens)])
            unchanged.append(np.array([j for j in range(len(tokens)) if j not in replaced], dtype=int))
        found.append((texts, unchanged))
    return found


def stability(original: list, noisy: list[list], positions: list[list] | None = None) -> float:
    """The mean Spearman correlation between each example's attributions and each noisy copy's
    (``positions[c][i]``: the positions of example i compared in copy c; all when None)."""
    values = []
    for c, copy in enumerate(noisy):
        for i, (a, b) in enumerate(zip(original, copy)):
            a, b = np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)
            if positions is not None:
                a, b = a[positions[c][i]], b[positions[c][i]]
            values.append(spearman(a, b))
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


METHOD_COLUMNS = ("deletion_auc", "deletion_auc_random", "insertion_auc", "insertion_auc_random", "beats_random",
                  "stability", "seconds")


def method_row(method: str, label: str, found: dict[str, Any], stable: float, seconds: float,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One row of explain/methods.csv."""
    row = {"method": method, "label": label,
           **{k: round(found[k], 4) for k in ("deletion_auc", "deletion_auc_random", "insertion_auc", "insertion_auc_random")},
           "beats_random": found["beats_random"], "stability": round(stable, 4) if np.isfinite(stable) else None,
           "seconds": round(seconds, 4)}
    for k, v in (extra or {}).items():
        row[k] = v
    return row
