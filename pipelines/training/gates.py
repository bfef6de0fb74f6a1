"""The training stages' gates (named in the stage catalog): the chosen mitigation strength and test accuracy."""
from __future__ import annotations

from pipelines.core.config import Settings
from pipelines.core.gates import model_gates
from pipelines.core.io import read_json
from pipelines.core.paths import MITIGATION_FILE, ArtifactPaths
from pipelines.core.verdict import Outcome
from pipelines.training.strength import strength_gate


def strength(settings: Settings) -> Outcome:
    """With fairness.strength auto, a strength met the fairness limit and gates.keras on the validation rows."""
    result = strength_gate(read_json(ArtifactPaths(settings.root).trained_model / MITIGATION_FILE))
    return Outcome([result], description=result.detail)


def accuracy(settings: Settings) -> Outcome:
    """The Keras model's test accuracy meets gates.keras (its floor and the simple baselines)."""
    return Outcome(model_gates(read_json(ArtifactPaths(settings.root).evaluation_report), settings.params.gates.keras))
