"""Seconds per tune trial: a fresh process per trial against recycled worker processes.

    python benchmarks/tune_startup.py [--rounds 3] [--trials 6] [--epochs 1]

Runs `python -m framework tune specs/digits_tune.toml` with tiny trials (train.epochs=1) alternately with
`tune.trials_per_worker=1` (every trial starts Python and TensorFlow, as trials did before workers) and the
default (trials_per_worker=8), each in a fresh reports folder. Prints each search's seconds per trial (the
`seconds` column of trials.csv, which includes handing the trial to its process), the search process's memory
spread, and the workers' peak memory; the last line is seconds_per_trial=<median with workers>.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def search(trials: int, epochs: int, per_worker: int) -> dict:
    import pandas as pd

    reports = Path(tempfile.mkdtemp(prefix="tune-startup-"))
    subprocess.run(
        [sys.executable, "-m", "framework", "tune", "specs/digits_tune.toml", "--reports", str(reports),
         "--set", f"train.epochs={epochs}", "--set", f"tune.max_trials={trials}",
         "--set", f"tune.trials_per_worker={per_worker}"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    table = pd.read_csv(reports / "digits-tune-tune" / "trials.csv")
    return {
        "per_trial": float(table["seconds"].mean()),
        "search_rss_spread": float(table["search_rss_mb"].max() - table["search_rss_mb"].min()),
        "peak_rss": float(table["peak_rss_mb"].max()),
        "workers": int(table["worker"].nunique()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    modes = {"fresh process per trial": 1, "workers (8 trials each)": 8}
    seen: dict[str, list[dict]] = {name: [] for name in modes}
    for round_ in range(args.rounds):
        for name, per_worker in modes.items():
            result = search(args.trials, args.epochs, per_worker)
            seen[name].append(result)
            print(f"round {round_ + 1} {name:24s} {result['per_trial']:.2f} s/trial, {result['workers']} processes, "
                  f"search RSS spread {result['search_rss_spread']:.1f} MB, trial peak {result['peak_rss']:.0f} MB",
                  flush=True)
    print()
    print(f"digits_tune, {args.trials} trials of {args.epochs} epoch(s), median of {args.rounds} interleaved rounds:")
    medians = {}
    for name, results in seen.items():
        medians[name] = statistics.median(r["per_trial"] for r in results)
        spread = max(r["per_trial"] for r in results) - min(r["per_trial"] for r in results)
        print(f"  {name:24s} {medians[name]:.2f} s per trial (spread {spread:.2f} s), "
              f"search RSS spread <= {max(r['search_rss_spread'] for r in results):.1f} MB")
    fresh, pooled = medians["fresh process per trial"], medians["workers (8 trials each)"]
    print(f"  speed-up {fresh / pooled:.2f}x")
    print(f"seconds_per_trial={pooled:.2f}")


if __name__ == "__main__":
    main()
