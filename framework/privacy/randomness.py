"""The randomness DP-SGD relies on: the Gaussian noise and the Poisson draws.

The guarantee assumes nobody can predict either, so by default both come from the operating system's
entropy, never from the spec's published ``seed``. Their state lives only in the run's checkpoint (so a
resumed run continues the same streams and never replays them) and is deleted when the run completes.
``privacy.reproducible_noise = true`` derives them from ``seed`` instead, for tests and debugging; such a
run is marked not private in metrics.json.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

NOT_PRIVATE_REASON = "privacy.reproducible_noise = true: the noise and the batches follow from the published seed"


@dataclass(frozen=True)
class DPSeeds:
    noise: int
    sampling: int
    secret: bool


def dp_seeds(seed: int, reproducible: bool) -> DPSeeds:
    """Seeds for the noise generator and the Poisson sampler: secret unless ``reproducible``."""
    if reproducible:
        # distinct streams from the one seed, and distinct from the seed's own uses (splits, initialisation)
        return DPSeeds(noise=(seed * 2 + 1) % 2**31, sampling=(seed * 2 + 2) % 2**31, secret=False)
    return DPSeeds(noise=secrets.randbits(31), sampling=secrets.randbits(31), secret=True)
