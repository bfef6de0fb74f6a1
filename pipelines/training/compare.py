"""The privacy trade-off table: central, DP-SGD, federated and federated + client DP + SecAgg+ trained on the same
splits and measured on the same test rows (`mobile-mlops privacy compare`; reports/privacy_tradeoff.json and .md).

Each private row is trained exactly as `trained_model` would train it with that `train.privacy` (same code, same
mitigation rule, pipelines.training.privacy), so the table answers what switching the setting costs. Two central
rows are given: unmitigated (what DP-SGD is compared with, since the penalty does not combine with DP-SGD) and
with the pinned mitigation (what the federated rows are compared with, since devices apply it too).
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from pipelines.core.config import Settings, load_settings
from pipelines.core.errors import PipelineError
from pipelines.core.io import atomic_path, write_json
from pipelines.core.progress import track
from pipelines.data.features import encode_features, encode_labels, fit_feature_spec
from pipelines.data.split import load_split
from pipelines.training.metrics import group_metrics, intersection_name

# A command's report, not a stage's output (like reports/benchmarks.json): the catalog's paths are stage outputs only.
PRIVACY_TRADEOFF = "reports/privacy_tradeoff.json"
PRIVACY_TRADEOFF_TABLE = "reports/privacy_tradeoff.md"
ROWS = ("central", "central_mitigated", "dp_sgd", "federated", "federated_dp_secagg")
TARGETS = {"dp_sgd": ("central", 0.025), "federated": ("central_mitigated", 0.02)}  # accuracy points, issue 15


def _variant(settings: Settings, row: str) -> Settings:
    """The params of one row: the user's, with train.privacy (and for the last row client DP and SecAgg+) set."""
    mode = {"central": "none", "central_mitigated": "none", "dp_sgd": "dp_sgd"}.get(row, "federated")
    extra: dict[str, Any] = {"train.privacy": mode}
    if row == "federated":
        extra |= {"privacy.federated.client_dp": False, "privacy.federated.secagg": False}
    if row == "federated_dp_secagg":
        extra |= {"privacy.federated.client_dp": True, "privacy.federated.secagg": True}
    return load_settings(settings.path, {**settings.overrides, **extra})


def _train(settings: Settings, row: str, train, validation, spec) -> tuple[Any, float, dict[str, Any]]:
    from pipelines.training.keras_model import fit_mitigated
    from pipelines.training.privacy import check_private, fit_private

    variant = _variant(settings, row)
    if row.startswith("central"):
        pinned = variant.params.fairness.strength
        strength = float(pinned) if row == "central_mitigated" and pinned != "auto" else 0.0
        model, _ = fit_mitigated(variant, train, validation, spec, strength)
        return model, strength, {"method": "central"}
    check_private(variant, train)
    model, _, strength, _, facts = fit_private(variant, train, validation, spec)
    return model, strength, facts


def _epsilon(facts: dict[str, Any]) -> tuple[float | None, float | None, str | None]:
    if facts.get("method") == "dp_sgd":
        return facts["epsilon"], facts["delta"], "example"
    if facts.get("client_dp"):
        return facts["client_dp"]["epsilon"], facts["client_dp"]["delta"], "device"
    return None, None, None


