"""User-facing errors: each one is printed as a single message, never a traceback."""

from __future__ import annotations

import difflib
from typing import Iterable


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return " (did you mean 'x'?)" for the closest candidate, or ""."""
    candidates = list(candidates)
    lowered = {c.lower(): c for c in candidates}
    if name.lower() in lowered and lowered[name.lower()] != name:
        return f" (did you mean '{lowered[name.lower()]}'?)"
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    if not close:
        close = [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)]
    return f" (did you mean '{close[0]}'?)" if close else ""


def format_path(loc: Iterable[object]) -> str:
    """('model', 'layers', 2, 'units') -> 'model.layers[2].units'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class FrameworkError(Exception):
    """Base class of errors caused by user input. Exit status 2."""

    exit_code = 2
    kind = "error"

    def __init__(self, message: str, *, path: str | None = None, file: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = path
        self.file = file

    def __str__(self) -> str:
        where = ": ".join(p for p in (self.file, self.path) if p)
        return f"{where}: {self.message}" if where else self.message


class SpecError(FrameworkError):
    """The spec is wrong: syntax, unknown key, wrong type, unknown name, shapes."""

    kind = "spec error"


class SpecErrors(SpecError):
    """Several spec errors found at once; printed one per line."""

    def __init__(self, errors: list[SpecError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors), file=errors[0].file)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class DataError(FrameworkError):
    """The data is unusable: corrupt or empty file, labels that don't match inputs."""

    kind = "data error"


class RunError(FrameworkError):
    """A run folder or reports folder cannot be used."""

    kind = "run error"


class FrameworkWarning(UserWarning):
    """Something allowed that is probably a mistake; the CLI prints it as one line, ``warning: PATH: MESSAGE``."""


def warn(message: str, *, path: str | None = None) -> None:
    """Issue a :class:`FrameworkWarning` (tests can catch it with ``pytest.warns``)."""
    import warnings

    warnings.warn(FrameworkWarning(f"{path}: {message}" if path else message), stacklevel=2)
