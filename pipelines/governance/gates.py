"""The governance stage's gate (named in the stage catalog): per-group fairness of Keras and every TFLite and ORT
variant. Keras must meet every limit; a variant that fails one is never released (the footprint report picks each
platform's release among the variants that pass), so the gate fails for a runtime only when none of its variants
passes."""
from __future__ import annotations

from typing import Any

from pipelines.core.config import Settings
from pipelines.core.gates import GateResult, gate_model, gates_table
from pipelines.core.io import read_json
from pipelines.core.paths import ArtifactPaths
from pipelines.core.verdict import Outcome
from pipelines.governance.fairness import compact_failures, fairness_gates, flagged_text
from pipelines.mobile.ort import fairness_name


def runtimes(report: dict[str, Any]) -> dict[str, list[str]]:
    """The scored variants by runtime: ORT's (named ort_<variant>) and TFLite's (every other but the reference)."""
    variants = [m for m in report["order"] if m != report["reference"]]
    ort = [m for m in variants if m.startswith(fairness_name(""))]
    return {"tflite": [m for m in variants if m not in ort], "onnxruntime": ort}


FAIR_VARIANTS = "fair_variants"  # the verdict's per-runtime result: fair_variants[<runtime>]


def runtime_verdicts(report: dict[str, Any], results: list[GateResult]) -> tuple[list[GateResult], list[GateResult]]:
    """(the fairness gate's verdict, the failed gates behind a failed one): every gate of the reference model, and
    per runtime one result (FAIR_VARIANTS) saying how many of its variants meet every gate (at least one must) and
    which are not releasable."""
    failing = {gate_model(g.name) for g in results if not g.passed}
    reference = report["reference"]
    verdict = [g for g in results if gate_model(g.name) == reference]
    behind = [g for g in verdict if not g.passed]
    for runtime, models in runtimes(report).items():
        if not models:
            continue
        fair = [m for m in models if m not in failing]
        unfair = [m for m in models if m in failing]
        detail = (f"{runtime}: {len(fair)} of {len(models)} variants meet gates.fairness"
                  + (f"; not releasable: {', '.join(unfair)}" if unfair else ""))
        verdict.append(GateResult(f"{FAIR_VARIANTS}[{runtime}]", bool(fair), float(len(fair)), 1.0, detail))
        if not fair:
            behind += [g for g in results if not g.passed and gate_model(g.name) in models]
    return verdict, behind


def test_share(settings: Settings) -> float | None:
    """The test share the dataset_splits step used (its recorded summary; split.auto_test_size may raise it above
    split.test_size), None with a shipped test file."""
    if settings.params.data.test_source is not None:
        return None
    recorded = ArtifactPaths(settings.root).metrics("dataset_splits")
    share = read_json(recorded).get("test_share") if recorded.is_file() else None
    return float(share) if share is not None else settings.params.split.test_size


def fairness(settings: Settings) -> Outcome:
    """Keras meets gates.fairness, and each runtime has a variant that does (only those can be released)."""
    report = read_json(ArtifactPaths(settings.root).fairness_report)
    results = fairness_gates(report, settings.params.gates.fairness)
    verdict, behind = runtime_verdicts(report, results)
    found = Outcome(verdict)
    flagged = flagged_text(report)
    # one line; every model's detail in the table
    line = compact_failures(report, behind, test_share(settings)) or found.line()
    brief = flagged_text(report, list_rates=False)
    counts = {runtime: len(models) for runtime, models in runtimes(report).items()}
    excluded = "; ".join(g.detail for g in verdict if g.name.startswith(f"{FAIR_VARIANTS}[")
                         and g.measured < counts[g.name[len(FAIR_VARIANTS) + 1:-1]])
    detail = "\n".join(f"- {g.detail}" for g in results if not g.passed) or "all gates passed"
    return Outcome(verdict, description=f"{line}; {brief}" + (f"; {excluded}" if excluded and found.passed else ""),
                   tables={"flagged groups": flagged, "detail": detail, "every model": gates_table(results)})
