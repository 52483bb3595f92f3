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
    noise: tuple[int, int, int]  # a Philox generator's state: 128-bit counter and 64-bit key
    sampling: int  # the stateless Poisson draws' 63-bit key
    secret: bool


def dp_seeds(seed: int, reproducible: bool) -> DPSeeds:
    """The noise generator's state and the Poisson sampler's key: secret unless ``reproducible``."""
    if reproducible:
        # distinct streams from the one seed, and distinct from the seed's own uses (splits, initialisation)
        return DPSeeds(noise=(0, 0, seed * 2 + 1), sampling=seed * 2 + 2, secret=False)
    return DPSeeds(noise=tuple(secrets.randbits(63) for _ in range(3)), sampling=secrets.randbits(63), secret=True)
