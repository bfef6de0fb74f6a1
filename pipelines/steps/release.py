"""Release step: gates re-checked, candidate assembled with its manifest, then published."""
from __future__ import annotations

import shutil

from pipelines.config import Settings
from pipelines.gates import footprint_gates, model_gates, require_all, variant_gates
from pipelines.hashing import dvc_md5
from pipelines.features import FeatureSpec
from pipelines.io import atomic_path, read_json, write_json
from pipelines.lineage import git_state
from pipelines.paths import ArtifactPaths
from pipelines.release import build_manifest, publish
from pipelines.signing import project_key, sign_folder, trusted_keys
from pipelines.steps import StepResult
from pipelines.steps.data import source_files
from pipelines.steps.drift import PROFILE_FILE, release_profile
from pipelines.steps.mobile import COREML_PACKAGE, coreml_package
from pipelines.steps.model import MLFLOW_FILE, SPEC_FILE


def release_candidate(settings: Settings) -> StepResult:
    paths = ArtifactPaths(settings.root)
    evaluation, tflite = read_json(paths.evaluation_report), read_json(paths.tflite_report)
    gates = model_gates(evaluation, settings.params.gates) + variant_gates(tflite, settings.params.gates)
    footprint, offload = read_json(paths.footprint_report), read_json(paths.offload_report)
    gates += footprint_gates(footprint, settings.params.footprint)  # a released variant per platform
    require_all(gates)
    record = read_json(paths.trained_model / MLFLOW_FILE)
    lineage = {
        "data_md5": source_files(settings),
        "raw_dataset_md5": dvc_md5(paths.raw_dataset),
        **git_state(settings.root),
        "params_sha256": settings.section_hash(),
        "mlflow_run_id": record["run_id"],
        "model_name": record["model_name"],
        "model_version": record["model_version"],
    }
    metrics = {
        "keras": evaluation["overall"],
        "tflite": {n: {k: v[k] for k in ("accuracy", "auc", "agreement_with_keras", "size_bytes")}
                   for n, v in tflite["variants"].items()},
        "coreml": {n: {k: v[k] for k in ("accuracy", "agreement_with_keras", "size_bytes", "op_total")}
                   for n, v in read_json(paths.coreml_report)["variants"].items()},
        "released": {p: f["selected"] for p, f in footprint["platforms"].items()},
        "offload": {k: offload["chosen"][k] for k in ("delta", "offload_rate", "hybrid_accuracy")},
        "gates": [g.as_dict() for g in gates],
    }
    with atomic_path(paths.release_candidate) as staged:
        staged.mkdir()
        # the released variant per platform (footprint.json names it) and the offload device model
        for name in {footprint["platforms"]["android"]["selected"], offload["device_variant"]}:
            shutil.copy2(paths.tflite_model / tflite["variants"][name]["file"], staged / tflite["variants"][name]["file"])
        shutil.copytree(paths.coreml_model / coreml_package(footprint["platforms"]["ios"]["selected"]), staged / COREML_PACKAGE)
        shutil.copy2(paths.trained_model / SPEC_FILE, staged / SPEC_FILE)
        write_json(staged / PROFILE_FILE, release_profile(  # what the next run's drift check compares against
            settings, (paths.tflite_model / "model_float32.tflite").read_bytes(),
            FeatureSpec.model_validate(read_json(paths.trained_model / SPEC_FILE)["spec"])))
        for report in (paths.evaluation_report, paths.tflite_report, paths.coreml_report,
                       paths.footprint_report, paths.offload_report, paths.drift_report):
            shutil.copy2(report, staged / report.name)
        build_manifest(staged, lineage, metrics)
        sign_folder(staged, project_key(settings))  # covers every file, manifest.json included
    released = publish(paths.release_candidate, settings.resolve(settings.params.release.directory),
                       record["model_name"], record["model_version"], trusted_keys(settings))
    sizes = {n: v["size_bytes"] for n, v in tflite["variants"].items()}
    return StepResult(summary={"release": str(released), "model_version": record["model_version"],
                               **{f"tflite_{n}_bytes": s for n, s in sizes.items()},
                               "gates_passed": len(gates)})
