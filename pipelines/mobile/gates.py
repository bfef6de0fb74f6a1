"""The on-device stages' gates (named in the stage catalog): conversion agreement and the released variants."""
from __future__ import annotations

from pipelines.core.config import Settings
from pipelines.core.gates import footprint_gates, variant_gates
from pipelines.core.io import read_json
from pipelines.core.paths import ArtifactPaths
from pipelines.core.verdict import Outcome


def agreement(settings: Settings) -> Outcome:
    """Every TFLite variant agrees with the Keras model on at least gates.conversion.min_agreement_with_keras."""
    report = read_json(ArtifactPaths(settings.root).tflite_report)
    return Outcome(variant_gates(report, settings.params.gates.conversion))


def footprint(settings: Settings) -> Outcome:
    """Each platform has a released variant: the smallest passing gates.on_device."""
    report = read_json(ArtifactPaths(settings.root).footprint_report)
    return Outcome(footprint_gates(report, settings.params.gates.on_device))
