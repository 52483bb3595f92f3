"""A run's privacy plan: sampling rate, steps, the noise multiplier (given or calibrated), delta,
and the callback that writes epsilon into every epoch's history and enforces ``max_epsilon``."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from framework.privacy import accounting
from framework.spec.schema import Spec

SHUFFLE_NOTE = (
    "batches were shuffled, not Poisson-sampled: this epsilon is the Poisson-sampling figure, "
    "which is not a proven bound for shuffled batches"
)


@dataclass
class PrivacyPlan:
    l2_norm_clip: float
    noise_multiplier: float
    delta: float
    delta_is_default: bool
    sampling: str
    accountant: str
    sampling_rate: float
    steps_per_epoch: int
    planned_steps: int
    batch_size: int

    def epsilon_after(self, steps: int) -> float:
        return accounting.epsilon(
            noise_multiplier=self.noise_multiplier, sampling_rate=self.sampling_rate, steps=steps,
            delta=self.delta, accountant=self.accountant,
        )

    def report(self, steps: int) -> dict:
        out = {
            "epsilon": self.epsilon_after(steps),
            "delta": self.delta,
            "delta_default": self.delta_is_default,
            "noise_multiplier": self.noise_multiplier,
            "l2_norm_clip": self.l2_norm_clip,
            "sampling": self.sampling,
            "accountant": self.accountant,
            "steps": steps,
            "sampling_rate": self.sampling_rate,
        }
        if self.sampling == "shuffle":
            out["epsilon_note"] = SHUFFLE_NOTE
        if not math.isfinite(out["epsilon"]):
            out["epsilon"] = None  # JSON has no infinity
            out["epsilon_note"] = "no finite epsilon bounds this run"
        return out


def plan_privacy(spec: Spec, train_examples: int, steps_per_epoch: int) -> PrivacyPlan:
    """The plan for ``train_examples`` private examples and the pipeline's ``steps_per_epoch`` (one count, the engine's)."""
    privacy = spec.dp
    batch = spec.train.batch_size
    rate = min(1.0, batch / train_examples)
    planned = steps_per_epoch * spec.train.epochs
    delta = privacy.delta if privacy.delta is not None else accounting.default_delta(train_examples)
    sigma = privacy.noise_multiplier
    if sigma is None:
        sigma = accounting.calibrate_noise(
            target_epsilon=privacy.target_epsilon, sampling_rate=rate, steps=planned, delta=delta,
            accountant=privacy.accountant,
        )
    plan = PrivacyPlan(
        l2_norm_clip=privacy.l2_norm_clip, noise_multiplier=sigma, delta=delta, delta_is_default=privacy.delta is None,
        sampling=privacy.sampling, accountant=privacy.accountant, sampling_rate=rate,
        steps_per_epoch=steps_per_epoch, planned_steps=planned, batch_size=batch,
    )
    if privacy.max_epsilon is not None:
        first = plan.epsilon_after(steps_per_epoch)
        if first > privacy.max_epsilon:
            from framework.errors import SpecError

            raise SpecError(
                f"one epoch already spends epsilon {first:.3g} > {privacy.max_epsilon:g}; raise the noise or the budget",
                path="privacy.max_epsilon",
            )
    return plan


def epsilon_callback(plan: PrivacyPlan, max_epsilon: float | None):
    """Logs the epsilon spent so far, from the optimizer's count of the updates actually applied; stops
    before the next epoch would pass ``max_epsilon``."""
    import keras

    class Epsilon(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            steps = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
            spent = plan.epsilon_after(steps)
            if logs is not None:
                logs["epsilon"] = spent
            if max_epsilon is not None and plan.epsilon_after(steps + plan.steps_per_epoch) > max_epsilon:
                self.model.stop_training = True

    return Epsilon()


def configure_private_model(model, spec: Spec, train_examples: int, steps_per_epoch: int, loss):
    """Plan a DP run and configure its DP-SGD model (``model.configure_privacy``) with the plan's clip and noise,
    the expected batch size, the per-example ``loss`` and the noise seed. Returns (plan, seeds: randomness.DPSeeds)."""
    from framework.privacy.randomness import dp_seeds

    plan = plan_privacy(spec, train_examples, steps_per_epoch)
    seeds = dp_seeds(spec.seed, spec.dp.reproducible_noise)
    model.configure_privacy(
        l2_norm_clip=plan.l2_norm_clip, noise_multiplier=plan.noise_multiplier,
        expected_batch_size=spec.train.batch_size, loss=loss, noise_state=seeds.noise,
        allow_ghost=spec.dp.clipping == "auto", augmentation_multiplicity=spec.dp.augmentation_multiplicity,
    )
    return plan, seeds


def as_dict(plan: PrivacyPlan) -> dict:
    return asdict(plan)
