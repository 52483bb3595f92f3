"""``images:PATH``: a folder of image files, one subfolder per class, streamed from disk.

Memory holds the list of file paths and their labels, never all the pixels: the tf.data pipelines read, decode and
resize each file as its batch is drawn (``tf.io.read_file``, ``tf.io.decode_image``, ``tf.image.resize``). The splits
are drawn without opening a file, by a stable hash of each file's path relative to the folder (and the seed), so they
are the same in every process and on resume. Training order is a seeded permutation of the path list keyed by the
epoch number, as for in-memory arrays (see pipeline.py), so a resumed run reads the batches an uninterrupted one would.

    [data]
    source = "images:photos"      # photos/cat/*.png, photos/dog/*.jpg, ...
    image_size = [64, 64]
    channels = 3
    scale = 0.00392156862745098   # 1/255
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framework.data.pipeline import map_stateful
from framework.data.sources import DataSource
from framework.errors import DataError, SpecError
from framework.registry import registry

if TYPE_CHECKING:  # numpy is imported where arrays are made: validating a spec looks this source up
    import numpy as np

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


def list_images(folder: str | Path) -> tuple[list[str], np.ndarray, list[str]]:
    """(paths relative to ``folder`` with '/' separators, sorted; class ids; class names = the subfolders, sorted).
    ``folder`` may be a CSV of file,label rows instead (see _list_csv).

    Files anywhere below a class's subfolder belong to that class; files directly in ``folder`` are ignored.
    """
    import numpy as np

    folder = Path(folder)
    if folder.is_file():
        return _list_csv(folder)
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{folder} has no subfolders; put each class's images in a subfolder named after it",
                        path="data.source")
    paths: list[str] = []
    labels: list[int] = []
    empty = []
    for index, name in enumerate(classes):
        found = sorted(
            p.relative_to(folder).as_posix() for p in (folder / name).rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith(".")
        )
        if not found:
            empty.append(name)
        paths += found
        labels += [index] * len(found)
    if empty:
        raise DataError(
            f"the class folders {empty} of {folder} hold no images ({', '.join(IMAGE_SUFFIXES)}); remove them or add images",
            path="data.source",
        )
    return paths, np.asarray(labels, dtype="int64"), classes


def image_root(source: str | Path) -> Path:
    """The folder the image paths are relative to: the folder itself, or a CSV's folder."""
    source = Path(source)
    return source.parent if source.is_file() else source


def _list_csv(path: Path) -> tuple[list[str], np.ndarray, list[str]]:
    """A CSV with columns ``file`` (a path relative to the CSV's folder) and ``label`` (a class name; integers sort
    as numbers): the same answer as a folder's, sorted by path."""
    import numpy as np
    import pandas as pd

    from framework.data.sources import check_csv_rows, csv_error_message

    check_csv_rows(str(path))
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001 - pandas raises many kinds for unreadable files
        raise DataError(f"cannot read CSV {path}: {csv_error_message(exc)}", path="data.source") from None
    missing = [c for c in ("file", "label") if c not in frame.columns]
    if missing or frame.empty:
        raise DataError(f"{path} needs a header with columns 'file' and 'label' and one row per image; "
                        f"columns: {list(frame.columns)}, rows: {len(frame)}", path="data.source")
    frame = frame[(frame["file"].str.strip() != "")]
    blank = frame["label"].str.strip() == ""
    if blank.any():
        raise DataError(f"{int(blank.sum())} rows of {path} have no label (first: {frame['file'][blank].iloc[0]})",
                        path="data.source")
    repeated = frame["file"][frame["file"].duplicated()]
    if len(repeated):
        raise DataError(f"{path} lists {repeated.iloc[0]} more than once", path="data.source")
    root = path.parent
    absent = [f for f in frame["file"] if not (root / f).is_file()]
    if absent:
        raise DataError(f"{len(absent)} files listed in {path} do not exist (first: {root / absent[0]})",
                        path="data.source")
    frame = frame.sort_values("file")
    values = sorted(set(frame["label"]))
    numeric = all(v.lstrip("-").isdigit() for v in values)
    names = sorted(values, key=int) if numeric else values
    index = {name: i for i, name in enumerate(names)}
    return list(frame["file"]), np.asarray([index[v] for v in frame["label"]], dtype="int64"), names


