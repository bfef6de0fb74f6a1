"""The post-release assets' gates (named in the stage catalog): guardrails, observed budgets, production drift."""
from __future__ import annotations

from pipelines.core.config import Settings
from pipelines.core.gates import GateResult
from pipelines.core.io import read_json
from pipelines.core.paths import FLEET_CANARY_REPORT, FLEET_DRIFT_REPORT, FLEET_FINOPS_REPORT
from pipelines.core.verdict import Outcome


def guardrails(settings: Settings) -> Outcome:
    """No guardrail is breached (a breach decides rollback)."""
    report = read_json(settings.resolve(FLEET_CANARY_REPORT))
    breached = sum(t.get("status") == "breach" for t in report["tests"])
    passed = report["decision"] != "rollback"
    line = f"decision {report['decision']} at stage {report['stage']}" + (
        f": {'; '.join(report['reasons'])}" if report["reasons"] else "")
    return Outcome([GateResult("no_rollback", passed, float(breached), 0.0, line)], description=line,
                   tables={"decision": report["decision"]})


def observed_budget(settings: Settings) -> Outcome:
    """Observed spend and traffic stay within gates.budgets; blocks when gates.budgets.blocking."""
    report = read_json(settings.resolve(FLEET_FINOPS_REPORT))
    results = [GateResult(b["name"], b["passed"], b["measured"], b["threshold"], b["detail"])
               for b in report["budgets"]]
    return Outcome(results, blocking=settings.params.gates.budgets.blocking,
                   tables={"over_budget": ", ".join(report["over_budget"]) or "none"})


def production_drift(settings: Settings) -> Outcome:
    """DP-noised production inputs match the release's reference profile."""
    report = read_json(settings.resolve(FLEET_DRIFT_REPORT))
    drifted = ", ".join(report["drifted"]) or "none"
    line = f"production inputs drifted from release {report.get('reference')}: {drifted}" if report["drift"] else \
        f"no production drift against release {report.get('reference')}"
    return Outcome([GateResult("no_production_drift", not report["drift"], float(len(report["drifted"])), 0.0, line)],
                   description=line, tables={"drifted": drifted})
