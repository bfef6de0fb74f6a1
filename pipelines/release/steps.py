"""Release step: the upstream stages' gate verdicts read, candidate assembled with its manifest, then published."""
from __future__ import annotations

import shutil

from pipelines.catalog import pipeline_outputs, verdicts_read
from pipelines.core.config import Settings
from pipelines.core.gates import gates_table
from pipelines.core.git_state import git_state
from pipelines.core.hashing import dvc_md5
from pipelines.core.io import atomic_path, read_json, write_json
from pipelines.core.paths import (
    FEATURE_SPEC_FILE,
    MLFLOW_RECORD_FILE,
    RELEASE_COREML_PACKAGE,
    RELEASE_ORT_FILE,
    RELEASE_PROFILE_FILE,
    ArtifactPaths,
    coreml_package,
    ort_file,
)
from pipelines.core.step import StepResult, records_metrics
from pipelines.core.verdict import read_verdict, require_passed, results
from pipelines.data.features import FeatureSpec
from pipelines.data.reference import release_profile
from pipelines.data.sources import source_files
from pipelines.release.encryption import encrypt_models, encryption_summary
from pipelines.release.folder import publish, same_content
from pipelines.release.provenance import now
from pipelines.release.seal import seal
from pipelines.release.signing import trusted_keys
from pipelines.release_format.keyset import load_keyset
from pipelines.release_format.reference import reference_model
from pipelines.training.tracking import (
    log_files,
    log_to_run,
    mark_released,
    model_version_url,
    run_url,
)


