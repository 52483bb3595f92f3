"""``tune``: a keras-tuner search over a spec's search spaces.

The tune folder is ``<reports>/<name>-tune/``; running ``tune`` again on the
same spec continues the search there. It holds keras-tuner's project (``kt/``),
``space.json``, ``trials.csv`` (one row per trial), ``best.toml`` (a plain spec
with the chosen values, which ``run`` reproduces), and ``metrics.json`` and
``resolved.json`` so that ``report`` lists the search with its best objective.

Distributed search is keras-tuner's own: set ``KERASTUNER_TUNER_ID`` (``chief``
or ``tunerN``), ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` and run
the same ``tune`` command in each process; the chief writes the results.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from framework.errors import RunError, SpecError
from framework.reports import run_folder as rf
from framework.spec.load import LoadedSpec, toml_ready, validate
from framework.tuning.spaces import substitute

TUNERS = {"random": "RandomSearch", "bayesian": "BayesianOptimization", "hyperband": "Hyperband", "grid": "GridSearch"}
SPACE = "space.json"
BUDGET = "budget.json"  # train.epochs and the tuner: a continued search must keep them
TRIALS = "trials.csv"
BEST = "best.toml"
STATS = "trial_stats"
TRIAL_RUNS = "trials"  # one run folder per trial (and execution)


def _rss_mb() -> float:
    """Resident memory of this process now (not the peak), from /proc."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return float("nan")


def _space_description(loaded: LoadedSpec) -> dict[str, Any]:
    return {name: space.model_dump(by_alias=True) | {"path": list(path)} for name, (path, space) in loaded.spaces.items()}


def _make_hypermodel(loaded: LoadedSpec, base_dir: Path):
    """keras-tuner asks the hypermodel only to declare the search space: trials train in their own processes."""
    import keras_tuner as kt

    class SpecHyperModel(kt.HyperModel):
        def build(self, hp):
            values = {name: space.sample(hp, name) for name, (_, space) in loaded.spaces.items()}
            validate(substitute(loaded.raw, loaded.spaces, values), file=loaded.file, base_dir=base_dir)
            return None  # never trained here; see IsolatedTuner.run_trial

    return SpecHyperModel(name=loaded.spec.name)


def _tuner(loaded: LoadedSpec, hypermodel, folder: Path):
    import keras_tuner as kt

    from framework.compat import quiet_keras_tuner

    quiet_keras_tuner()  # a failed trial is reported in one line (see _run_in_worker), not as a stack trace

    tune = loaded.spec.tune
    objective = kt.Objective(tune.objective, direction=tune.resolved_direction)
    # each trial process reads the spec from a file: a dict or text spec is read from the tune folder's copy
    spec_file = loaded.path.resolve() if loaded.path else folder / f"spec{loaded.suffix}"
    base_dir = loaded.base_dir or spec_file.parent
    cls = getattr(kt, TUNERS[tune.tuner])

    class IsolatedTuner(cls):
        """Runs every trial in a worker process (see framework.tuning.workers) and records its time and memory."""

        def run_trial(self, trial, *args, **kwargs):
            hp = trial.hyperparameters.values
            request = {
                "spec_file": str(spec_file),
                "base_dir": str(base_dir),
                "overrides": loaded.overrides,
                "values": {name: hp[name] for name in loaded.spaces if name in hp},
                "epochs": hp.get("tuner/epochs"),  # hyperband's budget
                "initial_epoch": hp.get("tuner/initial_epoch", 0),
                "load_weights": self._get_checkpoint_fname(hp["tuner/trial_id"]) if "tuner/trial_id" in hp else None,
                "continued_from": hp.get("tuner/trial_id"),
                "save_weights": self._get_checkpoint_fname(trial.trial_id),
                "objective": tune.objective,
                "direction": tune.resolved_direction,
            }
            trial_dir = Path(self.get_trial_dir(trial.trial_id))
            trial_dir.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            results, peaks = [], []
            for execution in range(self.executions_per_trial):
                run_folder = folder / TRIAL_RUNS / (f"trial_{trial.trial_id}" + ("" if execution == 0 else f"-{execution}"))
                result = _run_in_worker(self.workers, {**request, "folder": str(run_folder), "trial_id": trial.trial_id},
                                       trial_dir / f"execution{execution}")
                peaks.append(result["peak_rss_mb"])
                results.append(_best_epoch(result["history"], tune.objective, tune.resolved_direction))
            stats = {"seconds": round(time.perf_counter() - start, 3), "peak_rss_mb": max(peaks),
                     "search_rss_mb": _rss_mb(), "tuner_id": self.tuner_id, "worker": result["worker"]}
            (folder / STATS).mkdir(exist_ok=True)
            rf.write_json(folder / STATS / f"{trial.trial_id}.json", stats)
            return {key: sum(r[key] for r in results) / len(results) for key in results[0]}

        def on_trial_begin(self, trial):
            self._trial_start = time.perf_counter()
            super().on_trial_begin(trial)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)  # the oracle scores the trial
            seconds = time.perf_counter() - getattr(self, "_trial_start", time.perf_counter())
            print(trial_line(self.oracle, trial, loaded, planned_trials(loaded), seconds), flush=True)

    common = dict(
        hypermodel=hypermodel,
        objective=objective,
        seed=tune.seed if tune.seed is not None else loaded.spec.seed,
        directory=str(folder),
        project_name="kt",
        overwrite=False,  # a second `tune` continues the search
        executions_per_trial=tune.executions_per_trial,
    )
    if tune.tuner == "hyperband":
        tuner = IsolatedTuner(max_epochs=loaded.spec.train.epochs, factor=tune.hyperband_factor, **common)
        tuner.oracle.max_trials = tune.max_trials  # the oracle's own cap, which Hyperband's constructor leaves unset
    else:
        tuner = IsolatedTuner(max_trials=tune.max_trials, **common)
    from framework.tuning.workers import TrialWorkers

    # what the trial processes print (TensorFlow's warnings, a crash's last words), one log per tuner process
    tuner.workers = TrialWorkers(tune.trials_per_worker, tune.worker_memory_mb, folder / "logs" / f"{tuner.tuner_id}.log")
    return tuner


