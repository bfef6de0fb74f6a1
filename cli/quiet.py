"""Quiet by default: only the pipeline's progress lines and summary reach the terminal (`--verbose` shows all)."""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

DAGSTER_YAML = """\
# Written by mobile-mlops: no usage telemetry, no first-run dialog in the UI.
telemetry:
  enabled: false
nux:
  enabled: false
"""


def quiet_libraries() -> None:
    """TensorFlow/absl logging, coremltools progress bars and library warnings off, before they are imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ log lines
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TQDM_DISABLE", "1")  # coremltools' conversion progress bars
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    warnings.filterwarnings("ignore")
    for name in ("coremltools", "absl", "tensorflow", "mlflow", "alembic", "dagster", "h5py", "numexpr"):
        logging.getLogger(name).setLevel(logging.ERROR)


def dagster_home(home: Path) -> Path:
    """A Dagster home with telemetry and the community dialog off (an existing dagster.yaml is left alone)."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.is_file() or not config.read_text().strip():
        config.write_text(DAGSTER_YAML)
    return home


if __name__ == "__main__":  # `python -m cli.quiet DAGSTER_HOME`: the Makefile's `make ui` and `make run` use it
    import sys

    dagster_home(Path(sys.argv[1]))
