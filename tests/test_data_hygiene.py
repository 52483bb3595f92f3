"""Data that used to crash mid-run or train on garbage: NPZ headers and string labels, text that broke saving,
malformed CSVs. Each becomes a clear message (or a warning) before training."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_spec
from framework.data import load_splits
from framework.errors import DataError, FrameworkWarning, RunError, SpecError
from framework.spec.schema import DataSpec


def data_spec(tmp_path, **kwargs):
    return DataSpec.model_validate(kwargs, context={"base_dir": str(tmp_path)})


def folder_of(out: str) -> Path:
    return Path(re.search(r"run folder: (\S+)", out).group(1))


# --- 1. NPZ shape from the header ---------------------------------------------------------------


def test_check_reads_an_npz_shape_from_its_header(cli, write_spec, digits_npz):
    from framework.data.sources import _npz_header_shape

    assert _npz_header_shape(str(digits_npz), "x_train") == (1400, 64)
    assert _npz_header_shape(str(digits_npz), "absent") is None
    spec = tiny_spec(data={"source": f"npz:{digits_npz}", "scale": 0.0625})
    code, out, err = cli("check", write_spec(spec))
    assert code == 0, err
    assert "valid spec" in out


# --- 2. string labels in an NPZ, data.class_names -------------------------------------------------


NAMES = np.array(["dog", "cat", "bird"])


@pytest.fixture
def animals_npz(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 150)
    x = rng.normal(size=(150, 4)).astype("float32") + y[:, None]
    path = tmp_path / "animals.npz"
    np.savez(path, x_train=x[:120], y_train=NAMES[y[:120]], x_test=x[120:], y_test=NAMES[y[120:]])
    return path


def _mlp(units: int) -> dict:
    return {"layers": [{"type": "Dense", "units": 8, "activation": "relu"}, {"type": "Dense", "units": units, "activation": "softmax"}]}


def test_npz_string_labels_train_and_predict_with_their_names(cli, write_spec, animals_npz, tmp_path):
    splits = load_splits(data_spec(tmp_path, source=f"npz:{animals_npz.name}"), seed=0)
    assert splits.class_names == ["bird", "cat", "dog"]  # sorted
    assert splits.y_train.dtype == np.int64 and set(np.unique(splits.y_test)) <= {0, 1, 2}

    spec = tiny_spec(data={"source": f"npz:{animals_npz}", "scale": "standard"}, model=_mlp(3))
    code, out, err = cli("run", write_spec(spec), "--reports", tmp_path / "r")
    assert code == 0, err
    folder = folder_of(out)
    assert json.loads((folder / "preprocessing.json").read_text())["class_names"] == ["bird", "cat", "dog"]
    assert json.loads((folder / "metrics.json").read_text())["classes"] == 3

    np.savez(tmp_path / "new.npz", x=np.zeros((4, 4), "float32"))
    code, out, err = cli("predict", folder, tmp_path / "new.npz")
    assert code == 0, err
    assert out.splitlines()[0] == "input,prediction,p_bird,p_cat,p_dog"
    assert {line.split(",")[1] for line in out.splitlines()[1:]} <= {"bird", "cat", "dog"}


def test_a_test_label_never_seen_in_training_is_named(tmp_path):
    x = np.zeros((6, 2), "float32")
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.array(["a", "b"] * 3), x_test=x[:2], y_test=np.array(["a", "zebra"]))
    with pytest.raises(DataError, match="'zebra'") as err:
        load_splits(data_spec(tmp_path, source="npz:d.npz"), seed=0)
    assert err.value.path == "data.label"


def test_pickled_npz_labels_are_a_data_error(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2)), y=np.array(["a", 1, None, "b"], dtype=object))
    with pytest.raises(DataError, match="string arrays"):
        load_splits(data_spec(tmp_path, source="npz:d.npz"), seed=0)


def test_class_names_name_integer_labels(tmp_path, digits_npz):
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    splits = load_splits(data_spec(digits_npz.parent, source=f"npz:{digits_npz.name}", class_names=words), seed=0)
    assert splits.class_names == words
    with pytest.raises(SpecError, match="has 5 names, but the data has 10 classes") as err:
        load_splits(data_spec(digits_npz.parent, source=f"npz:{digits_npz.name}", class_names=words[:5]), seed=0)
    assert err.value.path == "data.class_names"
    # sklearn's own names are replaced, one for one
    assert load_splits(data_spec(tmp_path, source="sklearn:digits", class_names=words), seed=0).class_names == words


def test_class_names_order_string_labels_and_are_checked_by_check(tmp_path, animals_npz, cli, write_spec):
    splits = load_splits(data_spec(tmp_path, source=f"npz:{animals_npz.name}", class_names=["dog", "cat", "bird"]), seed=0)
    assert splits.class_names == ["dog", "cat", "bird"]
    with pytest.raises(SpecError, match="'dog' are not among"):
        load_splits(data_spec(tmp_path, source=f"npz:{animals_npz.name}", class_names=["cat", "bird"]), seed=0)
    code, _, err = cli("check", write_spec(tiny_spec(data={"class_names": ["a", "b"]})))
    assert code == 2 and "data.class_names" in err and "10 classes" in err


def test_a_run_with_class_names_shows_them(cli, write_spec, tmp_path):
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    code, out, err = cli("run", write_spec(tiny_spec(data={"class_names": words})), "--reports", tmp_path / "r")
    assert code == 0, err
    assert json.loads((folder_of(out) / "preprocessing.json").read_text())["class_names"] == words


# --- 3. text that used to break saving ------------------------------------------------------------


ODD = ["\u0085", "\u2028", "\u2029", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\r\n", "\u00a0", "\ufeff", "é", "🙂", "\t"]


def _odd_text_csv(path: Path) -> None:
    """Texts with every line-breaking character Python knows, quoted as csv writes them, plus rows with
    stray quotes inside unquoted fields (pandas reads those as literal quotes)."""
    rng = np.random.default_rng(1)
    words = ["good", "bad", "film", "plot", "great", "awful", "actor", "dull"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(80):
            picked = [words[j] for j in rng.integers(0, len(words), 5)]
            odd = ODD[i % len(ODD)]
            text = f"{picked[0]}{odd}{picked[1]} {picked[2]}\u0085{picked[3]} \"{picked[4]}\""
            writer.writerow([text, i % 2])
    with path.open("a", encoding="utf-8") as handle:
        handle.write('a 5" screen,1\nhe said "hi there,0\n')


def test_text_with_line_separators_trains_saves_and_predicts(cli, write_spec, tmp_path):
    from framework.reports.run_folder import load_run_model, verify_saved_model

    _odd_text_csv(tmp_path / "odd.csv")
    spec = {
        "name": "odd_text", "seed": 2,
        "data": {"source": "csv:odd.csv", "text": "text", "validation_split": 0.0},
        "model": {"layers": [
            {"type": "TextVectorization", "max_tokens": 200, "output_sequence_length": 12},
            {"type": "Embedding", "input_dim": 200, "output_dim": 4},
            {"type": "GlobalAveragePooling1D"},
            {"type": "Dense", "units": 2, "activation": "softmax"},
        ]},
        "train": {"epochs": 1, "batch_size": 16, "verbose": 0},
    }
    code, out, err = cli("run", write_spec(spec), "--reports", tmp_path / "r")
    assert code == 0, err
    folder = folder_of(out)

    model = load_run_model(folder)  # it loads: the vocabulary read back whole
    vectorizer = next(l for l in model.layers if type(l).__name__ == "TextVectorization")
    assert all(len(token.splitlines()) <= 1 for token in vectorizer.get_vocabulary())
    texts = np.array(["good\u0085film", "bad\u2028plot", "great film"], dtype=object)
    assert verify_saved_model(folder, model, texts) == 0.0
    # a line separator separates words, at prediction time as in training
    ids = np.asarray(vectorizer(np.array(["good\u2028film", "good film"], dtype=object)))
    assert (ids[0] == ids[1]).all()

    (tmp_path / "in.txt").write_text("good\u0085film\nbad\u2028plot and\u2029more\n", encoding="utf-8")
    code, out, err = cli("predict", folder, tmp_path / "in.txt")
    assert code == 0, err
    assert len(out.rstrip("\n").split("\n")) == 3  # header + 2 texts: U+0085 and U+2028 do not end a line
    code, out, err = cli("predict", folder, tmp_path / "odd.csv")
    assert code == 0, err


def test_verify_saved_model_refuses_a_model_that_differs_or_does_not_load(cli, write_spec, tmp_path):
    from framework.reports.run_folder import load_run_model, verify_saved_model

    code, out, err = cli("run", write_spec(tiny_spec()), "--reports", tmp_path / "r")
    assert code == 0, err
    folder = folder_of(out)
    model = load_run_model(folder)
    x = np.random.default_rng(0).uniform(0, 1, (8, 64)).astype("float32")
    assert verify_saved_model(folder, model, x) == 0.0
    last = model.layers[-1]
    kernel, bias = last.get_weights()
    kernel[:, 0] += 1.0  # one class's score only: softmax ignores a shift of all of them
    last.set_weights([kernel, bias])
    with pytest.raises(RunError, match="differ from the trained model's"):
        verify_saved_model(folder, model, x)
    (folder / "model.keras").write_bytes(b"not a zip")
    with pytest.raises(RunError, match="cannot load model.keras"):
        verify_saved_model(folder, model, x)


# --- 4. malformed CSVs and suspicious labels ------------------------------------------------------


def _rows(n: int = 40) -> list[str]:
    return [f"{i},{i % 7},{'yes' if i % 2 else 'no'}" for i in range(n)]


def test_a_bare_carriage_return_in_a_field_is_a_data_error_naming_the_line(tmp_path):
    lines = ["a,b,kind", *_rows()]
    lines[5] = "4,4\r5,no"  # a \r inside field b: pandas would read two broken rows
    (tmp_path / "d.csv").write_bytes("\n".join(lines).encode() + b"\n")
    with pytest.raises(DataError, match=r"line 6 .*carriage return.*column 'b'") as err:
        load_splits(data_spec(tmp_path, source="csv:d.csv", label="kind"), seed=0)
    assert err.value.path == "data.source"
    # inside quotes it is part of the value, and \r\n line ends are fine
    lines[5] = '4,"4\r5",no'
    (tmp_path / "q.csv").write_bytes("\r\n".join(lines).encode() + b"\r\n")
    with pytest.raises(DataError, match="not numeric"):  # read as one row: field b is the text '4\r5'
        load_splits(data_spec(tmp_path, source="csv:q.csv", label="kind"), seed=0)
    lines[5] = "4,4,no"
    (tmp_path / "ok.csv").write_bytes("\r\n".join(lines).encode() + b"\r\n")
    assert load_splits(data_spec(tmp_path, source="csv:ok.csv", label="kind"), seed=0).class_names == ["no", "yes"]


def test_ragged_rows_are_data_errors_naming_the_line(tmp_path, cli, write_spec):
    lines = ["a,b,kind", *_rows()]
    lines[7] = "6,6,yes,extra"
    (tmp_path / "long.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 8 has 4 fields.*3") as err:
        load_splits(data_spec(tmp_path, source="csv:long.csv", label="kind"), seed=0)
    assert err.value.path == "data.source"
    lines[7] = "6,yes"
    (tmp_path / "short.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 8 of .* has 2 fields, but the header has 3"):
        load_splits(data_spec(tmp_path, source="csv:short.csv", label="kind"), seed=0)
    # an unclosed quote: one message, exit 2, no traceback
    lines[7] = '6,"6,yes'
    (tmp_path / "quote.csv").write_text("\n".join(lines) + "\n")
    code, _, err = cli("run", write_spec(tiny_spec(data={"source": "csv:quote.csv", "label": "kind"},
                                                   model=_mlp(2))), "--reports", tmp_path / "r")
    assert code == 2 and "Traceback" not in err and "data.source" in err
    assert not (tmp_path / "r").exists()


def test_missing_labels_are_counted(tmp_path):
    lines = ["a,b,kind", *_rows()]
    lines[3] = "2,2,"
    lines[9] = "8,1,"
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"2 missing values in 40 rows \(data rows 3, 9\)"):
        load_splits(data_spec(tmp_path, source="csv:d.csv", label="kind"), seed=0)


def test_warnings_for_labels_that_look_like_ids_and_for_missing_texts(tmp_path):
    lines = ["a,b,kind"] + [f"{i},{i},id{i}" for i in range(30)] + ["30,30,id0", "31,31,id1"]
    (tmp_path / "ids.csv").write_text("\n".join(lines) + "\n")
    with pytest.warns(FrameworkWarning, match=r"data.label: 28 of the 30 classes have a single example \(32 examples"):
        load_splits(data_spec(tmp_path, source="csv:ids.csv", label="kind", test_split=0.5, stratify=False), seed=0)
    lines = ["text,label"] + [f"word {i},{i % 2}" for i in range(20)] + [",1", ",0"]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    with pytest.warns(FrameworkWarning, match=r"data.text: 2 of 22 rows have no text"):
        load_splits(data_spec(tmp_path, source="csv:t.csv", text="text"), seed=0)


def test_the_cli_prints_warnings_as_one_line():
    import warnings

    from framework.cli import _warnings_as_lines

    with _warnings_as_lines():
        text = warnings.formatwarning(FrameworkWarning("data.label: odd"), FrameworkWarning, "x.py", 1)
    assert text == "warning: data.label: odd\n"
