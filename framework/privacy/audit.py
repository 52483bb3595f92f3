"""Empirical privacy audit: a loss-threshold membership-inference attack.

Training examples (members) tend to have lower loss than held-out ones. The
attack scores each example by minus its loss; its ROC AUC and max(TPR - FPR)
say how much membership leaks (0.5 and 0 mean nothing measurable).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from framework.reports import run_folder as rf


def per_example_losses(model, x, y, batch_size: int = 256) -> np.ndarray:
    import keras

    if hasattr(model, "membership_losses"):  # a generative model: its own loss per example (build/vae.py, gan.py)
        return np.asarray(model.membership_losses(x, y, batch_size), dtype="float64")
    predictions = model.predict(x, batch_size=batch_size, verbose=0)
    if predictions.ndim == 2 and predictions.shape[1] > 1 and y.ndim == 1:
        losses = keras.losses.sparse_categorical_crossentropy(y, predictions)
    elif predictions.ndim == 2 and y.ndim == 2:
        losses = keras.losses.categorical_crossentropy(y, predictions)
    else:
        losses = keras.losses.mean_squared_error(y.reshape(len(y), -1), predictions.reshape(len(y), -1))
    return np.asarray(losses, dtype="float64")


def membership_audit(model, x_members, y_members, x_outside, y_outside, max_examples: int = 5000, seed: int = 0) -> dict:
    from sklearn.metrics import roc_auc_score, roc_curve

    rng = np.random.default_rng(seed)
    n = min(len(y_members), len(y_outside), max_examples)
    members = rng.choice(len(y_members), n, replace=False)
    outside = rng.choice(len(y_outside), n, replace=False)
    losses = np.concatenate([
        per_example_losses(model, x_members[members], y_members[members]),
        per_example_losses(model, x_outside[outside], y_outside[outside]),
    ])
    is_member = np.concatenate([np.ones(n), np.zeros(n)])
    if not np.isfinite(losses).any():
        return {"audit_auc": None, "audit_advantage": None, "audit_examples": int(2 * n),
                "audit_note": "no example has a finite loss (the model's outputs are NaN or infinite): nothing to audit"}
    score = -np.nan_to_num(losses, nan=1e30, posinf=1e30, neginf=-1e30)  # a non-finite loss ranks as the largest
    fpr, tpr, _ = roc_curve(is_member, score)
    return {"audit_auc": float(roc_auc_score(is_member, score)), "audit_advantage": float(np.max(tpr - fpr)),
            "audit_examples": int(2 * n)}


AUDIT_NOT_PRIVATE = (
    "the membership audit's figures are computed from the training examples' losses without noise; they are not "
    "covered by epsilon, so a run folder with them is for the data's owner, not for release"
)


def audit_run(folder: str | Path, model=None, splits=None) -> dict:
    """Audit a run folder (training split vs test split) and add the results to its metrics.json."""
    from framework.data import load_splits
    from framework.spec.load import validate_resolved

    run = rf.RunFolder(Path(folder))
    if model is None and run.metrics().get("generative"):
        from framework.errors import RunError

        raise RunError("a generative run saves only its decoder or generator, and the audit's loss needs the "
                       "encoder or discriminator too; audit it while it trains: privacy.audit = true", path=str(run.path))
    if splits is None:
        spec = validate_resolved(run.read_json(rf.RESOLVED), run.path)
        splits = load_splits(spec.data, spec.seed)
    if model is None:
        model = rf.load_run_model(run.path)
    seed = run.metrics().get("seed", 0)
    results = membership_audit(model, splits.x_train, splits.y_train, splits.x_test, splits.y_test, seed=seed)
    if "epsilon" in run.metrics():  # its figures come from the training examples' losses, outside the DP step
        results.update(private=False, private_reason=AUDIT_NOT_PRIVATE)
    return run.update_metrics(**results)