def hash_fraction(relative_path: str, seed: int) -> float:
    """A number in [0, 1) that depends only on the path and the seed (not on the other files, the OS or the process)."""
    digest = hashlib.sha256(f"{seed}:{relative_path}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def decode_image(path, image_size, channels: int):
    """One file -> a float32 (height, width, channels) tensor of pixel values 0..255 (unscaled), resized bilinearly."""
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(path), channels=0, expand_animations=False)
    image = tf.cast(image, tf.float32)
    depth = tf.shape(image)[-1]
    # gray, gray + alpha, RGB or RGBA -> RGB (alpha dropped), then gray if asked: every file gives the same channels
    image = tf.cond(depth >= 3, lambda: image[..., :3], lambda: tf.image.grayscale_to_rgb(image[..., :1]))
    image.set_shape([None, None, 3])
    if channels == 1:
        image = tf.image.rgb_to_grayscale(image)
    image = tf.image.resize(image, list(image_size))
    image.set_shape([*image_size, channels])
    return image


def _scaler(stats: dict[str, Any]):
    """The tensor form of splits.apply_scaling (the same arithmetic, so predict's numpy scaling matches)."""
    if stats.get("scale", "none") == "none":
        return lambda x: x
    import numpy as np

    shift, divide = np.asarray(stats["shift"], "float32"), np.asarray(stats["divide"], "float32")
    return lambda x: (x - shift) / divide


def fit_scaling(files: list[str], image_size, channels: int, scale) -> dict[str, Any]:
    """data.scale's statistics. 'standard' and 'minmax' per pixel and channel, as for arrays (splits._fit_scaling),
    in one streaming pass over ``files`` (the training split), 256 images at a time, summed in float64 in file order
    (so every run, and a resume, gets the same numbers); a number needs no pass."""
    import numpy as np
    import tensorflow as tf

    if scale == "none":
        return {"scale": "none"}
    if scale not in ("standard", "minmax"):
        return {"scale": float(scale), "shift": 0.0, "divide": 1.0 / float(scale)}
    ds = tf.data.Dataset.from_tensor_slices(list(files))
    ds = ds.map(lambda p: decode_image(p, image_size, channels), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    count, total, squares, low, high = 0, 0.0, 0.0, np.inf, -np.inf
    try:
        for batch in ds.batch(256):
            batch = batch.numpy().astype("float64")
            count += len(batch)
            total, squares = total + batch.sum(axis=0), squares + (batch * batch).sum(axis=0)
            low, high = np.minimum(low, batch.min(axis=0)), np.maximum(high, batch.max(axis=0))
    except tf.errors.InvalidArgumentError as exc:
        raise _decode_error(exc, files) from None
    if scale == "standard":
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
        return {"scale": "standard", "shift": mean.astype("float32"),
                "divide": np.where(std > 1e-6, std, 1.0).astype("float32")}
    return {"scale": "minmax", "shift": low.astype("float32"), "divide": np.where(high > low, high - low, 1.0).astype("float32")}


def read_images(files: list[str], image_size, channels: int, stats: dict[str, Any] | None = None) -> np.ndarray:
    """Decode files into one array, with tf.data's decoders (the same as training's); scaled with ``stats``."""
    import numpy as np
    import tensorflow as tf

    if not files:
        return np.zeros((0, *image_size, channels), dtype="float32")
    scale = _scaler(stats or {})
    ds = tf.data.Dataset.from_tensor_slices(list(files)).map(lambda p: scale(decode_image(p, image_size, channels)))
    try:
        return np.concatenate([b.numpy() for b in ds.batch(256)]).astype("float32")
    except tf.errors.InvalidArgumentError as exc:
        raise _decode_error(exc, files) from None


class ImageFiles:
    """A split's inputs as image files: ``len``, ``shape`` and ``dtype`` as an array's, and slicing (``x[:8]``)
    decodes just those files. What the framework reads of ``splits.x_test`` (sample rows, explain) works on it."""

    def __init__(self, files: list[str], image_size, channels: int, stats: dict[str, Any]):
        self.files = list(files)
        self.image_size, self.channels, self.stats = tuple(image_size), channels, stats

    def __len__(self) -> int:
        return len(self.files)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.files), *self.image_size, self.channels)

    @property
    def ndim(self) -> int:
        return 4

    @property
    def dtype(self):
        import numpy as np

        return np.dtype("float32")

    def __getitem__(self, index) -> np.ndarray:
        import numpy as np

        if isinstance(index, slice):
            return read_images(self.files[index], self.image_size, self.channels, self.stats)
        if isinstance(index, (int, np.integer)):
            return read_images([self.files[index]], self.image_size, self.channels, self.stats)[0]
        return read_images([self.files[int(i)] for i in np.asarray(index)], self.image_size, self.channels, self.stats)


