"""What every spec section shares: strict tables, typed tables, value helpers and run-name constants."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from framework.errors import did_you_mean

#: A run reference 'latest:NAME' names the newest completed run of NAME (looked up when training starts).
LATEST = "latest:"
#: What a run name may be: the run folder is reports/<name>-<timestamp>-<id>.
RUN_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class StrictModel(BaseModel):
    """A spec table: unknown keys are errors that suggest the closest known key."""

    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and cls.model_config.get("extra") == "forbid":
            known = set(cls.model_fields)
            for key in data:
                if key not in known:
                    raise PydanticCustomError(
                        "unknown_key",
                        "unknown key '{key}'{hint}",
                        {"key": str(key), "hint": did_you_mean(str(key), known)},
                    )
        return data


def finite_number(value: float, info: ValidationInfo) -> float:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value}")
    return value


def positive_dims(value: list[int] | None) -> list[int] | None:
    if value is not None and (not value or any(d < 1 or d > 2**31 for d in value)):
        raise ValueError(f"dimensions must be whole numbers from 1 to 2^31, at least one; got {value}")
    return value


class TypedTable(BaseModel):
    """A table with a ``type`` and that type's keyword arguments (checked when built)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    type: str = Field(description="Registered name, e.g. a keras class name.")

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})
