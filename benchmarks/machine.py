"""The machine and software a benchmark ran on."""
from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return 0.0


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe(dvc: str | None) -> dict:
    """CPU model, cores, memory, OS and the versions that matter for the numbers."""
    dvc_version = "not found"
    if dvc:
        done = subprocess.run([dvc, "--version"], capture_output=True, text=True)
        dvc_version = done.stdout.strip() or dvc_version
    return {
        "cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
        "versions": {p: _version(p) for p in ("dagster", "tensorflow-cpu", "mlflow", "great-expectations",
                                              "coremltools", "ai-edge-litert", "pandas")} | {"dvc": dvc_version},
    }
