"""Release step: gates re-checked, candidate assembled with its manifest, then published."""
from __future__ import annotations

import shutil

from pipelines.config import Settings
from pipelines.gates import model_gates, require_all, variant_gates
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
from pipelines.steps.mobile import COREML_PACKAGE
from pipelines.steps.model import MLFLOW_FILE, SPEC_FILE


def release_candidate(settings: Settings) -> StepResult:
    paths = ArtifactPaths(settings.root)
    evaluation, tflite = read_json(paths.evaluation_report), read_json(paths.tflite_report)
    gates = model_gates(evaluation, settings.params.gates) + variant_gates(tflite, settings.params.gates)
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
        "coreml": {k: read_json(paths.coreml_report)[k] for k in ("size_bytes", "op_total", "prediction_note")},
        "gates": [g.as_dict() for g in gates],
    }
    with atomic_path(paths.release_candidate) as staged:
        staged.mkdir()
        for variant in tflite["variants"].values():
            shutil.copy2(paths.tflite_model / variant["file"], staged / variant["file"])
        shutil.copytree(paths.coreml_model / COREML_PACKAGE, staged / COREML_PACKAGE)
        shutil.copy2(paths.trained_model / SPEC_FILE, staged / SPEC_FILE)
        write_json(staged / PROFILE_FILE, release_profile(  # what the next run's drift check compares against
            settings, (paths.tflite_model / "model_float32.tflite").read_bytes(),
            FeatureSpec.model_validate(read_json(paths.trained_model / SPEC_FILE)["spec"])))
        for report in (paths.evaluation_report, paths.tflite_report, paths.coreml_report):
            shutil.copy2(report, staged / report.name)
        build_manifest(staged, lineage, metrics)
        sign_folder(staged, project_key(settings))  # covers every file, manifest.json included
    released = publish(paths.release_candidate, settings.resolve(settings.params.release.directory),
                       record["model_name"], record["model_version"], trusted_keys(settings))
    sizes = {n: v["size_bytes"] for n, v in tflite["variants"].items()}
    return StepResult(summary={"release": str(released), "model_version": record["model_version"],
                               **{f"tflite_{n}_bytes": s for n, s in sizes.items()},
                               "gates_passed": len(gates)})
