"""Search spaces written where a value stands::

    learning_rate = { tune = "float", min = 1e-4, max = 1e-2, log = true }
    units = { tune = "int", min = 32, max = 256, step = 32 }
    type = { tune = "choice", values = ["GRU", "LSTM"] }
    use_bias = { tune = "bool" }

A space is named by its key path (``train.optimizer.learning_rate``) unless it
sets ``name``. ``run`` and ``check`` use each space's default: ``default`` if
given, else keras-tuner's (the first choice, the minimum, false).
"""

from __future__ import annotations

import copy
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from framework.errors import SpecError, format_path

MARKER = "tune"


class SearchSpace(BaseModel):
    """One hyperparameter: a table with a ``tune`` kind where a value would stand."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)

    kind: Literal["choice", "int", "float", "bool"] = Field(alias=MARKER, description="choice, int, float or bool.")
    name: str | None = Field(None, description="Hyperparameter name (default: the key path).")
    values: list[Any] | None = Field(None, description="choice: the values to choose from.")
    min: float | None = Field(None, description="int, float: the smallest value.")
    max: float | None = Field(None, description="int, float: the largest value.")
    step: float | None = Field(None, gt=0, description="int, float: the step between values (int default 1).")
    log: bool = Field(False, description="int, float: sample on a log scale.")
    default: Any = Field(None, description="The value `run` and `check` use (default: keras-tuner's).")

    @model_validator(mode="after")
    def _complete(self) -> "SearchSpace":
        if self.kind == "choice":
            if not self.values:
                raise PydanticCustomError("space", "a choice needs a non-empty 'values' list")
            if len({repr(v) for v in self.values}) != len(self.values):
                raise PydanticCustomError("space", "choice values must be distinct")
        elif self.kind in ("int", "float"):
            if self.min is None or self.max is None:
                raise PydanticCustomError("space", "an {kind} range needs 'min' and 'max'", {"kind": self.kind})
            if self.min >= self.max:
                raise PydanticCustomError("space", "'min' must be below 'max'")
            if self.log and self.min <= 0:
                raise PydanticCustomError("space", "a log range needs 'min' > 0")
            if self.kind == "int" and any(v is not None and v != int(v) for v in (self.min, self.max, self.step)):
                raise PydanticCustomError("space", "an int range takes whole numbers")
        return self

    def default_value(self) -> Any:
        if self.default is not None:
            return self.default
        if self.kind == "choice":
            return self.values[0]
        if self.kind == "bool":
            return False
        return int(self.min) if self.kind == "int" else float(self.min)

    def sample(self, hp, name: str) -> Any:
        """Declare this space on a keras-tuner ``HyperParameters`` and return its current value."""
        if self.kind == "choice":
            return hp.Choice(name, self.values, default=self.default)
        if self.kind == "bool":
            return hp.Boolean(name, default=bool(self.default) if self.default is not None else False)
        sampling = "log" if self.log else "linear"
        if self.kind == "int":
            return hp.Int(name, int(self.min), int(self.max), step=int(self.step) if self.step else None,
                          sampling=sampling, default=self.default)
        return hp.Float(name, float(self.min), float(self.max), step=self.step, sampling=sampling, default=self.default)

    def describe(self) -> str:
        if self.kind == "choice":
            return f"choice of {self.values}"
        if self.kind == "bool":
            return "true or false"
        scale = ", log scale" if self.log else ""
        step = f", step {self.step:g}" if self.step else ""
        return f"{self.kind} from {self.min:g} to {self.max:g}{step}{scale}"


def _is_space(node: Any) -> bool:
    return isinstance(node, dict) and MARKER in node and isinstance(node[MARKER], str)


def extract_spaces(raw: dict, file: str | None = None) -> dict[str, tuple[tuple, SearchSpace]]:
    """{name: (key path, space)} for every space in a raw spec."""
    found: dict[str, tuple[tuple, SearchSpace]] = {}

    def walk(node: Any, path: tuple) -> None:
        if _is_space(node):
            where = format_path(path)
            if path and path[0] in ("data", "tune", "plugins"):
                raise SpecError(f"search spaces are not allowed in [{path[0]}]", path=where, file=file)
            try:
                space = SearchSpace.model_validate(node)
            except ValidationError as exc:
                err = exc.errors(include_url=False)[0]
                sub = format_path([p for p in err["loc"] if p != MARKER] or [])
                raise SpecError(err["msg"].removeprefix("Value error, "), path=f"{where}.{sub}" if sub else where, file=file) from None
            name = space.name or where
            if name in found:
                raise SpecError(f"two search spaces are named '{name}'", path=where, file=file)
            found[name] = (path, space)
            return
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, path + (key,))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, path + (i,))

    walk(raw, ())
    return found


def substitute(raw: dict, spaces: dict[str, tuple[tuple, SearchSpace]], values: dict[str, Any]) -> dict:
    """A copy of ``raw`` with each space replaced by its value (its default where ``values`` has none)."""
    out = copy.deepcopy(raw)
    for name, (path, space) in spaces.items():
        node = out
        for key in path[:-1]:
            node = node[key]
        value = values.get(name, space.default_value())
        if isinstance(value, float) and space.kind == "float" and not math.isfinite(value):
            raise SpecError("the chosen value is not finite", path=format_path(path))
        node[path[-1]] = value
    return out
