"""PNG figures for runs: learning curves, confusion matrices, and several runs' curves on one figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CURVES = "curves.png"
CONFUSION = "confusion.png"
CALIBRATION = "calibration.png"
SAMPLES = "samples.png"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _set_margins(fig, left: float, bottom: float, top: float, right: float = 0.2, wspace: float = 0.0,
                 hspace: float = 0.0) -> None:
    """Place the axes with margins given in inches. Each figure here knows its labels' sizes, so it skips
    ``tight_layout``, which measures every text by laying the figure out once more (a third of a run's figure time)."""
    width, height = fig.get_size_inches()
    columns, rows = (fig.axes[0].get_gridspec().ncols, fig.axes[0].get_gridspec().nrows) if fig.axes else (1, 1)
    inner_width, inner_height = width - left - right, height - bottom - top
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                        wspace=wspace * columns / max(inner_width - wspace * (columns - 1), 0.1),
                        hspace=hspace * rows / max(inner_height - hspace * (rows - 1), 0.1))


def _text_inches(fig, texts, size: float, rotation: float = 0.0) -> tuple[float, float]:
    """The widest and tallest extent, in inches, of ``texts`` (each may have several lines) drawn at ``size`` points
    turned by ``rotation`` degrees."""
    from matplotlib.font_manager import FontProperties

    renderer = fig.canvas.get_renderer()
    font = FontProperties(size=size)
    widest = tallest = 0.0
    turn = np.deg2rad(rotation)
    for text in texts:
        lines = [renderer.get_text_width_height_descent(line, font, ismath=False) for line in str(text).split("\n")]
        w = max(line[0] for line in lines)
        h = max(line[1] for line in lines) * (1.2 * (len(lines) - 1) + 1)  # matplotlib's line spacing is 1.2
        widest = max(widest, abs(w * np.cos(turn)) + abs(h * np.sin(turn)))
        tallest = max(tallest, abs(w * np.sin(turn)) + abs(h * np.cos(turn)))
    return widest / fig.dpi, tallest / fig.dpi


def _tick_label_points(axis) -> float:
    """The font size of an axis's tick labels, from matplotlib's settings (reading its tick labels would make them)."""
    from matplotlib import rcParams
    from matplotlib.font_manager import FontProperties

    return FontProperties(size=rcParams[f"{axis.axis_name}tick.labelsize"]).get_size_in_points()


def _left_labels_inches(fig, ax) -> float:
    """How far the y axis's tick labels and label reach left of the axes, in inches: its formatter applied to
    the ticks it will draw, measured."""
    low, high = sorted(ax.get_ylim())
    span = high - low
    ticks = [t for t in ax.yaxis.get_majorticklocs() if low - 1e-9 * span <= t <= high + 1e-9 * span]
    labels = ax.yaxis.get_major_formatter().format_ticks(ticks)
    width = _text_inches(fig, labels, _tick_label_points(ax.yaxis))[0] if labels else 0.0
    label = ax.yaxis.get_label()
    if label.get_text():
        width += _text_inches(fig, [label.get_text()], label.get_fontsize())[1] + 0.1
    return width + 0.2  # the ticks and their padding


def _curve_metrics(history) -> list[str]:
    """Metrics that have a training curve: 'loss', 'accuracy', ... (not val_, the learning rate or timing)."""
    return [c for c in history.columns if c not in ("epoch", "learning_rate", "epoch_seconds") and not c.startswith("val_")]


