"""Synthetic data from a finished generative run (model.kind = "vae" or "gan"): drawn into an NPZ (`sample`), or
mixed into a spec's training split (``data.synthetic``). The run's saved generator is all that is used: no real
example leaves the run folder.

    >>> x, y = draw("reports/digits_cvae-20261129-164313-de02ad", 1000, seed=0)   # the data's units, balanced classes
    >>> write_samples_npz("reports/digits_cvae-...", 1000, "synthetic.npz")       # x, y: what npz: reads
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from framework.errors import DataError, RunError


def generator_facts(folder: Path) -> dict:
    """The generation facts a completed generative run wrote to metrics.json (build/generative.py)."""
    from framework.reports import run_folder as rf

    folder = Path(folder)
    try:
        metrics = rf.read_json(folder / rf.METRICS)
    except (OSError, ValueError):
        raise RunError("is not a run folder (no readable metrics.json)", path=str(folder)) from None
    if not metrics.get("generative"):
        raise RunError("is not a generative run (model.kind = \"vae\" or \"gan\"); nothing to sample", path=str(folder))
    if metrics.get("status") != "completed":
        raise RunError(f"this run is {metrics.get('status')}, not completed; its generator is not saved", path=str(folder))
    if not metrics.get("conditional"):
        raise RunError("an unconditional model's samples have no labels; train it with model.conditional = true",
                       path=str(folder))
    return metrics


def draw(folder: str | Path, count: int, seed: int = 0, scaled: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``count`` generated examples and their class ids (balanced), in the data's own units (before data.scale),
    or in the model's (``scaled``)."""
    from framework.build.generative import balanced_labels, generate
    from framework.reports import run_folder as rf

    folder = Path(folder)
    facts = generator_facts(folder)
    network = rf.load_run_model(folder)
    labels = balanced_labels(int(count), facts["classes"])
    x = generate(network, labels, facts, seed)
    if not scaled:
        stats = rf.read_json(folder / rf.PREPROCESSING)
        if stats.get("scale", "none") != "none":  # apply_scaling's inverse: x * divide + shift
            x = x * np.asarray(stats["divide"], dtype="float32") + np.asarray(stats["shift"], dtype="float32")
    return x.astype("float32"), labels


def write_samples_npz(folder: str | Path, count: int, path: str | Path, seed: int = 0) -> Path:
    """An NPZ with ``x`` (generated examples, in the data's units) and ``y`` (class ids): the layout ``npz:`` reads.
    ``class_names`` (the run's) is stored beside them."""
    from framework.reports import run_folder as rf

    if count < 1:
        raise RunError("must be at least 1", path="count")
    x, y = draw(folder, count, seed)
    names = rf.read_json(Path(folder) / rf.PREPROCESSING).get("class_names")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {"class_names": np.asarray(names)} if names else {}
    with open(path, "wb") as handle:
        np.savez(handle, x=x, y=y, **extra)
    return path


def mix_synthetic(splits, synthetic) -> dict:
    """Append ``round(ratio * N)`` generated examples (balanced classes) to the training split of ``splits``, scaled
    as this run scales its data; validation and test stay real. Returns what was mixed, for metrics.json."""
    from framework.reports import run_folder as rf

    folder = Path(synthetic.run)
    real = splits.train_size
    count = max(1, round(synthetic.ratio * real))
    try:
        x, y = draw(folder, count, synthetic.seed)  # the data's own units, then this run's scaling
    except RunError as exc:
        raise DataError(f"{folder}: {exc}", path="data.synthetic.run") from None
    from framework.data.splits import apply_scaling

    x = apply_scaling(x, splits.preprocessing)
    if isinstance(splits.x_train, dict) or tuple(x.shape[1:]) != tuple(splits.x_train.shape[1:]):
        raise DataError(f"the generator makes examples of shape {tuple(x.shape[1:])}; this spec's training examples "
                        f"have shape {splits.example_shape}", path="data.synthetic.run")
    names = rf.read_json(folder / rf.PREPROCESSING).get("class_names")
    if splits.class_names and names and list(names) != list(splits.class_names):
        raise DataError(f"the generator's classes {names} are not this data's {splits.class_names}",
                        path="data.synthetic.run")
    labels = np.asarray(splits.y_train)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError("data.synthetic mixes labelled examples into a split of class ids; these targets are "
                        f"{labels.dtype} of shape {labels.shape}", path="data.synthetic")
    splits.x_train = np.concatenate([splits.x_train, x.astype(splits.x_train.dtype)])
    splits.y_train = np.concatenate([labels, y.astype(labels.dtype)])
    return {"synthetic_examples": int(count), "real_train_examples": int(real)}
