"""The governance stage's gate (named in the stage catalog): per-group fairness of Keras and every TFLite variant."""
from __future__ import annotations

from pipelines.core.config import Settings
from pipelines.core.io import read_json
from pipelines.core.paths import ArtifactPaths
from pipelines.core.verdict import Outcome
from pipelines.governance.fairness import fairness_gates, flagged_text


def fairness(settings: Settings) -> Outcome:
    """Keras and every TFLite variant meet gates.fairness: parity, equalized odds, per-group accuracy drop."""
    report = read_json(ArtifactPaths(settings.root).fairness_report)
    found = Outcome(fairness_gates(report, settings.params.gates.fairness))
    flagged = flagged_text(report)
    return Outcome(found.results, description=f"{found.line()}; {flagged}", tables={"flagged groups": flagged})
