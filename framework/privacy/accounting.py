"""(epsilon, delta) for DP-SGD with dp-accounting, Google's accounting library.

    >>> epsilon(noise_multiplier=1.1, sampling_rate=256 / 60000, steps=14062, delta=1e-5, accountant="rdp")
    2.596...
"""

from __future__ import annotations

import logging

import dp_accounting
from dp_accounting import dp_event, pld, rdp


def _not_an_unconverged_order(record: logging.LogRecord) -> bool:
    # the RDP accountant warns for each order whose series does not converge (large sampling rates) and leaves that
    # order out of the minimum it takes; the bound from the other orders still holds, so the lines are noise
    return "failed to converge" not in record.getMessage()


logging.getLogger("absl").addFilter(_not_an_unconverged_order)


def _accountant(kind: str):
    return rdp.RdpAccountant() if kind == "rdp" else pld.PLDAccountant()


def dp_sgd_event(noise_multiplier: float, sampling_rate: float, steps: int):
    return dp_event.SelfComposedDpEvent(
        dp_event.PoissonSampledDpEvent(sampling_rate, dp_event.GaussianDpEvent(noise_multiplier)), steps
    )


def epsilon(*, noise_multiplier: float, sampling_rate: float, steps: int, delta: float, accountant: str) -> float:
    if steps == 0:
        return 0.0
    if noise_multiplier == 0:
        return float("inf")
    acc = _accountant(accountant)
    acc.compose(dp_sgd_event(noise_multiplier, sampling_rate, steps))
    return float(acc.get_epsilon(delta))


def calibrate_noise(*, target_epsilon: float, sampling_rate: float, steps: int, delta: float, accountant: str) -> float:
    """The smallest noise multiplier whose epsilon after ``steps`` is at most ``target_epsilon``."""
    return float(dp_accounting.calibrate_dp_mechanism(
        lambda: _accountant(accountant),
        lambda sigma: dp_sgd_event(sigma, sampling_rate, steps),
        target_epsilon,
        delta,
        bracket_interval=dp_accounting.LowerEndpointAndGuess(0.1, 1.0),
    ))


def default_delta(examples: int) -> float:
    """Below 1/N, as the definition of DP requires to mean anything."""
    return 1.0 / (10 * examples)
