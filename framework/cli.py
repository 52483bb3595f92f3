"""``python -m framework``: run, check, tune, report, compare, schema, list, describe, init, predict, sample, ...

TensorFlow is imported only inside the commands that train or build, so ``--help``, ``--version``, ``schema``,
``init``, ``describe``, ``list --verbose`` and ``check --schema-only`` answer at once (the last three read the
catalogue of types, framework/spec/catalogue.json). TensorFlow's start-up notices are filtered out
(framework/quiet.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from framework.errors import FrameworkError, SpecError
from framework.registry import LIST_WORDS

LIST_KINDS = {word: kind for kind, word in LIST_WORDS.items()}


def _add_spec_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="spec file (.toml or .json)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a spec value, e.g. --set train.epochs=3 --set model.layers[0].filters=16",
    )


def build_parser() -> argparse.ArgumentParser:
    from framework import __version__

    parser = argparse.ArgumentParser(
        prog="python -m framework",
        description="Declarative deep-learning experiments on Keras 3: spec file -> model -> training -> report.",
    )
    parser.add_argument("--version", action="version", version=f"framework {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="train and evaluate a spec; writes a run folder")
    run.add_argument("spec", nargs="?", help="spec file (.toml or .json)")
    run.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a spec value, e.g. --set train.epochs=3 --set model.layers[0].filters=16",
    )
    run.add_argument("--resume", metavar="RUN_FOLDER", help="continue a killed or interrupted run from its last completed epoch")
    run.add_argument("--reports", default="reports", metavar="DIR", help="where run folders go (default: reports)")
    seeds = run.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, help="override the spec's seed")
    seeds.add_argument("--seeds", metavar="N,N,...", help="run once per seed, e.g. --seeds 1,2,3")
    seeds.add_argument("--repeat", type=int, metavar="N", help="run N times, with seeds seed, seed+1, ...")

    check = sub.add_parser("check", help="validate a spec and build its model (no data, no training)")
    _add_spec_args(check)
    check.add_argument("--schema-only", action="store_true", help="validate the spec only; do not import TensorFlow or build")

    tune = sub.add_parser("tune", help="search the spec's search spaces with keras-tuner")
    _add_spec_args(tune)
    tune.add_argument("--reports", default="reports", metavar="DIR", help="where the tune folder goes (default: reports)")

    report = sub.add_parser("report", help="one table with a row per run")
    report.add_argument("dirs", nargs="*", default=["reports"], metavar="DIR", help="run folders or folders of runs")
    report.add_argument("--format", choices=["table", "csv", "markdown", "json", "html"], default="table")
    report.add_argument("--sort", metavar="COLUMN", help="sort by this column (descending for test_ metrics)")
    report.add_argument("--columns", metavar="A,B,...", help="show these columns instead of the default view")
    report.add_argument("--wide", action="store_true",
                        help="every metric and every spec key that differs, full run ids, not fitted to the terminal")
    report.add_argument("--where", metavar="QUERY", help="keep runs matching a pandas query, e.g. 'test_accuracy > 0.95'")
    report.add_argument("--group-by", metavar="KEY[,KEY]", help="mean ± std of the metrics per value of KEY (e.g. over seeds)")
    report.add_argument("--output", metavar="FILE", help="html: where to write the page (default: DIR/report.html)")

    compare = sub.add_parser("compare", help="spec differences, metrics with deltas, and curves of two or more runs")
    compare.add_argument("runs", nargs="+", metavar="RUN", help="run folders (two or more)")
    compare.add_argument("--format", choices=["table", "markdown"], default="table")
    compare.add_argument("--output", metavar="PNG", help="where to write the curves figure (default: beside the first run)")

    audit = sub.add_parser("audit", help="membership-inference audit of a run: AUC and max(TPR - FPR), into metrics.json")
    audit.add_argument("run", metavar="RUN_FOLDER")

    predict = sub.add_parser("predict", help="apply a run's model to new inputs (CSV, NPZ, image folder, text file)")
    predict.add_argument("run_folder", help="a finished run folder")
    predict.add_argument("input", help="a .csv, .npz or .txt file (one text per line), or a folder of images")
    predict.add_argument("--output", help="write .csv or .json here (default: CSV on stdout)")
    sample = sub.add_parser("sample", help="write N generated labelled examples of a VAE or GAN run as an NPZ (x, y)")
    sample.add_argument("run_folder", help="a finished generative run folder (conditional)")
    sample.add_argument("count", type=int, help="how many examples (classes balanced)")
    sample.add_argument("--output", required=True, metavar="NPZ", help="where to write them (a spec reads it as npz:PATH)")
    sample.add_argument("--seed", type=int, default=0, help="seed of the latent codes (default 0)")
    explain = sub.add_parser("explain", help="attributions for a run's test examples, with a deletion check")
    explain.add_argument("run_folder", help="a finished run folder")
    explain.add_argument("--samples", type=int, default=8, help="test examples to explain (default 8)")
    explain.add_argument("--method", default="auto", choices=["auto", "saliency", "ig", "shap", "lime", "all"],
                         help="attribution method (default auto: by input kind); all: every method that covers it")
    export = sub.add_parser("export", help="write a serving artifact of a run's model, reload it and compare")
    export.add_argument("run_folder", help="a finished run folder")
    export.add_argument("--format", choices=["savedmodel", "tflite", "keras"], default="savedmodel")
    export.add_argument("--output", help="where to write it (default: RUN_FOLDER/export/)")
    schema = sub.add_parser("schema", help="print the JSON Schema of the spec format (or its Markdown reference)")
    schema.add_argument("--format", choices=["json", "markdown"], default="json")

    lister = sub.add_parser("list", help="names a spec may use")
    lister.add_argument("kind", nargs="?", choices=sorted(LIST_KINDS), help="one kind (default: all but layers)")
    lister.add_argument("--verbose", "-v", action="store_true", help="each type's arguments, defaults and docstring line")
    lister.add_argument("--spec", help="also list what this spec's plugins register")
    lister.add_argument("--plugin", action="append", default=[], metavar="FILE", help="also list what this plugin registers")

    describe = sub.add_parser("describe", help="a layer's (or other type's) arguments, defaults and description")
    describe.add_argument("type", metavar="TYPE", help="e.g. Dense, RandomFlip, adam, CosineDecay, EarlyStopping")
    describe.add_argument("--spec", help="also know what this spec's plugins register")
    describe.add_argument("--plugin", action="append", default=[], metavar="FILE", help="also know what this plugin registers")

    from framework.examples import EXAMPLES

    init = sub.add_parser("init", help="write a starter spec into the current folder")
    init.add_argument(
        "example", nargs="?", default="quickstart", choices=list(EXAMPLES), metavar="EXAMPLE",
        help="; ".join(f"{name}: {example.summary}" for name, example in EXAMPLES.items()) + " (default: quickstart)",
    )
    return parser


# --- commands ----------------------------------------------------------------------------


@contextlib.contextmanager
def _in_spec_file(file: str):
    """Spec errors found while building or training name the spec file too."""
    try:
        yield
    except SpecError as exc:
        exc.file = exc.file or file
        raise



def cmd_schema(args) -> int:
    if args.format == "markdown":
        from framework.spec.docs import spec_reference

        print(spec_reference(), end="")
        return 0
    from framework.spec.json_schema import spec_json_schema

    schema = spec_json_schema()
    print(json.dumps(schema, indent=2))
    return 0


def cmd_check(args) -> int:
    from framework.spec import load_spec

    loaded = load_spec(args.spec, args.overrides)
    if args.schema_only:
        from framework.spec.catalogue import check_spec_names

        with _in_spec_file(loaded.file):
            check_spec_names(loaded.spec)  # types and arguments, from the catalogue (no TensorFlow)
        _print_spaces(loaded)
        print(f"{loaded.file}: valid spec '{loaded.spec.name}'")
        return 0
    from framework.train.prepare import check_model, model_summary

    with _in_spec_file(loaded.file):
        model = check_model(loaded.spec)
    print(model_summary(model), end="")
    _print_spaces(loaded)
    print(f"{loaded.file}: valid spec '{loaded.spec.name}', {model.count_params():,} parameters")
    return 0


def _print_spaces(loaded) -> None:
    if loaded.spaces:
        print(f"search spaces ({len(loaded.spaces)}; `run` and `check` use the defaults, `tune` searches them):")
        for name, (_, space) in loaded.spaces.items():
            print(f"  {name}: {space.describe()}, default {space.default_value()!r}")


def cmd_tune(args) -> int:
    from framework.spec import load_spec
    from framework.tuning.search import run_search

    loaded = load_spec(args.spec, args.overrides)
    _print_spaces(loaded)
    if loaded.spec.dp is not None:
        print("warning: tuning a private spec spends privacy that the epsilon of each run does not count: every "
              "trial looks at the same data. Tune on public or held-out data, or account for the search.", file=sys.stderr)
    with _in_spec_file(loaded.file):
        folder = run_search(loaded, args.reports)
    print(f"\ntune folder: {folder}")
    if (folder / "trials.csv").exists():
        from framework.reports.table import fit_width, render, terminal_width
        import pandas as pd

        trials = pd.read_csv(folder / "trials.csv")
        if len(trials) > 1:  # what is the same in every trial (tuner_id, hyperband's columns in a random search) says nothing
            objective = loaded.spec.tune.objective
            trials = trials[[c for c in trials.columns if c in ("trial", objective) or trials[c].nunique(dropna=False) > 1]]
        width = terminal_width()
        if width and not trials.empty:
            trials, note = fit_width(trials, width)
            if note:
                print(f"note: {note.replace('--wide shows every column in full, --columns picks them', 'trials.csv has them all')}",
                      file=sys.stderr)
        print(render(trials, "table"), end="")
        print(f"best spec: {folder / 'best.toml'}")
    return 0


def _seed_list(args, spec_seed: int) -> list[int | None]:
    if args.seeds:
        try:
            return [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError:
            raise FrameworkError(f"expected whole numbers separated by commas, got {args.seeds!r}", path="--seeds") from None
    if args.repeat is not None:
        if args.repeat < 1:
            raise FrameworkError("must be at least 1", path="--repeat")
        return [spec_seed + i for i in range(args.repeat)]
    return [args.seed]


def cmd_run(args) -> int:
    from framework.quiet import status
    from framework.reports.table import default_view, load, render
    from framework.spec import load_spec
    from framework.train.run import resume_experiment, run_experiment

    if args.resume:
        if args.spec or args.overrides or args.seed is not None or args.seeds or args.repeat:
            raise FrameworkError("--resume takes only the run folder: the spec, overrides and seed are the run's own", path="--resume")
        status("resuming: loading data and building the model...")
        with _in_spec_file(args.resume):
            result = resume_experiment(args.resume)
        print(f"\nrun folder: {result.folder.path}")
        print(render(default_view(load(result.folder.path)), "table"), end="")
        return 0
    if not args.spec:
        raise FrameworkError("give a spec file, or --resume RUN_FOLDER", path="run")

    first = load_spec(args.spec, args.overrides)
    folders = []
    for seed in _seed_list(args, first.spec.seed):
        loaded = first if seed is None else load_spec(args.spec, [*args.overrides, f"seed={seed}"])
        status("loading data and building the model...")  # before Keras's own output starts
        with _in_spec_file(loaded.file):
            result = run_experiment(loaded, args.reports)
        if result.folder is None:
            print("\nmulti_worker: this worker trained its share; the chief worker writes the run folder")
            continue
        folders.append(result.folder.path)
        print(f"\nrun folder: {result.folder.path}")
    if folders:
        print(render(default_view(load(*folders)), "table"), end="")
    return 0


def cmd_report(args) -> int:
    from framework.reports import table

    for folder in args.dirs:
        if not Path(folder).exists():
            raise FrameworkError("no such folder; name a run folder or a folder of runs", path=folder)
    frame = table.load(*args.dirs)
    if args.where and not frame.empty:
        frame = table.where(frame, args.where)
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    # csv and json are for programs: the same columns every time; tables and pages are for people
    wide = args.wide or args.format in ("csv", "json")
    view = table.default_view(frame, columns) if wide else table.compact_view(frame, columns)
    if args.sort and not view.empty:
        if args.sort not in frame.columns:
            from framework.errors import did_you_mean

            raise FrameworkError(f"unknown column '{args.sort}'{did_you_mean(args.sort, frame.columns)}", path="--sort")
        descending = args.sort.startswith("test_") and not args.sort.endswith("loss")
        view = view.loc[frame[args.sort].sort_values(ascending=not descending, kind="stable").index]
    grouped = None
    if args.group_by and not frame.empty:
        grouped = table.group(frame, [k.strip() for k in args.group_by.split(",")])
        if args.format in ("csv", "json"):
            view = grouped
        elif args.format != "html":
            view = table.group_display(grouped)
    if args.format == "html":
        from framework.reports.html import write_runs_page

        output = Path(args.output) if args.output else Path(args.dirs[0]) / "report.html"
        shown = table.group_display(grouped) if grouped is not None else None
        print(write_runs_page(view, frame, output, grouped=shown))
        return 0
    width = table.terminal_width() if args.format == "table" and not (args.wide or columns) else None
    if width and not view.empty:
        view, note = table.fit_width(view, width)
        if note:
            print(f"note: {note}", file=sys.stderr)
    sys.stdout.write(table.render(view, args.format))
    return 0


def cmd_audit(args) -> int:
    from framework.errors import RunError
    from framework.privacy.audit import audit_run

    folder = Path(args.run)
    if not (folder / "metrics.json").exists() or not (folder / "model.keras").exists():
        raise RunError("is not a completed run folder (no metrics.json or model.keras)", path=str(folder))
    metrics = audit_run(folder)
    if metrics.get("audit_auc") is None:
        print(f"membership-inference audit of {folder.name}: {metrics.get('audit_note', 'nothing to audit')}")
        return 0
    print(f"membership-inference audit of {folder.name}: AUC {metrics['audit_auc']:.4f}, "
          f"max(TPR - FPR) {metrics['audit_advantage']:.4f} over {metrics['audit_examples']} examples"
          + (f"; epsilon {metrics['epsilon']:.3g}" if metrics.get("epsilon") is not None else
             "; no finite epsilon" if "epsilon" in metrics else "; not a private run"))
    return 0


def cmd_compare(args) -> int:
    from framework.reports.compare import compare_runs
    from framework.reports.table import render

    if len(args.runs) < 2:
        raise FrameworkError("give two or more run folders", path="compare")
    specs, metrics, figure = compare_runs([Path(r) for r in args.runs], Path(args.output) if args.output else None)
    print("spec differences:")
    print(render(specs, args.format) if not specs.empty else "  none: the specs are the same\n", end="")
    print("\nmetrics (Δ against the first run):")
    print(render(metrics, args.format), end="")
    print(f"\ncurves: {figure}")
    return 0


def _load_plugins_of(args) -> bool:
    """Import the plugins of --spec and --plugin (TensorFlow first, quietly); True if there were any."""
    if not (args.spec or args.plugin):
        return False
    from framework.plugins import load_plugin_file
    from framework.quiet import import_tensorflow

    import_tensorflow()
    if args.spec:
        from framework.spec import load_spec

        load_spec(args.spec)  # imports its plugins
    for plugin in args.plugin:
        load_plugin_file(Path(plugin), key_path="--plugin")
    return True


def cmd_list(args) -> int:
    kinds = [LIST_KINDS[args.kind]] if args.kind else [k for k in LIST_KINDS.values() if k != "layer"]
    if args.verbose:  # from the catalogue: no TensorFlow unless plugins are named
        from framework.describe import list_verbose

        plugins = _load_plugins_of(args)
        print("\n".join(list_verbose(kind, with_plugins=plugins) for kind in kinds), end="")
        return 0
    from framework.quiet import import_tensorflow
    from framework.registry import registry

    if any(kind != "data_source" for kind in kinds):
        import_tensorflow()  # the registry lists Keras's classes
    _load_plugins_of(args)
    for kind in kinds:
        entries = registry.entries(kind)
        print(f"{kind} ({len(entries)}):")
        for name, entry in entries.items():
            print(f"  {name:40s} {entry.source}")
    return 0


def cmd_describe(args) -> int:
    from framework.describe import describe

    print(describe(args.type, with_plugins=_load_plugins_of(args)), end="")
    return 0


def cmd_init(args) -> int:
    from framework.examples import write_example

    written = write_example(args.example, Path.cwd())
    for path in written:
        print(f"wrote {path.relative_to(Path.cwd())}")
    print(f"next: python -m framework check {written[0].name} && python -m framework run {written[0].name}")
    return 0


def cmd_predict(args) -> int:
    from framework.use.predict import predict_table, write_table
    from framework.use.trained import TrainedRun

    run = TrainedRun.open(args.run_folder)
    text = write_table(predict_table(run, args.input), args.output)
    if text is not None:
        print(text, end="")
    else:
        print(f"predictions: {args.output}", file=sys.stderr)
    return 0


def cmd_sample(args) -> int:
    from framework.api import sample

    path = sample(args.run_folder, args.count, args.output, seed=args.seed)
    print(f"{args.count} generated examples: {path}")
    return 0


def cmd_explain(args) -> int:
    from framework.use.explain import describe_methods, explain_run
    from framework.use.trained import TrainedRun

    if args.samples < 1:
        raise FrameworkError("must be at least 1", path="--samples")
    summary = explain_run(TrainedRun.open(args.run_folder), args.samples, args.method)
    check = summary["deletion_check"]
    print(f"{summary['kind']}: {summary['method']}, {args.samples} test examples")
    for name in summary["files"]:
        print(f"  {Path(args.run_folder) / name}")
    print(f"deletion check: deleting the top {check['deleted_fraction']:.0%} drops the predicted class's probability by "
          f"{check['drop_top']:.3f}, random deletion by {check['drop_random']:.3f} -> {'passes' if check['passes'] else 'FAILS'}")
    print("\n".join(describe_methods(summary)))  # each method's deletion check and measures
    return 0


def cmd_export(args) -> int:
    from framework.use.export import export_run
    from framework.use.trained import TrainedRun

    path, difference = export_run(TrainedRun.open(args.run_folder), args.format, args.output)
    print(f"{args.format}: {path}")
    print(f"reloaded and compared on test examples: max |difference| = {difference:.2e}")
    return 0


#: commands that import TensorFlow before they start (quietly: framework/quiet.py)
TENSORFLOW_COMMANDS = ("run", "check", "tune", "audit", "predict", "sample", "explain", "export")

COMMANDS = {
    "run": cmd_run,
    "check": cmd_check,
    "report": cmd_report,
    "compare": cmd_compare,
    "tune": cmd_tune,
    "audit": cmd_audit,
    "schema": cmd_schema,
    "list": cmd_list,
    "describe": cmd_describe,
    "init": cmd_init,
    "predict": cmd_predict,
    "sample": cmd_sample,
    "explain": cmd_explain,
    "export": cmd_export,
}


@contextlib.contextmanager
def _warnings_as_lines():
    """The framework's own warnings print as ``warning: MESSAGE``, without Python's file and line."""
    import warnings

    from framework.errors import FrameworkWarning

    original = warnings.formatwarning

    def formatwarning(message, category, filename, lineno, line=None):
        if issubclass(category, FrameworkWarning):
            return f"warning: {message}\n"
        return original(message, category, filename, lineno, line)

    warnings.formatwarning = formatwarning
    try:
        yield
    finally:
        warnings.formatwarning = original


def main(argv: list[str] | None = None) -> int:
    from framework import quiet

    quiet.show_status = True
    try:
        with _warnings_as_lines():
            return _main(argv)
    finally:
        quiet.show_status = False


def entry() -> None:
    """The process's entry point (``python -m framework``, the ``framework`` script): ``main``, then the exit
    without the interpreter's teardown (framework/process.py)."""
    from framework.process import end_process

    end_process(main())


def _main(argv: list[str] | None = None) -> int:
    from framework import quiet

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        quiet.use_tensorflow_backend(note=False)  # noted if TensorFlow is imported
        if args.command in TENSORFLOW_COMMANDS and not getattr(args, "schema_only", False):
            quiet.import_tensorflow()
        return COMMANDS[args.command](args)
    except FrameworkError as exc:
        for line in str(exc).splitlines():
            print(f"{exc.kind}: {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
