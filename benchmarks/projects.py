"""Throw-away project folders for benchmark runs: a copy of the repo, or a bare params + data folder."""
from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(".venv*", ".git", ".dagster", "mlflow.db", "mlartifacts", "models", "build", "releases",
                                "raw", "prepared", "cache", "tmp", "__pycache__", "*.egg-info", "test-artifacts")


def repo_copy(target: Path, quick: bool) -> Path:
    """The repo's files in `target`, a git repo of its own, whose bin/stage reuses the installed .venv."""
    shutil.copytree(REPO, target, ignore=IGNORE, copy_function=shutil.copy2)
    (target / ".venv" / "bin").mkdir(parents=True)
    for script in ("mobile-mlops", "mobile-mlops-stage"):
        (target / ".venv" / "bin" / script).symlink_to(REPO / ".venv" / "bin" / script)
    (target / ".venv" / ".installed").touch()  # newer than the lock: `make venv` is a no-op
    for stale in (target / "reports").glob("*.*"):  # figures must come from this run, not the repo's
        stale.unlink()
    if quick:
        _quick_params(target)
    for command in (["git", "init", "-q"], ["git", "add", "-A"],
                    ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "bench"]):
        subprocess.run(command, cwd=target, check=True, capture_output=True)
    return target


def _slice(source: Path, target: Path, rows: int) -> None:
    with gzip.open(source, "rt") as handle:
        target.write_text("".join(next(handle) for _ in range(rows)))


def _quick_params(project: Path) -> None:
    """A tiny slice of the real data and the cheapest training, for `--quick`."""
    _slice(project / "data/adult/adult.data.gz", project / "data/adult/quick.data", 1500)
    _slice(project / "data/adult/adult.test.gz", project / "data/adult/quick.test", 600)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"] |= {"source": "data/adult/quick.data", "test_source": "data/adult/quick.test"}
    params["validate"]["min_rows"] = 100
    params["train"]["epochs"] = 1
    params["convert"]["representative_samples"] = 50
    params["gates"]["fairness"]["min_group_size"] = 20  # the slice's test rows hold about 30 women
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.rmtree(project / "expectations", ignore_errors=True)  # rebuilt from the slice on first run


def scale_project(target: Path, rows: int, seed: int = 0) -> Path:
    """A folder with `rows` synthetic rows made from the real Adult data, and params to train 1 epoch."""
    from pipelines.core.config import load_settings
    from pipelines.data.load import load_dataset
    from pipelines.data.synth import synthesize

    settings = load_settings(REPO / "params.yaml")
    data = settings.params.data
    real = load_dataset(data, settings.resolve(data.source), settings.resolve(data.test_source)).dropna()
    real = real.drop(columns=["_origin"])
    target.mkdir(parents=True)
    synthesize(real, rows, seed=seed).to_csv(target / "data.csv", index=False)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"] = {"source": "data.csv", "label": data.label, "positive_label": data.positive_label,
                      "sensitive_features": data.sensitive_features}
    params["validate"]["min_rows"] = min(1000, rows // 2)
    # a measurable fairness gate at every size: the test split (a fifth) holds about rows / 15 women; race and the
    # intersection are reported, not gated (at 500 rows only one race group has 10 test rows, and a limited
    # grouping the gate cannot measure stops the run before training)
    fairness = params["gates"]["fairness"]
    fairness["min_group_size"] = max(10, min(100, rows // 50))
    for key in ("max_demographic_parity_difference", "max_equalized_odds_difference"):
        limit = fairness.get(key)
        fairness[key] = {"sex": limit.get("sex") if isinstance(limit, dict) else limit}
    # one epoch on synthetic rows measures time, not a model worth releasing: no accuracy floor or baselines
    params["gates"]["keras"] = {"min_accuracy": None, "min_gain_over_majority": None, "max_gap_to_logistic": None}
    params["train"]["epochs"] = 1
    (target / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return target / "params.yaml"
