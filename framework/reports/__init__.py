"""Report stage: run folders and the pandas tables built from them."""

from framework.reports.table import load

__all__ = ["load"]
