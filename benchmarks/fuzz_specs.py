"""Fuzz the CLI with mutated specs: every case must end in a spec error (exit 2) or a valid check (exit 0).

    python benchmarks/fuzz_specs.py [--cases 10000] [--seed 0]

Mutations: wrong types, missing and extra keys, huge, negative and NaN numbers,
unicode, deep nesting, shapes that don't fit, broken syntax. Each case runs
``python -m framework check`` in-process (spec validation and model building).
The last line is ``tracebacks=<count>``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import math
import os
import random
import sys
import tempfile
import time
import tomllib
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BASE_SPECS = ["quickstart.toml", "quickstart.json", "overfit_regularized.toml", "digits_tempered.toml", "digits_npy.toml"]

VALUES = [
    None, True, False, 0, 1, -1, 3, 7, 64, 2**31, -(2**31), 2**63, 10**30, 1e-300, 1e308, -1e308,
    float("nan"), float("inf"), -float("inf"), 0.5, -0.5, "", "many", "relu", "Dense", "Densse", "auto",
    "sklearn:digits", "csv:missing.csv", "npz:../nowhere.npz", "keras:mnist", "../../escape", "ünïcødé ✓ 数据",
    "\x00", "a" * 500, [], [1], [8, 8, 1], [0, -1], [7, 7], [-1, -1], [2**20, 2**20], ["x", 2], {}, {"type": "Dense"},
    {"type": "Nope"}, {"l2": -1}, {"unknown": 1},
]


def deep(levels: int):
    value: object = 1
    for _ in range(levels):
        value = {"x": value}
    return value


def paths(node, prefix=()):
    """Every (container path, key) in a spec tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield prefix, key
            yield from paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield prefix, i
            yield from paths(value, prefix + (i,))


def at(node, path):
    for key in path:
        node = node[key]
    return node


def mutate(spec: dict, rng: random.Random) -> dict:
    spec = copy.deepcopy(spec)
    for _ in range(rng.randint(1, 3)):
        parent_path, key = rng.choice(list(paths(spec)))
        parent = at(spec, parent_path)
        action = rng.choice(["replace", "replace", "replace", "delete", "extra", "wrap", "deep", "numbers"])
        if action == "replace":
            parent[key] = copy.deepcopy(rng.choice(VALUES))
        elif action == "delete":
            if isinstance(parent, dict):
                del parent[key]
            else:
                parent.pop(key)
        elif action == "extra" and isinstance(parent, dict):
            parent[rng.choice(["epochz", "ünï", "type", "layers", "x" * 40, "__class__"])] = rng.choice(VALUES)
        elif action == "wrap":
            parent[key] = [parent[key]]
        elif action == "deep":
            parent[key] = deep(rng.randint(5, 200))
        elif action == "numbers" and isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
            parent[key] = rng.choice([-parent[key], parent[key] * 10**rng.randint(3, 30), parent[key] + 0.5, math.nan])
    return spec


def render(spec: dict, rng: random.Random) -> tuple[str, str]:
    """A spec as TOML or JSON text, sometimes with a syntax error."""
    import tomli_w

    from framework.spec.load import toml_ready

    fmt = rng.choice([".json", ".toml"])
    text = None
    if fmt == ".toml":
        try:
            text = tomli_w.dumps(toml_ready(spec))
        except (TypeError, ValueError, RecursionError):  # the writer's limits, not the spec's
            fmt = ".json"
    if text is None:
        text = json.dumps(spec, allow_nan=True)
    if rng.random() < 0.05:
        cut = rng.randint(0, len(text))
        text = text[:cut] + rng.choice(["{", "]", "=", '"', "\n[[", ""]) + text[cut + 1 :]
    return fmt, text


def run_case(path: Path) -> tuple[int | None, str | None]:
    """(exit code, traceback text or None)."""
    from framework.cli import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["check", str(path)])
    except SystemExit as exc:  # argparse
        code = exc.code
    except BaseException:
        return None, traceback.format_exc()
    if code not in (0, 2):
        return code, f"exit {code}: {err.getvalue()[-500:]}"
    if code == 2 and not err.getvalue().strip():
        return code, "exit 2 with no message"
    return code, None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from framework.quiet import import_tensorflow

    import_tensorflow()
    rng = random.Random(args.seed)
    bases = []
    for name in BASE_SPECS:
        path = ROOT / "specs" / name
        bases.append(json.loads(path.read_text()) if name.endswith(".json") else tomllib.loads(path.read_text()))
    counts = {0: 0, 2: 0}
    tracebacks = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        # plugin paths in the base specs are relative to specs/: keep that layout
        folder = Path(tmp) / "specs"
        folder.mkdir()
        os.symlink(ROOT / "plugins", Path(tmp) / "plugins")
        for case in range(args.cases):
            fmt, text = render(mutate(rng.choice(bases), rng), rng)
            path = folder / f"case{fmt}"
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
            code, failure = run_case(path)
            if failure:
                tracebacks.append((case, text, failure))
                print(f"--- traceback in case {case}: {failure.strip().splitlines()[-1][:300]}", flush=True)
            else:
                counts[code] = counts.get(code, 0) + 1
            if (case + 1) % 1000 == 0:
                print(f"{case + 1} cases, {time.perf_counter() - start:.0f} s, tracebacks so far: {len(tracebacks)}", flush=True)
    for case, text, failure in tracebacks[:5]:
        print(f"--- case {case}\n{text[:800]}\n{failure}")
    print(f"cases={args.cases} valid={counts.get(0, 0)} spec_errors={counts.get(2, 0)} seconds={time.perf_counter() - start:.0f}")
    print(f"tracebacks={len(tracebacks)}")
    return 0 if not tracebacks else 1


if __name__ == "__main__":
    raise SystemExit(main())
