"""The [track] section: log runs to an experiment tracker (MLflow, an optional extra: pip install -e ".[track]")."""

from __future__ import annotations

import importlib.util
import re

from pydantic import Field, ValidationInfo, field_validator

from framework.spec.resolve import spec_folder
from framework.spec.sections.base import StrictModel

#: A tracking URI with a scheme (file:, http:, https:, sqlite:, databricks, ...); anything else is a folder.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


class TrackSpec(StrictModel):
    """Log each run (and each tune trial) to MLflow: the spec's parameters, every epoch's metrics, the test
    metrics and the run folder's files. Needs MLflow: pip install -e ".[track]"."""

    mlflow: bool = Field(True, description="Log to MLflow (false keeps the section, switched off).")
    tracking_uri: str | None = Field(
        None,
        description=(
            "Where MLflow keeps runs: a URI (file:, http(s):, sqlite:, databricks) or a folder, relative to the spec "
            "(default: mlruns/ next to the reports folder, as a file: URI)."
        ),
    )
    experiment: str | None = Field(None, description="The MLflow experiment (default: the spec's name).")

    @field_validator("mlflow")
    @classmethod
    def _mlflow_installed(cls, value: bool) -> bool:
        if value and importlib.util.find_spec("mlflow") is None:
            raise ValueError('needs MLflow, which is not installed: pip install -e ".[track]" (or set mlflow = false)')
        return value

    @field_validator("tracking_uri")
    @classmethod
    def _folder_as_uri(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A folder (not a URI) becomes a file: URI, relative to the spec's folder. A Windows drive is a folder."""
        if not value or (_URI.match(value) and not re.match(r"^[A-Za-z]:[\\/]", value)):
            return value or None
        folder = spec_folder(info.context) / value
        return folder.resolve().as_uri()
