"""``explain``: attributions for a run's test examples, and a check that they mean something.

- images: saliency (|gradient|) and integrated gradients (IG) maps, as PNGs;
- text: IG of each token's embedding, as HTML with the tokens highlighted;
- tabular: SHAP values when the ``shap`` package is installed, IG otherwise, as a table.

``--method saliency|ig|shap|lime|all`` picks others (LIME: framework/use/lime_methods.py). Each method's
explanations get the deletion check and, per example, the measures of framework/use/measures.py (the entropy
of the normalised |attribution|, and the information gain of the top positions), in explain/measures.csv, and
per method the evidence to choose one by, in explain/methods.csv (on the run page and printed): deletion and
insertion AUC against a random order, stability under small input noise, seconds per explanation.

The deletion check: removing the most-attributed pixels, tokens or features must lower the predicted
class's probability more than removing as many random ones.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

import numpy as np

from framework.errors import RunError
from framework.reports import run_folder as rf
from framework.use.trained import TrainedRun

FOLDER = "explain"
SUMMARY = "explain.json"
IG_STEPS = 32
DELETE_FRACTION = 0.1


# --- gradients -------------------------------------------------------------------------------


def class_scores(outputs, classes):
    """Each row's output for its class (a tensor): the one value of a sigmoid or regression output."""
    import tensorflow as tf

    if outputs.shape[-1] == 1:  # a sigmoid or a regression value
        return outputs[:, 0]
    return tf.gather(outputs, classes, batch_dims=1)


