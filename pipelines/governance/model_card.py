"""The model card: what the model is for, where it came from, how it does per group, and its limits.

Built from the pipeline's own reports (nothing is typed in by hand except the params' statements), as
JSON for machines and Markdown for people; every release candidate carries both.
"""
from __future__ import annotations

from typing import Any

from pipelines.catalog import pipeline_outputs
from pipelines.core.config import Settings
from pipelines.core.git_state import git_state
from pipelines.core.io import read_json
from pipelines.core.paths import (
    FEATURE_SPEC_FILE,
    MITIGATION_FILE,
    MLFLOW_RECORD_FILE,
    PRIVACY_FILE,
    ArtifactPaths,
)
from pipelines.core.safe_text import md_cell, md_text, safe_markdown
from pipelines.governance.tradeoff import DISPARITY
from pipelines.mobile.ort import fairness_name
from pipelines.training.targets import head_name

SCHEMA = "mobile-mlops/model-card/v1"
TARGET_VARIANT = "int8"  # the full-integer model the target names; else the released Android variant


def _rows(path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def architecture(units: list[int]) -> str:
    """The network in words (train.hidden_units; [] is a linear network)."""
    if not units:
        return "Keras linear network (no hidden layer), sigmoid output"
    return f"Keras MLP {'-'.join(map(str, units))}-1, sigmoid output"


def _headline(fairness: dict[str, Any], released: dict[str, str | None]) -> str:
    for name in (TARGET_VARIANT, released.get("android")):
        if name and name in fairness["models"]:
            return name
    return fairness["reference"]


def _comparison(fairness: dict[str, Any], tradeoff: dict[str, Any], model: str) -> dict[str, Any]:
    """The headline model against the reductions baseline on the constrained grouping (same test rows)."""
    key, grouping = DISPARITY[tradeoff["constraint"]], tradeoff["grouping"]
    baseline = tradeoff["baseline"]["test"]
    facts = fairness["models"][model]["groups"].get(grouping)
    if facts is None or facts[key] is None or baseline[key] is None:
        who = "the baseline" if facts is not None and facts[key] is not None else model
        return {"model": model, "met": False,
                "statement": f"not comparable: {key.replace('_', ' ')} on {grouping} is undefined for {who}"}
    ours = {"accuracy": fairness["models"][model]["overall"]["accuracy"], key: facts[key],
            "ci": {key: facts.get("ci", {}).get(key)}}
    accuracy_margin, disparity_margin = ours["accuracy"] - baseline["accuracy"], baseline[key] - ours[key]
    met = accuracy_margin >= 0 and disparity_margin >= 0
    label = key.replace("_", " ")
    statement = (
        f"Target {'met' if met else 'NOT met'}: {model} accuracy {ours['accuracy']:.4f} vs baseline "
        f"{baseline['accuracy']:.4f} ({accuracy_margin:+.4f}); {label} on {grouping} {ours[key]:.4f} vs baseline "
        f"{baseline[key]:.4f} ({-disparity_margin:+.4f})."
    )
    ci_ours, ci_base = ours["ci"][key], baseline.get("ci", {}).get(key)
    if ci_ours and ci_base and None not in (*ci_ours, *ci_base):
        overlap = ci_ours[0] <= ci_base[1] and ci_base[0] <= ci_ours[1]
        statement += (f" The {label} intervals ({ci_ours[0]:.4f}-{ci_ours[1]:.4f} vs "
                      f"{ci_base[0]:.4f}-{ci_base[1]:.4f}) "
                      + ("overlap: the difference is within sampling noise." if overlap else "do not overlap."))
    return {"model": model, "grouping": grouping, "disparity": key, "ours": ours,
            "baseline": {k: baseline[k] for k in ("accuracy", key)} | {"ci": {key: ci_base}},
            "accuracy_margin": accuracy_margin, "disparity_margin": disparity_margin, "met": bool(met),
            "statement": statement}


def _limitations(settings: Settings, fairness: dict[str, Any], tradeoff: dict[str, Any],
                 importance: dict[str, Any]) -> list[str]:
    from pipelines.governance.fairness import flagged_text

    items = []
    repeats = importance["repeats"] ** 0.5  # below zero by two standard errors: not shuffle noise
    helping = [c for c in importance["columns"] if c["mean_accuracy_drop"] + 2 * c["std"] / repeats < 0]
    if helping:
        listed = ", ".join(f"{c['column']} ({c['mean_accuracy_drop']:+.4f})" for c in helping)
        items.append(f"Shuffling {listed} raises accuracy: the model uses these inputs against their relation to the "
                     "label; under a parity constraint that typically means as a proxy for a constrained feature.")
    if fairness["flagged_groups"]:
        items.append(f"Small groups: {flagged_text(fairness)}. Their intervals are wide; gates skip them.")
    free = 1.0 if tradeoff["method"] == "bound" else 0  # method bound keys heads by bound: 1 never binds
    unmitigated = next((e for e in tradeoff["sweep"] if e["strength"] == free), None)
    deployed = next(e for e in tradeoff["sweep"] if e["deployed"])
    if unmitigated and deployed["strength"] != free:
        other = ("equalized_odds_difference" if tradeoff["constraint"] == "demographic_parity"
                 else "demographic_parity_difference")
        items.append(f"The {tradeoff['constraint'].replace('_', ' ')} constraint moves the other criterion: "
                     f"{tradeoff['grouping']} "
                     f"{other.replace('_', ' ')} {_num(unmitigated['test'][other])} unmitigated -> "
                     f"{_num(deployed['test'][other])} "
                     "deployed. With different base rates the two criteria cannot both be zero.")
    items += [
        "Sensitive features are not model inputs, but correlated inputs (proxies) still carry their information; "
        "the mitigation acts on outcomes, not on what the model can infer.",
        f"Intervals are percentile bootstrap intervals over the {fairness['rows']} test rows ({fairness['bootstrap']} "
        "resamples): sampling noise of this test set only, not shift in production data; for gaps near zero they lean "
        "upward.",
        "Core ML variants are converted from the same network; their per-group metrics come from a numpy reference run "
        "of each ML Program (coreml.json), not from Core ML on a device, and are not gated here.",
        f"The baseline is a randomized ensemble of {tradeoff['baseline']['predictors']} logistic regressions; "
        "one seeded draw is evaluated, as a deployment would make.",
    ]
    return items + list(settings.params.governance.limitations)


def _training_privacy(settings: Settings) -> tuple[dict[str, Any] | None, list[str]]:
    """What the private training spent (models/trained/privacy.json), and the card's sentences about it."""
    path = ArtifactPaths(settings.root).trained_model / PRIVACY_FILE
    if not path.is_file():
        return None, ["Training is central and not differentially private (train.privacy: none)."]
    facts = read_json(path)
    if facts["method"] == "dp_sgd":
        return facts, [
            f"Trained with DP-SGD: ({facts['epsilon']:.3f}, {facts['delta']:g})-differential privacy per training "
            f"row (the accountant's upper bound, {facts['accountant']}), {facts['steps']} steps of Poisson sampling "
            f"at rate {facts['sampling_rate']:.4g}, noise multiplier {facts['noise_multiplier']:.3g}, per-example "
            f"L2 clip {facts['l2_clip']:g}; gate max_epsilon {facts['max_epsilon']:g}.",
            "Validation and test rows are not protected by this guarantee; they only measure the model."]
    traffic, dp = facts["traffic"], facts.get("client_dp")
    lines = [f"Trained by federated averaging (Flower, {facts['strategy']}) over {facts['devices']} simulated "
             f"devices, non-IID by '{facts['partition_column']}' (Dirichlet alpha {facts['alpha']:g}), "
             f"{facts['rounds']} rounds: rows stay on their device; only model updates travel "
             f"({traffic['mb_per_device_round']:.3f} MB per device per round).",
             "Secure aggregation (SecAgg+): the server sees only the sum of masked updates."
             if facts.get("secure_aggregation") else "No secure aggregation: the server sees each device's update."]
    if dp:
        lines.append(f"Client-level DP: ({dp['epsilon']:.3g}, {dp['delta']:g}) per device over {dp['steps']} rounds "
                     f"(update clip {dp['clipping_norm']:g}, noise multiplier {dp['noise_multiplier']:g}).")
    return facts, lines


def _privacy(settings: Settings, spec: dict[str, Any]) -> dict[str, Any]:
    data = settings.params.data
    training, training_lines = _training_privacy(settings)
    inputs = [f["name"] for f in spec["numeric"] + spec["categorical"]]
    role = "model inputs (sensitive_as_inputs: true)" if data.sensitive_as_inputs else "evaluation-only"
    return {
        "pii_columns": list(data.pii), "dropped_columns": list(data.drop),
        "sensitive_features": list(data.sensitive_features),
        "sensitive_as_inputs": data.sensitive_as_inputs, "model_inputs": inputs,
        "statements": [
            f"PII columns ({', '.join(data.pii) or 'none listed'}) are dropped when the source is read (raw_dataset): "
            "they never reach the splits, the model, any report, MLflow or the release.",
            f"Sensitive features ({', '.join(data.sensitive_features)}) are {role}: used to measure per-group metrics "
            + ("and as inputs." if data.sensitive_as_inputs else
               "and, during training only, by the mitigation; the deployed model does not take them and an app need "
               "not collect them."),
            "Reports, MLflow and this card hold aggregates per group (counts and rates), never rows.",
            *training_lines,
        ],
        "training": training,
    }


def _verdict(fairness: dict[str, Any]) -> dict[str, Any]:
    """The fairness gate's verdict as the gate judged it: Keras passes, and each runtime has a fair variant."""
    from pipelines.core.gates import GateResult
    from pipelines.governance.gates import FAIR_VARIANTS, runtime_verdicts

    verdict, _ = runtime_verdicts(fairness, [GateResult(**g) for g in fairness["gates"]])
    return {"gates_passed": all(g.passed for g in verdict),
            "runtimes": [g.detail for g in verdict if g.name.startswith(f"{FAIR_VARIANTS}[")]}


def build_card(settings: Settings) -> dict[str, Any]:
    """The model card as JSON, from the reports the pipeline wrote."""
    from pipelines.core.hashing import dvc_md5
    from pipelines.data.sources import source_files
    from pipelines.data.split import SPLITS

    paths, params = ArtifactPaths(settings.root), settings.params
    record = read_json(paths.trained_model / MLFLOW_RECORD_FILE)
    feature_spec = read_json(paths.trained_model / FEATURE_SPEC_FILE)
    spec = feature_spec["spec"]
    mitigation = read_json(paths.trained_model / MITIGATION_FILE)
    fairness, tradeoff = read_json(paths.fairness_report), read_json(paths.fairness_tradeoff)
    evaluation = read_json(paths.evaluation_report)
    importance, validation = read_json(paths.importance_report), read_json(paths.validation_report)
    footprint = read_json(paths.footprint_report) if paths.footprint_report.is_file() else {"platforms": {}}
    released = {p: f.get("selected") for p, f in footprint["platforms"].items()}
    headline = _headline(fairness, released)
    in_report = [fairness_name(v) if p == "onnxruntime" else v for p, v in released.items() if v]  # ORT: ort_<v>
    shown = list(dict.fromkeys([fairness["reference"], headline, *(v for v in in_report if v in fairness["models"])]))
    return {
        "schema": SCHEMA,
        "model": {"name": record["model_name"], "version": record["model_version"], "mlflow_run_id": record["run_id"],
                  "architecture": architecture(params.train.hidden_units),
                  "input_width": len(feature_spec["app_contract"]["input_names"]),
                  "threshold": params.train.threshold, "released_variants": released,
                  "variants": [m for m in fairness["order"] if m != fairness["reference"]]},
        "intended_use": {"purpose": params.governance.intended_use,
                         "out_of_scope": list(params.governance.out_of_scope)},
        "data": {"sources_md5": source_files(settings), "raw_dataset_md5": dvc_md5(paths.raw_dataset),
                 "label": params.data.label, "positive_label": params.data.positive_label,
                 "positive_rate": validation.get("positive_rate"),
                 "rows": {"validated": validation.get("rows"),
                          **{s: _rows(paths.dataset_splits / f"{s}.parquet") for s in SPLITS}},
                 **git_state(settings.root, pipeline_outputs()), "params_sha256": settings.section_hash()},
        "metrics": {"threshold": fairness["threshold"], "order": fairness["order"],
                    "overall": {m: e["overall"] for m, e in fairness["models"].items()},
                    "groups": {m: fairness["models"][m]["groups"] for m in shown}},
        "fairness": {"groupings": fairness["groupings"], "min_group_size": fairness["min_group_size"],
                     "bootstrap": fairness["bootstrap"], "confidence": fairness["confidence"],
                     "flagged_groups": fairness["flagged_groups"], "flagged_rates": fairness.get("flagged_rates", []),
                     "gates": fairness["gates"],
                     **_verdict(fairness)},
        "mitigation": {**mitigation, "sweep": tradeoff["sweep"], "plot": paths.fairness_tradeoff_plot.name},
        "distillation": _distillation(settings, read_json(paths.teacher_report)),
        "simple_baselines": {"keras": evaluation["overall"]["accuracy"],
                             **{k: v["accuracy"] for k, v in evaluation.get("baselines", {}).items()}},
        "baseline_comparison": _comparison(fairness, tradeoff, headline) | {"baseline_method": {
            k: tradeoff["baseline"][k] for k in ("method", "estimator", "constraint", "eps", "predictors", "inputs")}},
        "quantization": {m: e["quantization"] for m, e in fairness["models"].items() if "quantization" in e},
        "feature_importance": importance,
        "limitations": _limitations(settings, fairness, tradeoff, importance),
        "privacy": _privacy(settings, spec),
        "compliance": params.governance.compliance.model_dump()
        | {"note": "Stated in params (governance.compliance); the pipeline records these statements, it does not "
           "assess them."},
    }


def _distillation(settings: Settings, teacher: dict[str, Any]) -> dict[str, Any]:
    """Which teacher taught the released network (train.distill), or that none did; the teacher's test accuracy."""
    distill, params = settings.params.train.distill, settings.params.distill
    facts = {"teacher": teacher["teacher"]["library"] if distill != "none" else None, "train.distill": distill,
             "teacher_test_accuracy": teacher["overall"]["accuracy"],
             "teacher_mlflow_run_id": teacher["mlflow"]["run_id"]}
    if distill != "none":
        facts |= {"temperature": params.temperature, "mix": params.mix,
                  "statement": f"The network learned from the soft labels of a {teacher['teacher']['library']} teacher "
                               f"(temperature {params.temperature:g}, mix {params.mix:g} with the labels) trained on "
                               "the same training rows and inputs."}
    else:
        facts["statement"] = ("No teacher: the network learned the labels. A LightGBM teacher trained on the same rows "
                              f"scored {teacher['overall']['accuracy']:.4f} on the test split (train.distill: lightgbm "
                              "would distil it).")
    return facts


def _num(value: float | None, ci: list | None = None) -> str:
    if value is None:
        return "n/a"
    text = f"{value:.3f}"
    return text + (f" ({ci[0]:.3f}–{ci[1]:.3f})" if ci and None not in ci else "")


def _escaped(value: Any) -> Any:
    """Every text of the card (data values, column names, params statements) made inert for Markdown."""
    if isinstance(value, dict):
        return {md_text(k) if isinstance(k, str) else k: _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return md_text(value) if isinstance(value, str) else value


def render_markdown(card: dict[str, Any]) -> str:
    """The card for people: the same facts as the JSON, as sections and tables; every value escaped."""
    return safe_markdown(_render(_escaped(card)))


def _render(card: dict[str, Any]) -> str:
    from pipelines.governance.fairness import flagged_rates_text, groups_table

    model, data, fair = card["model"], card["data"], card["fairness"]
    level = f"{fair['confidence']:.0%}"
    out = [f"# Model card: {model['name']} v{model['version']}", "",
           f"{model['architecture']}, decision threshold {model['threshold']}; MLflow run `{model['mlflow_run_id']}`. "
           f"Released: " + ", ".join(f"{p} `{v}`" for p, v in model["released_variants"].items()) + ".", "",
           "## Intended use", "", card["intended_use"]["purpose"], ""]
    out += [f"- Out of scope: {item}" for item in card["intended_use"]["out_of_scope"]] + [""]
    out += ["## Data and lineage", "",
            f"- Label `{data['label']}`, positive class `{data['positive_label']}` ({_num(data['positive_rate'])} of "
            "rows).",
            "- Rows: " + ", ".join(f"{k} {v}" for k, v in data["rows"].items()) + ".",
            "- Sources (md5): " + ", ".join(f"`{k}` {v}" for k, v in data["sources_md5"].items()) + "; raw dataset "
            f"{data['raw_dataset_md5']}.",
            f"- Code {str(data['git_commit'])[:12]} (dirty: {data['git_dirty']}), params sha256 "
            f"{data['params_sha256'][:16]}.", ""]
    out += ["## Metrics (test split)", "", "| model | accuracy | AUC | precision | recall | selection rate |",
            "|---|---|---|---|---|---|"]
    overall = card["metrics"]["overall"]
    out += [f"| {m} | {overall[m]['accuracy']:.4f} | {overall[m]['auc']:.4f} | {overall[m]['precision']:.4f} "
            f"| {overall[m]['recall']:.4f} | {overall[m]['selection_rate']:.4f} |" for m in card["metrics"]["order"]]
    for name, groups in card["metrics"]["groups"].items():
        out += ["", f"### Per group: {name} ({level} bootstrap intervals)", "", groups_table(groups)]
    verdict = ("passed" if fair["gates_passed"]
               else "FAILED: " + "; ".join(g["detail"] for g in fair["gates"] if not g["passed"]))
    out += ["", "## Fairness gates", "",
            f"{len(fair['gates'])} gates on the Keras model and every TFLite and ORT variant: {verdict}. "
            "A variant that fails any of them is never released"
            + (": " + md_cell("; ".join(fair["runtimes"])) if fair.get("runtimes") else "") + ".",
            f"Groups under {fair['min_group_size']} test rows are reported but not gated: "
            + (", ".join(f"{f['grouping']}={f['group']} "
                         f"({f['rows']})" for f in fair["flagged_groups"]) or "none") + ".",
            *([flagged_rates_text(fair["flagged_rates"], fair["min_group_size"]) + "."]
              if fair.get("flagged_rates") else []), ""]
    out += ["## Distillation", "", card["distillation"]["statement"], ""]
    mitigation = card["mitigation"]
    out += ["## Mitigation and trade-off", "",
            f"Method `{mitigation['method']}`, constraint `{mitigation['constraint']}` on "
            f"{', '.join(mitigation['features'])}, "
            + (f"{head_name(mitigation['strength'])} (bound 1 is unconstrained; heads 2 and up are trained on fair "
               "targets; " if mitigation.get("bound") is not None else
               f"strength {mitigation['strength']:g} (0 is unmitigated; ")
            + f"{mitigation.get('chosen_by', 'pinned in params')}). "
            "One Keras network: the mitigation acts in training only.", "",
            "| strength | test accuracy | DPD | EOD | validation accuracy |", "|---|---|---|---|---|"]
    out += [f"| {e['strength']:g}{' (deployed)' if e['deployed'] else ''} | {e['test']['accuracy']:.4f} "
            f"| {_num(e['test']['demographic_parity_difference'])} | {_num(e['test']['equalized_odds_difference'])} "
            f"| {e['validation']['accuracy']:.4f} |" for e in mitigation["sweep"]]
    comparison = card["baseline_comparison"]
    base = comparison["baseline_method"]
    out += ["", f"![trade-off]({mitigation['plot']})", "", "## Baseline comparison", "",
            f"Baseline: {base['method']} with {base['estimator']}, constraint {base['constraint']}, eps {base['eps']}, "
            f"on {base['inputs']}; the same split. {comparison['statement']}", ""]
    simple = card["simple_baselines"]
    if len(simple) > 1:
        out += [f"Simple baselines on the same test rows and inputs: Keras accuracy {simple['keras']:.4f}; "
                + "; ".join(f"{name.replace('_', ' ')} "
                            f"{value:.4f}" for name, value in simple.items() if name != "keras")
                + ".", ""]
    out += ["## Quantization effects per group", "", "Accuracy change from Keras per group (variant minus Keras, "
            f"{level} paired bootstrap interval); worst group among gated groups.", "",
            "| variant | grouping | worst group | change | groups (change) |", "|---|---|---|---|---|"]
    for variant in (m for m in card["metrics"]["order"] if m in card["quantization"]):
        groupings = card["quantization"][variant]
        for grouping, facts in groupings.items():
            changes = ", ".join(f"{g} {m['change']:+.4f}" for g, m in facts["groups"].items())
            worst = facts["worst_group"] or "n/a"
            drop = f"{-facts['worst_drop']:+.4f}" if facts["worst_drop"] is not None else "n/a"
            out.append(f"| {variant} | {md_cell(grouping)} | {md_cell(worst)} | {drop} | {md_cell(changes, 400)} |")
    importance = card["feature_importance"]
    out += ["", "## Feature importance", "",
            f"Permutation importance on the `{importance['variant']}` variant through {importance['runtime']}: "
            "accuracy lost when "
            f"a raw column is shuffled ({importance['repeats']} repeats, {importance['rows']} test rows, baseline "
            "accuracy "
            f"{importance['baseline_accuracy']:.4f}). Not inputs, so not ranked: "
            f"{', '.join(importance['not_inputs']) or 'none'}.", "",
            "| column | mean accuracy drop | std |", "|---|---|---|"]
    out += [f"| {md_cell(c['column'])} | {c['mean_accuracy_drop']:.4f} | {c['std']:.4f} "
            "|" for c in importance["columns"]]
    out += ["", "## Limitations", ""] + [f"- {item}" for item in card["limitations"]]
    out += ["", "## Privacy", ""] + [f"- {item}" for item in card["privacy"]["statements"]]
    out += [f"- Model inputs: {', '.join(card['privacy']['model_inputs'])}."]
    compliance = card["compliance"]
    out += ["", "## Compliance", "", compliance["note"], ""]
    out += [f"- {name.upper()}: {text}" for name, text in compliance["regulations"].items()]
    for key in ("data_categories", "special_categories"):
        if compliance[key]:
            out.append(f"- {key.replace('_', ' ').capitalize()}: {', '.join(compliance[key])}.")
    for key in ("lawful_basis", "retention", "contact"):
        if compliance[key]:
            out.append(f"- {key.replace('_', ' ').capitalize()}: {compliance[key]}")
    return "\n".join(out) + "\n"
