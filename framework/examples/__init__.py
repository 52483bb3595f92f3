"""Starter specs that ``python -m framework init [EXAMPLE]`` writes into the current folder.

Each is a copy of a spec in the repository's ``specs/`` (``tests/test_packaging.py`` keeps them the same), shipped
inside the package with the small data files it reads, so that an installed framework can start a project.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Example:
    spec: str  # file name, here and in specs/
    summary: str
    data: tuple[str, ...] = ()  # files the spec reads, relative to it


EXAMPLES = {
    "quickstart": Example("quickstart.toml", "a small CNN on scikit-learn's 8x8 digits (a minute on a laptop)"),
    "mnist_cnn": Example("mnist_cnn.toml", "Keras's MNIST convnet (MNIST downloads on first run)"),
    "text": Example("movie_transformer.toml", "a Transformer encoder on movie-review sentences",
                    ("data/movie_sample.csv",)),
    "forecasting": Example("sunspots_gru.toml", "a GRU forecast of yearly sunspots", ("data/sunspots_yearly.csv",)),
    "dp": Example("digits_dp.toml", "DP-SGD on the digits, with epsilon in the report"),
    "tune": Example("digits_tune.toml", "a search over an MLP's width, depth and learning rate"),
}


def write_example(name: str, folder: Path) -> list[Path]:
    """Copy example ``name``'s spec (and its data) into ``folder``; refuses to overwrite anything."""
    from framework.errors import FrameworkError, did_you_mean

    example = EXAMPLES.get(name)
    if example is None:
        raise FrameworkError(f"unknown example '{name}'{did_you_mean(name, EXAMPLES)}; examples: {', '.join(EXAMPLES)}",
                             path="init")
    files = [example.spec, *example.data]
    targets = [folder / f for f in files]
    existing = [str(t) for t in targets if t.exists()]
    if existing:
        one = len(existing) == 1
        raise FrameworkError(f"{', '.join(existing)} already exist{'s' if one else ''}; not overwritten "
                             f"(remove {'it' if one else 'them'}, or run init in another folder)", path="init")
    for source, target in zip(files, targets):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((HERE / source).read_bytes())
    return targets