def learning_curves(history, path: Path, title: str = "") -> Path:
    """One panel per metric, training and validation curves."""
    plt = _pyplot()
    metrics = _curve_metrics(history)[:4] or ["loss"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.4), squeeze=False)
    epochs = history["epoch"] + 1 if "epoch" in history else np.arange(1, len(history) + 1)
    for ax, metric in zip(axes[0], metrics):
        if metric in history:
            ax.plot(epochs, history[metric], label="train")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], label="validation")
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    reach = max(_left_labels_inches(fig, ax) for ax in axes[0])
    _set_margins(fig, left=reach + 0.1, bottom=0.55, top=0.75 if title else 0.4, wspace=reach + 0.25)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def confusion_matrix(y_true, y_pred, class_names: list[str] | None, path: Path) -> Path:
    from sklearn.metrics import confusion_matrix as sk_confusion

    plt = _pyplot()
    labels = np.arange(max(int(np.max(y_true)), int(np.max(y_pred))) + 1)
    matrix = sk_confusion(y_true, y_pred, labels=labels)
    names = class_names if class_names and len(class_names) == len(labels) else [str(l) for l in labels]
    side = max(2.5, 0.45 * len(labels) + 1.0)  # the matrix, in inches; the labels' margins are added around it
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        if value:  # empty cells stay blank: easier to read, and each text costs as much to draw as a small figure
            ax.text(j, i, str(value), ha="center", va="center", fontsize=8,
                    color="white" if value > matrix.max() / 2 else "black")
    tick_size = _tick_label_points(ax.yaxis)
    name_width, _ = _text_inches(fig, names, tick_size)
    rotation = 45 if len(labels) > 10 or name_width > 0.8 * side / len(labels) else 0  # else they would overlap
    if rotation:
        ax.set_xticks(labels, names, rotation=rotation, ha="right", rotation_mode="anchor")
    else:
        ax.set_xticks(labels, names)
    ax.set_yticks(labels, names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix (test)")
    _, rotated_height = _text_inches(fig, names, tick_size, rotation)
    left, bottom, top, right = name_width + 0.45, rotated_height + 0.5, 0.4, 0.2
    fig.set_size_inches(side + left + right, side + bottom + top)
    _set_margins(fig, left=left, bottom=bottom, top=top, right=right)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def reliability_diagram(bins: list[dict], ece: float, path: Path, entropy: float | None = None) -> Path:
    """Accuracy against mean top-class confidence per confidence bin (framework/reports/calibration.py), the
    diagonal a perfectly calibrated model would follow, and below it how many test examples each bin holds."""
    plt = _pyplot()
    fig, (ax, counts) = plt.subplots(2, 1, figsize=(4.2, 5.0), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    lower = np.array([b["lower"] for b in bins])
    width = float(bins[0]["upper"] - bins[0]["lower"]) if bins else 1.0
    accuracy = np.array([b["accuracy"] if b["count"] else 0.0 for b in bins])
    confidence = np.array([b["confidence"] if b["count"] else np.nan for b in bins])
    # one step patch per panel, not a patch per bin (matplotlib updates the data limits per patch, slowly);
    # no bins: one empty bin over [0, 1]
    edges, heights = (np.append(lower, lower[-1] + width), accuracy) if bins else (np.array([0.0, 1.0]), np.zeros(1))
    ax.stairs(heights, edges, fill=True, alpha=0.7, label="accuracy")
    ax.stairs(heights, edges, baseline=0, color="black", linewidth=0.8)
    filled = ~np.isnan(confidence)
    ax.plot(confidence[filled], accuracy[filled], "o", color="C3", markersize=3, label="(mean confidence, accuracy)")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfectly calibrated")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    title = f"reliability (test): ECE {ece:.3f}"
    if entropy is not None:
        title += f", entropy {entropy:.3f} bits"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    counts.stairs([b["count"] for b in bins] if bins else np.zeros(1), edges, fill=True, color="gray")
    counts.set_xlabel("top-class confidence")
    counts.set_ylabel("examples")
    _set_margins(fig, left=max(_left_labels_inches(fig, a) for a in (ax, counts)) + 0.1, bottom=0.55, top=0.35,
                 hspace=0.15)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def compare_curves(histories: dict[str, "object"], path: Path) -> Path:
    """Several runs' curves on one figure: one panel per metric, validation solid, training dashed."""
    plt = _pyplot()
    metrics: list[str] = []
    for history in histories.values():
        metrics += [m for m in _curve_metrics(history) if m not in metrics]
    metrics = metrics[:3] or ["loss"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for i, (name, history) in enumerate(histories.items()):
            color = f"C{i % 10}"
            epochs = history["epoch"] + 1 if "epoch" in history else np.arange(1, len(history) + 1)
            if metric in history:
                ax.plot(epochs, history[metric], "--", color=color, alpha=0.6)
            if f"val_{metric}" in history:
                ax.plot(epochs, history[f"val_{metric}"], color=color, label=name)
            elif metric in history:
                ax.lines[-1].set_label(name)
        ax.set_title(f"{metric} (solid: validation, dashed: train)", fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def sample_grid(images: np.ndarray, path: Path, row_labels: list[str] | None = None, columns: int = 10) -> Path:
    """A generative run's samples, ``columns`` per row (a row per class when ``row_labels`` are given).
    ``images``: (rows * columns, H, W[, C]) or flat examples of a square number of values, in [0, 1]."""
    plt = _pyplot()
    images = np.asarray(images, dtype="float32")
    if images.ndim == 2:  # flat examples: square images when their size allows, else one strip each
        side = int(round(np.sqrt(images.shape[1])))
        images = images.reshape(len(images), side, side) if side * side == images.shape[1] else images[:, None, :]
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    rows = int(np.ceil(len(images) / columns))
    # one mosaic on one axes, cells parted by light gray lines: a hundred small axes (and tight_layout over them)
    # took about 2 s a figure
    height, width = images.shape[1:3]
    gap = max(1, min(height, width) // 8)
    line = 0.85
    mosaic = np.full((rows * (height + gap) + gap, columns * (width + gap) + gap, *images.shape[3:]), line, "float32")
    for i, image in enumerate(np.clip(images, 0, 1)):
        top, left = gap + (i // columns) * (height + gap), gap + (i % columns) * (width + gap)
        mosaic[top:top + height, left:left + width] = image
    labels = [str(label) for label in (row_labels or [])[:rows]]
    fig = plt.figure(figsize=(columns * 0.8, rows * 0.8 + 0.2))
    label_width = _text_inches(fig, labels, 8)[0] + 0.1 if labels else 0.05
    fig.set_size_inches(columns * 0.8 + label_width + 0.05, rows * 0.8 + 0.1)
    figure_width, figure_height = fig.get_size_inches()
    ax = fig.add_axes((label_width / figure_width, 0.05 / figure_height, columns * 0.8 / figure_width, rows * 0.8 / figure_height))
    ax.imshow(mosaic, cmap="gray" if images.ndim == 3 else None, vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_axis_off()
    for row, label in enumerate(labels):
        ax.text(-gap, gap + row * (height + gap) + height / 2, label, ha="right", va="center", fontsize=8)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
