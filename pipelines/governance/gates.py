"""The governance stage's gate (named in the stage catalog): per-group fairness of Keras and every TFLite variant."""
from __future__ import annotations

from pipelines.core.config import Settings
from pipelines.core.io import read_json
from pipelines.core.paths import ArtifactPaths
from pipelines.core.verdict import Outcome
from pipelines.governance.fairness import compact_failures, fairness_gates, flagged_text


def fairness(settings: Settings) -> Outcome:
    """Keras and every TFLite variant meet gates.fairness: parity, equalized odds, per-group accuracy drop."""
    report = read_json(ArtifactPaths(settings.root).fairness_report)
    found = Outcome(fairness_gates(report, settings.params.gates.fairness))
    flagged = flagged_text(report)
    line = compact_failures(report, found.results) or found.line()  # one line; every model's detail in the table
    detail = "\n".join(f"- {g.detail}" for g in found.results if not g.passed) or "all gates passed"
    return Outcome(found.results, description=f"{line}; {flagged}",
                   tables={"flagged groups": flagged, "detail": detail})
