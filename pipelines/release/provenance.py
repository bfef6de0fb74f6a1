"""What a release's provenance says: gathered from the run's settings, lineage and files (see attest.py)."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.catalog import STAGES, parents
from pipelines.core.config import Settings
from pipelines.core.hashing import file_digest
from pipelines.release.attest import gates_predicate, provenance_predicate, run_details
from pipelines.release.sbom import CODE_ROOT, ENDPOINT_SBOM, ENVIRONMENT_SBOM

LOCK_FILES = ("requirements.lock", "requirements-dev.lock", "requirements-dvc.lock")


def stage_graph() -> dict[str, list[str]]:
    """Each stage of the catalog and the stages (or source data) it reads."""
    return {name: sorted(parents(name)) for name in STAGES}


def lock_digests(root: Path = CODE_ROOT) -> dict[str, str]:
    """sha256 of each lock file of the code's checkout: the environment the code ran in."""
    return {name: file_digest(root / name) for name in LOCK_FILES if (root / name).is_file()}


def dependencies(lineage: dict[str, Any], staged: Path, drift_reference: str | None) -> list[dict[str, Any]]:
    """Resolved dependencies: every source file (DVC md5 and path), the raw dataset, the drift base, the SBOMs."""
    found = [{"name": path, "uri": f"dvc:{path}", "digest": {"md5": md5},
              "annotations": {"role": "source-data", "dvcPath": path}}
             for path, md5 in sorted(lineage["data_md5"].items())]
    found.append({"name": "raw_dataset", "digest": {"md5": lineage["raw_dataset_md5"]},
                  "annotations": {"role": "prepared-data"}})
    if drift_reference:
        found.append({"name": "drift-reference", "uri": f"release:{drift_reference}",
                      "annotations": {"role": "drift-base"}})
    found += [{"name": sbom, "digest": {"sha256": file_digest(staged / sbom)}, "annotations": {"role": "sbom"}}
              for sbom in (ENVIRONMENT_SBOM, ENDPOINT_SBOM)]
    return found


def release_provenance(settings: Settings, lineage: dict[str, Any], staged: Path, drift_reference: str | None,
                       mlflow_run_url: str, started: str) -> dict[str, Any]:
    """The SLSA v1 provenance predicate of the release being assembled in `staged`."""
    build = {
        "external": {"params": {"path": settings.path.name, "sha256": lineage["params_sha256"],
                                "overrides": {k: str(v) for k, v in settings.overrides.items()}},
                     "model": lineage["model_name"]},
        "internal": {"stageGraph": stage_graph(), "lockFiles": lock_digests(),
                     "code": {"commit": lineage["git_commit"], "dirty": lineage["git_dirty"]}},
    }
    return provenance_predicate(build, dependencies(lineage, staged, drift_reference),
                                run_details(lineage["mlflow_run_id"], mlflow_run_url, started))


def gate_verdicts(gates: list[dict[str, Any]], lineage: dict[str, Any]) -> dict[str, Any]:
    """The gate-verdicts predicate of the release."""
    return gates_predicate(gates, lineage["model_name"], lineage["model_version"])


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
