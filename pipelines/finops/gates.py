"""The FinOps stage's gate (named in the stage catalog): the release within gates.budgets."""
from __future__ import annotations

from pipelines.core.config import Settings
from pipelines.core.io import read_json
from pipelines.core.paths import ArtifactPaths
from pipelines.core.verdict import Outcome
from pipelines.finops.cost import budget_gates


def budget(settings: Settings) -> Outcome:
    """The release fits gates.budgets (monthly $, MB per device, model bytes); blocks when gates.budgets.blocking."""
    budgets = settings.params.gates.budgets
    found = Outcome(budget_gates(read_json(ArtifactPaths(settings.root).cost_report)["release"], budgets),
                    blocking=budgets.blocking)
    if budgets.blocking or found.passed:
        return found
    return Outcome(found.results, blocking=False,
                   description=found.line() + " (warning: gates.budgets.blocking is false)")
