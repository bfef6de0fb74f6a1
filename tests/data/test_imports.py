"""Data-only stages import only what they use: no TensorFlow, Keras, coremltools or MLflow (each costs seconds
of start-up in every DVC stage process)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = """
import sys
from pipelines.catalog import step_function
from pipelines.core.config import load_settings
settings = load_settings(sys.argv[1])
for name in ("raw_dataset", "validated_dataset", "data_drift", "dataset_splits"):
    step_function(name)(settings)
print("imported:" + ",".join(m for m in ("tensorflow", "keras", "coremltools", "mlflow") if m in sys.modules))
"""


def test_data_stages_run_without_importing_tensorflow(small_project: Path):
    done = subprocess.run([sys.executable, "-c", CHILD, str(small_project / "params.yaml")], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "imported:"  # none of them
