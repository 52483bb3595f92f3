"""``explain``: attributions for a run's test examples, and a check that they mean something.

- images: saliency (|gradient|) and integrated gradients (IG) maps, as PNGs;
- text: IG of each token's embedding, as HTML with the tokens highlighted;
- tabular: SHAP values when the ``shap`` package is installed, IG otherwise, as a table.

The deletion check: removing the most-attributed pixels, tokens or features must lower the predicted
class's probability more than removing as many random ones.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from framework.errors import RunError
from framework.reports import run_folder as rf
from framework.use.trained import TrainedRun, test_examples

FOLDER = "explain"
SUMMARY = "explain.json"
IG_STEPS = 32
DELETE_FRACTION = 0.1


# --- gradients -------------------------------------------------------------------------------


def _class_scores(outputs, classes):
    import tensorflow as tf

    if outputs.shape[-1] == 1:  # a sigmoid or a regression value
        return outputs[:, 0]
    return tf.gather(outputs, classes, batch_dims=1)


def gradients(model, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        scores = _class_scores(model(x, training=False), classes)
    return tape.gradient(scores, x).numpy()


def integrated_gradients(model, x: np.ndarray, baseline: np.ndarray, classes: np.ndarray, steps: int = IG_STEPS) -> np.ndarray:
    """(x - baseline) times the average gradient on the straight path from baseline to x (Riemann, midpoints)."""
    total = np.zeros_like(x)
    for alpha in (np.arange(steps) + 0.5) / steps:
        total += gradients(model, (baseline + alpha * (x - baseline)).astype("float32"), classes)
    return (x - baseline) * total / steps


def predicted_classes(model, x) -> tuple[np.ndarray, np.ndarray]:
    """The predicted class of each example and the model's outputs."""
    outputs = np.asarray(model.predict(x, verbose=0))
    if outputs.ndim != 2:
        raise RunError("explain needs a model with one output of class probabilities or one value", path="model")
    classes = outputs.argmax(axis=1) if outputs.shape[1] > 1 else np.zeros(len(outputs), dtype=int)
    return classes, outputs


def _score(model, x, classes) -> np.ndarray:
    outputs = np.asarray(model.predict(x, verbose=0))
    return outputs[:, 0] if outputs.shape[1] == 1 else outputs[np.arange(len(classes)), classes]


# --- the deletion check ---------------------------------------------------------------------


def deletion_check(model, x, baseline, importance, classes, seed: int = 0) -> dict[str, float]:
    """Set the top DELETE_FRACTION of positions (by importance) to the baseline, and as many random ones.

    ``importance`` has one value per position: per pixel (channels together) or per feature.
    """
    rng = np.random.default_rng(seed)
    flat = importance.reshape(len(x), -1)
    k = max(1, int(round(DELETE_FRACTION * flat.shape[1])))
    before = _score(model, x, classes)
    masked = {}
    for name in ("top", "random"):
        x_new = x.copy()
        spatial = x_new.reshape(len(x), flat.shape[1], -1)
        base = np.broadcast_to(baseline, x.shape).reshape(len(x), flat.shape[1], -1)
        for i in range(len(x)):
            chosen = np.argsort(-flat[i])[:k] if name == "top" else rng.choice(flat.shape[1], k, replace=False)
            spatial[i, chosen] = base[i, chosen]
        masked[name] = float(np.mean(before - _score(model, spatial.reshape(x.shape), classes)))
    return {"deleted_fraction": DELETE_FRACTION, "drop_top": masked["top"], "drop_random": masked["random"],
            "passes": masked["top"] > masked["random"]}


# --- per kind ---------------------------------------------------------------------------------


