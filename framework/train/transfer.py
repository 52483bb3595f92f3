"""Learning from earlier runs: weights from a pre-trained run (init_from, freeze) and a teacher to distil."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from framework.errors import SpecError, did_you_mean
from framework.reports import run_folder as rf
from framework.spec.schema import LATEST, Spec


def find_run(reference: str, reports_dir: str | Path, key: str) -> str:
    """A run reference as a folder: 'latest:NAME' is the newest completed run named NAME in ``reports_dir``."""
    if not reference.startswith(LATEST):
        return reference
    name = reference[len(LATEST):]
    candidates = []
    for folder in Path(reports_dir).glob(f"{name}-*"):
        try:
            metrics = rf.read_json(folder / rf.METRICS)
        except (OSError, ValueError):
            continue
        if metrics.get("name") == name and metrics.get("status") == "completed" and (folder / rf.MODEL).is_file():
            candidates.append(folder)
    if not candidates:
        raise SpecError(
            f"no completed run named '{name}' in {reports_dir}; run its spec first, or give a run folder", path=key
        )
    return str(max(candidates, key=lambda f: f.name.split("-")[1:3]).resolve())  # NAME-YYYYMMDD-HHMMSS-id


def resolve_run_references(spec: Spec, reports_dir: str | Path) -> Spec:
    """The spec with 'latest:NAME' replaced by the run folder it means now, so resolved.json names it."""
    update: dict[str, Any] = {}
    if spec.model.init_from:
        update["model"] = spec.model.model_copy(update={"init_from": find_run(spec.model.init_from, reports_dir, "model.init_from")})
    if spec.distill is not None:
        update["distill"] = spec.distill.model_copy(update={"teacher": find_run(spec.distill.teacher, reports_dir, "distill.teacher")})
    if spec.data.synthetic is not None:
        synthetic = spec.data.synthetic.model_copy(update={"run": find_run(spec.data.synthetic.run, reports_dir, "data.synthetic.run")})
        update["data"] = spec.data.model_copy(update={"synthetic": synthetic})
    return spec.model_copy(update=update) if update else spec


def initialise_and_freeze(model, spec: Spec) -> dict[str, Any]:
    """Copy weights from ``model.init_from`` by layer name (same shapes only), then freeze ``model.freeze``.

    Returns what happened, for metrics.json.
    """
    facts: dict[str, Any] = {}
    if spec.model.init_from and not spec.model.init_from.startswith(LATEST):  # `check` leaves latest: unresolved
        source = rf.load_run_model(spec.model.init_from)
        source_layers = {layer.name: layer for layer in source.layers}
        loaded, skipped = [], []
        for layer in model.layers:
            other = source_layers.get(layer.name)
            if other is None or not layer.weights:
                continue
            shapes = [tuple(w.shape) for w in layer.weights]
            if shapes == [tuple(w.shape) for w in other.weights]:
                layer.set_weights(other.get_weights())
                loaded.append(layer.name)
            else:
                skipped.append(layer.name)
        if not loaded:
            raise SpecError(
                f"no layer of this model matches a layer of {spec.model.init_from} by name and weight shapes; "
                f"name the shared layers the same in both specs (that run's layers: {sorted(source_layers)})",
                path="model.init_from",
            )
        facts.update(init_from=spec.model.init_from, init_layers=loaded, init_skipped=skipped)
    names = {layer.name: layer for layer in model.layers}
    for i, name in enumerate(spec.model.freeze):
        if name not in names:
            raise SpecError(f"no layer named '{name}'{did_you_mean(name, names)}", path=f"model.freeze[{i}]")
        names[name].trainable = False
    if spec.model.freeze:
        facts["frozen"] = list(spec.model.freeze)
    return facts