class Deadline:
    """``tune.max_seconds``: after it, the oracle hands out no new trial (the search loop ends as when max_trials is
    reached; in a distributed search the chief's oracle stops every worker). A running trial finishes."""

    def __init__(self, oracle, seconds: float | None):
        self.seconds, self.start, self.reached = seconds, time.perf_counter(), False
        if seconds is None or not hasattr(oracle, "populate_space"):  # a worker's oracle is the chief's
            return
        populate = oracle.populate_space

        def populate_space(trial_id):
            if time.perf_counter() - self.start >= self.seconds:
                self.reached = True
                return {"status": "STOPPED"}
            return populate(trial_id)

        oracle.populate_space = populate_space


def hyperband_trials(max_epochs: int, factor: int) -> int:
    """How many trials one hyperband iteration runs (keras-tuner's brackets: each takes about the same budget)."""
    brackets, epochs = 0, float(max_epochs)
    while epochs >= 1:
        epochs /= factor
        brackets += 1
    end = math.ceil(1 + math.log(max_epochs, factor))
    return sum(math.ceil(end / (b + 1) * factor ** (b - r)) for b in range(brackets) for r in range(b + 1))


def planned_trials(loaded: LoadedSpec) -> int:
    tune = loaded.spec.tune
    if tune.tuner == "hyperband":
        return min(tune.max_trials, hyperband_trials(loaded.spec.train.epochs, tune.hyperband_factor))
    return tune.max_trials


