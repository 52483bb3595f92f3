"""Streamed sources (tfrecord:, parquet:, csv: with data.stream): training end to end (CLI and API), splits by a
hash that are disjoint and the same in another process, scaling fitted on the training rows only, CSV reader
options and malformed rows named by line, an exact resume, [privacy] refused, and multi-worker sharding by file."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, free_ports, run_outcome, run_python

from framework.train.checkpoint import FAULT_ENV

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
FILES = 3
ROWS = 450  # digits rows, spread over FILES files (row i in file i % FILES)

MODEL = """
[model]
layers = [
  { type = "Dense", units = 16, activation = "relu" },
  { type = "Dropout", rate = 0.2 },
  { type = "Dense", units = 10, activation = "softmax" },
]

[train]
epochs = 3
batch_size = 32
verbose = 0
loss = "sparse_categorical_crossentropy"
metrics = ["accuracy"]
optimizer = { type = "adam", learning_rate = 0.01 }
"""

SOURCES = {
    "tfrecord": '''source = "tfrecord:shards/*.tfrecord"
features = { id = { dtype = "int64" }, pixels = { shape = [64] }, label = { dtype = "int64" } }''',
    "parquet": 'source = "parquet:shards/*.parquet"',
    "csv": 'source = "csv:shards/*.csv"\nstream = true',
}


def spec_text(kind: str, name: str = "streamed", data: str = "") -> str:
    return f'name = "{name}"\nseed = 5\n\n[data]\n{SOURCES[kind]}\nscale = "standard"\nvalidation_split = 0.15\n{data}\n{MODEL}'


def write_shards(folder: Path, rows: int = ROWS, files: int = FILES) -> None:
    """Digits as `files` TFRecord, Parquet and CSV files: an 'id' column (the row's index), 64 pixels, the label."""
    import tensorflow as tf
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = digits.data[:rows].astype("float32"), digits.target[:rows].astype("int64")
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(files):
        index = np.arange(k, rows, files)
        with tf.io.TFRecordWriter(str(folder / f"part-{k}.tfrecord")) as writer:
            for i in index:
                writer.write(tf.train.Example(features=tf.train.Features(feature={
                    "id": tf.train.Feature(int64_list=tf.train.Int64List(value=[i])),
                    "pixels": tf.train.Feature(float_list=tf.train.FloatList(value=x[i])),
                    "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[y[i]])),
                })).SerializeToString())
        frame = pd.DataFrame(x[index], columns=[f"p{j}" for j in range(64)])
        frame.insert(0, "id", index.astype("float32"))
        frame["label"] = y[index]
        frame.to_parquet(folder / f"part-{k}.parquet")
        frame.to_csv(folder / f"part-{k}.csv", index=False)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("records")
    write_shards(root / "shards")
    for kind in SOURCES:
        (root / f"{kind}.toml").write_text(spec_text(kind, name=kind))
    return root


def _splits(spec_path: Path, *overrides: str):
    from framework.data import load_splits
    from framework.spec import load_spec

    spec = load_spec(spec_path, list(overrides)).spec
    return load_splits(spec.data, spec.seed)


def _ids(x) -> set[int]:
    """The row ids of a split (the inputs' first value is the 'id' column, unscaled with data.scale = 'none')."""
    return set(np.asarray(x[:], dtype="float64")[:, 0].round().astype(int).tolist())


@pytest.mark.parametrize("kind", ["tfrecord", "parquet"])
def test_a_record_spec_trains_through_the_cli_and_the_api(cli, shards, tmp_path, kind):
    import framework

    code, _, err = cli("run", shards / f"{kind}.toml", "--reports", tmp_path / "cli")
    assert code == 0, err
    (folder,) = (tmp_path / "cli").iterdir()
    pre = json.loads((folder / "preprocessing.json").read_text())
    assert pre["stream"] == {"format": kind, "files": FILES, "split": "row hash"}
    assert sum(pre["sizes"].values()) == ROWS and len(pre["shift"]) == 65
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["train_examples"] == pre["sizes"]["train"]
    assert metrics["test_accuracy"] > 0.5 and (folder / "confusion.png").exists()

    if kind == "tfrecord":  # the Python API's path does not depend on the format: once is enough
        run = framework.run(shards / f"{kind}.toml", reports=tmp_path / "api", overrides=["train.epochs=1"])
        assert run.metrics["status"] == "completed" and run.metrics["epochs"] == 1


def test_splits_are_disjoint_cover_every_row_and_match_another_process(shards):
    splits = _splits(shards / "parquet.toml", "data.scale=none")
    parts = [_ids(splits.x_train), _ids(splits.x_val), _ids(splits.x_test)]
    assert [len(p) for p in parts] == list(splits.sizes().values())
    assert set.union(*parts) == set(range(ROWS)) and sum(map(len, parts)) == ROWS
    assert abs(len(parts[2]) / ROWS - 0.2) < 0.06  # drawn by a hash: near the fractions, not exactly
    code = (
        "import json, sys; sys.path.insert(0, 'tests'); from test_records import _splits, _ids; from pathlib import Path; "
        f"s = _splits(Path({str(shards / 'parquet.toml')!r}), 'data.scale=none'); "
        "print(json.dumps([sorted(_ids(s.x_train)), sorted(_ids(s.x_val)), sorted(_ids(s.x_test))]))"
    )
    other = run_python(code, env=ENV)
    assert other.returncode == 0, other.stderr[-2000:]
    assert json.loads(other.stdout.strip().splitlines()[-1]) == [sorted(p) for p in parts]

    by_file = _splits(shards / "tfrecord.toml", "data.scale=none", "data.split_by=file", "data.test_split=0.4")
    files = [{i % FILES for i in _ids(x)} for x in (by_file.x_train, by_file.x_test) if x is not None]
    assert all(len(f) >= 1 for f in files) and not files[0] & files[1]  # whole files on each side


@pytest.mark.parametrize("scale", ["standard", "minmax"])
def test_scaling_is_fitted_in_one_pass_over_the_training_rows_only(shards, scale):
    from framework.data.splits import _fit_scaling

    raw = _splits(shards / "tfrecord.toml", "data.scale=none", "data.train_limit=200")
    train = np.asarray(raw.x_train[:], dtype="float32")
    assert len(train) == 200 == raw.sizes()["train"]
    scaled = _splits(shards / "tfrecord.toml", f"data.scale={scale}", "data.train_limit=200")
    want = _fit_scaling(train, scale)  # the in-memory sources' statistics on the same rows
    np.testing.assert_allclose(scaled.preprocessing["shift"], want["shift"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scaled.preprocessing["divide"], want["divide"], rtol=1e-5, atol=1e-5)
    every_row = np.concatenate([train, np.asarray(raw.x_test[:], dtype="float32")])
    assert not np.allclose(_fit_scaling(every_row, scale)["shift"], want["shift"])  # the test rows would change them
    got = np.asarray(scaled.x_train[:], dtype="float32")  # the pipeline applies them
    np.testing.assert_allclose(got, (train - want["shift"]) / want["divide"], rtol=1e-4, atol=1e-4)


def test_streamed_csv_reads_class_names_odd_characters_and_reader_options(cli, tmp_path):
    labels = ["café, au lait", 'naïve "quoted"', "Ωmega ∂", "plain"]
    rows = ["x1;x2;label"] + [f'{i};{i % 7 * 0.5};"{labels[i % 4].replace(chr(34), chr(34) * 2)}"' for i in range(80)]
    (tmp_path / "odd.csv").write_bytes(("\r\n".join(rows) + "\r\n").encode("utf-8"))
    spec = tmp_path / "odd.toml"
    spec.write_text('name = "odd"\n[data]\nsource = "csv:odd.csv"\nstream = true\ncsv = { delimiter = ";" }\n' + MODEL)
    splits = _splits(spec)
    assert splits.class_names == sorted(labels) and splits.class_names_from_labels
    assert sum(splits.sizes().values()) == 80
    train = np.asarray(splits.x_train[:])
    y = np.asarray(splits.y_train)
    assert [labels.index(splits.class_names[c]) for c in y] == [int(v) % 4 for v in train[:, 0]]
    limited = _splits(spec, "data.train_limit=10")  # one file, cut after its 10th training row
    assert len(limited.x_train) == 10 == len(np.asarray(limited.x_train[:]))
    assert np.array_equal(np.asarray(limited.x_train[:]), train[:10])
    in_memory = _splits(spec, "data.stream=false")  # the same reader options in memory
    assert in_memory.class_names == sorted(labels) and in_memory.train_size + len(in_memory.x_test) + len(in_memory.x_val) == 80

    code, _, err = cli("run", spec, "--reports", tmp_path / "r", "--set", "train.epochs=1", "--set",
                       'model.layers=[{type="Dense", units=4, activation="softmax"}]')
    assert code == 0, err
    code, out, err = cli("predict", next((tmp_path / "r").iterdir()), tmp_path / "odd.csv")  # read as training read it
    assert code == 0, err
    assert set(pd.read_csv(pd.io.common.StringIO(out))["prediction"]) <= set(labels)


@pytest.mark.parametrize("content, message", [
    (b"a,b,label\n1,2,x\n3,4\r5,y\n6,7,z\n", "line 3"),
    (b"a,b,label\n1,2,x\n3,4,y\n5,6,z,9\n7,8,w\n", "line 4"),
    (b"a,b,label\n1,2,x\n3,4,y\n5,6,z\n7,8\n9,10,w\n", "line 5"),
    (b"a,b,label\n1,2,x\n3,oops,y\n", "line 3"),
])
@pytest.mark.parametrize("stream", ["true", "false"])
def test_a_malformed_csv_is_a_data_error_that_names_the_line(cli, tmp_path, content, message, stream):
    (tmp_path / "bad.csv").write_bytes(content)
    spec = tmp_path / "bad.toml"
    spec.write_text(f'name = "bad"\n[data]\nsource = "csv:bad.csv"\nstream = {stream}\ntest_split = 0.3\n' + MODEL)
    code, _, err = cli("run", spec, "--reports", tmp_path / "r")
    assert code == 2 and message in err and "Traceback" not in err, err
    assert "data." in err  # the spec key it concerns


def test_a_streamed_run_resumes_exactly_after_a_kill(cli, shards, tmp_path):
    spec = shards / "csv.toml"
    sets = ["--set", "train.epochs=2", "--set", "train.steps_per_execution=2"]  # streamed batches, 2 per call
    code, _, err = cli("run", spec, "--reports", tmp_path / "straight", *sets)
    assert code == 0, err
    straight = next((tmp_path / "straight").iterdir())
    proc = subprocess.run(
        [sys.executable, "-m", "framework", "run", str(spec), "--reports", str(tmp_path / "killed"), *sets],
        cwd=ROOT, env={**ENV, FAULT_ENV: "1:renamed"}, capture_output=True, text=True, check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    resumed = next((tmp_path / "killed").iterdir())
    code, _, err = cli("run", "--resume", resumed)
    assert code == 0, err
    got, want = run_outcome(resumed), run_outcome(straight)
    assert json.loads((resumed / "metrics.json").read_text())["resumed_from_epoch"] == 1
    assert got[0] == want[0] and got[0]["steps_per_execution"] == 2
    pd.testing.assert_frame_equal(got[1], want[1])


@pytest.mark.parametrize("data, message", [
    ('source = "tfrecord:shards/*.tfrecord"', "tfrecord: needs its feature spec"),
    ('source = "parquet:shards/*.parquet"\nfeatures = { x = { shape = [2] } }', "declares tfrecord: features"),
    ('source = "sklearn:digits"\nstream = true', "data.stream applies to csv:"),
    ('source = "parquet:nowhere/*.parquet"', "no parquet: file matches"),
    ('source = "csv:shards/*.csv"\nstream = true\ncsv = { delimiter = ";;" }', "data.csv.delimiter"),
    ('source = "csv:shards/*.csv"\nstream = true\ncsv = { encoding = "klingon" }', "unknown text encoding"),
])
def test_spec_errors_of_streamed_sources_name_the_key(cli, shards, data, message):
    path = shards / "wrong.toml"
    path.write_text(f'name = "wrong"\n[data]\n{data}\n{MODEL}')
    code, _, err = cli("check", path, "--schema-only")
    assert code == 2 and message in err and "Traceback" not in err, err


def test_a_generative_model_on_a_streamed_source_is_refused(cli, shards):
    path = shards / "vae.toml"
    path.write_text('name = "vae"\n[data]\nsource = "parquet:shards/*.parquet"\nlabel = "label"\nscale = 0.0625\n'
                    '[model]\nkind = "vae"\nlatent_dim = 2\nencoder = [{ type = "Dense", units = 8 }]\n'
                    'decoder = [{ type = "Dense", units = 65, activation = "sigmoid" }]\n')
    code, _, err = cli("check", path, "--schema-only")
    assert code == 2 and "streams them from disk" in err and "data.source" in err and "Traceback" not in err, err


def test_privacy_on_a_streamed_source_is_refused(cli, shards, tmp_path):
    path = shards / "private.toml"
    text = spec_text("parquet").replace('scale = "standard"', "scale = 0.0625\nclass_names = " + str([str(i) for i in range(10)]))
    path.write_text(text.replace("'", '"') + "\n[privacy]\nnoise_multiplier = 1.0\nl2_norm_clip = 1.0\n")
    code, _, err = cli("run", path, "--reports", tmp_path)
    assert code == 2 and "streams them from disk" in err, err
    assert not tmp_path.exists() or not any(tmp_path.iterdir())
    # refused by the spec's own checks, before any pass over the data
    code, _, err = cli("check", path, "--schema-only")
    assert code == 2 and "streams them from disk" in err and "privacy" in err, err


def test_each_worker_reads_only_its_share_of_the_training_files(shards, tmp_path, monkeypatch):
    from framework.data.streaming import SHARD_LOG_ENV
    from framework.spec import load_spec

    log = tmp_path / "shards.jsonl"
    monkeypatch.setenv(SHARD_LOG_ENV, str(log))
    spec = load_spec(shards / "tfrecord.toml").spec
    read = []
    for index in range(2):
        splits = _splits(shards / "tfrecord.toml", "data.scale=none", "data.shuffle=false")
        splits.streams.share_files(2, index)
        ds, _ = splits.streams.training_dataset(splits.x_train, splits.y_train, batch_size=16, data_spec=spec.data,
                                                seed=spec.seed)
        ids = {int(v) for x, _ in ds.take(4) for v in x.numpy()[:, 0]}
        read.append(ids)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["files"] for e in entries] == [["part-0.tfrecord", "part-2.tfrecord"], ["part-1.tfrecord"]]
    assert {i % FILES for i in read[0]} <= {0, 2} and {i % FILES for i in read[1]} == {1}


@pytest.mark.slow  # two multi_worker processes (~30 s); the quick suite checks each worker's share in one process
def test_two_local_workers_train_on_disjoint_tfrecord_shards(shards, tmp_path):
    from framework.data.streaming import SHARD_LOG_ENV

    spec = tmp_path / "workers.toml"
    spec.write_text(spec_text("tfrecord", name="workers").replace("shards/", f"{shards}/shards/").replace(
        "epochs = 2", "epochs = 1") + '\n[distribute]\nstrategy = "multi_worker"\n')
    log = tmp_path / "shards.jsonl"
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "framework", "run", str(spec), "--reports", str(tmp_path / "r")], cwd=ROOT,
            env={**ENV, SHARD_LOG_ENV: str(log),
                 "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(2)
    ]
    results = [w.communicate(timeout=300) for w in workers]
    for worker, (_, err) in zip(workers, results):
        assert worker.returncode == 0, err[-3000:]
    (folder,) = (tmp_path / "r").iterdir()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["replicas"] == 2
    files = {e["worker"]: e["files"] for e in map(json.loads, log.read_text().splitlines())}
    assert files == {0: ["part-0.tfrecord", "part-2.tfrecord"], 1: ["part-1.tfrecord"]}
