"""DP-SGD's (epsilon, delta) on every path: each test here fails on a specific wrong implementation
(named in its docstring), as a reviewer would inject it."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import tiny_spec
from framework.errors import SpecError
from framework.privacy import accounting
from framework.spec.load import validate

PRIVACY = {"l2_norm_clip": 1.0, "noise_multiplier": 1.0}


def _build(tmp_path, privacy=PRIVACY, **sections):
    from framework.train.prepare import build_and_compile, setup_backend

    sections.setdefault("train", {"optimizer": {"type": "sgd", "learning_rate": 1.0}})
    spec = validate(tiny_spec(privacy=privacy, **sections), file="s", base_dir=tmp_path)
    setup_backend(spec)
    return build_and_compile(spec, (64,), steps_per_epoch=10, train_examples=1000)


def _noise_step(model):
    """One DP step on an all-padding batch: the update is minus the noise over the batch size."""
    import tensorflow as tf

    before = [v.numpy().copy() for v in model.trainable_variables]
    model.train_step((tf.zeros((16, 64)), tf.zeros((16,), tf.int64), tf.zeros((16,))))
    return np.concatenate([(b - v.numpy()).ravel() for b, v in zip(before, model.trainable_variables)])


def test_every_step_draws_fresh_noise(tmp_path):
    """Mutant: the same noise at every step."""
    model = _build(tmp_path).model
    first, second = _noise_step(model), _noise_step(model)
    assert np.corrcoef(first, second)[0, 1] == pytest.approx(0, abs=0.1)


def test_noise_is_secret_unless_reproducible_is_asked_for(tmp_path):
    """Mutant: noise seeded from the published spec seed."""
    secret = [_noise_step(_build(tmp_path).model) for _ in range(2)]
    assert not np.allclose(secret[0], secret[1])  # same spec, same seed: different noise
    reproducible = {**PRIVACY, "reproducible_noise": True}
    again = [_noise_step(_build(tmp_path, reproducible).model) for _ in range(2)]
    np.testing.assert_array_equal(again[0], again[1])


def test_a_restored_checkpoint_continues_the_noise_stream_and_never_replays_it(tmp_path):
    """Mutant: the noise generator's state left out of the checkpoint (a resumed run replays step 1's noise)."""
    from framework.train.checkpoint import Checkpoint

    reproducible = {**PRIVACY, "reproducible_noise": True}
    model = _build(tmp_path, reproducible).model
    model.optimizer.build(model.trainable_variables)
    step1 = _noise_step(model)
    Checkpoint(tmp_path / "backup", [*model.variables, *model.optimizer.variables, *model.dp_state_variables()]).save(1, {})
    step2 = _noise_step(model)

    fresh = _build(tmp_path, reproducible).model  # a new process resuming the run
    fresh.optimizer.build(fresh.trainable_variables)
    epoch, _, _ = Checkpoint(tmp_path / "backup", [*fresh.variables, *fresh.optimizer.variables, *fresh.dp_state_variables()]).restore()
    resumed = _noise_step(fresh)
    assert epoch == 1
    np.testing.assert_allclose(resumed, step2, atol=1e-7)
    assert not np.allclose(resumed, step1, atol=1e-3)


def _poisson(batch_size, count=1000, steps=200, seed=7):
    import tensorflow as tf

    from framework.privacy.sampling import poisson_dataset

    x = np.arange(count, dtype="float32").reshape(count, 1)
    seed_variable = tf.Variable(seed, dtype=tf.int64)
    return poisson_dataset(x, np.zeros(count, "int64"), batch_size=batch_size, seed_variable=seed_variable,
                           steps_per_epoch=steps)


def _members(ds):
    return [frozenset(xb.numpy()[wb.numpy() > 0, 0].astype(int)) for xb, _, wb in ds]


def test_poisson_draws_are_never_truncated():
    """Mutant: every batch cut at the (padded) batch size."""
    ds, _ = _poisson(batch_size=10)
    sizes, padded = [], []
    for xb, _, wb in ds:
        sizes.append(int(wb.numpy().sum()))
        padded.append(len(wb))
        kept = xb.numpy()[wb.numpy() > 0, 0]
        assert len(set(kept)) == len(kept)  # each chosen example once
    assert np.mean(sizes) == pytest.approx(10, rel=0.15)
    assert max(sizes) >= 17  # P(max of 200 Binomial(1000, 0.01) draws < 17) is about 3%... at seed 7 it is 19
    assert all(p >= s and p - s < 8 for p, s in zip(padded, sizes))


def test_each_epoch_draws_new_batches():
    """Mutant: the same batches in every epoch."""
    ds, callback = _poisson(batch_size=50, steps=5)
    callback.on_epoch_begin(0)
    first = _members(ds)
    callback.on_epoch_begin(1)
    second = _members(ds)
    assert first != second
    callback.on_epoch_begin(0)
    assert _members(ds) == first  # a function of (seed, step): a resumed run sees the same batches


def test_padding_rows_do_not_count_in_training_metrics(tmp_path):
    """Mutant: padding rows counted in the logged training accuracy."""
    import tensorflow as tf

    model = _build(tmp_path, train={"optimizer": {"type": "sgd", "learning_rate": 1e-12}, "metrics": ["accuracy"]}).model
    x = np.random.default_rng(0).normal(size=(32, 64)).astype("float32")
    predicted = model.predict(x, verbose=0).argmax(axis=1)
    y = predicted.copy()
    y[16:] = (predicted[16:] + 1) % 10  # padding rows would all be wrong
    weights = np.r_[np.ones(16), np.zeros(16)].astype("float32")
    logs = model.train_step((tf.constant(x), tf.constant(y), tf.constant(weights)))
    assert float(logs["accuracy"]) == pytest.approx(1.0)


def _run(cli, write_spec, tmp_path, name="dp", **sections):
    sections.setdefault("privacy", PRIVACY)
    spec = tiny_spec(**sections)
    reports = tmp_path / name
    code, _, err = cli("run", write_spec(spec, f"{name}.json"), "--reports", reports)
    assert code == 0, err
    folder = next(reports.iterdir())
    return json.loads((folder / "metrics.json").read_text()), json.loads((folder / "preprocessing.json").read_text())


def _recomputed_epsilon(metrics):
    """epsilon from metrics.json's own fields, with dp-accounting alone."""
    import dp_accounting

    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(metrics["sampling_rate"], dp_accounting.GaussianDpEvent(metrics["noise_multiplier"])),
        metrics["steps"],
    )
    accountant = dp_accounting.rdp.RdpAccountant() if metrics["accountant"] == "rdp" else dp_accounting.pld.PLDAccountant()
    return accountant.compose(event).get_epsilon(metrics["delta"])


