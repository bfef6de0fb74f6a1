"""The pull request report renders whatever reports a release holds, against production where it can."""
from __future__ import annotations

from pipelines.core.config import RolloutConfig
from pipelines.release.gitops.report import ReportContext, render_report
from pipelines.release.gitops.tables import MAX_ROWS, NOT_AVAILABLE
from pipelines.release.gitops.views import ReleaseView
from pipelines.release_format.deployment import Deployment, ModelRef

GATES = [{"name": "min_accuracy", "passed": True, "measured": 0.85, "threshold": 0.8, "detail": "ok"},
         {"name": "max_parity_gap", "passed": False, "measured": 0.21, "threshold": 0.2, "detail": "too wide"}]


def view(version: str, accuracy: float, reports: dict | None = None, files: tuple[str, ...] = ()) -> ReleaseView:
    manifest = {"lineage": {"model_name": "m", "model_version": version, "data_md5": {"d.csv": "ab" * 16},
                            "git_commit": "c" * 40, "git_dirty": False, "mlflow_run_id": "r1"},
                "metrics": {"keras": {"accuracy": accuracy, "rows": 100},
                            "tflite": {"int8": {"size_bytes": 1000 + int(version), "accuracy": accuracy}},
                            "gates": GATES}}
    evaluation = {"groups": {"sex": {"groups": {"F": {"accuracy": accuracy + 0.01, "count": 40}},
                                     "accuracy_gap": 0.05}}}
    all_reports = {"evaluation.json": evaluation, **(reports or {})}
    return ReleaseView(f"releases/m/{version}", manifest, all_reports, {n: 10 for n in files})


def render(new: ReleaseView, old: ReleaseView | None) -> str:
    deployment = Deployment(model=ModelRef(name="m", version=new.version, release=new.path, mlflow_run_id="r1",
                                           signer="f" * 64), artifacts={"model_int8.tflite": "e" * 64},
                            rollout=RolloutConfig())
    return render_report(ReportContext(new, old, deployment, signer="`keys/release-signing.pub`"))


def test_first_release_without_optional_reports_says_not_available():
    body = render(view("1", 0.85), None)
    assert "first production release" in body and "production (none yet)" in body
    assert "| min_accuracy | 0.8500 | 0.8000 | ✅ pass | ok |" in body
    assert "| max_parity_gap | 0.2100 | 0.2000 | ❌ FAIL | too wide |" in body
    assert "| gates | 1/2 passed |" in body
    for section in ("## Drift", "### Cost"):
        assert f"{section}\n\n{NOT_AVAILABLE}" in body, section
    assert f"| model card | {NOT_AVAILABLE} |" in body
    assert "| rollout | 5% → 25% → 100% |" in body


def test_deltas_against_production_for_metrics_groups_and_sizes():
    body = render(view("2", 0.86), view("1", 0.84))
    assert "| `keras.accuracy` | 0.8600 | 0.8400 | +0.0200 |" in body
    assert "| `keras.rows` | 100 | 100 | +0 |" in body
    assert "| `tflite.int8.size_bytes` | 1002 | 1001 | +1 |" in body  # footprint section, not metrics
    assert body.index("tflite.int8.size_bytes") > body.index("## Footprint and cost")
    assert "| `accuracy_gap` | 0.0500 | 0.0500 | +0.0000 |" in body
    assert "| group | count | accuracy |" in body and "| `F` | 40 (+0) | 0.8700 (+0.0200) |" in body


