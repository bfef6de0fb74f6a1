"""Model steps: the trained Keras model (MLflow-registered) and its evaluation."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from pipelines.catalog import pipeline_outputs
from pipelines.core.config import Settings
from pipelines.core.git_state import git_state
from pipelines.core.hashing import dvc_md5
from pipelines.core.io import atomic_path, read_json, write_json
from pipelines.core.paths import (
    BASELINE_FILE,
    FEATURE_SPEC_FILE,
    HISTORY_FILE,
    KERAS_MODEL_FILE,
    MITIGATION_FILE,
    MLFLOW_RECORD_FILE,
    PREDICTIONS_FILE,
    PRIVACY_FILE,
    SWEEP_FOLDER,
    ArtifactPaths,
    sweep_model_file,
)
from pipelines.core.safe_text import md_cell
from pipelines.core.step import StepResult, records_metrics
from pipelines.data.features import (
    encode_features,
    encode_labels,
)
from pipelines.data.split import load_split
from pipelines.data.split_file import open_split
from pipelines.training.keras_model import (
    load_spec,
    mitigation_facts,
    saved_predictions,
    write_predictions,
)
from pipelines.training.mitigation import constrained_features
from pipelines.training.plots import confusion_matrix_chart, training_plots
from pipelines.training.privacy import headline as privacy_headline
from pipelines.training.scoring import bounded_sample
from pipelines.training.streamed import feature_spec, heldout_rows
from pipelines.training.tracking import log_files, log_to_run, log_training_run, run_url


def run_tags(settings: Settings) -> dict[str, str]:
    """Tags every MLflow run carries: the data version and the code commit."""
    paths = ArtifactPaths(settings.root)
    state = git_state(settings.root, pipeline_outputs())
    return {"data_version": dvc_md5(paths.raw_dataset), "git_commit": str(state["git_commit"]),
            **settings.params.project.tags()}  # FinOps: project, owner, cost_center, environment


@records_metrics
def teacher_model(settings: Settings) -> StepResult:
    from pipelines.training.distill import TEACHER_FILE, fit_teacher, save_teacher, teacher_facts, teacher_proba
    from pipelines.training.tally import Tallies, scored_chunks
    from pipelines.training.tracking import log_side_run

    params = settings.params
    # above data.batch_rows rows the feature spec is merged over the split file's batches and the teacher fits a
    # seeded sample of data.batch_rows rows (gradient boosting gains little from more; the whole split would not fit)
    train = open_split(settings, "train")
    spec = feature_spec(train, params.data)  # the network's inputs: no sensitive column unless data allows it
    rows = bounded_sample(train, params.data.batch_rows, params.train.seed)
    teacher = fit_teacher(encode_features(rows, spec), encode_labels(rows, spec), params.distill, params.train.seed)
    del train, rows
    threshold, sensitive = params.train.threshold, params.data.sensitive_features
    with Tallies(threshold) as tallies:  # the test rows scored chunk by chunk: only counts are kept
        for chunk in scored_chunks(open_split(settings, "test"), spec, sensitive,
                                   {"teacher": lambda x: teacher_proba(teacher, x)}, intersection=False):
            tallies.add(chunk)
        report: dict[str, Any] = {"teacher": teacher_facts(params.distill, params.train.seed),
                                  "used_by_student": params.train.distill,
                                  "overall": tallies.models["teacher"].overall(),
                                  "groups": tallies.models["teacher"].groups()}
    paths = ArtifactPaths(settings.root)
    with atomic_path(paths.teacher_model) as tmp:
        tmp.mkdir()
        save_teacher(teacher, tmp / TEACHER_FILE)
        write_json(tmp / FEATURE_SPEC_FILE, {"spec": spec.model_dump()})
        report["mlflow"] = log_side_run(settings, "teacher", {"distill": params.distill.model_dump()},
                                        {f"test_{k}": v for k, v in report["overall"].items()}, tmp, run_tags(settings))
    write_json(paths.teacher_report, report)
    return StepResult(summary={f"teacher_{k}": round(v, 4) for k, v in report["overall"].items()}
                      | {"used_by_student": params.train.distill, "path": str(paths.teacher_model),
                         "mlflow_run": run_url(settings, report["mlflow"]["experiment_id"],
                                               report["mlflow"]["run_id"])},
                      tables={"groups": groups_table(report["groups"])})


@records_metrics
def trained_model(settings: Settings) -> StepResult:
    from pipelines.training.pyfunc import save_pyfunc  # imports mlflow.pyfunc: only this step needs it

    data, plain = settings.params.data, settings.params.train.privacy == "none"
    # above data.batch_rows rows the train split is read from its file in batches (tf.data), not held as a frame;
    # DP-SGD and federated training take the frame
    train = open_split(settings, "train") if plain else load_split(settings, "train")
    # above data.batch_rows validation rows the heads are judged on a stratified sample of that many (every
    # validation row is still predicted for the trade-off)
    validation_file = open_split(settings, "validation")
    validation = heldout_rows(validation_file, data.label,
                              constrained_features(settings.params.fairness, data), settings.params.fairness,
                              data.batch_rows)
    spec = feature_spec(train, data)
    private: dict[str, Any] = {}
    if plain:
        from pipelines.training.sweep import sweep

        fitted, points, strength, chosen_by, sweep_rows, baseline, choice = sweep(settings, train, validation, spec)
    else:  # DP-SGD or federated: one model (pipelines.training.privacy says why no sweep)
        from pipelines.training.privacy import check_private, fit_private

        check_private(settings, train)
        network, trained, strength, chosen_by, private = fit_private(settings, train, validation, spec)
        fitted, points, sweep_rows, baseline, choice = {strength: (network, trained)}, [], len(train), None, {}
    model, history = fitted[strength]
    target = ArtifactPaths(settings.root).trained_model
    with atomic_path(target) as tmp:
        tmp.mkdir()
        model.save(tmp / KERAS_MODEL_FILE)
        (tmp / SWEEP_FOLDER).mkdir()
        for each, (network, _) in fitted.items():  # the trade-off measures them without training again
            network.save(tmp / sweep_model_file(each))
        write_json(tmp / FEATURE_SPEC_FILE, {"spec": spec.model_dump(), "app_contract": spec.app_contract()})
        write_json(tmp / HISTORY_FILE, history)
        write_json(tmp / MITIGATION_FILE, mitigation_facts(settings, strength, chosen_by, points)
                   | choice | {"training_rows": len(train), "sweep_rows": sweep_rows})
        if private:
            write_json(tmp / PRIVACY_FILE, private)
        if baseline is not None:  # fitted to choose the strength: the trade-off reuses it
            from pipelines.training.mitigation import save_baseline

            save_baseline(baseline, tmp / BASELINE_FILE)
        splits = {"validation": validation_file, "test": open_split(settings, "test")}  # large splits: by batch
        write_predictions(fitted, model, splits, spec, tmp / PREDICTIONS_FILE)
        del splits, validation_file  # their rows are not needed again
        with tempfile.TemporaryDirectory() as scratch:  # the MLflow Model copy lives in MLflow only
            pyfunc = save_pyfunc(Path(scratch) / "pyfunc", tmp / KERAS_MODEL_FILE, tmp / FEATURE_SPEC_FILE, spec,
                                 model, validation)
            record = log_training_run(settings, history, tmp, run_tags(settings), mlflow_model=pyfunc)
        write_json(tmp / MLFLOW_RECORD_FILE, record)
    headline = privacy_headline(private)
    if headline:
        log_to_run(settings, record["run_id"], headline, {})
    last = {k: round(v[-1], 4) for k, v in history.items()}
    plots = training_plots(settings.root, history)
    paths = ArtifactPaths(settings.root)
    log_files(settings, record["run_id"], "reports",
              [paths.validation_report, paths.drift_report, paths.training_history])
    log_files(settings, record["run_id"], "plots", [*plots.values(), paths.drift_plot])
    return StepResult(
        summary={"input_width": spec.width, "epochs": len(history["loss"]), "fairness_strength": strength,
                 "strength_chosen_by": chosen_by, "strengths_trained": len(fitted), **last, **record,
                 **({"privacy": settings.params.train.privacy} if private else {}), **headline,
                 "mlflow_run": run_url(settings, record["experiment_id"], record["run_id"]), "path": str(target)},
        plots=plots,
    )


@records_metrics
def model_evaluation(settings: Settings) -> StepResult:
    from pipelines.training.baselines import BaselineTally
    from pipelines.training.mitigation import constrained_features
    from pipelines.training.streamed import sweep_sample
    from pipelines.training.tally import Tallies, scored_chunks

    params = settings.params
    spec, record = load_spec(settings)
    # splits above data.batch_rows rows stay in their files: the sample's rows and the test split's encoded
    # batches are read from them, the test labels and groups as two columns
    train, test = open_split(settings, "train"), open_split(settings, "test")
    sensitive = settings.params.data.sensitive_features
    threshold = params.train.threshold
    # above fairness.sample_rows the regression fits the sweep's stratified sample: a float64 matrix of every
    # training row would be 6 GB at 10M rows; at 1M rows the sample's fit scored 0.8473 on the test split, all
    # 720k rows' 0.8484
    fit_rows = sweep_sample(train, params.data.label, constrained_features(params.fairness, params.data),
                            params.fairness)
    del train
    # one pass over the test rows, encoded for the baselines, beside the Keras probabilities trained_model saved:
    # only counts are kept (pipelines.training.tally)
    with Tallies(threshold) as tallies, BaselineTally(encode_features(fit_rows, spec), encode_labels(fit_rows, spec),
                                                      threshold, params.train.seed) as simple_tally:
        for chunk in scored_chunks(test, spec, sensitive, {}, saved=saved_predictions(settings, "test", ["keras"]),
                                   intersection=False, encoded=True):
            tallies.add(chunk)
            simple_tally.add(chunk.encoded, chunk.y, (chunk.probas["keras"] >= threshold) == chunk.truth)
        keras = tallies.models["keras"]
        report: dict[str, Any] = {
            "overall": keras.overall(),
            "groups": keras.groups(),
            "threshold": threshold,
            "baselines": simple_tally.figures(params.fairness.bootstrap, params.fairness.confidence),
            "teacher": teacher_summary(read_json(ArtifactPaths(settings.root).teacher_report),
                                       params.train.distill),
        }
        confusion = keras.confusion_total()
    path = ArtifactPaths(settings.root).evaluation_report
    write_json(path, report)
    simple = {f"baseline_{name}_accuracy": facts["accuracy"] for name, facts in report["baselines"].items()}
    log_to_run(settings, record["run_id"], {f"test_{k}": v for k, v in report["overall"].items()} | simple,
               {"reports": path})
    positive = settings.params.data.positive_label
    matrix = confusion_matrix_chart(confusion, threshold, (f"not {positive}", positive),  # type: ignore[arg-type]
                                    ArtifactPaths(settings.root).confusion_matrix_plot)
    log_files(settings, record["run_id"], "plots", [matrix])
    return StepResult(
        summary={k: round(v, 4) for k, v in report["overall"].items()}
        | {k: round(v, 4) for k, v in simple.items()} | {"path": str(path)},
        tables={"groups": groups_table(report["groups"]), "baselines": baselines_table(report)},
        plots={"confusion matrix": matrix},
    )


def teacher_summary(teacher: dict[str, Any], distill: str) -> dict[str, Any]:
    """The teacher's test figures beside the student's (the same test rows and threshold)."""
    overall = teacher["overall"]
    return {"model": teacher["teacher"]["library"], "accuracy": overall["accuracy"], "auc": overall["auc"],
            "taught_the_network": distill != "none",
            "demographic_parity_difference": {f: g["demographic_parity_difference"]
                                              for f, g in teacher["groups"].items()}}


def baselines_table(report: dict[str, Any]) -> str:
    """The model beside its teacher, the majority class and logistic regression (same split, same encoded inputs)."""
    simple, teacher = report["baselines"], report.get("teacher")
    student = "Keras (this model, distilled)" if teacher and teacher["taught_the_network"] else "Keras (this model)"
    rows = ["| model | test accuracy | test AUC |", "|---|---|---|",
            f"| {student} | {report['overall']['accuracy']:.4f} | {report['overall']['auc']:.4f} |"]
    if teacher:
        rows.append(f"| teacher: {teacher['model']}{' (taught the network)' if teacher['taught_the_network'] else ''} "
                    f"| {teacher['accuracy']:.4f} | {teacher['auc']:.4f} |")
    rows += [f"| logistic regression | {simple['logistic_regression']['accuracy']:.4f} | "
             f"{simple['logistic_regression']['auc'] or float('nan'):.4f} |",
             f"| majority class ({md_cell(simple['majority_class']['class'])}) | "
             f"{simple['majority_class']['accuracy']:.4f} "
             "| 0.5 |"]
    return "\n".join(rows)


def groups_table(groups: dict[str, dict[str, Any]]) -> str:
    """Per-group accuracy and selection rate as Markdown."""
    rows = ["| feature | group | rows | accuracy | selection rate |", "|---|---|---|---|---|"]
    for feature, facts in groups.items():
        for group, m in facts["groups"].items():
            rows.append(f"| {md_cell(feature)} | {md_cell(group)} | {m['count']} | {m['accuracy']:.4f} | "
                        f"{m['selection_rate']:.4f} |")
    return "\n".join(rows)

