"""Static HTML pages: one per run (``report.html`` in its folder), and one for a set of runs."""

from __future__ import annotations

import html
import os
from pathlib import Path

from framework.reports import plots
from framework.reports import run_folder as rf

RUN_PAGE = "report.html"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }
th { background: #f2f2f2; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5rem 0; }
pre { background: #f7f7f7; padding: 0.75rem; font-size: 0.8rem; overflow-x: auto; }
.status-completed { color: #1a7f37; } .status-failed, .status-interrupted { color: #cf222e; }
"""


def _page(title: str, body: str) -> str:
    return (
        f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def _table(frame) -> str:
    from framework.reports.table import _display

    return _display(frame).to_html(index=False, escape=True, border=0)


def _img(src: str, alt: str) -> str:
    return f'<img src="{html.escape(src)}" alt="{html.escape(alt)}">'


def write_run_page(folder: Path) -> Path:
    """``report.html`` for one run: metrics, plots, the resolved spec, the model summary, the environment."""
    import pandas as pd

    folder = Path(folder)
    run = rf.RunFolder(folder)
    metrics = run.metrics()
    status = metrics.get("status", "unknown")
    parts = [f'<p>Status: <b class="status-{html.escape(status)}">{html.escape(status)}</b></p>']
    scalar = {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}
    parts.append("<h2>Metrics</h2>" + _table(pd.DataFrame([scalar])))
    for name, alt in ((plots.CURVES, "learning curves"), (plots.CONFUSION, "confusion matrix")):
        if (folder / name).exists():
            parts.append(f"<h2>{alt.capitalize()}</h2>{_img(name, alt)}")
    parts.extend(_explanations(folder))
    for name, heading in ((rf.RESOLVED, "Resolved spec"), (rf.SUMMARY, "Model"), (rf.ENVIRONMENT, "Environment")):
        if (folder / name).exists():
            parts.append(f"<h2>{heading}</h2><pre>{html.escape((folder / name).read_text())}</pre>")
    page = folder / RUN_PAGE
    rf.write_atomic(page, _page(f"Run {folder.name}", "\n".join(parts)))
    return page


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


def write_runs_page(view, frame, path: Path, grouped=None) -> Path:
    """One page for a set of runs: the table, the grouped table, every run's curves on one figure, links to runs."""
    import pandas as pd

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [f"<p>{len(frame)} runs.</p>", "<h2>Runs</h2>" + _table(view)]
    if grouped is not None:
        parts.append("<h2>Grouped (mean ± std over runs)</h2>" + _table(grouped))
    histories = {}
    for _, row in frame.iterrows():
        history = Path(row["path"]) / rf.HISTORY
        if history.exists():
            try:
                histories[row["run"]] = pd.read_csv(history)
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
