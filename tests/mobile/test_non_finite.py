"""A converted variant that returns NaN is scored as wrong, counted, and refused by the footprint gate."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.core.config import Params
from pipelines.core.gates import on_device_gates
from pipelines.mobile.steps import _figures
from pipelines.training.metrics import group_codes
from pipelines.training.tally import Chunk, Tallies


def test_nan_outputs_are_wrong_answers_and_disagreements_and_fail_the_finite_outputs_gate():
    y = np.array([1, 0, 1, 0, 1, 0])
    keras = np.array([0.9, 0.1, 0.8, 0.2, 0.7, 0.3])
    proba = np.array([0.9, 0.1, np.nan, 0.2, np.inf, 0.3])
    groups = group_codes(pd.DataFrame({"sex": ["a", "b", "a", "b", "a", "b"]}))
    with Tallies(0.5, reference="keras") as tallies:
        for part in (slice(0, 3), slice(3, 6)):  # two chunks
            tallies.add(Chunk(y[part], {g: (n, c[part]) for g, (n, c) in groups.items()},
                              {"keras": keras[part], "variant": proba[part]}, None))
        facts = _figures(tallies.models["variant"], paired=True)
    assert facts["non_finite_outputs"] == 2
    assert facts["accuracy"] == 4 / 6 and facts["agreement_with_keras"] == 4 / 6
    assert np.isfinite(facts["auc"]) and facts["max_abs_probability_error"] <= 1.0

    variant = {"accuracy": facts["accuracy"], "agreement_with_keras": 1.0, "size_bytes": 10, "groups": {},
               "non_finite_outputs": facts["non_finite_outputs"]}
    gates = {g.name: g for g in on_device_gates(variant, {"accuracy": 0.5, "groups": {}}, Params.model_validate(
        {"data": {"source": "d.csv", "label": "y", "positive_label": 1, "sensitive_features": ["s"]}}
    ).gates.on_device)}
    assert not gates["finite_outputs"].passed
    assert gates["finite_outputs"].detail == "test rows with a non-finite output 2.0000 exceeds the limit = 0.0000"