def _number(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def trial_line(oracle, trial, loaded: LoadedSpec, planned: int, seconds: float) -> str:
    """One line per trial: 'trial 3 of 10: units=32 learning_rate=0.00089 -> val_accuracy 0.9583 (best 0.9792), 7.4 s'.
    Spaces are named by the last parts of their keys; 'trial n' is the trial of id n-1 (trials.csv, trials/trial_ID)."""
    from framework.reports.table import short_headers

    tune = loaded.spec.tune
    values = trial.hyperparameters.values
    names = [name for name in loaded.spaces if name in values]
    short = {n: n for n in names} | short_headers(names)
    shown = " ".join(f"{short[name]}={_number(values[name])}" for name in names)
    if "tuner/epochs" in values:
        shown += f" epochs={values.get('tuner/initial_epoch', 0)}->{values['tuner/epochs']}"
        if values.get("tuner/trial_id") is not None:
            shown += f" continuing trial {_trial_number(values['tuner/trial_id'])}"
    scored = oracle.get_trial(trial.trial_id)
    best = [t for t in oracle.get_best_trials(1) if t.score is not None]
    result = str(scored.status).lower() if scored.score is None else f"{tune.objective} {_number(float(scored.score))}"
    if best:
        result += " (best so far)" if best[0].trial_id == trial.trial_id else f" (best {_number(float(best[0].score))})"
    return f"trial {_trial_number(trial.trial_id)} of {planned}: {shown} -> {result}, {seconds:.1f} s"


def _trial_number(trial_id: str) -> str:
    try:
        return str(int(trial_id) + 1)
    except ValueError:
        return trial_id


def _run_in_worker(workers, request: dict, stem: Path) -> dict:
    """One trial in a worker process (see workers.py); a failed trial is keras-tuner's FailedTrialError."""
    result = workers.run(request, stem)
    if "error" in result:
        import sys

        from keras_tuner.errors import FailedTrialError

        print(f"trial failed: {result['error']}", file=sys.stderr)
        # keras-tuner records the failed trial and carries on, up to its limit of consecutive failures
        raise FailedTrialError(f"trial failed: {result['error']}")
    return result


def _best_epoch(history: dict, objective: str, direction: str) -> dict:
    """The metrics of the epoch with the best objective, as keras-tuner scores a trial."""
    if objective not in history:
        raise RuntimeError(f"the objective '{objective}' was not logged; logged: {sorted(history)}")
    values = history[objective]
    pick = max if direction == "max" else min
    best = values.index(pick(values))
    return {key: series[best] for key, series in history.items() if len(series) == len(values)}


def _check_same_space(folder: Path, space: dict) -> None:
    stored = folder / SPACE
    if stored.exists():
        previous = rf.read_json(stored)
        if previous != json.loads(json.dumps(space, default=str)):
            raise RunError(
                "the search space changed since this search started; give the spec a new name, "
                f"or delete {folder} to start over",
                path=str(folder),
            )


def _budget(loaded: LoadedSpec) -> dict[str, Any]:
    """What every trial's score depends on besides its values: the epochs and the tuner (hyperband's factor)."""
    tune = loaded.spec.tune
    return {"train.epochs": loaded.spec.train.epochs, "tune.tuner": tune.tuner, "tune.hyperband_factor": tune.hyperband_factor}


def _check_same_budget(folder: Path, budget: dict[str, Any]) -> None:
    """A continued search must train as it did: scores under another epoch budget or tuner do not compare."""
    stored = folder / BUDGET
    if not stored.exists():
        return
    previous = rf.read_json(stored)
    changed = [f"{key} was {previous[key]!r}, now {value!r}" for key, value in budget.items()
               if key in previous and previous[key] != value]
    if changed:
        raise RunError(
            f"the search's budget changed since it started ({'; '.join(changed)}): its trials would not compare; "
            f"put it back, give the spec a new name, or delete {folder} to start over",
            path=str(folder),
        )


def tune_folder(loaded: LoadedSpec, reports_dir: Path) -> Path:
    return Path(reports_dir) / f"{loaded.spec.name}-tune"


def _pin_run_references(loaded: LoadedSpec, reports_dir) -> None:
    """'latest:NAME' (init_from, distill.teacher) becomes one run folder for the whole search: every trial
    process gets it as an override, so all trials start from the same run."""
    import json

    from framework.train.transfer import resolve_run_references

    resolved = resolve_run_references(loaded.spec, reports_dir)
    pinned = []
    if resolved.model.init_from != loaded.spec.model.init_from:
        pinned.append(f"model.init_from={json.dumps(resolved.model.init_from)}")
    if resolved.distill is not None and resolved.distill.teacher != loaded.spec.distill.teacher:
        pinned.append(f"distill.teacher={json.dumps(resolved.distill.teacher)}")
    loaded.spec = resolved
    loaded.overrides = [*loaded.overrides, *pinned]


def run_search(loaded: LoadedSpec, reports_dir: str | Path = "reports") -> Path:
    from framework.train.prepare import check_model

    if not loaded.spaces:
        raise SpecError("has no search spaces to tune; write e.g. units = { tune = \"int\", min = 16, max = 128 }", path="<spec>")
    if loaded.spec.tune is None:
        raise SpecError("tune needs a [tune] section (tuner, objective, max_trials)", path="tune")
    base_dir = loaded.base_dir or (loaded.path.resolve().parent if loaded.path else Path.cwd())
    _pin_run_references(loaded, reports_dir)
    check_model(loaded.spec)  # spec errors now, as `check` finds them, not in every trial
    folder = tune_folder(loaded, Path(reports_dir))
    space = _space_description(loaded)
    _check_same_space(folder, space)
    _check_same_budget(folder, _budget(loaded))
    rf.check_writable(Path(reports_dir))
    folder.mkdir(parents=True, exist_ok=True)
    rf.write_json(folder / SPACE, space)
    rf.write_json(folder / BUDGET, _budget(loaded))
    rf.write_atomic(folder / f"spec{loaded.suffix}", loaded.text)

    hypermodel = _make_hypermodel(loaded, base_dir)
    tuner = _tuner(loaded, hypermodel, folder)
    is_worker = "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in os.environ.get("KERASTUNER_TUNER_ID", "")
    if not is_worker:
        rf.write_json(folder / rf.METRICS, {"name": loaded.spec.name, "run": folder.name, "kind": "tune", "status": "running"})
    start = time.perf_counter()
    deadline = Deadline(tuner.oracle, loaded.spec.tune.max_seconds)
    try:
        tuner.search(verbose=0)  # one line per trial instead (IsolatedTuner.on_trial_end)
    except RuntimeError as exc:  # keras-tuner gives up after consecutive failed trials
        last = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        if not is_worker:
            rf.write_json(folder / rf.METRICS, {"name": loaded.spec.name, "run": folder.name, "kind": "tune",
                                                "status": "failed", "reason": last})
        raise RunError(f"the search stopped: {last}", path=str(folder)) from None
    finally:
        tuner.workers.close()
    if is_worker:
        return folder
    stopped = None
    if deadline.reached:
        stopped = f"tune.max_seconds = {loaded.spec.tune.max_seconds:g} s reached"
        print(f"{stopped}: no new trials started", flush=True)
    _write_results(loaded, tuner, folder, base_dir, time.perf_counter() - start, stopped)
    return folder


def _write_results(loaded: LoadedSpec, tuner, folder: Path, base_dir: Path, seconds: float, stopped: str | None = None) -> None:
    import pandas as pd
    import tomli_w

    tune = loaded.spec.tune
    rows = []
    for trial_id, trial in sorted(tuner.oracle.trials.items()):
        stats_file = folder / STATS / f"{trial_id}.json"
        stats = rf.read_json(stats_file) if stats_file.exists() else {}
        values = dict(trial.hyperparameters.values)
        budget = {  # hyperband's: the epochs trained up to, from which epoch, continuing which trial's weights
            "epochs": values.pop("tuner/epochs", loaded.spec.train.epochs),
            "initial_epoch": values.pop("tuner/initial_epoch", 0),
            "continued_from": values.pop("tuner/trial_id", None),
        }
        values = {k: v for k, v in values.items() if not k.startswith("tuner/")}
        rows.append({"trial": trial_id, **values, **budget, tune.objective: trial.score, "status": trial.status, **stats})
    trials = pd.DataFrame(rows)
    rf.write_atomic(folder / TRIALS, trials.to_csv(index=False))

    best_trials = [t for t in tuner.oracle.get_best_trials(1) if t.score is not None]
    if not best_trials:
        rf.write_json(folder / rf.METRICS, {"name": loaded.spec.name, "run": folder.name, "kind": "tune",
                                            "status": "failed", "reason": "no trial completed"})
        raise RunError("no trial completed; see the errors above", path=str(folder))
    best = best_trials[0]
    values = {name: best.hyperparameters.values[name] for name in loaded.spaces if name in best.hyperparameters.values}
    best_raw = substitute(loaded.raw, loaded.spaces, values)
    best_raw.pop("tune", None)
    best_spec = validate(best_raw, file=loaded.file, base_dir=base_dir)
    # best.toml lives in the tune folder: make its paths absolute
    best_raw["data"]["source"] = best_spec.data.source
    if best_raw.get("plugins"):
        best_raw["plugins"] = best_spec.plugins
    best_raw["name"] = f"{loaded.spec.name}-best"
    header = _toml_header(values, tune.objective, best.score, best.trial_id, loaded.spec.train.epochs)
    rf.write_atomic(folder / BEST, header + tomli_w.dumps(toml_ready(best_raw)))
    resolved = best_spec.model_dump(mode="json")
    resolved["tune"] = tune.model_dump(mode="json")
    rf.write_json(folder / rf.RESOLVED, resolved)
    rf.write_json(folder / rf.METRICS, {
        "name": loaded.spec.name,
        "run": folder.name,
        "kind": "tune",
        "status": "completed",
        "objective": tune.objective,
        f"best_{tune.objective}": best.score,
        "best_trial": best.trial_id,
        "trials": len(rows),
        "train_seconds": round(seconds, 3),
        "seed": loaded.spec.seed,
        **({"stopped": stopped} if stopped else {}),
    })


def _toml_header(values: dict, objective: str, score: float, trial_id: str, epochs: int) -> str:
    lines = [f"# best trial ({trial_id}) of `python -m framework tune`: {objective} = {score:.6g}"]
    lines += [f"#   {name} = {value!r}" for name, value in values.items()]
    lines += [
        f"# `run` trains these values from scratch for the full train.epochs = {epochs}, with the spec's seed.",
        "# It reproduces the configuration, not the trial: a hyperband trial may have trained fewer epochs or",
        "# continued another trial's weights, and the score above is the trial's best epoch, so expect the run's",
        "# score to differ by about the noise between seeds.",
    ]
    return "\n".join(lines) + "\n"
