"""MLflow: one run per trained model, registered as a new version; the `candidate` alias moves to a version only
when its signed release is published, and a version whose run stopped before that is tagged as never released."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pipelines.core.config import Settings
from pipelines.core.stores import check_sqlite

CANDIDATE_ALIAS = "candidate"
RELEASE_TAG = "mobile-mlops.release"  # pending -> the published release folder, or `never released` (an orphan)
PENDING = "pending"
NEVER_RELEASED = "never released: its run stopped before a release was published"


def tracking_uri(settings: Settings) -> str:
    """MLFLOW_TRACKING_URI wins; else the embedded SQLite store inside the project."""
    if env := os.environ.get("MLFLOW_TRACKING_URI"):
        return env
    uri = settings.params.mlflow.tracking_uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{settings.resolve(uri.removeprefix('sqlite:///'))}"
    return uri


def ui_base_url(settings: Settings) -> str:
    """Where people browse runs: an http(s) tracking server serves its own UI; else params mlflow.ui_url."""
    from urllib.parse import urlsplit

    uri = tracking_uri(settings)
    if uri.startswith(("http://", "https://")):
        parts = urlsplit(uri)
        return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl().rstrip("/")  # never credentials
    return settings.params.mlflow.ui_url.rstrip("/")


def run_url(settings: Settings, experiment_id: str, run_id: str) -> str:
    """The MLflow UI page of one run."""
    return f"{ui_base_url(settings)}/#/experiments/{experiment_id}/runs/{run_id}"


def model_version_url(settings: Settings, name: str, version: str) -> str:
    """The MLflow UI page of one registered model version."""
    from urllib.parse import quote

    return f"{ui_base_url(settings)}/#/models/{quote(name)}/versions/{version}"


def _client(settings: Settings):
    import logging

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # A client bound to the URI, not mlflow.set_tracking_uri: that exports MLFLOW_TRACKING_URI to the
    # process environment, which would leak one project's store into the next run or subprocess.
    uri = tracking_uri(settings)
    if uri.startswith("sqlite:///"):
        check_sqlite(Path(uri.removeprefix("sqlite:///")), "MLflow store")
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _experiment_id(client, settings: Settings) -> str:
    name = settings.params.mlflow.experiment
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    if tracking_uri(settings).startswith(("http://", "https://")):  # a tracking server stores (proxies) artifacts
        return client.create_experiment(name)
    location = settings.resolve(settings.params.mlflow.artifact_root).resolve().as_uri()
    return client.create_experiment(name, artifact_location=location)


def flatten(payload: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested params as dotted keys, the way MLflow lists them."""
    flat: dict[str, Any] = {}
    for key, value in payload.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def published_versions(settings: Settings, name: str) -> dict[str, str]:
    """MLflow version -> its published release folder, read from the manifests under release.directory/<name>/
    (a folder appears whole, by rename, so a manifest there means the release was published)."""
    import json

    folder = settings.resolve(settings.params.release.directory) / name
    found: dict[str, str] = {}
    for manifest in sorted(folder.glob("*/manifest.json"), key=lambda p: (len(p.parent.name), p.parent.name)):
        if not manifest.parent.name.isdigit():
            continue
        try:
            lineage = json.loads(manifest.read_text()).get("lineage", {})
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(lineage, dict) and lineage.get("model_name") == name and lineage.get("model_version"):
            release = manifest.parent
            shown = release.relative_to(settings.root) if release.is_relative_to(settings.root) else release
            found[str(lineage["model_version"])] = str(shown)
    return found


