"""Reports: loading, filtering, grouping, every format, compare, plots, HTML pages, damaged folders."""

import io
import json
import shutil
import subprocess
from pathlib import Path

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


def hparams_in(log_dir):
    """The HParams plugin's session start info in a TensorBoard log folder: {name: value}, and the scalar tags."""
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = event_accumulator.EventAccumulator(str(log_dir), size_guidance={event_accumulator.TENSORS: 0})
    events.Reload()
    content = events.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in content, f"no hparams plugin data in {log_dir}: {events.Tags()}"
    data = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = {}
    for name, value in data.session_start_info.hparams.items():
        kind = value.WhichOneof("kind")
        hparams[name] = getattr(value, kind)
    tensors = {tag: events.Tensors(tag) for tag in events.Tags()["tensors"] if not tag.startswith("_hparams_")}
    return hparams, tensors


def test_tensorboard_logs_hparams_and_test_metrics(cli, tmp_path, write_spec):
    import tensorflow as tf

    spec = write_spec(tiny_spec(train={"epochs": 1, "verbose": 0, "tensorboard": True}))
    assert cli("run", spec, "--reports", tmp_path / "r")[0] == 0
    folder = next((tmp_path / "r").iterdir())
    logs = folder / "tensorboard"
    assert any(p.name.startswith("events.out.tfevents") for p in (logs / "train").rglob("*"))
    hparams, tensors = hparams_in(logs)
    assert hparams["train.optimizer.learning_rate"] == pytest.approx(1e-3)
    assert hparams["model.layers[0].units"] == 16 and hparams["data.source"] == "sklearn:digits"
    assert not {"train.verbose", "train.tensorboard"} & set(hparams)  # noise is left out
    metrics = json.loads((folder / "metrics.json").read_text())
    # the test metrics are scalars next to the hparams, so the HParams dashboard shows them
    assert float(tf.make_ndarray(tensors["test_accuracy"][-1].tensor_proto)) == pytest.approx(metrics["test_accuracy"])


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
    # at 1400 px the pages do not scroll sideways: wide tables scroll inside their own boxes
    run_page = next(p for p in sorted(four_runs.iterdir()) if p.is_dir()) / "report.html"
    for shown in (page, run_page):
        widths = _page_widths(_chromium(), flags, shown, tmp_path, 1400)
        assert widths["inner"] == 1400 and widths["scroll"] <= 1400, (shown, widths)


