"""Seal an assembled release folder: SBOMs, manifest, signed attestations, then the model signature over all."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.core.config import Settings
from pipelines.release.attest import write_attestations
from pipelines.release.folder import build_manifest
from pipelines.release.provenance import gate_verdicts, now, release_provenance
from pipelines.release.sbom import write_sboms
from pipelines.release.signing import project_key, sign_folder


def seal(folder: Path, settings: Settings, lineage: dict[str, Any], metrics: dict[str, Any], *,
         endpoint_requirements: list[str], mlflow_run_url: str, drift_reference: str | None = None,
         encryption: dict[str, Any] | None = None, started: str | None = None) -> None:
    """Everything after the files are in place, in the one order `verify` expects (each step covers the last)."""
    write_sboms(folder, lineage["model_name"], lineage["model_version"], endpoint_requirements)
    build_manifest(folder, lineage, metrics, tags=settings.params.project.tags(),  # FinOps tags
                   encryption=encryption)
    key = project_key(settings)
    write_attestations(folder, key,
                       release_provenance(settings, lineage, folder, drift_reference, mlflow_run_url, started or now()),
                       gate_verdicts(metrics.get("gates", []), lineage))
    sign_folder(folder, key)  # covers every file (ciphertexts), manifest.json and the attestations included
