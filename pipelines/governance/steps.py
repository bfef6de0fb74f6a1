"""Governance steps: the mitigation trade-off and baseline, per-group fairness of every variant, feature
importance on the int8 variant, and the model card."""
from __future__ import annotations

from functools import partial
from typing import Any

import pandas as pd

from pipelines.core.config import Settings
from pipelines.core.errors import PipelineError
from pipelines.core.io import atomic_path, read_json, write_json
from pipelines.core.paths import BASELINE_FILE, MITIGATION_FILE, ArtifactPaths
from pipelines.core.step import StepResult, records_metrics
from pipelines.data.features import encode_features, encode_labels
from pipelines.data.split_file import SplitFile, open_split
from pipelines.training.keras_model import load_spec, saved_predictions, saved_strengths, strength_column
from pipelines.training.scoring import group_values, sample_rows
from pipelines.training.tracking import log_to_run


@records_metrics
def fairness_tradeoff(settings: Settings) -> StepResult:
    from pipelines.core.plots import write_csv_rows
    from pipelines.governance import tradeoff
    from pipelines.training.metrics import intersection_name
    from pipelines.training.mitigation import (
        check_groups,
        constrained_features,
        constraint_labels,
        load_baseline,
        reductions_baseline,
    )
    from pipelines.training.streamed import sweep_sample as streamed_sample
    from pipelines.training.tally import Tallies, scored_chunks

    params, fairness = settings.params, settings.params.fairness
    features = constrained_features(fairness, params.data)
    # splits above data.batch_rows rows stay in their files: they are read chunk by chunk
    train, validation, test = (open_split(settings, s) for s in ("train", "validation", "test"))
    spec, record = load_spec(settings)
    for rows, split in ((train, "train"), (validation, "validation"), (test, "test")):
        if not isinstance(rows, SplitFile):
            check_groups(rows, features, split)
        elif split == "train":  # only whether each feature has two groups: its distinct values, chunk by chunk
            for feature, values in group_values(rows, features).items():
                check_groups(pd.DataFrame({feature: values}), [feature], split)
    threshold, min_size = params.train.threshold, params.gates.fairness.min_group_size
    deployed_strength = read_json(ArtifactPaths(settings.root).trained_model / MITIGATION_FILE)["strength"]
    sample, training_rows = streamed_sample(train, params.data.label, features, fairness), len(train)
    del train  # only the sample is needed: at 10M rows the split alone is gigabytes
    saved = load_baseline(ArtifactPaths(settings.root).trained_model / BASELINE_FILE, fairness)
    reduction, facts = saved or reductions_baseline(encode_features(sample, spec), encode_labels(sample, spec),
                                                    constraint_labels(sample, features), fairness)
    strengths = saved_strengths(settings)
    measured: dict[str, dict[str, Any]] = {}
    for rows, split in ((validation, "validation"), (test, "test")):
        # every strength's probabilities (trained once, and predicted, by trained_model) and the baseline's
        # decisions on this split, counted chunk by chunk (pipelines.training.tally)
        with Tallies(threshold, auc=False) as tallies:
            columns = [strength_column(s) for s in strengths]
            for chunk in scored_chunks(rows, spec, features, {"baseline": reduction.stream()},
                                       saved=saved_predictions(settings, split, columns)):
                tallies.add(chunk)
            cells = {name: tally.cells() for name, tally in tallies.models.items()}
        if isinstance(rows, SplitFile):
            for feature in features:
                check_groups(pd.DataFrame({feature: cells["baseline"][feature][0]}), [feature], split)
        boot = fairness.bootstrap if split == "test" else 0
        measured[split] = {name: tradeoff.point_figures(*found[intersection_name(features)], fairness, min_size, boot)
                           for name, found in cells.items()}
    sweep = [{"strength": s, "deployed": s == deployed_strength,
              **{split: measured[split][strength_column(s)] for split in ("validation", "test")}} for s in strengths]
    # a stratified sample above sample_rows
    facts = {k: v for k, v in facts.items() if k != "fitted"} | {"training_rows": len(sample),
                                                                 "of_training_rows": training_rows}
    baseline = {**facts, **{split: measured[split]["baseline"] for split in ("validation", "test")}}
    deployed = next(e for e in sweep if e["deployed"])
    report: dict[str, Any] = {"constraint": fairness.constraint, "method": fairness.method, "features": features,
                              "grouping": intersection_name(features), "threshold": threshold,
                              "min_group_size": min_size,
                              "sweep": sweep, "baseline": baseline,
                              "deployed_vs_baseline": tradeoff.compare(deployed["test"], baseline["test"],
                                                                       fairness.constraint)}
    paths = ArtifactPaths(settings.root)
    write_json(paths.fairness_tradeoff, report)
    write_csv_rows(tradeoff.rows(report), paths.fairness_tradeoff_table)
    tradeoff.chart(report, paths.fairness_tradeoff_plot)
    key = tradeoff.DISPARITY[fairness.constraint]
    metrics = {f"tradeoff_s{e['strength']:g}_{m}": e["test"][m] for e in sweep for m in ("accuracy", key)}
    metrics |= {f"baseline_{m}": baseline["test"][m] for m in ("accuracy", key)}
    log_to_run(settings, record["run_id"], metrics, {"fairness": paths.fairness_tradeoff,
                                                     "plots": paths.fairness_tradeoff_plot})
    summary = {"constraint": fairness.constraint, "grouping": report["grouping"],
               "deployed_strength": deployed_strength,
               "deployed_accuracy": deployed["test"]["accuracy"], f"deployed_{key}": deployed["test"][key],
               "baseline_accuracy": baseline["test"]["accuracy"], f"baseline_{key}": baseline["test"][key],
               "keras_meets_baseline_target": report["deployed_vs_baseline"]["met"],
               "path": str(paths.fairness_tradeoff)}
    return StepResult(summary=summary, tables={"trade-off": tradeoff.table(report)},
                      plots={"trade-off": paths.fairness_tradeoff_plot})