@pytest.mark.parametrize("sampling", ["poisson", "shuffle"])
def test_epsilon_is_recomputable_and_counts_every_step_taken(cli, write_spec, tmp_path, sampling):
    """Mutants: q from the whole data set instead of the training split; steps counted as round(N/B)
    while the shuffled pipeline takes ceil(N/B)."""
    metrics, pre = _run(cli, write_spec, tmp_path, privacy={**PRIVACY, "sampling": sampling},
                        train={"epochs": 2, "batch_size": 200, "verbose": 0})
    train = pre["sizes"]["train"]
    assert metrics["train_examples"] == train
    assert metrics["sampling_rate"] == pytest.approx(200 / train)
    steps_per_epoch = -(-train // 200) if sampling == "shuffle" else round(train / 200)
    assert metrics["steps"] == 2 * steps_per_epoch == 2 * metrics["steps_per_epoch"]
    assert metrics["epsilon"] == pytest.approx(_recomputed_epsilon(metrics), rel=1e-9)
    assert metrics["dp_noise"] == "secret" and "private" not in metrics


def test_epsilon_is_recomputable_after_max_epsilon_and_early_stopping(cli, write_spec, tmp_path):
    metrics, _ = _run(cli, write_spec, tmp_path, privacy={**PRIVACY, "noise_multiplier": 2.0, "max_epsilon": 1.5},
                      train={"epochs": 40, "verbose": 0},
                      regularization={"early_stopping": {"monitor": "val_loss", "patience": 1}})
    assert metrics["epochs"] < 40 and metrics["epsilon"] <= 1.5
    assert metrics["steps"] == metrics["epochs"] * metrics["steps_per_epoch"]
    assert metrics["epsilon"] == pytest.approx(_recomputed_epsilon(metrics), rel=1e-9)


def test_reproducible_noise_is_marked_not_private(cli, write_spec, tmp_path):
    metrics, _ = _run(cli, write_spec, tmp_path, privacy={**PRIVACY, "reproducible_noise": True})
    assert metrics["private"] is False and "seed" in metrics["private_reason"]


@pytest.mark.parametrize(
    "sections, key, message",
    [
        ({"data": {"source": "sklearn:digits", "scale": "standard"}}, "data.scale", "fixed number"),
        ({"data": {"source": "sklearn:digits", "scale": "minmax"}}, "data.scale", "fixed number"),
        ({"regularization": {"early_stopping": {"monitor": "loss"}}}, "early_stopping", "validation metric"),
        ({"regularization": {"reduce_lr_on_plateau": {"monitor": "accuracy"}}}, "reduce_lr_on_plateau", "validation metric"),
        ({"train": {"mixed_precision": True}}, "mixed_precision", "float32"),
        ({"privacy": {**PRIVACY, "noise_multiplier": 0}}, "noise_multiplier", "greater than 0"),
        ({"train": {"callbacks": [{"type": "EarlyStopping", "monitor": "loss"}]}}, "train.callbacks[0]", "validation metric"),
        ({"tune": {"objective": "accuracy"}}, "tune.objective", "validation metric"),
    ],
)
def test_non_private_inputs_are_refused_with_the_key_and_the_alternative(tmp_path, sections, key, message):
    spec = tiny_spec(privacy=PRIVACY)
    for section, value in sections.items():
        spec[section] = {**spec.get(section, {}), **value}
    with pytest.raises(SpecError, match=message) as caught:
        validate(spec, file="s", base_dir=tmp_path)
    assert key in str(caught.value)


def test_init_from_needs_a_public_source(cli, write_spec, tmp_path):
    code, _, _ = cli("run", write_spec(tiny_spec(name="pre")), "--reports", tmp_path)
    assert code == 0
    spec = tiny_spec(privacy=PRIVACY, model={**tiny_spec()["model"], "init_from": "latest:pre"})
    code, _, err = cli("run", write_spec(spec, "fine.json"), "--reports", tmp_path)
    assert code == 2 and "model.init_from" in err and "public_init" in err
    spec["privacy"]["public_init"] = True
    code, _, err = cli("run", write_spec(spec, "fine.json"), "--reports", tmp_path)
    assert code == 0, err


def test_infinite_epsilon_is_valid_json():
    from framework.privacy.plan import PrivacyPlan

    plan = PrivacyPlan(1.0, 1e-9, 1e-5, False, "poisson", "rdp", 1.0, 10, 10, 10)
    report = plan.report(10**6)
    json.dumps(report, allow_nan=False)
    assert report["epsilon"] is None or np.isfinite(report["epsilon"])
    assert accounting.epsilon(noise_multiplier=1.0, sampling_rate=0.1, steps=0, delta=1e-5, accountant="rdp") == 0


def test_layers_tensorflow_cannot_vectorize_train_one_example_at_a_time(cli, write_spec, tmp_path):
    """Embedding -> LayerNormalization -> GRU: tf.vectorized_map fails on it; DP trains it all the same."""
    layers = [{"type": "Embedding", "input_dim": 17, "output_dim": 4}, {"type": "LayerNormalization"},
              {"type": "GRU", "units": 4}, {"type": "Dense", "units": 10, "activation": "softmax"}]
    metrics, _ = _run(cli, write_spec, tmp_path,
                      data={"source": "sklearn:digits", "scale": 1.0, "validation_split": 0.1, "train_limit": 300},
                      model={"input_shape": [64], "layers": layers}, train={"epochs": 1, "batch_size": 128, "verbose": 0})
    assert metrics["status"] == "completed" and metrics["dp_clipping"] == "loop"
    assert metrics["epsilon"] == pytest.approx(_recomputed_epsilon(metrics), rel=1e-9)


def test_training_metrics_of_a_private_run_are_not_released(cli, write_spec, tmp_path, recwarn):
    """Mutant: history.csv / metrics.json carrying the loss and accuracy computed on the private batches."""
    metrics, _ = _run(cli, write_spec, tmp_path, train={"epochs": 2, "verbose": 0, "tensorboard": True})
    # the saved-model check calls the DP model (built on [input]) without Keras's input-structure warning
    assert not [w for w in recwarn if "structure of `inputs`" in str(w.message)]
    folder = next((tmp_path / "dp").iterdir())
    history = pd.read_csv(folder / "history.csv")
    assert {"val_loss", "val_accuracy", "epsilon"} <= set(history.columns)
    assert not {"loss", "accuracy"} & set(history.columns)
    assert not any(k in metrics for k in ("loss", "accuracy"))


def test_class_names_read_off_private_labels_are_refused(cli, write_spec, tmp_path):
    rows = ["a,b,label"] + [f"{i % 7},{i % 5},{'cat' if i % 2 else 'dog'}" for i in range(60)] + ["1,2,alice_smith"]
    (tmp_path / "pets.csv").write_text("\n".join(rows) + "\n")
    spec = tiny_spec(data={"source": "csv:pets.csv", "scale": 0.1, "validation_split": 0.2}, privacy=PRIVACY,
                     model={"layers": [{"type": "Dense", "units": 3, "activation": "softmax"}]})
    code, _, err = cli("run", write_spec(spec), "--reports", tmp_path / "r")
    assert code == 2 and "data.class_names" in err and "alice_smith" not in err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())
    spec["data"]["class_names"] = ["alice_smith", "cat", "dog"]  # declared by the owner: public
    code, _, err = cli("run", write_spec(spec), "--reports", tmp_path / "r")
    assert code == 0, err


def test_the_audit_marks_its_run_not_private(cli, write_spec, tmp_path):
    metrics, _ = _run(cli, write_spec, tmp_path, privacy={**PRIVACY, "audit": True})
    assert metrics["private"] is False and "audit" in metrics["private_reason"]