def gradients(model, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        scores = class_scores(model(x, training=False), classes)
    return tape.gradient(scores, x).numpy()


def integrated_gradients(model, x: np.ndarray, baseline: np.ndarray, classes: np.ndarray, steps: int = IG_STEPS,
                         batch_size: int = 128) -> np.ndarray:
    """(x - baseline) times the average gradient on the straight path from baseline to x (Riemann, midpoints).
    Several path points of all examples go through the model at once: as many as fit in ``batch_size`` rows, at
    least one."""
    total = np.zeros_like(x)
    for points in path_point_groups(steps, len(x), batch_size):
        scale = points.reshape(-1, 1, *[1] * (x.ndim - 1))
        path = (baseline[None] + scale * (x - baseline)[None]).astype("float32")  # (points, examples, ...)
        found = gradients(model, path.reshape(-1, *x.shape[1:]), np.tile(classes, len(points)))
        total += found.reshape(len(points), *x.shape).sum(axis=0)
    return (x - baseline) * total / steps


def path_point_groups(steps: int, examples: int, batch_size: int) -> list[np.ndarray]:
    """IG's path points (the midpoints of ``steps`` equal parts of [0, 1]) in groups: as many points per group as
    fit in ``batch_size`` rows with a row per example and point, at least one."""
    alphas = (np.arange(steps) + 0.5) / steps
    per_group = max(1, batch_size // max(examples, 1))
    return [alphas[first:first + per_group] for first in range(0, steps, per_group)]


def model_outputs(model, x, batch_size: int = 128) -> np.ndarray:
    """The model's outputs for ``x`` (an array), ``batch_size`` examples at a time through ``predict_on_batch``.

    Explanations call the model hundreds of times on a few examples each (perturbed copies, deletion curves);
    ``model.predict`` builds a dataset and an epoch iterator on every call, several times the cost of the model
    itself at that size."""
    parts = [np.asarray(model.predict_on_batch(x[start:start + batch_size])) for start in range(0, len(x), batch_size)]
    return np.concatenate(parts) if parts else np.asarray(model.predict(x, verbose=0))


def predicted_classes(model, x) -> tuple[np.ndarray, np.ndarray]:
    """The predicted class of each example and the model's outputs."""
    outputs = model_outputs(model, x)
    if outputs.ndim != 2:
        raise RunError("explain needs a model with one output of class probabilities or one value", path="model")
    classes = outputs.argmax(axis=1) if outputs.shape[1] > 1 else np.zeros(len(outputs), dtype=int)
    return classes, outputs


def model_class_scores(model, x, classes) -> np.ndarray:
    """The model's output for each example's class, as a float64 array (measures.class_scores on model_outputs)."""
    from framework.use.measures import class_scores as row_class_scores

    return row_class_scores(model_outputs(model, x), classes)


# --- the deletion check ---------------------------------------------------------------------


def deletion_check(model, x, baseline, importance, classes, seed: int = 0) -> dict[str, float]:
    """Set the top DELETE_FRACTION of positions (by importance) to the baseline, and as many random ones.

    ``importance`` has one value per position: per pixel (channels together) or per feature.
    """
    rng = np.random.default_rng(seed)
    flat = importance.reshape(len(x), -1)
    k = max(1, int(round(DELETE_FRACTION * flat.shape[1])))
    before = model_class_scores(model, x, classes)
    masked = {}
    for name in ("top", "random"):
        x_new = x.copy()
        spatial = x_new.reshape(len(x), flat.shape[1], -1)
        base = np.broadcast_to(baseline, x.shape).reshape(len(x), flat.shape[1], -1)
        for i in range(len(x)):
            chosen = np.argsort(-flat[i])[:k] if name == "top" else rng.choice(flat.shape[1], k, replace=False)
            spatial[i, chosen] = base[i, chosen]
        masked[name] = float(np.mean(before - model_class_scores(model, spatial.reshape(x.shape), classes)))
    return {"deleted_fraction": DELETE_FRACTION, "drop_top": masked["top"], "drop_random": masked["random"],
            "passes": masked["top"] > masked["random"]}


# --- methods --------------------------------------------------------------------------------

METHODS = ("saliency", "ig", "shap", "lime")
CHOICES = ("auto", *METHODS, "all")
LABELS = {"saliency": "saliency (|gradient|)", "ig": "integrated gradients", "shap": "SHAP (KernelExplainer)",
          "lime": "LIME"}
SUPPORTED = {"image": ("saliency", "ig", "lime"), "text": ("saliency", "ig", "lime"), "tabular": METHODS}
MEASURES = "measures.csv"


def _installed(package: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(package) is not None


def choose_methods(kind: str, method: str | None) -> list[str]:
    """The methods ``--method`` asks for on this kind of model; ``auto`` is the default of each kind."""
    method = method or "auto"
    if method not in CHOICES:
        raise RunError(f"unknown method '{method}'; choose from {', '.join(CHOICES)}", path="--method")
    if method == "auto":
        return {"image": ["saliency", "ig"], "text": ["ig"],
                "tabular": ["shap" if _installed("shap") else "ig"]}[kind]
    if method == "all":
        return [m for m in SUPPORTED[kind] if m not in ("shap", "lime") or _installed(m)]
    if method not in SUPPORTED[kind]:
        raise RunError(f"--method {method} covers {', '.join(k for k, v in SUPPORTED.items() if method in v)} "
                       f"models, not {kind}; choose from {', '.join(SUPPORTED[kind])}, all", path="--method")
    if method in ("shap", "lime") and not _installed(method):
        raise RunError(f"--method {method} needs the {method} package: pip install 'framework[explain]'", path="--method")
    return [method]


def _primary(methods: list[str]) -> str:
    """The method whose deletion check stands as the summary's ``deletion_check``: IG where it ran."""
    return "ig" if "ig" in methods else methods[0]


def _probabilities(outputs: np.ndarray) -> bool:
    """Whether the outputs are class probabilities (a softmax, or a sigmoid's one column), for the entropies."""
    if not (np.isfinite(outputs).all() and outputs.min() >= -1e-6 and outputs.max() <= 1 + 1e-6):
        return False
    return outputs.shape[1] == 1 or bool(np.allclose(outputs.sum(axis=1), 1, atol=1e-3))


def _load_splits(run: TrainedRun):
    from framework.data.splits import load_splits
    from framework.spec.load import validate_resolved

    try:
        spec = validate_resolved(run.resolved, run.folder)
    except Exception as exc:
        raise RunError(f"cannot reload the run's data to pick test examples: {exc}", path=str(run.folder)) from None
    return load_splits(spec.data, spec.seed), spec.seed


# --- per kind ---------------------------------------------------------------------------------


def explain_run(run: TrainedRun, samples: int = 8, method: str | None = "auto") -> dict[str, Any]:
    """Write attributions into RUN/explain/ and return the summary (also in explain.json).

    ``method``: auto (the kind's default), saliency, ig, shap, lime or all (every method that covers the kind).
    Each method gets its deletion check and its measures (framework/use/measures.py) in ``methods``; the
    per-example measures go to explain/measures.csv.
    """
    kind = run.kind
    if kind not in SUPPORTED:
        raise RunError(f"explain covers image, text and tabular models; this run's model reads {kind} data", path=str(run.folder))
    methods = choose_methods(kind, method)
    out = run.folder / FOLDER
    out.mkdir(exist_ok=True)
    if kind == "text":
        summary = _explain_text(run, samples, out, methods)
    else:
        summary = _explain_arrays(run, samples, out, methods, kind)
    summary["samples"] = samples
    rf.write_json(out / SUMMARY, summary)
    from framework.reports.html import write_run_page

    write_run_page(run.folder)
    return summary


def _explain_arrays(run: TrainedRun, samples: int, out: Path, methods: list[str], kind: str) -> dict[str, Any]:
    from framework.use import lime_methods, measures

    splits, seed = _load_splits(run)
    x = np.asarray(splits.x_test[:samples], dtype="float32")
    baseline = np.zeros_like(x)  # zero in the model's input space: black pixels; the training mean when standardized
    classes, outputs = predicted_classes(run.model, x)
    predict = lambda v: model_outputs(run.model, np.asarray(v, dtype="float32"))  # noqa: E731
    names = run.preprocessing.get("features") or [f"x{i}" for i in range(int(np.prod(x.shape[1:])))]
    attributions: dict[str, np.ndarray] = {}  # per method: per pixel (images) or per feature (tabular)
    importance: dict[str, np.ndarray] = {}  # what the deletion check deletes first
    labels = {m: LABELS[m] for m in methods}
    seconds: dict[str, float] = {}
    background = np.asarray(splits.x_train[:1000], dtype="float32")

    def attribute(m: str, x_in: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(attribution, importance) of method m for x_in, toward the classes predicted for x."""
        if m == "saliency":
            grads = np.abs(gradients(run.model, x_in, classes))
            found = grads.max(axis=-1) if kind == "image" else grads
            return found, found
        if m == "ig":
            ig = integrated_gradients(run.model, x_in, baseline, classes)
            return (ig.sum(axis=-1), np.abs(ig).sum(axis=-1)) if kind == "image" else (ig, np.abs(ig))
        if m == "shap":
            found = _shap_values(run, x_in, baseline, classes)
            return found, np.abs(found)
        # lime, signed: the superpixels or features that speak for the predicted class come first
        if kind == "image":
            found = lime_methods.lime_image(predict, x_in, classes, outputs.shape[1], seed=seed)
        else:
            found = lime_methods.lime_tabular(predict, x_in, background, classes, outputs.shape[1],
                                              feature_names=names, seed=seed)
        return found, found

    for m in methods:
        started = time.perf_counter()
        attributions[m], importance[m] = attribute(m, x)
        seconds[m] = (time.perf_counter() - started) / len(x)
        if m == "lime":
            labels[m] = "LIME (superpixels)" if kind == "image" else "LIME (tabular)"
    if methods == ["ig"] and kind == "tabular" and not _installed("shap"):
        labels["ig"] = "integrated gradients (install the 'explain' extra for SHAP)"
    per_method, rows, table, curves = {}, [], [], {}
    probabilistic = _probabilities(outputs)
    positions = importance[methods[0]].reshape(len(x), -1).shape[1]
    random_orders = [measures.random_orders(len(x), positions, seed + r) for r in range(measures.RANDOM_ORDERS)]
    noisy = measures.noisy_arrays(x, seed=seed)
    for m in methods:
        entry = {"label": labels[m], "deletion_check": deletion_check(run.model, x, baseline, importance[m], classes)}
        found_curves = measures.curve_measures(
            lambda orders: measures.curves_arrays(predict, x, baseline, orders, classes),
            measures.importance_orders(importance[m]), random_orders)
        stable = measures.stability(list(importance[m]), [list(attribute(m, copy)[1]) for copy in noisy])
        if probabilistic:
            found = measures.measure_arrays(predict, x, baseline, importance[m], DELETE_FRACTION)
            for i, row in enumerate(found):
                row["attribution_entropy"], row["attribution_entropy_normalised"] = (
                    round(v, 4) for v in measures.attribution_entropy(attributions[m][i]))
                row.update({k: round(float(v[i]), 4) for k, v in found_curves["per_example"].items()})
                rows.append({"method": m, "example": i, "predicted": int(classes[i]), **row})
            entry["measures"] = measures.summarise(found)
        table.append(_method_row(m, labels[m], found_curves, stable, seconds[m], entry.get("measures")))
        entry["evidence"] = {k: v for k, v in table[-1].items() if k not in ("method", "label")}
        curves[m] = found_curves["curves"]
        per_method[m] = entry
    primary = _primary(methods)
    if kind == "image":
        files = _image_figures(x, attributions, labels, classes, run, out)
    else:
        files = _feature_table(run, attributions[primary], out, names)
        files += _feature_figure(attributions, labels, names, out)
        for m in methods:
            if m != primary:
                files += _feature_table(run, attributions[m], out, names, suffix=f"_{m}")
    files = _measures_file(rows, out, per_method) + _methods_table(table, curves, labels, out) + files
    return {"kind": kind, "method": " + ".join(labels[m] for m in methods), "methods": per_method,
            "deletion_check": per_method[primary]["deletion_check"], "files": files}


METHODS_TABLE = "methods.csv"
CURVES_FIGURE = "deletion_insertion.png"
EVIDENCE_HEAD = {
    "deletion_auc": "deletion AUC (lower: better)", "deletion_auc_random": "random order",
    "insertion_auc": "insertion AUC (higher: better)", "insertion_auc_random": "random order",
    "beats_random": "beats random on deletion", "stability": "stability (Spearman under noise)",
    "seconds": "seconds per explanation", "attribution_entropy_normalised": "attribution entropy (of max)",
    "information_gain_vs_random": "information gain, top vs random removed (bits)",
}


def _method_row(m, label, found_curves, stable, seconds, found_measures) -> dict[str, Any]:
    from framework.use import measures

    extra = {}
    for k in ("attribution_entropy_normalised", "information_gain_vs_random"):
        if found_measures and f"mean_{k}" in found_measures:
            extra[k] = found_measures[f"mean_{k}"]
    return measures.method_row(m, label, found_curves, stable, seconds, extra)


def _methods_table(table: list[dict[str, Any]], curves: dict[str, Any], labels: dict[str, str], out: Path) -> list[str]:
    """methods.csv (one row per method: the evidence to choose a method by) and deletion_insertion.png (the mean
    curves of each method and of the random order)."""
    import pandas as pd

    pd.DataFrame(table).to_csv(out / METHODS_TABLE, index=False)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for j, name in enumerate(("deletion", "insertion")):
        ax = axes[j]
        for i, (m, found) in enumerate(curves.items()):
            shares = np.linspace(0, 1, len(found[name]))
            ax.plot(shares, found[name], color=f"C{i}", label=m)
            if i == 0:
                ax.plot(shares, found[f"{name}_random"], "--", color="gray", label="random order")
        ax.set_xlabel(f"share of positions {'removed' if name == 'deletion' else 'added to the baseline'}")
        ax.set_ylabel("predicted class's probability")
        ax.set_title(f"{name} curves (mean over the examples)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / CURVES_FIGURE, dpi=90)
    plt.close(fig)
    return [f"{FOLDER}/{METHODS_TABLE}", f"{FOLDER}/{CURVES_FIGURE}"]


def _measures_file(rows: list[dict[str, Any]], out: Path, per_method: dict[str, Any] | None = None) -> list[str]:
    """measures.csv (per example and method), and methods.html: per method the evidence of explain/methods.csv
    and the deletion check, which the run page shows (it includes explain's .html files)."""
    files = []
    if rows:
        import pandas as pd

        pd.DataFrame(rows).to_csv(out / MEASURES, index=False)
        files.append(f"{FOLDER}/{MEASURES}")
    if per_method:
        keys = [k for k in EVIDENCE_HEAD if any(k in e.get("evidence", {}) for e in per_method.values())]
        head = ("method", *(EVIDENCE_HEAD[k] for k in keys), "drop at 10% deleted: top", "random")
        cells = []
        for entry in per_method.values():
            check, evidence = entry["deletion_check"], entry.get("evidence", {})
            shown = [("yes" if v else "NO") if isinstance(v, bool) else ("" if v is None else f"{v:.3f}")
                     for v in (evidence.get(k) for k in keys)]
            values = (entry["label"], *shown, f"{check['drop_top']:.3f}", f"{check['drop_random']:.3f}")
            cells.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in values) + "</tr>")
        table = ("<div class=\"explain-methods\"><p>Per method, to choose one by evidence (means over the examples; "
                 "explain/methods.csv, explain/measures.csv has each example): the area under the predicted class's "
                 "probability as the most attributed positions are removed (deletion) or added to the baseline "
                 "(insertion), against a random order; the rank correlation of the attributions under small input "
                 "noise; the seconds per explanation.</p><table><tr>"
                 + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>" + "".join(cells) + "</table></div>\n")
        rf.write_atomic(out / "methods.html", table)
        files.append(f"{FOLDER}/methods.html")
    return files


def describe_methods(summary: dict[str, Any]) -> list[str]:
    """Lines for the CLI: per method the evidence table (explain/methods.csv), then each deletion check."""
    entries = summary.get("methods", {})
    lines = []
    if any("evidence" in e for e in entries.values()):
        lines.append(f"  {'method':8s} {'deletion AUC':>12s} {'random':>7s} {'insertion AUC':>13s} {'random':>7s} "
                     f"{'beats random':>12s} {'stability':>9s} {'seconds':>8s}")
        for m, entry in entries.items():
            e = entry.get("evidence")
            if e:
                stable = "n/a" if e["stability"] is None else f"{e['stability']:.3f}"
                lines.append(f"  {m:8s} {e['deletion_auc']:12.3f} {e['deletion_auc_random']:7.3f} "
                             f"{e['insertion_auc']:13.3f} {e['insertion_auc_random']:7.3f} "
                             f"{'yes' if e['beats_random'] else 'NO':>12s} {stable:>9s} {e['seconds']:8.3f}")
    for m, entry in entries.items():
        check = entry["deletion_check"]
        line = (f"  {m:8s} deletion drop top {check['drop_top']:.3f} vs random {check['drop_random']:.3f} "
                f"({'passes' if check['passes'] else 'FAILS'})")
        found = entry.get("measures")
        if found:
            line += (f"; attribution entropy {found['mean_attribution_entropy']:.2f} bits "
                     f"({found['mean_attribution_entropy_normalised']:.2f} of max); information gain: top kept vs "
                     f"removed {found['mean_information_gain']:+.3f} bits, top vs random removed "
                     f"{found['mean_information_gain_vs_random']:+.3f} bits")
        lines.append(line)
    return lines


def _image_figures(x, attributions, labels, classes, run, out: Path) -> list[str]:
    """Per method a figure (images above, maps below), and attribution_grid.png: every method's map per image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = run.class_names or [str(i) for i in range(int(classes.max()) + 1)]
    file_names = {"saliency": ("saliency |gradient|", "hot", "saliency.png"),
                  "ig": ("integrated gradients", "bwr", "integrated_gradients.png"),
                  "lime": ("LIME superpixel weights", "bwr", "lime.png")}

    def show_image(ax, i):
        image = x[i, ..., 0] if x.shape[-1] == 1 else np.clip(x[i], 0, 1)
        ax.imshow(image, cmap="gray")
        ax.set_title(f"pred {names[classes[i]] if classes[i] < len(names) else classes[i]}", fontsize=8)

    def show_map(ax, values, cmap):
        limit = np.abs(values).max() or 1.0
        ax.imshow(values, cmap=cmap, vmin=-limit if cmap == "bwr" else 0, vmax=limit)

    files = []
    for m, maps in attributions.items():
        title, cmap, name = file_names[m]
        fig, axes = plt.subplots(2, len(x), figsize=(1.6 * len(x), 3.4), squeeze=False)
        for i in range(len(x)):
            show_image(axes[0, i], i)
            show_map(axes[1, i], maps[i], cmap)
            for ax in axes[:, i]:
                ax.axis("off")
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        files.append(f"{FOLDER}/{name}")
    # the grid: one row per explained image, its input then each method's map
    fig, axes = plt.subplots(len(x), 1 + len(attributions), figsize=(1.7 * (1 + len(attributions)), 1.7 * len(x)),
                             squeeze=False)
    for i in range(len(x)):
        show_image(axes[i, 0], i)
        for j, (m, maps) in enumerate(attributions.items(), start=1):
            show_map(axes[i, j], maps[i], file_names[m][1])
            if i == 0:
                axes[i, j].set_title(m, fontsize=8)
        for ax in axes[i]:
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(out / "attribution_grid.png", dpi=100)
    plt.close(fig)
    return files + [f"{FOLDER}/attribution_grid.png"]


def _shap_values(run, x, baseline, classes):
    """SHAP values (KernelExplainer). Its background is the same baseline IG and the deletion check use, so all
    three speak of the same "feature absent" value."""
    import shap

    values = []
    for i in range(len(x)):
        explainer = shap.KernelExplainer(
            lambda v, c=classes[i]: model_class_scores(run.model, v.astype("float32"), np.full(len(v), c)),
            baseline[:1]
        )
        values.append(explainer.shap_values(x[i : i + 1], nsamples=200, silent=True)[0])
    return np.asarray(values)


def _feature_table(run, attributions, out: Path, names, suffix: str = "") -> list[str]:
    import pandas as pd

    frame = pd.DataFrame(attributions, columns=names)
    frame.to_csv(out / f"attributions{suffix}.csv", index_label="example")
    order = frame.abs().mean().sort_values(ascending=False)
    order.rename("mean_abs_attribution").to_csv(out / f"feature_importance{suffix}.csv", index_label="feature")
    return [f"{FOLDER}/attributions{suffix}.csv", f"{FOLDER}/feature_importance{suffix}.csv"]


def _feature_figure(attributions, labels, names, out: Path, top: int = 15) -> list[str]:
    """feature_importance.png: the mean |attribution| of the top features, one panel per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(attributions), figsize=(3.6 * len(attributions), 0.25 * top + 1.2), squeeze=False)
    for ax, (m, values) in zip(axes[0], attributions.items()):
        mean = np.abs(values).mean(axis=0)
        order = np.argsort(-mean)[:top][::-1]
        ax.barh([names[i] for i in order], mean[order])
        ax.set_title(labels[m], fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle("mean |attribution| of the top features", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "feature_importance.png", dpi=100)
    plt.close(fig)
    return [f"{FOLDER}/feature_importance.png"]


# --- text ------------------------------------------------------------------------------------


def text_layers(model):
    import keras

    vectorizer = next((l for l in model.layers if isinstance(l, keras.layers.TextVectorization)), None)
    embedding = next((l for l in model.layers if isinstance(l, keras.layers.Embedding)), None)
    if vectorizer is None or embedding is None:
        raise RunError("explaining text needs a TextVectorization layer followed by an Embedding", path="model")
    return vectorizer, embedding


class ScaledEmbedding:
    """Scales an Embedding's output by ``alpha`` (a number, or one per row) during a call and keeps it for the
    gradient tape."""

    def __init__(self, layer, tape):
        self.layer, self.tape, self.alpha, self.output = layer, tape, 1.0, None
        self.original = layer.call

    def __enter__(self):
        import tensorflow as tf

        def call(*args, **kwargs):
            embedded = self.original(*args, **kwargs)
            self.output = embedded * tf.cast(self.alpha, embedded.dtype)
            self.tape.watch(self.output)
            return self.output

        self.layer.call = call
        return self

    def __exit__(self, *exc):
        del self.layer.call  # back to the class's method


def token_attributions(model, texts: np.ndarray, classes: np.ndarray, steps: int = IG_STEPS, batch_size: int = 128):
    """(token ids, IG per token): the embedding's IG from a zero embedding, summed over its width.

    Several path points of all texts go through the model at once (as many as fit in ``batch_size`` rows, at least
    one): every batch holds every text, so a vectorizer without a fixed length pads each batch alike."""
    import tensorflow as tf

    vectorizer, embedding = text_layers(model)
    ids = np.asarray(vectorizer(tf.constant(texts)))
    count = len(texts)
    total, full = 0.0, None
    for points in path_point_groups(steps, count, batch_size):
        with tf.GradientTape() as tape, ScaledEmbedding(embedding, tape) as hook:
            hook.alpha = tf.constant(np.repeat(points, count)[:, None, None], tf.float32)
            scores = class_scores(model(tf.constant(np.tile(texts, len(points))), training=False),
                                   np.tile(classes, len(points)))
            grads = tape.gradient(scores, hook.output).numpy().astype("float32")  # summed in float32
        total = total + grads.reshape(len(points), count, *grads.shape[1:]).sum(axis=0)
        if full is None:  # each text's embedding, from the first path point
            full = hook.output.numpy()[:count].astype("float32") / points[0]
    return ids, (full * total / steps).sum(axis=-1)


def token_saliency(model, texts: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Gradient x embedding per token: the score's gradient at the token's embedding, dotted with that embedding.

    Signed, so a token that argues against the predicted class ranks last: an unsigned |gradient| ranks such tokens
    first and, removed first, they raise the class's probability (it then loses to a random order)."""
    import tensorflow as tf

    _, embedding = text_layers(model)
    with tf.GradientTape() as tape, ScaledEmbedding(embedding, tape) as hook:
        scores = class_scores(model(tf.constant(texts), training=False), classes)
        grads = tape.gradient(scores, hook.output).numpy()
        embedded = hook.output.numpy()
    return (grads * embedded).sum(axis=-1)


TOKEN_TEXT = {"ig": "Integrated gradients per token toward the predicted class: red raises it, blue lowers it.",
              "saliency": "Saliency per token (gradient x embedding of the predicted class's score): red raises it, blue lowers it.",
              "lime": "LIME weight per token (dropping the token) toward the predicted class: red raises it, blue lowers it."}
TEXT_FRACTION = 0.2


def _explain_text(run: TrainedRun, samples: int, out: Path, methods: list[str] | None = None) -> dict[str, Any]:
    import tensorflow as tf

    from framework.use import lime_methods, measures

    methods = methods or ["ig"]
    splits, seed = _load_splits(run)
    texts = np.asarray(splits.x_test[:samples], dtype=object)
    model = run.model
    vectorizer, _ = text_layers(model)
    vocabulary = vectorizer.get_vocabulary()
    classes, outputs = predicted_classes(model, texts)
    ids = np.asarray(vectorizer(tf.constant(texts)))
    real = ids != 0
    tokens = [[vocabulary[t] for t in ids[i][real[i]]] for i in range(len(texts))]
    def predict(v):  # an empty text (every token removed) is all padding: a masked model may answer NaN
        found = np.asarray(model_outputs(model, np.asarray(v, dtype=object)), dtype="float64")
        return np.nan_to_num(found, nan=0.5 if found.shape[1] == 1 else 1.0 / found.shape[1])

    names = run.class_names or [str(i) for i in range(int(classes.max()) + 1)]
    per_method, rows, sections, table, curves = {}, [], [], [], {}
    probabilistic = _probabilities(outputs)
    labels = {}

    def attribute(m: str, texts_in: np.ndarray, tokens_in: list[list[str]]) -> list[np.ndarray]:
        """Method m's attribution per token of each text, toward the classes predicted for the clean texts."""
        if m == "ig":
            scores = token_attributions(model, texts_in, classes)[1]
        elif m == "saliency":
            scores = token_saliency(model, texts_in, classes)
        else:
            return lime_methods.lime_text(predict, tokens_in, classes, outputs.shape[1], seed=seed)
        ids_in = np.asarray(vectorizer(tf.constant(texts_in)))
        return [scores[i][ids_in[i] != 0] for i in range(len(texts_in))]

    noisy = measures.noisy_tokens(tokens, seed=seed)
    random_orders = [[np.random.default_rng(seed + r * 1000 + i).permutation(len(t)) for i, t in enumerate(tokens)]
                     for r in range(measures.RANDOM_ORDERS)]
    for m in methods:
        started = time.perf_counter()
        values = attribute(m, texts, tokens)
        elapsed = (time.perf_counter() - started) / len(texts)
        label = {"ig": "integrated gradients over token embeddings", "saliency": "saliency (gradient x embedding) over token embeddings",
                 "lime": "LIME (tokens)"}[m]
        labels[m] = label
        tokens_per_text = list(zip(tokens, values))
        entry = {"label": label, "deletion_check": _text_deletion_check(model, tokens_per_text, classes, fraction=TEXT_FRACTION)}
        found_curves = measures.curve_measures(
            lambda orders, pairs=tokens_per_text: measures.curves_tokens(predict, pairs, orders, classes),
            [np.argsort(-np.asarray(v), kind="stable") for v in values], random_orders)
        copies = [attribute(m, np.array([" ".join(t) for t in texts_noisy], dtype=object), texts_noisy)
                  for texts_noisy, _ in noisy]
        # a noisy text's tokens are the clean text's (one replaced): compared where the tokenisation kept them aligned
        aligned = [[kept if len(copy[i]) == len(values[i]) else np.array([], dtype=int) for i, kept in enumerate(unchanged)]
                   for copy, (_, unchanged) in zip(copies, noisy)]
        stable = measures.stability(values, [[c if len(c) == len(v) else v[:0] for c, v in zip(copy, values)]
                                             for copy in copies], aligned)
        if probabilistic:
            found = measures.measure_tokens(predict, tokens_per_text, TEXT_FRACTION)
            for i, r in enumerate(found):
                r.update({k: round(float(v[i]), 4) for k, v in found_curves["per_example"].items()})
            rows += [{"method": m, "example": i, "predicted": int(classes[i]), **r} for i, r in enumerate(found)]
            entry["measures"] = measures.summarise(found)
        table.append(_method_row(m, label, found_curves, stable, elapsed, entry.get("measures")))
        entry["evidence"] = {k: v for k, v in table[-1].items() if k not in ("method", "label")}
        curves[m] = found_curves["curves"]
        per_method[m] = entry
        sections.append(_token_section(TOKEN_TEXT[m], tokens_per_text, classes, names, heading=len(methods) > 1 and label))
    snippet = "<div class=\"token-attributions\">\n" + "\n".join(sections) + "\n</div>\n"
    rf.write_atomic(out / "tokens.html", snippet)
    primary = _primary(methods)
    return {"kind": "text", "method": " + ".join(per_method[m]["label"] for m in methods), "methods": per_method,
            "files": [*_measures_file(rows, out, per_method), *_methods_table(table, curves, labels, out),
                      f"{FOLDER}/tokens.html"],
            "deletion_check": per_method[primary]["deletion_check"]}


def _token_section(text: str, tokens_per_text, classes, names, heading=None) -> str:
    rows = []
    for i, (tokens, values) in enumerate(tokens_per_text):
        limit = np.abs(values).max() if len(values) else 1.0
        limit = limit or 1.0
        spans = " ".join(
            f'<span style="background: rgba({"220,40,40" if v > 0 else "40,90,220"},{abs(v) / limit:.2f})" '
            f'title="{v:+.3f}">{html.escape(t)}</span>' for t, v in zip(tokens, values)
        )
        label = names[classes[i]] if classes[i] < len(names) else classes[i]
        rows.append(f"<p><b>{html.escape(str(label))}</b>: {spans}</p>")
    title = f"<h3>{html.escape(heading)}</h3>\n" if heading else ""
    return f"{title}<p>{html.escape(text)}</p>\n" + "\n".join(rows)


def _text_deletion_check(model, tokens_per_text, classes, seed: int = 0, fraction: float = 0.2) -> dict[str, float]:
    """Delete the top 20% of tokens (by attribution toward the prediction) vs as many random tokens."""
    rng = np.random.default_rng(seed)
    texts = {"full": [], "top": [], "random": []}
    for tokens, values in tokens_per_text:
        k = max(1, int(round(fraction * len(tokens))))
        top = set(np.argsort(-values)[:k].tolist())
        random = set(rng.choice(len(tokens), k, replace=False).tolist()) if tokens else set()
        texts["full"].append(" ".join(tokens))
        texts["top"].append(" ".join(t for j, t in enumerate(tokens) if j not in top))
        texts["random"].append(" ".join(t for j, t in enumerate(tokens) if j not in random))
    score = {k: model_class_scores(model, np.array(v, dtype=object), classes) for k, v in texts.items()}
    drop_top = float(np.mean(score["full"] - score["top"]))
    drop_random = float(np.mean(score["full"] - score["random"]))
    return {"deleted_fraction": fraction, "drop_top": drop_top, "drop_random": drop_random, "passes": drop_top > drop_random}