def explain_run(run: TrainedRun, samples: int = 8) -> dict[str, Any]:
    """Write attributions into RUN/explain/ and return the summary (also in explain.json)."""
    out = run.folder / FOLDER
    out.mkdir(exist_ok=True)
    kind = run.kind
    if kind == "text":
        summary = _explain_text(run, samples, out)
    elif kind in ("image", "tabular"):
        x, _ = test_examples(run, samples)
        x = np.asarray(x, dtype="float32")
        baseline = np.zeros_like(x)  # zero in the model's input space: black pixels; the training mean when standardized
        classes, _ = predicted_classes(run.model, x)
        ig = integrated_gradients(run.model, x, baseline, classes)
        if kind == "image":
            saliency = np.abs(gradients(run.model, x, classes)).max(axis=-1)
            importance = np.abs(ig).sum(axis=-1)
            summary = {"kind": "image", "method": "saliency + integrated gradients",
                       "files": _image_figures(x, saliency, ig.sum(axis=-1), classes, run, out)}
        else:
            attributions, method = _tabular_attributions(run, x, baseline, ig, classes)
            importance = np.abs(attributions)
            summary = {"kind": "tabular", "method": method, "files": _feature_table(run, attributions, out)}
        summary["deletion_check"] = deletion_check(run.model, x, baseline, importance, classes)
    else:
        raise RunError(f"explain covers image, text and tabular models; this run's model reads {kind} data", path=str(run.folder))
    summary["samples"] = samples
    rf.write_json(out / SUMMARY, summary)
    from framework.reports.html import write_run_page

    write_run_page(run.folder)
    return summary