@records_metrics
def release_candidate(settings: Settings) -> StepResult:
    paths, started = ArtifactPaths(settings.root), now()
    # the upstream stages' verdicts, as their gates judged them (a failed blocking gate stopped the run there)
    verdicts = [read_verdict(settings.root, stage) for stage in verdicts_read("release_candidate")]
    require_passed(verdicts)  # the same line, when a stage is run on its own after a failed one
    evaluation, tflite = read_json(paths.evaluation_report), read_json(paths.tflite_report)
    gates = [g for verdict in verdicts for g in results(verdict, blocking=True)]
    warnings = [g for verdict in verdicts for g in results(verdict, blocking=False) if not g.passed]
    footprint, offload = read_json(paths.footprint_report), read_json(paths.offload_report)
    cost = read_json(paths.cost_report)
    record = read_json(paths.trained_model / MLFLOW_RECORD_FILE)
    lineage = {
        "data_md5": source_files(settings),
        "raw_dataset_md5": dvc_md5(paths.raw_dataset),
        **git_state(settings.root, pipeline_outputs()),
        "params_sha256": settings.section_hash(),
        "mlflow_run_id": record["run_id"],
        "model_name": record["model_name"],
        "model_version": record["model_version"],
    }
    metrics = {
        "keras": evaluation["overall"],
        "simple_baselines": {k: v["accuracy"] for k, v in evaluation.get("baselines", {}).items()},
        "tflite": {n: {k: v[k] for k in ("accuracy", "auc", "agreement_with_keras", "size_bytes")}
                   for n, v in tflite["variants"].items()},
        "coreml": {n: {k: v[k] for k in ("accuracy", "agreement_with_keras", "size_bytes", "op_total")}
                   for n, v in read_json(paths.coreml_report)["variants"].items()},
        "onnx": {n: {k: v[k] for k in ("accuracy", "agreement_with_keras", "size_bytes", "gzip_bytes")}
                 for n, v in read_json(paths.onnx_report)["variants"].items()},
        "released": {p: f["selected"] for p, f in footprint["platforms"].items()},
        "offload": {k: offload["chosen"][k] for k in ("delta", "offload_rate", "hybrid_accuracy")},
        "gates": [g.as_dict() for g in gates],
        "finops": {"monthly_usd": cost["release"]["monthly_usd"], "run_cpu_seconds": cost["run_compute"]["cpu_seconds"],
                   "gate_warnings": [g.detail for g in warnings]},  # failed gates that only warn
    }
    with atomic_path(paths.release_candidate) as staged:
        staged.mkdir()
        # the released variant per platform (footprint.json names it) and the offload device model
        for name in {footprint["platforms"]["android"]["selected"], offload["device_variant"]}:
            shutil.copy2(paths.tflite_model / tflite["variants"][name]["file"],
                         staged / tflite["variants"][name]["file"])
        shutil.copytree(paths.coreml_model / coreml_package(footprint["platforms"]["ios"]["selected"]),
                        staged / RELEASE_COREML_PACKAGE)
        ort = (footprint["platforms"].get("onnxruntime") or {}).get("selected")
        if ort:  # the ORT Mobile file an app shipping onnxruntime (Android or iOS) loads
            shutil.copy2(paths.onnx_model / ort_file(ort), staged / RELEASE_ORT_FILE)
        shutil.copy2(paths.trained_model / FEATURE_SPEC_FILE, staged / FEATURE_SPEC_FILE)
        write_json(staged / RELEASE_PROFILE_FILE, release_profile(  # what the next run's drift check compares against
            settings, reference_model(staged).read_bytes(),  # type: ignore[union-attr]  # the model a later drift check will run
            FeatureSpec.model_validate(read_json(paths.trained_model / FEATURE_SPEC_FILE)["spec"])))
        for report in (paths.evaluation_report, paths.tflite_report, paths.coreml_report,
                       paths.footprint_report, paths.offload_report, paths.drift_report,
                       paths.model_card_markdown, paths.model_card_json, paths.fairness_tradeoff_plot,
                       paths.cost_report, paths.offload_endpoint, paths.onnx_report):
            shutil.copy2(report, staged / report.name)  # the card's Markdown shows fairness_tradeoff.png
        encryption = None  # release.encryption tink: model files become .tink ciphertexts, reports stay readable
        if settings.params.release.encryption == "tink":
            encryption = encrypt_models(staged, load_keyset(settings, create=True))
        from pipelines.training.pyfunc import requirements  # MLflow: imported by the step, not with the module

        seal(staged, settings, lineage, metrics, endpoint_requirements=requirements(),
             mlflow_run_url=run_url(settings, record["experiment_id"], record["run_id"]),
             drift_reference=read_json(paths.drift_report).get("reference"), encryption=encryption, started=started)
    releases = settings.resolve(settings.params.release.directory)
    existing = same_content(paths.release_candidate, releases, record["model_name"])
    released = existing or publish(paths.release_candidate, releases, record["model_name"], trusted_keys(settings))
    shown = released.relative_to(settings.root) if released.is_relative_to(settings.root) else released
    # the version is tagged with the release that ships its content (never left pending); only a newly published
    # release moves the `candidate` alias
    mark_released(settings, record["model_name"], record["model_version"], str(shown), alias=existing is None)
    if existing is None:
        # the signed release (models, manifest, signature) and the model card beside the run's other artifacts
        log_to_run(settings, record["run_id"], {}, {"release": released})
        log_files(settings, record["run_id"], "reports", [paths.model_card_markdown, paths.model_card_json])
    sizes = {n: v["size_bytes"] for n, v in tflite["variants"].items()}
    return StepResult(summary={"release": str(released), "release_number": int(released.name),
                               "published": existing is None,  # False: the same content was released before
                               "model_version": record["model_version"],
                               "mlflow_model": model_version_url(settings, record["model_name"],
                                                                 record["model_version"]),
                               "mlflow_run": run_url(settings, record["experiment_id"], record["run_id"]),
                               **{f"tflite_{n}_bytes": s for n, s in sizes.items()},
                               "gates_passed": len(gates), **encryption_summary(encryption)},
                      tables={"gates": gates_table(gates), "files": files_table(released)})


def files_table(folder) -> str:
    """What the release folder holds: each top-level file or package and its size."""
    rows = ["| file | bytes |", "|---|---|"]
    for entry in sorted(folder.iterdir()):
        size = (sum(f.stat().st_size for f in entry.rglob("*") if f.is_file()) if entry.is_dir()
                else entry.stat().st_size)
        rows.append(f"| {entry.name}{'/' if entry.is_dir() else ''} | {size} |")
    return "\n".join(rows)
