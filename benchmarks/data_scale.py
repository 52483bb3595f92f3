"""Memory and speed as the data grows: in-memory against streamed sources, on generated data at 1x and 10x.

    python benchmarks/data_scale.py            # 200 MB and 2 GB of CSV, 5k and 50k PNGs (about 8 minutes on 2 cores)
    python benchmarks/data_scale.py --small    # 20 MB and 200 MB, 500 and 5k PNGs (a few minutes)

Each measurement trains the same small model for a fixed number of steps (3 epochs of --steps steps: data.train_limit
= steps x batch; images: batch 32 and at most 90% of the 1x folder) in a fresh process through framework.run, and
reports that process's peak RSS (ru_maxrss) and the examples/s of the epochs after the first (history.csv's
epoch_seconds: the first epoch traces the model and warms the pipeline up). The streamed runs read the whole data
set anyway (the counting pass, the test split), so their peak RSS shows whether memory grows with the data. The
last line is

    rss_growth=<peak RSS of the streamed runs at 10x / at 1x>   (the larger of CSV's and images'; goal <= 1.2)
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FEATURES = 32
BATCH = 256
IMAGE_BATCH = 32
EPOCHS = 3


def write_csv(path: Path, megabytes: int, seed: int = 0) -> int:
    """A CSV of FEATURES numbers and an integer label (a linear rule, so the model learns), ``megabytes`` large:
    one block of rows written again and again (its rows repeat; each row's split is drawn from its row number)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(20_000, FEATURES)).astype("float32")
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(FEATURES)])
    frame["label"] = (x @ rng.normal(size=(FEATURES, 10))).argmax(axis=1)
    block = io.StringIO()
    frame.to_csv(block, index=False, float_format="%.4f")
    header, body = block.getvalue().split("\n", 1)
    body = body.encode()
    rows, target = 0, megabytes * 1_000_000
    with open(path, "wb") as out:
        out.write(header.encode() + b"\n")
        while out.tell() < target:
            out.write(body)
            rows += len(frame)
    return rows


def write_pngs(folder: Path, count: int, base: Path) -> int:
    """``count`` small PNGs, one subfolder per digit: scikit-learn's digits, linked again under new names."""
    from framework.data.images import write_digit_folder

    if not base.exists():
        write_digit_folder(base)
    originals = sorted(base.glob("*/*.png"), key=lambda p: p.name)  # by digit index: every class early
    for i in range(count):
        source = originals[i % len(originals)]
        target = folder / source.parent.name / f"{i:06d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
    return count


def write_npz(folder: Path, path: Path) -> None:
    """The in-memory counterpart of an image folder: its pixels decoded into one .npz."""
    import numpy as np

    from framework.data.images import list_images, read_images

    files, labels, _ = list_images(folder)
    x = read_images([str(folder / f) for f in files], (8, 8), 1)
    np.savez(path, x=x.astype("uint8"), y=labels)


def spec_for(kind: str, source: str, steps: int, stream: bool) -> dict:
    """``steps`` steps in each of EPOCHS epochs (the first, with tracing and warm-up, is not timed)."""
    batch = BATCH if kind == "csv" else IMAGE_BATCH
    data = {"source": source, "test_split": 0.02, "validation_split": 0.0, "train_limit": steps * batch}
    if kind == "csv":
        data.update(scale="standard", stream=stream)
        layers = [{"type": "Dense", "units": 64, "activation": "relu"}]
    else:
        data.update(scale=1 / 255)
        if source.startswith("images:"):
            data.update(image_size=[8, 8], channels=1)
        layers = [{"type": "Flatten"}, {"type": "Dense", "units": 64, "activation": "relu"}]
    return {
        "name": f"scale_{kind}", "seed": 1, "data": data,
        "model": {"layers": [*layers, {"type": "Dense", "units": 10, "activation": "softmax"}]},
        "train": {"epochs": EPOCHS, "batch_size": batch, "verbose": 0, "loss": "sparse_categorical_crossentropy"},
    }