def log_training_run(
    settings: Settings, history: dict[str, list[float]], artifacts: Path, tags: dict[str, str],
    mlflow_model: Path | None = None,
) -> dict[str, str]:
    """Log params, per-epoch metrics and the model folder; register a version pending its release.

    `mlflow_model` (an MLflow Model folder, pipelines.training.pyfunc) is merged into the same `model` artifact
    folder, so the registered version loads with `mlflow.pyfunc.load_model("models:/NAME@candidate")`.

    Earlier versions still pending are orphans (their run was killed or stopped at a gate): they are tagged so,
    and keep no alias, so the version sequence has no silent gaps and an orphan is never promoted."""
    from mlflow.entities import Metric, Param

    client = _client(settings)
    experiment_id = _experiment_id(client, settings)
    run = client.create_run(experiment_id, tags=tags, run_name="train")
    run_id = run.info.run_id
    params = [Param(k, str(v)[:6000]) for k, v in flatten(settings.raw).items()]
    metrics = [
        Metric(name, value, 0, step) for name, values in history.items() for step, value in enumerate(values)
    ]
    client.log_batch(run_id, metrics=metrics, params=params, tags=[])
    client.log_artifacts(run_id, str(artifacts), artifact_path="model")
    if mlflow_model is not None:
        client.log_artifacts(run_id, str(mlflow_model), artifact_path="model")
    name = settings.params.release.model_name
    try:
        client.get_registered_model(name)
    except Exception:  # MLflow raises a generic RestException when absent
        client.create_registered_model(name, tags=tags)
    published = published_versions(settings, name)  # a run killed between publishing and tagging: tag it now
    for earlier in sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version)):
        if earlier.tags.get(RELEASE_TAG) == PENDING:
            if str(earlier.version) in published:
                mark_released(settings, name, str(earlier.version), published[str(earlier.version)])
            else:
                client.set_model_version_tag(name, earlier.version, RELEASE_TAG, NEVER_RELEASED)
    version = client.create_model_version(name, source=f"{run.info.artifact_uri}/model", run_id=run_id,
                                          tags={**tags, RELEASE_TAG: PENDING})
    client.set_terminated(run_id)
    return {"run_id": run_id, "model_name": name, "model_version": str(version.version),
            "tracking_uri": tracking_uri(settings), "experiment_id": experiment_id}


def log_side_run(settings: Settings, run_name: str, params: dict[str, Any], metrics: dict[str, float],
                 artifacts: Path, tags: dict[str, str]) -> dict[str, str]:
    """A finished run beside the training run (the distillation teacher): params, metrics, its model folder."""
    from mlflow.entities import Metric, Param

    client = _client(settings)
    experiment_id = _experiment_id(client, settings)
    run = client.create_run(experiment_id, tags=tags, run_name=run_name)
    client.log_batch(run.info.run_id, metrics=[Metric(k, float(v), 0, 0) for k, v in metrics.items() if v == v],
                     params=[Param(k, str(v)[:6000]) for k, v in flatten(params).items()])
    client.log_artifacts(run.info.run_id, str(artifacts), artifact_path="model")
    client.set_terminated(run.info.run_id)
    return {"run_id": run.info.run_id, "experiment_id": experiment_id, "tracking_uri": tracking_uri(settings)}


def log_to_run(settings: Settings, run_id: str, metrics: dict[str, float], artifacts: dict[str, Path]) -> None:
    """Add evaluation metrics and files to an existing run."""
    from mlflow.entities import Metric

    client = _client(settings)
    batch = [Metric(k, float(v), 0, 0) for k, v in metrics.items() if v == v]  # drop NaN
    if batch:
        client.log_batch(run_id, metrics=batch)
    for artifact_path, local in artifacts.items():
        if local.is_dir():
            client.log_artifacts(run_id, str(local), artifact_path=artifact_path)
        else:
            client.log_artifact(run_id, str(local), artifact_path=artifact_path)


def log_files(settings: Settings, run_id: str, artifact_path: str, files: list[Path]) -> None:
    """Add several files under one artifact folder of an existing run (missing files are skipped)."""
    client = _client(settings)
    for local in files:
        if Path(local).is_file():
            client.log_artifact(run_id, str(local), artifact_path=artifact_path)


PRODUCTION_ALIAS = "production"


def alias_version(settings: Settings, name: str, alias: str) -> str | None:
    """The registered model version an alias points at, or None when unset."""
    from mlflow.exceptions import MlflowException

    try:
        return str(_client(settings).get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def mark_released(settings: Settings, name: str, version: str, release: str, alias: bool = True) -> None:
    """A version's signed release is published (or an earlier one ships the same content): tag it with the folder
    and, with `alias`, point `candidate` at it."""
    client = _client(settings)
    client.set_model_version_tag(name, version, RELEASE_TAG, release)
    if alias:
        client.set_registered_model_alias(name, CANDIDATE_ALIAS, version)


def set_alias(settings: Settings, name: str, alias: str, version: str, tags: dict[str, str]) -> str | None:
    """Point `alias` at an existing version and tag that version; return the version it pointed at before."""
    from urllib.parse import urlsplit

    from mlflow.exceptions import MlflowException

    from pipelines.core.errors import PipelineError

    client = _client(settings)
    try:
        client.get_model_version(name, version)
    except MlflowException as exc:
        parts = urlsplit(tracking_uri(settings))
        where = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()  # never print credentials
        raise PipelineError(f"MLflow {where}: model {name} has no version {version}") from exc
    previous = alias_version(settings, name, alias)
    client.set_registered_model_alias(name, alias, version)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    return previous