def test_reports_added_by_other_steps_get_sections_generically():
    reports = {"fairness.json": {"equalized_odds": {"sex": 0.04}}, "footprint.json": {"p95_ms": {"low": 1.2}},
               "cost.json": {"monthly_usd": 12.5}, "drift.json": {"drift": False, "drifted": []},
               "validation_summary.json": {"rows": 3}, "broken.json": None}
    body = render(view("2", 0.86, reports, files=("model_card.md",)), view("1", 0.84, {"cost.json": {"monthly_usd": 10.0}}))
    fairness, footprint, drift = (body.index(s) for s in ("## Fairness", "## Footprint", "## Drift"))
    assert fairness < body.index("`equalized_odds.sex`") < footprint
    assert footprint < body.index("`p95_ms.low`") < drift and "| `monthly_usd` | 12.5000 | 10.0000 | +2.5000 |" in body
    assert "### Cost\n\n_not available_" not in body
    assert drift < body.index("| `drift` | False |")
    others = body.index("## Other reports")
    assert others < body.index("validation_summary.json") and "(not a JSON object)" in body
    assert "| model card | [`model_card.md`](releases/m/2/model_card.md) |" in body


def test_long_reports_are_cut_to_a_readable_table():
    big = {"features": {f"f{i}": {"psi": i / 100} for i in range(100)}}
    body = render(view("2", 0.86, {"drift.json": big}), None)
    assert f"_{100 - MAX_ROWS} more rows in the release folder._" in body


def test_known_report_shapes_get_a_summary_before_all_values():
    drift = {"drift": True, "drifted": ["age"], "blocking": False, "reason": "production release 1",
             "features": {"age": {"test": "ks", "statistic": 0.2, "p_value": 0.001, "psi": 0.3, "drifted": True},
                          "sex": {"test": "chi2", "statistic": 1.0, "p_value": 0.5, "psi": 0.01, "drifted": False}}}
    footprint = {"platforms": {"android": {"selected": "int8", "variants": {"int8": {
        "size_bytes": 900, "accuracy": 0.85, "estimates": {"low": {"p95_ms": 1.5, "energy_mj": 0.2}}}}}}}
    old_footprint = {"platforms": {"android": {"selected": "float16", "variants": {"float16": {
        "size_bytes": 1900, "accuracy": 0.86, "estimates": {"low": {"p95_ms": 1.0, "energy_mj": 0.1}}}}}}}
    body = render(view("2", 0.86, {"drift.json": drift, "footprint.json": footprint}),
                  view("1", 0.84, {"footprint.json": old_footprint}))
    assert "Drift: **yes** (blocking: False); drifted features: age; reference: production release 1." in body
    assert body.index("| `age` | ks | 0.2000 | 0.0010 | 0.3000 | ⚠ yes |") < body.index("| `sex` | chi2")
    assert "| `released variant` | int8 | float16 |  |" in body
    assert "| `size_bytes` | 900 | 1900 | -1000 |" in body and "| `low p95_ms` | 1.5000 | 1.0000 | +0.5000 |" in body
    assert body.count("<details><summary>all values</summary>") == 2


def test_hostile_group_names_keys_and_details_are_inert_in_the_report():
    import re

    hostile = ["<script>alert(1)</script>", "=cmd|' /C calc'!A0", "[x](javascript:alert(1))", "a|b\nc"]
    reports = {"fairness.json": {"race": {"groups": {h: {"accuracy": 0.8, "count": 30} for h in hostile},
                                          "gap": 0.1}},
               "drift.json": {"drift": True, "drifted": hostile, "features": {h: {"psi": 0.3, "drifted": True} for h in hostile}}}
    new = view("2", 0.86, reports)
    new.manifest["metrics"]["gates"] = [{"name": hostile[2], "passed": False, "measured": 1.0, "threshold": 0.5,
                                         "detail": hostile[0] + hostile[1]}]
    body = render(new, None)
    assert "<script" not in body and "](javascript:" not in body and "[x](" not in body
    assert "&lt;script>alert(1)&lt;/script>" in body and "a\\|b c" in body
    for table in re.findall(r"(?:^\|.*\|$\n?)+", body, flags=re.M):
        widths = {len(re.findall(r"(?<!\\)\|", line.replace("\\\\", ""))) for line in table.splitlines()}
        assert len(widths) == 1, table
