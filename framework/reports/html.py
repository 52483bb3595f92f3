"""Static HTML pages: one per run (``report.html`` in its folder), and one for a set of runs."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

from framework.reports import plots
from framework.reports import run_folder as rf

RUN_PAGE = "report.html"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; white-space: nowrap; }
th { background: #f2f2f2; position: sticky; top: 0; z-index: 1; }
.scroll { max-width: 100%; max-height: 70vh; overflow: auto; margin: 0.5rem 0; display: inline-block; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5rem 0; }
pre { background: #f7f7f7; padding: 0.75rem; font-size: 0.8rem; overflow: auto; max-height: 70vh; }
details summary { cursor: pointer; margin: 0.5rem 0; }
.status-completed { color: #1a7f37; } .status-failed, .status-interrupted { color: #cf222e; }
"""


def _page(title: str, body: str) -> str:
    return (
        f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def _table(frame) -> str:
    """A table in its own scrolling box (its header stays in view), so a wide table never widens the page."""
    from framework.reports.table import display_frame

    return f'<div class="scroll">{display_frame(frame).to_html(index=False, escape=True, border=0)}</div>'


def _pairs(rows: dict[str, Any], names: tuple[str, str]) -> str:
    """A two-column table: one row per key."""
    import pandas as pd

    return _table(pd.DataFrame([(k, "" if v is None else v) for k, v in rows.items()], columns=list(names)))


def _ordered_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    from framework.reports.table import metric_columns

    scalar = {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}
    first = metric_columns(scalar)
    return {k: scalar[k] for k in [*first, *[k for k in scalar if k not in first]]}


_MISSING = object()


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _field_default(field) -> Any:
    from pydantic import BaseModel
    from pydantic_core import PydanticUndefined

    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return _MISSING
    else:
        value = field.default
    return _plain(value.model_dump(mode="json") if isinstance(value, BaseModel) else value)


def _tables_in(annotation: Any) -> list:
    """The spec tables (pydantic models) in an annotation such as ``list[LayerSpec] | None``."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _tables_in(arg)]


def _differences(value: dict, model, prefix: str, out: dict[str, Any]) -> None:
    from framework.reports.table import flatten

    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    for key, item in value.items():
        if str(key).startswith("_") or key == "spec_version":
            continue
        path = f"{prefix}.{key}" if prefix else str(key)
        field = fields.get(key)
        if field is None:  # a typed table's own arguments (a layer's units, an optimizer's beta_1): no default
            out.update(flatten(item, path) if isinstance(item, (dict, list)) else {path: item})
            continue
        default = _field_default(field)
        tables = _tables_in(field.annotation)
        if default is not _MISSING and _plain(item) == default:
            continue
        if tables and isinstance(item, dict):
            before = len(out)
            _differences(item, tables[0], path, out)
            if len(out) == before:  # an optional section that is on, with every value at its default
                out[path] = "(defaults)"
        elif tables and isinstance(item, list) and all(isinstance(i, dict) for i in item) and item:
            for i, element in enumerate(item):
                _differences(element, tables[0], f"{path}[{i}]", out)
        else:
            out.update(flatten(item, path) if isinstance(item, dict) and item else {path: _plain(item)})


def spec_changes(resolved: dict) -> dict[str, Any]:
    """The resolved spec's values that differ from the schema's defaults (``framework.spec.schema.Spec``),
    flattened to key paths: what a run chose, without the hundred keys it left alone."""
    from framework.spec.schema import Spec

    out: dict[str, Any] = {}
    _differences(resolved, Spec, "", out)
    return {k: (json.dumps(v) if isinstance(v, list) else v) for k, v in out.items()}


def _img(src: str, alt: str) -> str:
    return f'<img src="{html.escape(src)}" alt="{html.escape(alt)}">'


def write_run_page(folder: Path) -> Path:
    """``report.html`` for one run: metrics, plots, the resolved spec, the model summary, the environment."""
    folder = Path(folder)
    run = rf.RunFolder(folder)
    metrics = run.metrics()
    status = metrics.get("status", "unknown")
    parts = [f'<p>Status: <b class="status-{html.escape(status)}">{html.escape(status)}</b></p>']
    parts.append("<h2>Metrics</h2>" + _pairs(_ordered_metrics(metrics), ("metric", "value")))
    for name, alt in ((plots.CURVES, "learning curves"), (plots.CONFUSION, "confusion matrix"),
                      (plots.CALIBRATION, "calibration (reliability diagram)"), ("embedding.png", "word embeddings"),
                      (plots.SAMPLES, "generated samples")):
        if (folder / name).exists():
            parts.append(f"<h2>{alt.capitalize()}</h2>{_img(name, alt)}")
    parts.extend(_explanations(folder))
    if (folder / rf.RESOLVED).exists():
        parts.append(_resolved_section(folder / rf.RESOLVED))
    for name, heading in ((rf.SUMMARY, "Model"), (rf.ENVIRONMENT, "Environment")):
        if (folder / name).exists():
            parts.append(f"<h2>{heading}</h2><pre>{html.escape((folder / name).read_text())}</pre>")
    page = folder / RUN_PAGE
    rf.write_atomic(page, _page(f"Run {folder.name}", "\n".join(parts)))
    return page


def _resolved_section(path: Path) -> str:
    """The values the spec set, differing from the defaults; the full resolved spec folded away below them."""
    text = path.read_text()
    part = "<h2>Spec</h2>"
    try:
        from framework.spec.upgrade import upgrade

        changes = spec_changes(upgrade(json.loads(text), str(path)))
        part += "<p>The values that differ from the defaults:</p>" + _pairs(changes, ("key", "value"))
    except Exception as exc:  # noqa: BLE001 - the page still shows the full spec
        part += f"<p>(cannot compare with the defaults: {html.escape(str(exc))})</p>"
    return part + f"<details><summary>Full resolved spec (every default filled in)</summary><pre>{html.escape(text)}</pre></details>"


def _explanations(folder: Path) -> list[str]:
    """The section `explain` adds: its deletion check, maps, token highlights and feature tables."""
    summary_file = folder / "explain" / "explain.json"
    if not summary_file.exists():
        return []
    import pandas as pd

    summary = rf.read_json(summary_file)
    parts = [f"<h2>Explanations</h2><p>{html.escape(summary.get('method', ''))}, {summary.get('samples')} test examples.</p>"]
    if "deletion_check" in summary:
        parts.append("<p>Deletion check (probability drop of the predicted class):</p>" + _table(pd.DataFrame([summary["deletion_check"]])))
    for name in summary.get("files", []):
        path = folder / name
        if not path.exists():
            continue
        if name.endswith(".png"):
            parts.append(_img(name, Path(name).stem.replace("_", " ")))
        elif name.endswith(".html"):
            parts.append(path.read_text(encoding="utf-8"))  # written by explain, tokens escaped there
        elif name.endswith(".csv"):
            parts.append(f'<p><a href="{html.escape(name)}">{html.escape(Path(name).name)}</a></p>')
            if name.endswith("feature_importance.csv"):
                parts.append(_table(pd.read_csv(path).head(15)))
    return parts


def curve_labels(frame, limit: int = 60) -> list[str]:
    """A legend label per run: the values that vary between the runs ('learning_rate=0.01, seed=2'), not run ids.
    The short run id is added where two runs would have the same label, and stands alone where nothing varies."""
    from framework.reports.table import (
        ARCHITECTURE,
        display_frame,
        short_headers,
        differing_columns,
        is_noise,
        short_run_id,
    )

    varied = [c for c in differing_columns(frame) if not is_noise(c)]
    if ARCHITECTURE in varied:
        varied = [c for c in varied if not c.startswith("model.layers[")]
    names = {c: c for c in varied} | short_headers(varied)
    shown = display_frame(frame[varied]) if varied else None
    labels = []
    for i in range(len(frame)):
        parts = [f"{names[c]}={shown[c].iloc[i]}" for c in varied] if shown is not None else []
        label = ", ".join(parts)
        labels.append(label if len(label) <= limit else label[: limit - 1] + "…")
    ids = [short_run_id(r) for r in frame["run"]]
    return [
        (f"{label} ({run})" if labels.count(label) > 1 else label) if label else run for label, run in zip(labels, ids)
    ]


def write_runs_page(view, frame, path: Path, grouped=None) -> Path:
    """One page for a set of runs: the table, the grouped table, every run's curves on one figure, links to runs."""
    import pandas as pd

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [f"<p>{len(frame)} runs.</p>", "<h2>Runs</h2>" + _table(view)]
    if grouped is not None:
        parts.append("<h2>Grouped (mean ± std over runs)</h2>" + _table(grouped))
    histories = {}
    labels = curve_labels(frame)
    for (_, row), label in zip(frame.iterrows(), labels):
        history = Path(row["path"]) / rf.HISTORY
        if history.exists():
            try:
                histories[label] = pd.read_csv(history)
            except (OSError, ValueError, pd.errors.EmptyDataError):
                continue
    if histories:
        figure = path.with_name(path.stem + "-curves.png")
        plots.compare_curves(histories, figure)
        parts.append("<h2>Learning curves</h2>" + _img(figure.name, "learning curves of all runs"))
    links = []
    for _, row in frame.iterrows():
        page = Path(row["path"]) / RUN_PAGE
        if page.exists():
            links.append(f'<li><a href="{html.escape(os.path.relpath(page, path.parent))}">{html.escape(row["run"])}</a></li>')
    if links:
        parts.append("<h2>Run pages</h2><ul>" + "".join(links) + "</ul>")
    rf.write_atomic(path, _page("Runs report", "\n".join(parts)))
    return path
