"""Reports: loading, filtering, grouping, every format, compare, plots, HTML pages, damaged folders."""

import io
import json
import shutil
import subprocess

import pandas as pd
import pytest

from conftest import tiny_spec
from framework.reports import load


@pytest.fixture(scope="module")
def four_runs(tmp_path_factory):
    """Two learning rates x two seeds, trained once for the whole module."""
    from framework.cli import main

    root = tmp_path_factory.mktemp("runs")
    spec = root / "spec.json"
    spec.write_text(json.dumps(tiny_spec(train={"epochs": 2, "verbose": 0})))
    reports = root / "reports"
    for lr in ("0.001", "0.01"):
        assert main(["run", str(spec), "--reports", str(reports), "--seeds", "1,2", "--set", f"train.optimizer.learning_rate={lr}"]) == 0
    return reports


def test_load_gives_one_row_per_run_with_flat_spec_keys(four_runs):
    frame = load(four_runs)
    assert len(frame) == 4
    assert set(frame["train.optimizer.learning_rate"]) == {0.001, 0.01}
    for column in ("status", "test_accuracy", "params", "train_seconds", "model.layers[0].units", "seed"):
        assert column in frame.columns
    assert (frame["status"] == "completed").all()


def test_each_run_has_curves_confusion_and_a_page(four_runs):
    for folder in four_runs.iterdir():
        if folder.is_dir():
            assert {"curves.png", "confusion.png", "report.html"} <= {p.name for p in folder.iterdir()}
            page = (folder / "report.html").read_text()
            assert '<img src="curves.png"' in page and "test_accuracy" in page


def test_where_filters_with_dotted_keys(cli, four_runs):
    code, out, _ = cli("report", four_runs, "--where", "train.optimizer.learning_rate > 0.005 and seed == 2", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 1 and rows[0]["seed"] == 2
    code, _, err = cli("report", four_runs, "--where", "no_such_column > 1")
    assert code == 2 and "--where" in err


def test_group_by_gives_mean_and_std_over_seeds(cli, four_runs):
    frame = load(four_runs)
    code, out, _ = cli("report", four_runs, "--group-by", "train.optimizer.learning_rate", "--format", "csv")
    grouped = pd.read_csv(io.StringIO(out)).set_index("train.optimizer.learning_rate")
    assert list(grouped["runs"]) == [2, 2]
    expected = frame[frame["train.optimizer.learning_rate"] == 0.01]["test_accuracy"]
    assert grouped.loc[0.01, "test_accuracy_mean"] == pytest.approx(expected.mean())
    assert grouped.loc[0.01, "test_accuracy_std"] == pytest.approx(expected.std())
    code, out, _ = cli("report", four_runs, "--group-by", "train.optimizer.learning_rate")
    assert "±" in out


def test_every_format(cli, four_runs, tmp_path):
    outputs = {fmt: cli("report", four_runs, "--format", fmt)[1] for fmt in ("table", "csv", "markdown", "json")}
    assert "train.optimizer.learning_rate" in outputs["table"]
    assert len(pd.read_csv(io.StringIO(outputs["csv"]))) == 4
    assert outputs["markdown"].startswith("| run") and outputs["markdown"].count("\n") == 6
    assert len(json.loads(outputs["json"])) == 4
    code, out, _ = cli("report", four_runs, "--format", "html", "--output", tmp_path / "page.html")
    page = (tmp_path / "page.html").read_text()
    assert code == 0 and "<table" in page and "page-curves.png" in page and (tmp_path / "page-curves.png").exists()


def test_differing_learning_rate_is_a_csv_column(cli, four_runs):
    frame = load(four_runs)
    two = [frame["path"][i] for i in frame.index if frame["seed"][i] == 1]
    code, out, _ = cli("report", *two, "--format", "csv")
    table = pd.read_csv(io.StringIO(out))
    assert "train.optimizer.learning_rate" in table.columns and "seed" not in set(table.columns) - {"seed"} | {"x"}
    assert "model.layers[0].units" not in table.columns  # the same in both runs


def test_compare_shows_spec_difference_deltas_and_writes_the_plot(cli, four_runs, tmp_path):
    frame = load(four_runs)
    a = frame[(frame["seed"] == 1) & (frame["train.optimizer.learning_rate"] == 0.001)]["path"].item()
    b = frame[(frame["seed"] == 1) & (frame["train.optimizer.learning_rate"] == 0.01)]["path"].item()
    code, out, _ = cli("compare", a, b, "--output", tmp_path / "cmp.png")
    assert code == 0
    spec_part, metric_part = out.split("metrics (Δ against the first run):")
    assert "train.optimizer.learning_rate" in spec_part and "0.001" in spec_part and "0.01" in spec_part
    delta_line = next(l for l in metric_part.splitlines() if l.strip().startswith("test_accuracy"))
    acc_a = frame.set_index("path").loc[a, "test_accuracy"]
    acc_b = frame.set_index("path").loc[b, "test_accuracy"]
    assert float(delta_line.split()[-1]) == pytest.approx(acc_b - acc_a, abs=1e-3)
    assert (tmp_path / "cmp.png").read_bytes()[:4] == b"\x89PNG"
    code, _, err = cli("compare", a, tmp_path)
    assert code == 2 and "not a run folder" in err


def test_damaged_and_half_written_folders_are_skipped(cli, four_runs, tmp_path):
    shutil.copytree(four_runs, tmp_path / "r", ignore=shutil.ignore_patterns("*.keras", "*.png"))
    root = tmp_path / "r"
    (root / "empty").mkdir()
    (root / "half").mkdir()
    (root / "half" / "metrics.json").write_text('{"status": "comp')
    code, out, err = cli("report", root, "--format", "csv")
    assert code == 0 and len(pd.read_csv(io.StringIO(out))) == 4
    assert "skipping" in err and "half" in err and "empty" in err


def test_tensorboard_logs(cli, tmp_path, write_spec):
    spec = write_spec(tiny_spec(train={"epochs": 1, "verbose": 0, "tensorboard": True}))
    assert cli("run", spec, "--reports", tmp_path / "r")[0] == 0
    logs = next((tmp_path / "r").iterdir()) / "tensorboard"
    assert any(p.name.startswith("events.out.tfevents") for p in logs.rglob("*"))


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_html_page_renders_in_a_headless_browser(cli, four_runs, tmp_path):
    page = tmp_path / "index.html"
    assert cli("report", four_runs, "--format", "html", "--output", page, "--group-by", "train.optimizer.learning_rate")[0] == 0
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([_chromium(), *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert "Runs report" in dom and "<table" in dom and "±" in dom
    shot = tmp_path / "shot.png"
    subprocess.run([_chromium(), *flags, f"--screenshot={shot}", "--window-size=1200,900", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000  # a rendered page, not a blank one
    # the browser loaded the plot: the image has a natural width once decoded
    js_dom = subprocess.run(
        [_chromium(), *flags, "--dump-dom", "--virtual-time-budget=3000", page.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    assert "index-curves.png" in js_dom
