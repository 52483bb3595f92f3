"""images:PATH, a folder of images streamed from disk: splits by path hash, training end to end through the CLI,
predict and explain on the run, an exact resume after a kill, and what the source refuses."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, run_outcome

from framework.train.checkpoint import FAULT_ENV

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
SPEC = """
name = "tiny_images"
seed = 3

[data]
source = "images:imgs"
image_size = [12, 12]
channels = 1
scale = 0.00392156862745098
test_split = 0.25
validation_split = 0.15

[model]
layers = [
  { type = "Conv2D", filters = 4, kernel_size = 3, activation = "relu" },
  { type = "Flatten" },
  { type = "Dropout", rate = 0.3 },
  { type = "Dense", units = 3, activation = "softmax" },
]

[augmentation]
steps = [{ type = "GaussianNoise", stddev = 0.05 }]

[train]
epochs = 3
batch_size = 8
verbose = 0
loss = "sparse_categorical_crossentropy"
metrics = ["accuracy"]
"""


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """3 classes x 20 gray 8x8 PNGs, plus one RGB JPEG in class 2 (converted to gray as it is read)."""
    from PIL import Image

    from framework.data.images import write_digit_folder

    root = tmp_path_factory.mktemp("images")
    assert write_digit_folder(root / "imgs", per_class=20, classes=3) == 60
    Image.fromarray(np.full((10, 14, 3), 200, "uint8"), mode="RGB").save(root / "imgs" / "2" / "extra.jpg")
    (root / "spec.toml").write_text(SPEC)
    return root


def test_splits_by_path_hash_are_stable_and_load_no_pixels(image_folder):
    from framework.data.images import ImageFiles, hash_fraction, list_images

    files, labels, names = list_images(image_folder / "imgs")
    assert names == ["0", "1", "2"] and len(files) == 61 and np.bincount(labels).tolist() == [20, 20, 21]
    # a file's split depends on its path and the seed only, not on the other files
    assert hash_fraction("0/0000.png", 1) == hash_fraction("0/0000.png", 1) != hash_fraction("0/0000.png", 2)
    from framework.data import load_splits
    from framework.spec.load import load_spec

    spec = load_spec(image_folder / "spec.toml").spec
    splits = load_splits(spec.data, spec.seed)
    assert isinstance(splits.x_train, ImageFiles) and splits.streams is not None
    sizes = splits.sizes()
    assert sum(sizes.values()) == 61 and min(sizes.values()) > 0
    assert splits.example_shape == (12, 12, 1)
    again = load_splits(spec.data, spec.seed)
    assert again.x_test.files == splits.x_test.files
    first = splits.x_test[:3]  # slicing decodes just those files, scaled
    assert first.shape == (3, 12, 12, 1) and first.dtype == np.float32 and 0 <= first.min() and first.max() <= 1


def test_images_run_predict_explain_and_exact_resume(cli, image_folder, tmp_path):
    spec = image_folder / "spec.toml"
    code, _, err = cli("run", spec, "--reports", tmp_path / "straight")
    assert code == 0, err
    folder = next((tmp_path / "straight").iterdir())
    pre = json.loads((folder / "preprocessing.json").read_text())
    assert pre["class_names"] == ["0", "1", "2"] and sum(pre["sizes"].values()) == 61
    assert pre["images"] == {"image_size": [12, 12], "channels": 1, "split": "path hash"}
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["train_examples"] == pre["sizes"]["train"]
    assert (folder / "confusion.png").exists()

    # predict on one class's folder, and on the training layout (subfolders), read as training read them
    code, out, err = cli("predict", folder, image_folder / "imgs" / "2")
    assert code == 0, err
    table = pd.read_csv(pd.io.common.StringIO(out))
    assert len(table) == 21 and set(table["prediction"].astype(str)) <= {"0", "1", "2"}
    code, out, err = cli("predict", folder, image_folder / "imgs")
    assert code == 0, err
    assert len(pd.read_csv(pd.io.common.StringIO(out))) == 61

    code, _, err = cli("explain", folder, "--samples", "2", "--method", "saliency")
    assert code == 0, err
    assert (folder / "explain").is_dir()
    code, _, err = cli("export", folder, "--format", "keras")  # reloads it and compares on 16 decoded test images
    assert code == 0, err

    # killed just after the first checkpoint switched, then resumed: the uninterrupted run's metrics and history
    killed = tmp_path / "killed"
    proc = subprocess.run(
        [sys.executable, "-m", "framework", "run", str(spec), "--reports", str(killed)],
        cwd=ROOT, env={**ENV, FAULT_ENV: "1:renamed"}, capture_output=True, text=True,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    resumed = next(killed.iterdir())
    code, _, err = cli("run", "--resume", resumed)
    assert code == 0, err
    got, want = run_outcome(resumed), run_outcome(folder)
    assert json.loads((resumed / "metrics.json").read_text())["resumed_from_epoch"] == 1
    assert got[0] == want[0]
    pd.testing.assert_frame_equal(got[1], want[1])


@pytest.mark.parametrize("change, message", [
    ({"image_size": None}, "image_size"),
    ({"image_size": "[12, 0]"}, "height and width"),
])
def test_images_refuses_what_it_cannot_stream(cli, image_folder, change, message):
    text = SPEC
    for key, value in change.items():
        line = next(l for l in text.splitlines() if l.startswith(f"{key} ="))
        text = text.replace(line, "" if value is None else f"{key} = {value}")
    path = image_folder / "refused.toml"
    path.write_text(text)
    code, _, err = cli("check", path, "--schema-only")
    assert code != 0 and message in err


def test_images_with_privacy_is_refused(cli, image_folder, tmp_path):
    path = image_folder / "private.toml"
    path.write_text(SPEC + '\n[privacy]\nnoise_multiplier = 1.0\nl2_norm_clip = 1.0\n')
    code, _, err = cli("run", path, "--reports", tmp_path)
    assert code != 0 and "streams them from disk" in err, err
    assert not any(tmp_path.iterdir())


def test_class_names_reorder_the_subfolders_and_must_name_them_all(image_folder):
    from framework.data import load_splits
    from framework.errors import SpecError
    from framework.spec.load import load_spec

    spec = load_spec(image_folder / "spec.toml", overrides=['data.class_names=["2", "0", "1"]']).spec
    splits = load_splits(spec.data, spec.seed)
    assert splits.class_names == ["2", "0", "1"] and not splits.class_names_from_labels
    first = splits.x_train.files[0]
    assert str(splits.class_names[splits.y_train[0]]) == Path(first).parent.name
    spec = load_spec(image_folder / "spec.toml", overrides=['data.class_names=["0", "1"]']).spec
    with pytest.raises(SpecError, match="but the classes of"):
        load_splits(spec.data, spec.seed)


def test_an_undecodable_file_is_named_in_a_data_error(cli, tmp_path):
    from framework.data.images import write_digit_folder

    write_digit_folder(tmp_path / "imgs", per_class=10, classes=3)
    (tmp_path / "imgs" / "1" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "spec.toml").write_text(SPEC.replace("epochs = 3", "epochs = 1"))
    code, _, err = cli("run", tmp_path / "spec.toml", "--reports", tmp_path / "reports")
    assert code != 0 and "cannot decode image" in err and "broken.png" in err, err
    metrics = json.loads(next((tmp_path / "reports").iterdir()).joinpath("metrics.json").read_text())
    assert metrics["status"] == "failed"


def test_a_csv_of_files_and_labels_reads_like_a_folder(image_folder, tmp_path):
    import shutil

    from framework.data import load_splits
    from framework.errors import DataError
    from framework.spec.load import load_spec

    shutil.copytree(image_folder / "imgs", tmp_path / "pics")
    rows = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "pics").rglob("*.*"))
    labels = {"0": "10", "1": "2", "2": "7"}  # integer labels sort as numbers: 2, 7, 10
    (tmp_path / "list.csv").write_text("file,label\n" + "".join(f"{r},{labels[r.split('/')[1]]}\n" for r in rows))
    (tmp_path / "spec.toml").write_text(SPEC.replace('"images:imgs"', '"images:list.csv"'))
    spec = load_spec(tmp_path / "spec.toml").spec
    splits = load_splits(spec.data, spec.seed)
    assert splits.class_names == ["2", "7", "10"] and sum(splits.sizes().values()) == 61
    for file, label in zip(splits.x_train.files, splits.y_train):  # each file keeps its row's class
        assert labels[Path(file).parent.name] == splits.class_names[label]
    (tmp_path / "list.csv").write_text("file,label\npics/0/missing.png,1\n")
    with pytest.raises(DataError, match="do not exist"):
        load_splits(spec.data, spec.seed)


@pytest.mark.parametrize("scale", ["standard", "minmax"])
def test_standard_and_minmax_are_fitted_in_one_streaming_pass_over_the_training_split(image_folder, scale):
    from framework.data import load_splits
    from framework.spec.load import load_spec

    spec = load_spec(image_folder / "spec.toml", overrides=[f'data.scale="{scale}"']).spec
    splits = load_splits(spec.data, spec.seed)
    train = splits.x_train[:]  # decoded and scaled as the pipeline scales them
    assert np.asarray(splits.preprocessing["shift"]).shape == (12, 12, 1)
    if scale == "standard":
        assert abs(train.mean()) < 1e-4 and np.allclose(train.mean(axis=0), 0, atol=1e-4)
    else:
        assert train.min() >= -1e-6 and train.max() <= 1 + 1e-6
    batch, _ = next(iter(splits.streams.evaluation_dataset(splits.x_train, splits.y_train, batch_size=len(train),
                                                            data_spec=spec.data)))
    np.testing.assert_array_equal(batch.numpy(), train)  # the pipeline scales as read_images does