def privacy_tradeoff(settings: Settings, rows: tuple[str, ...] = ROWS) -> dict[str, Any]:
    """Train the rows on the current splits and write reports/privacy_tradeoff.json and .md; rows not asked for
    are kept from the existing report when it was made with the same params."""
    from pipelines.training.mitigation import constrained_features
    from pipelines.training.strength import DISPARITY
    from pipelines.training.train import predict_keras

    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise PipelineError(f"privacy compare: unknown row '{unknown[0]}' (rows: {', '.join(ROWS)})")
    params = settings.params
    train, validation, test = (load_split(settings, s) for s in ("train", "validation", "test"))
    spec = fit_feature_spec(train, params.data)
    if params.fairness.strength == "auto":  # resolved once, by the central sweep, for every row
        from pipelines.training.sweep import sweep

        chosen = sweep(settings, train, validation, spec)[2]
        settings = load_settings(settings.path, {**settings.overrides, "fairness.strength": chosen})
        params = settings.params
    x_test, y_test = encode_features(test, spec), encode_labels(test, spec)
    features = constrained_features(params.fairness, params.data)
    grouping, key = intersection_name(features), DISPARITY[params.fairness.constraint]
    results = _kept(settings, rows)
    for row in track(rows, "privacy compare"):
        started = time.perf_counter()
        model, strength, facts = _train(settings, row, train, validation, spec)
        seconds = time.perf_counter() - started
        proba = predict_keras(model, x_test)
        gaps = group_metrics(y_test, proba, test[features], params.train.threshold, intersection=True,
                             min_group_size=params.gates.fairness.min_group_size)[grouping]
        epsilon, delta, unit = _epsilon(facts)
        traffic = facts.get("traffic", {})
        results.append({
            "row": row, "accuracy": float(np.mean((proba >= params.train.threshold) == (y_test > 0.5))),
            "disparity": gaps[key], "disparity_metric": f"{key} ({grouping})", "epsilon": epsilon, "delta": delta,
            "dp_unit": unit, "wall_seconds": seconds, "mitigation_strength": strength,
            "bytes_per_client_round": (traffic["mean_bytes_up_per_device_round"]
                                       + traffic["mean_bytes_down_per_device_round"]) if traffic else None,
            "bytes_up_per_client_round": traffic.get("mean_bytes_up_per_device_round"),
            "bytes_down_per_client_round": traffic.get("mean_bytes_down_per_device_round"),
            "facts": {k: v for k, v in facts.items() if k not in ("rows_per_device",)},
        })
        results.sort(key=lambda r: ROWS.index(r["row"]))
        _write(settings, results, len(train), len(test))  # each finished row is kept if a later one fails
    return _write(settings, results, len(train), len(test))


def _kept(settings: Settings, rows: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of the existing report not being re-measured, when it was made with the same params (sha256)."""
    from pipelines.core.io import read_json

    path = settings.resolve(PRIVACY_TRADEOFF)
    if not path.is_file():
        return []
    earlier = read_json(path)
    if earlier.get("params_sha256") != settings.section_hash():
        return []
    return [r for r in earlier.get("rows", []) if r["row"] not in rows]


def _write(settings: Settings, results: list[dict[str, Any]], train_rows: int, test_rows: int) -> dict[str, Any]:
    """The report of the rows measured so far, with the issue's targets where both rows exist."""
    params = settings.params
    by_row = {r["row"]: r for r in results}
    targets = {row: {"compared_with": ref, "max_accuracy_drop": drop,
                     "accuracy_drop": by_row[ref]["accuracy"] - by_row[row]["accuracy"],
                     "met": by_row[ref]["accuracy"] - by_row[row]["accuracy"] <= drop
                     and (row != "dp_sgd" or (by_row[row]["epsilon"] or 0) <= params.privacy.dp.max_epsilon)}
               for row, (ref, drop) in TARGETS.items() if row in by_row and ref in by_row}
    report = {"schema": "mobile-mlops/privacy-tradeoff/v1", "test_rows": test_rows, "train_rows": train_rows,
              "rows": results, "targets": targets, "privacy": params.privacy.model_dump(),
              "fairness_strength": params.fairness.strength, "params_sha256": settings.section_hash()}
    write_json(settings.resolve(PRIVACY_TRADEOFF), report)
    with atomic_path(settings.resolve(PRIVACY_TRADEOFF_TABLE)) as tmp:
        tmp.write_text(markdown(report) + "\n")
    return report


def _fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else format(value, pattern)


def markdown(report: dict[str, Any]) -> str:
    """The trade-off as a Markdown table."""
    lines = ["| training | test accuracy | disparity | epsilon (delta) | DP unit | wall time s | bytes per client "
             "per round (up / down) | mitigation strength |", "|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        eps = "-" if r["epsilon"] is None else f"{r['epsilon']:.3g} ({r['delta']:g})"
        traffic = "-" if r["bytes_per_client_round"] is None else \
            f"{r['bytes_per_client_round']:,.0f} ({r['bytes_up_per_client_round']:,.0f} / " \
            f"{r['bytes_down_per_client_round']:,.0f})"
        lines.append(f"| {r['row']} | {r['accuracy']:.4f} | {_fmt(r['disparity'], '.4f')} | {eps} | "
                     f"{r['dp_unit'] or '-'} | {r['wall_seconds']:.1f} | {traffic} | {r['mitigation_strength']:g} |")
    if report["rows"]:
        lines.append(f"\nDisparity: {report['rows'][0]['disparity_metric']} on {report['test_rows']} test rows.")
    for row, t in report["targets"].items():
        lines.append(f"- {row}: {100 * t['accuracy_drop']:.2f} accuracy points below {t['compared_with']} "
                     f"(target <= {100 * t['max_accuracy_drop']:g}): {'met' if t['met'] else 'NOT met'}")
    return "\n".join(lines)
