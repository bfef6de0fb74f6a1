"""Privacy-preserving training behind the same `trained_model` stage: DP-SGD or federated averaging (train.privacy).

One model is trained, not the mitigation sweep: under DP every extra model fitted on the rows and chosen on
validation spends budget, and a federation trains one global model. How the fairness mitigation combines:
- dp_sgd: `reweighing` weights each row's loss before its gradient is clipped, so one row still moves the sum by at
  most l2_clip (the weights come from group x label counts, an aggregate the accountant does not charge); the
  `penalty` is a batch-level term whose per-row effect clipping cannot bound, so DP-SGD trains without it and says so.
- federated: each device applies the mitigation to its own batches, as central training does.
A pinned `fairness.strength` is used; `auto` needs the sweep, so the private model is unmitigated.
The fairness gate then decides on the test rows as for any model.
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from pipelines.core.config import Settings
from pipelines.data.features import FeatureSpec, encode_features, encode_labels


def mitigation_plan(settings: Settings) -> tuple[float, str]:
    """The strength a private run applies, and why."""
    fairness, mode = settings.params.fairness, settings.params.train.privacy
    if fairness.strength == "auto":
        return 0.0, f"{mode}: fairness.strength auto needs the validation sweep, which private training does not run"
    strength = float(fairness.strength)
    if mode == "dp_sgd" and fairness.method == "penalty" and strength > 0:
        return 0.0, ("dp_sgd: the penalty is a batch-level term whose per-row effect clipping cannot bound, so it is "
                     "not applied (use fairness.method reweighing to mitigate under DP)")
    return strength, f"{mode}: pinned in params fairness.strength, applied " + \
        ("to each row's loss before clipping" if mode == "dp_sgd" else "on each device's batches")


def check_private(settings: Settings, train: pd.DataFrame) -> None:
    """Stop with one line before any training when the privacy configuration cannot be met."""
    mode, privacy = settings.params.train.privacy, settings.params.privacy
    if mode == "dp_sgd":
        from pipelines.training.dp_sgd import budget

        budget(len(train), privacy.dp)
    elif mode == "federated":
        from pipelines.training.federated import check

        check(train, privacy.federated)


def fit_private(settings: Settings, train: pd.DataFrame, validation: pd.DataFrame, spec: FeatureSpec
                ) -> tuple[Any, dict[str, list[float]], float, str, dict[str, Any]]:
    """The private model, its history, the mitigation strength applied and why, and the privacy facts."""
    from pipelines.training.mitigation import constrained_features, training_inputs

    params = settings.params
    mode, privacy = params.train.privacy, params.privacy
    strength, why = mitigation_plan(settings)
    x, y = encode_features(train, spec), encode_labels(train, spec)
    x_val, y_val = encode_features(validation, spec), encode_labels(validation, spec)
    extra = training_inputs(train, validation, y, params.fairness, constrained_features(params.fairness, params.data),
                            strength)
    if mode == "dp_sgd":
        from pipelines.training.dp_sgd import budget, train_dp

        model, history, facts = train_dp(x, y, x_val, y_val, params.train, privacy.dp, budget(len(x), privacy.dp),
                                         sample_weight=extra.get("sample_weight"))
    else:
        from pipelines.training.federated import partition, train_federated

        parts = partition(train, privacy.federated)
        model, history, facts = train_federated(
            x, y, parts, x_val, y_val, params.train, privacy.federated, sample_weight=extra.get("sample_weight"),
            groups=extra.get("groups"), penalty=extra.get("penalty", 0.0),
            constraint=extra.get("constraint", params.fairness.constraint), delta=privacy.dp.delta)
    return model, history, strength, why, facts


def headline(facts: dict[str, Any]) -> dict[str, float]:
    """The figures MLflow, the step's metrics and the card show (privacy_epsilon, privacy_delta, traffic)."""
    out: dict[str, float] = {}
    if facts.get("method") == "dp_sgd":
        out = {"privacy_epsilon": facts["epsilon"], "privacy_delta": facts["delta"],
               "privacy_noise_multiplier": facts["noise_multiplier"], "privacy_steps": facts["steps"]}
    elif facts.get("method") == "federated":
        traffic = facts["traffic"]
        out = {"federated_rounds": facts["rounds"], "federated_devices": facts["devices"],
               "federated_mb_per_device_round": traffic["mb_per_device_round"],
               "federated_bytes_up_per_device_round": traffic["mean_bytes_up_per_device_round"],
               "federated_bytes_down_per_device_round": traffic["mean_bytes_down_per_device_round"]}
        if facts.get("client_dp"):
            out |= {"privacy_epsilon": facts["client_dp"]["epsilon"], "privacy_delta": facts["client_dp"]["delta"]}
    return {k: v for k, v in out.items() if math.isfinite(v)}  # epsilon inf: no guarantee, stated in privacy.json
