"""CycloneDX bills of materials for a release: the environment that built it (from the lock files) and the offload
endpoint image (the registered MLflow Model's pinned requirements)."""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from pathlib import Path

from pipelines.core.errors import PipelineError

SBOM_FOLDER = "sbom"
ENVIRONMENT_SBOM = f"{SBOM_FOLDER}/environment.cdx.json"
ENDPOINT_SBOM = f"{SBOM_FOLDER}/offload-endpoint.cdx.json"
_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)")


def pinned(lines: list[str], source: str) -> dict[str, str]:
    """Package -> version from requirement lines `name==version` (comments, options and `-r` lines skipped)."""
    found: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith("-"):
            continue
        match = _PIN.match(text)
        if match is None:
            raise PipelineError(f"{source}:{number}: not a pinned requirement (name==version): {text[:80]!r}")
        found[match.group(1)] = match.group(2)
    return found


def canonical(name: str) -> str:
    """A PyPI name as its package URL spells it (PEP 503: lower case, runs of - _ . as one -)."""
    return re.sub(r"[-_.]+", "-", name).lower()


CODE_ROOT = Path(__file__).resolve().parents[2]  # the checkout the running code comes from (holds the lock files)


def environment_packages(code_root: Path = CODE_ROOT) -> dict[str, str]:
    """The build environment's packages: what requirements.lock pins in a checkout; for an installed package
    without its lock, the distributions this interpreter has."""
    lock = code_root / "requirements.lock"
    if lock.is_file():
        return pinned(lock.read_text().splitlines(), str(lock))
    from importlib import metadata

    return {d.metadata["Name"]: d.version for d in metadata.distributions() if d.metadata["Name"]}


def bom(name: str, version: str, packages: dict[str, str], description: str) -> dict:
    """A CycloneDX 1.6 JSON document listing `packages` as PyPI libraries (deterministic: serial from content)."""
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    document = Bom()
    root = Component(name=name, version=version, type=ComponentType.APPLICATION, description=description,
                     bom_ref=f"{name}@{version}")
    document.metadata.component = root
    libraries = []
    for package, pin in sorted((canonical(p), v) for p, v in packages.items()):
        libraries.append(Component(name=package, version=pin, type=ComponentType.LIBRARY,
                                   purl=PackageURL(type="pypi", name=package, version=pin),
                                   bom_ref=f"pkg:pypi/{package}@{pin}"))
        document.components.add(libraries[-1])
    document.register_dependency(root, libraries)  # the application depends on every pinned package
    content = hashlib.sha256(json.dumps([name, version, sorted(packages.items())]).encode()).hexdigest()
    document.serial_number = uuid.UUID(content[:32])
    payload = json.loads(JsonV1Dot6(document).output_as_string())
    payload.get("metadata", {}).pop("timestamp", None)  # the same inputs give the same bytes
    return payload


def write_sboms(folder: Path, model_name: str, model_version: str, endpoint_requirements: list[str]) -> list[str]:
    """Write both SBOMs into a release folder; return their paths inside it."""
    environment = bom("mobile-mlops-build-environment", model_version, environment_packages(),
                      f"the environment that built {model_name} version {model_version} (requirements.lock)")
    endpoint = bom(f"{model_name}-offload-endpoint", model_version, pinned(endpoint_requirements, "MLflow Model"),
                   "the offload endpoint image: the registered MLflow Model's pinned requirements")
    (folder / SBOM_FOLDER).mkdir(exist_ok=True)
    for path, payload in ((ENVIRONMENT_SBOM, environment), (ENDPOINT_SBOM, endpoint)):
        (folder / path).write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return [ENVIRONMENT_SBOM, ENDPOINT_SBOM]
