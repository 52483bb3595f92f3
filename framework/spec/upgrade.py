"""Run folders outlive the code: a run's ``resolved.json`` carries ``spec_version``, and reading an older one
goes through the upgrades below, one version at a time (as Ludwig upgrades old configs).

    >>> upgrade({"name": "old", ...})            # no spec_version: version 1
    {"name": "old", ...}                          # as version SPEC_VERSION reads it

Adding an upgrade: bump SPEC_VERSION, and add ``UPGRADES[old] = function(resolved) -> resolved`` that rewrites
the renamed or moved keys. ``tests/fixtures/`` keeps a run folder of each version, which the tests load,
predict from and resume.
"""

from __future__ import annotations

from typing import Any, Callable

from framework.errors import RunError

#: 1: runs before versioning; 2: privacy.reproducible_noise / public_init, a disabled [privacy] kept in place
SPEC_VERSION = 2


def _v1_to_v2(resolved: dict[str, Any]) -> dict[str, Any]:
    # Version 1 dropped a disabled [privacy] section and had no reproducible_noise (its noise came from `seed`).
    privacy = resolved.get("privacy")
    if isinstance(privacy, dict):
        privacy.setdefault("reproducible_noise", True)
    return resolved


UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}


def upgrade(resolved: dict[str, Any], where: str = "resolved.json") -> dict[str, Any]:
    """``resolved`` (a run's resolved.json, without ``spec_version`` afterwards) as this version reads it."""
    data = dict(resolved)
    version = data.pop("spec_version", 1)
    if not isinstance(version, int) or version < 1:
        raise RunError(f"spec_version {version!r} is not a version number", path=where)
    if version > SPEC_VERSION:
        raise RunError(
            f"was written by a newer framework (spec_version {version}; this one reads up to {SPEC_VERSION}); upgrade it",
            path=where,
        )
    while version < SPEC_VERSION:
        data = UPGRADES[version](data)
        version += 1
    return data