@records_metrics
def fairness_report(settings: Settings) -> StepResult:
    from pipelines.governance.fairness import (
        evaluate_tallies,
        fairness_gates,
        flagged_text,
        groups_table,
        models_table,
    )
    from pipelines.mobile.ort import fairness_name, ort_predictor
    from pipelines.release_format.litert import predict_tflite
    from pipelines.training.mitigation import check_groups
    from pipelines.training.tally import Tallies, scored_chunks

    params, paths = settings.params, ArtifactPaths(settings.root)
    spec, record = load_spec(settings)
    sensitive = params.data.sensitive_features
    test = open_split(settings, "test")  # above data.batch_rows rows: scored chunk by chunk from its file
    if not isinstance(test, SplitFile):
        check_groups(test, sensitive, "test")
    models: dict[str, Any] = {}
    for name, facts in read_json(paths.tflite_report)["variants"].items():
        models[name] = partial(predict_tflite, (paths.tflite_model / facts["file"]).read_bytes())
    for name, facts in read_json(paths.onnx_report)["variants"].items():  # ONNX Runtime Mobile, gated alike
        models[fairness_name(name)] = ort_predictor((paths.onnx_model / facts["file"]).read_bytes())
    # every model's counts gathered chunk by chunk beside Keras's saved probabilities (the reference, first)
    with Tallies(params.train.threshold, reference="keras") as tallies:
        for chunk in scored_chunks(test, spec, sensitive, models,
                                   saved=saved_predictions(settings, "test", ["keras"])):
            tallies.add(chunk)
        keras = tallies.models["keras"].cells()
        for feature in sensitive:  # each feature's groups on the test rows, as names
            check_groups(pd.DataFrame({feature: keras[feature][0]}), [feature], "test")
        report = evaluate_tallies(tallies, params.fairness, params.gates.fairness.min_group_size, sensitive)
    gates = fairness_gates(report, params.gates.fairness)
    report["gates"] = [g.as_dict() for g in gates]
    write_json(paths.fairness_report, report)
    metrics = {f"fairness_{m}_{g}_{d}": facts[d] for m, entry in report["models"].items()
               for g, facts in entry["groups"].items()
               for d in ("demographic_parity_difference", "equalized_odds_difference") if facts[d] is not None}
    log_to_run(settings, record["run_id"], metrics,
               {"reports": paths.fairness_report})
    failed = [g for g in gates if not g.passed]
    return StepResult(
        summary={"models": list(report["models"]), "groupings": report["groupings"], "gates": len(gates),
                 "gates_failed": len(failed), "flagged_groups": flagged_text(report),
                 "path": str(paths.fairness_report)},
        tables={"models": models_table(report), "keras groups": groups_table(report["models"]["keras"]["groups"])},
    )


@records_metrics
def feature_importance(settings: Settings) -> StepResult:
    from pipelines.governance.importance import importance_table, permutation_importance
    from pipelines.release_format.litert import predict_tflite

    params, paths = settings.params, ArtifactPaths(settings.root)
    governance = params.governance
    variants = read_json(paths.tflite_report)["variants"]
    if governance.importance_variant not in variants:
        raise PipelineError(f"governance.importance_variant: '{governance.importance_variant}' was not built "
                            f"(convert.tflite_variants: {', '.join(variants)})")
    spec, record = load_spec(settings)
    sample = sample_rows(open_split(settings, "test"), governance.importance_rows, params.fairness.seed)
    content = (paths.tflite_model / variants[governance.importance_variant]["file"]).read_bytes()
    result = permutation_importance(lambda x: predict_tflite(content, x), sample, spec, params.train.threshold,
                                    governance.importance_repeats, params.fairness.seed)
    result |= {"variant": governance.importance_variant, "runtime": "LiteRT",
               "not_inputs": spec.excluded}
    write_json(paths.importance_report, result)
    log_to_run(settings, record["run_id"],
               {f"importance_{c['column']}": c["mean_accuracy_drop"] for c in result["columns"]},
               {"reports": paths.importance_report})
    return StepResult(summary={"variant": governance.importance_variant, "rows": result["rows"],
                               "baseline_accuracy": result["baseline_accuracy"],
                               "top": [c["column"] for c in result["columns"][:5]],
                               "path": str(paths.importance_report)},
                      tables={"importance": importance_table(result)})


@records_metrics
def model_card(settings: Settings) -> StepResult:
    from pipelines.governance.model_card import build_card, render_markdown

    paths = ArtifactPaths(settings.root)
    card = build_card(settings)
    markdown = render_markdown(card)
    write_json(paths.model_card_json, card)
    with atomic_path(paths.model_card_markdown) as tmp:
        tmp.write_text(markdown)
    target = card["baseline_comparison"]
    return StepResult(summary={"model": f"{card['model']['name']} v{card['model']['version']}",
                               "target_met": target["met"], "target": target["statement"],
                               "gates_passed": card["fairness"]["gates_passed"],
                               "path": str(paths.model_card_markdown)},
                      tables={"model card": markdown})
