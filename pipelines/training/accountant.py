"""The privacy budget of DP-SGD and of client-level DP in federated averaging, from the PRV accountant.

prv-accountant (Gopi, Lee & Wutschitz 2021) composes the privacy loss of the Poisson-subsampled Gaussian
mechanism numerically and returns epsilon bounds for a delta; we report its upper bound. dp-accounting is not
used: its 0.6 release pins attrs<24, which breaks model-signing's and coremltools' attrs/cattrs.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from pipelines.core.errors import PipelineError

EPS_ERROR = 0.01  # the accountant's allowed error on epsilon


@dataclass(frozen=True)
class Budget:
    """What one private training run spends: epsilon (upper bound) at delta for its noise, sampling and steps."""

    epsilon: float
    delta: float
    noise_multiplier: float
    sampling_rate: float
    steps: int
    accountant: str = "prv-accountant PRVAccountant(PoissonSubsampledGaussianMechanism), upper bound"

    def facts(self) -> dict:
        return asdict(self)


def epsilon(noise_multiplier: float, sampling_rate: float, steps: int, delta: float) -> float:
    """Epsilon (the accountant's upper bound) after `steps` Poisson-subsampled Gaussian steps at `delta`."""
    from prv_accountant import PoissonSubsampledGaussianMechanism, PRVAccountant

    if steps < 1:
        return 0.0
    mechanism = PoissonSubsampledGaussianMechanism(noise_multiplier=noise_multiplier,
                                                   sampling_probability=min(1.0, sampling_rate))
    try:
        accountant = PRVAccountant(prvs=mechanism, max_self_compositions=steps, eps_error=EPS_ERROR,
                                   delta_error=delta / 1000)
        return float(accountant.compute_epsilon(delta=delta, num_self_compositions=[steps])[2])
    except (RuntimeError, OverflowError, ValueError, FloatingPointError):
        # so little noise that the privacy loss cannot be discretized: no meaningful guarantee
        return float("inf")


def noise_for(target_epsilon: float, sampling_rate: float, steps: int, delta: float) -> float:
    """The smallest noise multiplier (to 1%) whose epsilon after `steps` is at most `target_epsilon`."""
    low, high = 0.3, 0.6
    while epsilon(high, sampling_rate, steps, delta) > target_epsilon:
        low, high = high, high * 2
        if high > 200:
            raise PipelineError(f"privacy: no noise multiplier up to 200 reaches epsilon {target_epsilon:g} "
                                f"in {steps} steps at sampling rate {sampling_rate:.4g}; raise the target or "
                                "lower epochs or batch_size")
    while high / low > 1.01:  # bisection: epsilon falls as the noise grows
        middle = (low + high) / 2
        if epsilon(middle, sampling_rate, steps, delta) > target_epsilon:
            low = middle
        else:
            high = middle
    return high


def plan(*, noise_multiplier: float | str, target_epsilon: float, max_epsilon: float, delta: float,
         sampling_rate: float, steps: int, what: str) -> Budget:
    """The noise and the budget a run will spend, checked against the gate before any training.

    `what` names the params section in the one-line error (privacy.dp, privacy.federated)."""
    if noise_multiplier == "auto":
        if target_epsilon > max_epsilon:
            raise PipelineError(f"{what}: target_epsilon {target_epsilon:g} is above the gate max_epsilon "
                                f"{max_epsilon:g}")
        noise = noise_for(target_epsilon, sampling_rate, steps, delta)
    else:
        noise = float(noise_multiplier)
    spent = epsilon(noise, sampling_rate, steps, delta)
    if spent > max_epsilon:
        raise PipelineError(f"{what}: noise_multiplier {noise:g} over {steps} steps at sampling rate "
                            f"{sampling_rate:.4g} gives epsilon {spent:.3f} at delta {delta:g}, above the gate "
                            f"max_epsilon {max_epsilon:g}; raise the noise or lower the epochs")
    return Budget(epsilon=spent, delta=delta, noise_multiplier=noise, sampling_rate=sampling_rate, steps=steps)