def child(spec_json: str) -> None:
    """One measurement, in this fresh process: train, then print peak RSS and examples/s as JSON."""
    import framework

    reports = Path(tempfile.mkdtemp(prefix="data_scale_run-"))
    started = time.perf_counter()
    run = framework.run(json.loads(spec_json), reports=reports)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    steady = run.history["epoch_seconds"].iloc[1:].sum()  # the epochs after the first
    speed = run.metrics["train_examples"] * (run.metrics["epochs"] - 1) / steady
    print(json.dumps({"rss_mb": round(peak, 1), "examples_per_second": round(speed, 1),
                      "train_examples": run.metrics["train_examples"], "seconds": round(time.perf_counter() - started, 1)}))
    shutil.rmtree(reports, ignore_errors=True)


def measure(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True, check=False,
                          cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"measurement failed: {spec['data']['source']}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="20 MB / 200 MB of CSV and 500 / 5k PNGs")
    parser.add_argument("--steps", type=int, default=300,
                        help="training steps per epoch (batch 256 for CSV; 32 for images, at most 90%% of 1x)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the generated data (default: a temporary one)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    megabytes, pictures = (20, 500) if args.small else (200, 5000)
    image_steps = min(args.steps, int(0.9 * pictures / IMAGE_BATCH))  # as many at 1x and 10x: fewer than 1x has
    work = args.work or Path(tempfile.mkdtemp(prefix="data_scale-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []

    def record(kind, scale, mode, size, spec):
        result = measure(spec)
        rows.append({"data": kind, "scale": scale, "mode": mode, "size": size, **result})
        print(f"{kind:7} {scale:4} {mode:10} {size:>16} {result['rss_mb']:>10.0f} {result['examples_per_second']:>12.0f}"
              f" {result['seconds']:>8.1f}", flush=True)

    print(f"{'data':7} {'x':4} {'mode':10} {'size':>16} {'peak_rss_mb':>10} {'examples/s':>12} {'wall_s':>8}")
    try:
        for scale, factor in (("1x", 1), ("10x", 10)):
            path = work / f"table_{scale}.csv"
            count = write_csv(path, megabytes * factor)
            os.sync()  # the written data on disk first: writeback while measuring would slow the run down
            size = f"{megabytes * factor} MB/{count // 1000}k rows"
            if scale == "1x":  # in memory at 10x would need the whole file in memory: the point of streaming
                record("csv", scale, "in-memory", size, spec_for("csv", f"csv:{path}", args.steps, stream=False))
            record("csv", scale, "streamed", size, spec_for("csv", f"csv:{path}", args.steps, stream=True))
            path.unlink()
        for scale, factor in (("1x", 1), ("10x", 10)):
            folder = work / f"images_{scale}"
            count = write_pngs(folder, pictures * factor, work / "digits")
            os.sync()
            if scale == "1x":
                write_npz(folder, work / "images_1x.npz")
                record("images", scale, "in-memory", f"{count} PNGs", spec_for("images", f"npz:{work / 'images_1x.npz'}",
                                                                              image_steps, stream=False))
            record("images", scale, "streamed", f"{count} PNGs", spec_for("images", f"images:{folder}", image_steps, False))
            shutil.rmtree(folder)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)

    def pick(kind, scale, mode):
        return next(r for r in rows if (r["data"], r["scale"], r["mode"]) == (kind, scale, mode))

    growth = {}
    for kind in ("csv", "images"):
        streamed, in_memory = pick(kind, "1x", "streamed"), pick(kind, "1x", "in-memory")
        growth[kind] = pick(kind, "10x", "streamed")["rss_mb"] / streamed["rss_mb"]
        ratio = streamed["examples_per_second"] / in_memory["examples_per_second"]
        print(f"{kind}: streamed/in-memory throughput at 1x = {ratio:.2f} (goal >= 0.8); "
              f"streamed peak RSS 10x/1x = {growth[kind]:.3f}")
    print(f"rss_growth={max(growth.values()):.3f}")


if __name__ == "__main__":
    main()
