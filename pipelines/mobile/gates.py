"""The on-device stages' gates (named in the stage catalog): conversion agreement and the released variants."""
from __future__ import annotations

from pipelines.core.config import Settings
from pipelines.core.gates import footprint_gates, variant_gates
from pipelines.core.io import read_json
from pipelines.core.paths import ArtifactPaths
from pipelines.core.verdict import Outcome


def agreement(settings: Settings) -> Outcome:
    """Every conversion of the Keras model (convert.tflite_variants) agrees with it on at least
    gates.conversion.min_agreement_with_keras. Derived models (pruned and fine-tuned, LiteRT quantizer recipes) are
    candidates, not conversions: the footprint gate's per-variant agreement decides whether one can be released."""
    report = read_json(ArtifactPaths(settings.root).tflite_report)
    converted = set(settings.params.convert.tflite_variants)
    conversions = {**report, "variants": {n: v for n, v in report["variants"].items() if n in converted}}
    return Outcome(variant_gates(conversions, settings.params.gates.conversion))


def footprint(settings: Settings) -> Outcome:
    """Each platform has a released variant: the smallest passing gates.on_device."""
    report = read_json(ArtifactPaths(settings.root).footprint_report)
    return Outcome(footprint_gates(report, settings.params.gates.on_device))