def _page_widths(chromium, flags, page, tmp_path, width):
    """The page's document scroll width and window width at ``width`` px, measured by a copy of it that writes them
    into its title once loaded (the copy sits beside the page, so its images load the same)."""
    probe = page.with_name(f".probe-{width}.html")
    script = ("<script>addEventListener('load', () => { document.title = 'widths ' + JSON.stringify({scroll: "
              "document.documentElement.scrollWidth, inner: innerWidth}); });</script>")
    probe.write_text(page.read_text().replace("</body>", script + "</body>"))
    try:
        dom = subprocess.run([chromium, *flags, f"--window-size={width},900", "--virtual-time-budget=3000", "--dump-dom",
                              probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    finally:
        probe.unlink()
    assert "<title>widths " in dom, dom[:500]
    return json.loads(dom.split("<title>widths ")[1].split("</title>")[0])


def _six_runs(four_runs, root):
    """Six run folders (the four trained ones, two copies with a longer name and another batch size), two nested."""
    import secrets

    folders = sorted(p for p in four_runs.iterdir() if p.is_dir())
    for i, folder in enumerate(folders + folders[:2]):
        name = "tiny" if i < 4 else "a-much-longer-experiment-name"
        target = root / ("nested/deeper" if i % 2 else "") / f"{name}-20261128-10000{i}-{secrets.token_hex(3)}"
        shutil.copytree(folder, target, ignore=shutil.ignore_patterns("*.keras", "*.png", "*.html"))
        resolved = json.loads((target / "resolved.json").read_text())
        metrics = json.loads((target / "metrics.json").read_text())
        resolved["name"] = metrics["name"] = name
        metrics["run"] = target.name
        if i >= 4:
            resolved["train"]["batch_size"] = 128
        (target / "resolved.json").write_text(json.dumps(resolved))
        (target / "metrics.json").write_text(json.dumps(metrics))
    return root


def test_report_fits_the_terminal_with_one_line_per_run(cli, four_runs, tmp_path, monkeypatch):
    root = _six_runs(four_runs, tmp_path / "six")
    monkeypatch.setenv("COLUMNS", "120")
    code, out, err = cli("report", root)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 7, out  # the header and one line per run
    assert max(len(line) for line in lines) <= 120
    header = lines[0].split()
    assert header[0] == "run" and "test_accuracy" in header
    assert any("learning_rate" in h for h in header) and any("batch_size" in h for h in header)
    for noise in ("train.verbose", "verbose", "status", "name", "epochs", "path", "jit_compile"):
        assert noise not in header  # the same in every run, or noise
    ids = [line.split()[0] for line in lines[1:]]
    assert not any("20261128" in i for i in ids) and sum(i.startswith("tiny-") for i in ids) == 4  # name + 6-char id

    code, out, _ = cli("report", root, "--wide")
    assert code == 0 and "20261128-100001" in out and "train.optimizer.learning_rate" in out and "status" in out
    monkeypatch.setenv("COLUMNS", "50")  # narrower still: the least telling columns go, and a note says which
    code, out, err = cli("report", root)
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 50 and "left out" in err
    assert "test_accuracy" in out.splitlines()[0]


def test_report_recurses_into_folders_and_refuses_a_missing_one(cli, four_runs, tmp_path):
    root = _six_runs(four_runs, tmp_path / "six")
    code, out, _ = cli("report", root, "--format", "csv")
    assert code == 0 and len(pd.read_csv(io.StringIO(out))) == 6  # two of them two folders down
    code, out, err = cli("report", tmp_path / "no-such-folder")
    assert code == 2 and "no such folder" in err and "no-such-folder" in err


def test_run_page_metrics_as_rows_and_only_the_spec_values_that_differ(four_runs):
    frame = load(four_runs)
    folder = Path(frame[frame["train.optimizer.learning_rate"] == 0.01]["path"].iloc[0])  # 0.001 is the default
    page = (folder / "report.html").read_text()
    metrics_part = page.split("<h2>Metrics</h2>")[1].split("<h2>")[0]
    assert "<th>metric</th>" in metrics_part and "<th>value</th>" in metrics_part
    assert "<td>test_accuracy</td>" in metrics_part  # a row per metric, not a column
    spec_part = page.split("<h2>Spec</h2>")[1].split("<details>")[0]
    assert "<td>train.optimizer.learning_rate</td>" in spec_part and "<td>train.epochs</td>" in spec_part
    assert "train.jit_compile" not in spec_part and "data.stratify" not in spec_part  # defaults are left out
    assert "<details><summary>Full resolved spec" in page and "jit_compile" in page.split("<details>")[1]
    assert 'class="scroll"' in page and "position: sticky" in page


def test_runs_page_curve_legends_name_the_varied_values(four_runs):
    from framework.reports.html import curve_labels

    labels = curve_labels(load(four_runs))
    assert len(set(labels)) == 4
    for label in labels:
        parts = set(label.split(", "))
        assert len(parts) == 2 and parts & {"learning_rate=0.001", "learning_rate=0.01"} and parts & {"seed=1", "seed=2"}, label


def test_run_figures_keep_every_label_inside_the_image(tmp_path, monkeypatch):
    """The run's figures place their axes by measured margins (no tight_layout): long, odd, multi-line and many
    class names, tiny, negative and 5-digit losses and 6-digit bin counts all stay inside the image: every drawn
    thing's box is within the figure, and the image keeps a white border (nothing cut at an edge)."""
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    from framework.reports import calibration, plots

    drawn = []
    monkeypatch.setattr(plt, "close", drawn.append)  # keep each figure to measure it
    rng = np.random.default_rng(0)
    names = ["ham", "spam & eggs", "a rather long class name, with a comma", "ünïcødé", "x", "y", "z", "neg", "pos",
             "neutral", "other", "12"]
    epochs = np.arange(5)
    big = pd.DataFrame({"epoch": epochs, "loss": [12345.0, 900, 80, 7, 0.5], "val_loss": [13000.0, 950, 85, 8, 0.6],
                        "sparse_categorical_accuracy": np.linspace(0.1, 0.9, 5)})
    tiny = pd.DataFrame({"epoch": epochs, "loss": 0.000131 - 0.000002 * epochs, "val_loss": 0.000133 - 0.000002 * epochs,
                         "log_likelihood": -0.000131 + 0.000002 * epochs})
    probabilities = rng.dirichlet(np.ones(12), 300)
    labels = rng.integers(0, 12, 300)
    many = rng.dirichlet(np.ones(3) * 5, 150_000)
    paths = [
        plots.learning_curves(big, tmp_path / "curves.png", title="a-run-folder-name-2026-11-30-120000"),
        plots.learning_curves(tiny, tmp_path / "tiny.png"),
        plots.confusion_matrix(labels, probabilities.argmax(1), names, tmp_path / "twelve.png"),
        plots.confusion_matrix(labels % 3, rng.integers(0, 3, 300), names[:3], tmp_path / "three.png"),
        plots.confusion_matrix(labels % 3, labels % 3, ["a\nb\nc", "d\ne\nf", "g\nh\ni"], tmp_path / "lines.png"),
        plots.confusion_matrix(labels % 2, labels % 2, None, tmp_path / "two.png"),
        plots.reliability_diagram(calibration.reliability_bins(probabilities, labels), 0.123, tmp_path / "calibration.png",
                                  entropy=1.5),
        plots.reliability_diagram(calibration.reliability_bins(many, many.argmax(1)), 0.01, tmp_path / "many.png"),
    ]
    assert len(drawn) == len(paths)
    for path, fig in zip(paths, drawn):
        box = fig.get_tightbbox(fig.canvas.get_renderer())  # in inches, everything drawn
        width, height = fig.get_size_inches()
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, f"{path.name}: {box} in {width}x{height}"
        pixels = np.asarray(Image.open(path).convert("L"))
        border = np.concatenate([pixels[:2].ravel(), pixels[-2:].ravel(), pixels[:, :2].ravel(), pixels[:, -2:].ravel()])
        assert border.min() == 255, f"{path.name}: something is drawn at the image's edge (a label cut off)"
        assert (pixels < 128).mean() > 0.005, f"{path.name}: nearly blank"
    for fig in drawn:
        fig.clear()


def test_sample_grid_puts_each_sample_in_its_cell_and_labels_each_row(tmp_path):
    """samples.png is one mosaic: sample i at row i // columns, column i % columns, its gray level kept; unused
    cells and the lines between cells light gray; a label left of each row, inside the image."""
    import numpy as np
    from PIL import Image

    from framework.reports import plots

    count, columns = 12, 5
    images = np.repeat(np.arange(count, dtype="float32")[:, None, None] / (count - 1), 64, axis=1).reshape(count, 8, 8)
    path = plots.sample_grid(images, tmp_path / "samples.png", columns=columns)
    pixels = np.asarray(Image.open(path).convert("L")).astype(float)
    height = pixels.shape[0]
    rows, cell, gap = 3, 8, 1
    mosaic_w, mosaic_h = columns * (cell + gap) + gap, rows * (cell + gap) + gap
    # the axes spans 0.05 in to 0.05 + 0.8 * columns in across and the same from the bottom, at 90 dpi
    left, bottom = 0.05 * 90, 0.05 * 90
    axes_w, axes_h = columns * 0.8 * 90, rows * 0.8 * 90
    for i in range(rows * columns):
        row, column = divmod(i, columns)
        x = left + (gap + column * (cell + gap) + cell / 2) / mosaic_w * axes_w
        y = height - bottom - axes_h + (gap + row * (cell + gap) + cell / 2) / mosaic_h * axes_h
        expected = 255 * (i / (count - 1) if i < count else 0.85)
        assert abs(pixels[int(y), int(x)] - expected) <= 3, (i, pixels[int(y), int(x)], expected)
    labelled = plots.sample_grid(images[:10], tmp_path / "labelled.png", row_labels=["even", "odd, longer label"], columns=5)
    gray = np.asarray(Image.open(labelled).convert("L"))
    assert gray[:, :3].min() == 255 and (gray[:, : gray.shape[1] // 4] < 100).any()  # text left of the samples, inside