@dataclass
class ImageStreams:
    """Builds the train/validation/test pipelines of an image folder's splits (see prepare.make_datasets)."""

    folder: str
    image_size: tuple[int, int]
    channels: int
    stats: dict[str, Any]

    def _parallel(self) -> dict[str, Any]:
        """Files are read in parallel, and handed on in order (so batches are the same in every run)."""
        import tensorflow as tf

        return {"num_parallel_calls": tf.data.AUTOTUNE, "deterministic": True}

    def _load(self):
        size, channels, scale = self.image_size, self.channels, _scaler(self.stats)
        return lambda path: scale(decode_image(path, size, channels))

    def training_dataset(self, x: ImageFiles, y, *, batch_size: int, data_spec, seed, augment=None):
        """As pipeline.training_dataset: the order is a function of (seed, epoch) only; the files are read per batch."""
        import tensorflow as tf

        from framework.data.pipeline import epoch_callback

        count = len(x)
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        paths, targets = tf.constant(x.files), tf.nest.map_structure(tf.constant, y)

        def order(_):
            if not data_spec.shuffle:
                return tf.data.Dataset.range(count)
            keys = tf.random.stateless_uniform([count], seed=tf.stack([tf.cast(seed, tf.int64), epoch]))
            return tf.data.Dataset.from_tensor_slices(tf.argsort(keys))

        load = self._load()
        ds = tf.data.Dataset.from_tensors(0).flat_map(order)
        ds = ds.map(lambda i: (load(tf.gather(paths, i)), tf.nest.map_structure(lambda t: tf.gather(t, i), targets)),
                    **self._parallel())
        ds = ds.batch(batch_size)
        ds = ds.apply(tf.data.experimental.assert_cardinality(-(-count // batch_size)))
        if augment is not None:
            ds = map_stateful(ds, augment)
        if data_spec.prefetch:
            ds = ds.prefetch(tf.data.AUTOTUNE)
        return ds, epoch_callback(epoch)

    def evaluation_dataset(self, x: ImageFiles, y, *, batch_size: int, data_spec):
        """Read in file order; not cached (data.cache would hold every pixel of the split in memory)."""
        import tensorflow as tf

        load = self._load()
        ds = tf.data.Dataset.from_tensor_slices((x.files, y))
        ds = ds.map(lambda p, t: (load(p), t), **self._parallel())
        ds = ds.batch(batch_size)
        if data_spec.prefetch:
            ds = ds.prefetch(tf.data.AUTOTUNE)
        return ds

    def digest(self, x: ImageFiles, y) -> str:
        """The training split as files: each path (relative to the folder), size, modification time, label."""
        import numpy as np

        digest = hashlib.sha256(f"images:{self.image_size}:{self.channels}:{self.stats['scale']}".encode())
        for file, label in zip(x.files, np.asarray(y).tolist()):
            stat = os.stat(file)
            digest.update(f"{os.path.relpath(file, self.folder)}:{stat.st_size}:{stat.st_mtime_ns}:{label};".encode())
        return digest.hexdigest()


@registry.register("data_source", "images")
class ImageFolderSource(DataSource):
    """A folder of images, one subfolder per class (class names: the subfolders' names, sorted), or a CSV of
    ``file,label`` rows (paths relative to the CSV's folder); files .png, .jpg, .jpeg, .bmp, .gif, decoded and resized
    to data.image_size with data.channels as training reads them."""

    takes_path = True

    @classmethod
    def resolve(cls, arg: str, base_dir: Path) -> str:
        path = super().resolve(arg, base_dir)
        if not Path(path).is_dir() and Path(path).suffix.lower() != ".csv":
            raise ValueError(f"not a folder or a .csv: {path} (images: reads a folder with one subfolder of images per "
                             "class, or a CSV of file,label rows)")
        return path

    def feature_shape(self):
        if not self.spec.image_size:
            return None
        return (*self.spec.image_size, self.spec.channels)

    def load(self):
        raise DataError("images: streams its files; load_splits reads it with load_splits_streaming", path="data.source")

    def load_splits_streaming(self, seed: int):
        """Splits whose inputs are :class:`ImageFiles` and whose ``streams`` builds the pipelines."""
        import numpy as np

        from framework.data.splits import Splits

        spec = self.spec
        if spec.targets is not None or spec.text is not None or spec.sequence is not None or spec.window is not None:
            raise SpecError("images: gives class labels only; data.targets, text, sequence and window do not apply",
                            path="data.source")
        if spec.test_split <= 0:
            raise SpecError("the source has no test split of its own, so test_split must be > 0", path="data.test_split")
        files, labels, names = list_images(self.arg)
        from_labels = True
        if spec.class_names:
            if set(spec.class_names) != set(names):
                raise SpecError(
                    f"names the classes {sorted(spec.class_names)}, but the classes of {self.arg} are {names}",
                    path="data.class_names",
                )
            index = {name: i for i, name in enumerate(spec.class_names)}
            labels = np.asarray([index[names[i]] for i in labels], dtype="int64")
            names, from_labels = list(spec.class_names), False
        # test: u < t; validation: the next validation_split of the rest; train: the remainder (in sorted path order)
        u = np.asarray([hash_fraction(f, seed) for f in files])
        test = u < spec.test_split
        val = ~test & (u < spec.test_split + (1 - spec.test_split) * spec.validation_split)
        train = ~test & ~val
        train_index = np.flatnonzero(train)
        if spec.train_limit:
            train_index = train_index[: spec.train_limit]
        for part, mask in (("training", train), ("test", test)):
            if not mask.any():
                raise DataError(
                    f"the {part} split of {len(files)} images is empty (the split is drawn by a hash of each file's "
                    "path); add images or change data.test_split / data.validation_split", path="data.source",
                )
        root = str(image_root(self.arg))
        absolute = np.asarray([os.path.join(root, f) for f in files])
        size, channels = tuple(spec.image_size), spec.channels
        stats = fit_scaling(absolute[train_index].tolist(), size, channels, spec.scale)  # the training split only

        def files_of(index):
            return ImageFiles(absolute[index].tolist(), size, channels, stats)

        val_index = np.flatnonzero(val)
        return Splits(
            files_of(train_index), labels[train_index],
            files_of(val_index) if len(val_index) else None, labels[val_index] if len(val_index) else None,
            files_of(np.flatnonzero(test)), labels[test],
            class_names=names, class_names_from_labels=from_labels,
            preprocessing={**_json_ready(stats), "images": {"image_size": list(size), "channels": channels, "split": "path hash"}},
            streams=ImageStreams(root, size, channels, stats),
        )


def write_digit_folder(folder: str | Path, per_class: int | None = None, classes: int = 10, size: int = 8) -> int:
    """Write scikit-learn's 8x8 digits as gray PNGs, ``folder/<digit>/<index>.png`` (``size`` pixels a side, nearest
    neighbour), the first ``per_class`` of each class; returns how many. For examples and tests of images:."""
    import numpy as np
    import sklearn.datasets
    from PIL import Image

    bunch = sklearn.datasets.load_digits()
    written = 0
    for digit in range(classes):
        out = Path(folder) / str(digit)
        out.mkdir(parents=True, exist_ok=True)
        index = np.flatnonzero(bunch.target == digit)[:per_class]
        for i in index:
            pixels = (bunch.images[i] * (255 / 16)).round().astype("uint8")
            image = Image.fromarray(pixels, mode="L")
            if size != 8:
                image = image.resize((size, size), Image.NEAREST)
            image.save(out / f"{int(i):04d}.png", optimize=True)
            written += 1
    return written


def _json_ready(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in stats.items()}


def _decode_error(exc: BaseException, files: list[str]) -> DataError:
    """A DataError naming the first of ``files`` that Pillow cannot read (looked for only now that one failed)."""
    from PIL import Image

    # tf.data's message: "Error in user-defined function passed to ...: Iterator::...::Map: <what the decoder said>"
    reason = next((line.rsplit(": ", 1)[-1].strip() for line in str(exc).splitlines()
                   if line.startswith("Error in user-defined function")), "")
    for file in files:
        try:
            with Image.open(file) as image:
                image.verify()
        except Exception as found:  # noqa: BLE001 - Pillow raises many kinds for broken files
            return DataError(f"cannot decode image {file}: {reason or found}; remove or replace it", path="data.source")
    return DataError(f"an image could not be decoded: {reason or str(exc).splitlines()[0]}", path="data.source")


def unreadable_image_error(exc: BaseException, splits) -> BaseException:
    """A decoding error from a streaming pipeline, as a DataError naming the first unreadable file of the splits
    (found with Pillow, only now that one failed); any other exception unchanged."""
    import tensorflow as tf

    if getattr(splits, "streams", None) is None or not isinstance(exc, tf.errors.InvalidArgumentError):
        return exc
    return _decode_error(exc, [f for part in (splits.x_train, splits.x_val, splits.x_test) if part is not None
                               for f in part.files])