def _image_figures(x, saliency, ig, classes, run, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = run.class_names or [str(i) for i in range(int(classes.max()) + 1)]
    files = []
    for title, maps, cmap, name in (("saliency |gradient|", saliency, "hot", "saliency.png"),
                                    ("integrated gradients", ig, "bwr", "integrated_gradients.png")):
        fig, axes = plt.subplots(2, len(x), figsize=(1.6 * len(x), 3.4), squeeze=False)
        for i in range(len(x)):
            image = x[i, ..., 0] if x.shape[-1] == 1 else np.clip(x[i], 0, 1)
            axes[0, i].imshow(image, cmap="gray")
            axes[0, i].set_title(f"pred {names[classes[i]] if classes[i] < len(names) else classes[i]}", fontsize=8)
            limit = np.abs(maps[i]).max() or 1.0
            axes[1, i].imshow(maps[i], cmap=cmap, vmin=-limit if cmap == "bwr" else 0, vmax=limit)
            for ax in axes[:, i]:
                ax.axis("off")
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        files.append(f"{FOLDER}/{name}")
    return files


def _tabular_attributions(run, x, baseline, ig, classes):
    """SHAP values when the package is installed, else the integrated gradients already computed.

    SHAP's background is the same baseline IG and the deletion check use, so all three speak of the same
    "feature absent" value.
    """
    try:
        import shap
    except ImportError:
        return ig, "integrated gradients (install the 'explain' extra for SHAP)"
    values = []
    for i in range(len(x)):
        explainer = shap.KernelExplainer(
            lambda v, c=classes[i]: _score(run.model, v.astype("float32"), np.full(len(v), c)), baseline[:1]
        )
        values.append(explainer.shap_values(x[i : i + 1], nsamples=200, silent=True)[0])
    return np.asarray(values), "SHAP (KernelExplainer)"


def _feature_table(run, attributions, out: Path) -> list[str]:
    import pandas as pd

    names = run.preprocessing.get("features") or [f"x{i}" for i in range(attributions.shape[1])]
    frame = pd.DataFrame(attributions, columns=names)
    frame.to_csv(out / "attributions.csv", index_label="example")
    order = frame.abs().mean().sort_values(ascending=False)
    order.rename("mean_abs_attribution").to_csv(out / "feature_importance.csv", index_label="feature")
    return [f"{FOLDER}/attributions.csv", f"{FOLDER}/feature_importance.csv"]


# --- text ------------------------------------------------------------------------------------


def _text_layers(model):
    import keras

    vectorizer = next((l for l in model.layers if isinstance(l, keras.layers.TextVectorization)), None)
    embedding = next((l for l in model.layers if isinstance(l, keras.layers.Embedding)), None)
    if vectorizer is None or embedding is None:
        raise RunError("explaining text needs a TextVectorization layer followed by an Embedding", path="model")
    return vectorizer, embedding


class _ScaledEmbedding:
    """Scales an Embedding's output by ``alpha`` during a call and keeps it for the gradient tape."""

    def __init__(self, layer, tape):
        self.layer, self.tape, self.alpha, self.output = layer, tape, 1.0, None
        self.original = layer.call

    def __enter__(self):
        def call(*args, **kwargs):
            self.output = self.original(*args, **kwargs) * self.alpha
            self.tape.watch(self.output)
            return self.output

        self.layer.call = call
        return self

    def __exit__(self, *exc):
        del self.layer.call  # back to the class's method


def token_attributions(model, texts: np.ndarray, classes: np.ndarray, steps: int = IG_STEPS):
    """(token ids, IG per token): the embedding's IG from a zero embedding, summed over its width."""
    import tensorflow as tf

    vectorizer, embedding = _text_layers(model)
    ids = np.asarray(vectorizer(tf.constant(texts)))
    total = None
    full = None
    for alpha in (np.arange(steps) + 0.5) / steps:
        with tf.GradientTape() as tape, _ScaledEmbedding(embedding, tape) as hook:
            hook.alpha = float(alpha)
            scores = _class_scores(model(tf.constant(texts), training=False), classes)
            grads = tape.gradient(scores, hook.output).numpy()
        total = grads if total is None else total + grads
        if full is None:
            full = hook.output.numpy() / alpha
    return ids, (full * total / steps).sum(axis=-1)


def _explain_text(run: TrainedRun, samples: int, out: Path) -> dict[str, Any]:
    texts, _ = test_examples(run, samples)
    texts = np.asarray(texts, dtype=object)
    model = run.model
    vectorizer, _ = _text_layers(model)
    vocabulary = vectorizer.get_vocabulary()
    classes, _ = predicted_classes(model, texts)
    ids, scores = token_attributions(model, texts, classes)
    names = run.class_names or [str(i) for i in range(int(classes.max()) + 1)]
    rows, tokens_per_text = [], []
    for i in range(len(texts)):
        real = ids[i] != 0
        tokens = [vocabulary[t] for t in ids[i][real]]
        values = scores[i][real]
        tokens_per_text.append((tokens, values))
        limit = np.abs(values).max() or 1.0
        spans = " ".join(
            f'<span style="background: rgba({"220,40,40" if v > 0 else "40,90,220"},{abs(v) / limit:.2f})" '
            f'title="{v:+.3f}">{html.escape(t)}</span>' for t, v in zip(tokens, values)
        )
        label = names[classes[i]] if classes[i] < len(names) else classes[i]
        rows.append(f"<p><b>{html.escape(str(label))}</b>: {spans}</p>")
    snippet = (
        "<div class=\"token-attributions\">\n<p>Integrated gradients per token toward the predicted class: "
        "red raises it, blue lowers it.</p>\n" + "\n".join(rows) + "\n</div>\n"
    )
    rf.write_atomic(out / "tokens.html", snippet)
    return {"kind": "text", "method": "integrated gradients over token embeddings", "files": [f"{FOLDER}/tokens.html"],
            "deletion_check": _text_deletion_check(model, tokens_per_text, classes)}


def _text_deletion_check(model, tokens_per_text, classes, seed: int = 0) -> dict[str, float]:
    """Delete the top 20% of tokens (by attribution toward the prediction) vs as many random tokens."""
    rng = np.random.default_rng(seed)
    fraction = 0.2
    texts = {"full": [], "top": [], "random": []}
    for tokens, values in tokens_per_text:
        k = max(1, int(round(fraction * len(tokens))))
        top = set(np.argsort(-values)[:k].tolist())
        random = set(rng.choice(len(tokens), k, replace=False).tolist()) if tokens else set()
        texts["full"].append(" ".join(tokens))
        texts["top"].append(" ".join(t for j, t in enumerate(tokens) if j not in top))
        texts["random"].append(" ".join(t for j, t in enumerate(tokens) if j not in random))
    score = {k: _score(model, np.array(v, dtype=object), classes) for k, v in texts.items()}
    drop_top = float(np.mean(score["full"] - score["top"]))
    drop_random = float(np.mean(score["full"] - score["random"]))
    return {"deleted_fraction": fraction, "drop_top": drop_top, "drop_random": drop_random, "passes": drop_top > drop_random}
