"""params.yaml parsed once into typed, validated objects."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipelines.errors import PipelineError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Section):
    source: str
    label: str
    positive_label: str
    sensitive_features: list[str] = Field(min_length=1)
    test_source: str | None = None  # a fixed test split shipped with the data (UCI Adult has one)
    columns: list[str] | None = None  # names for a header-less file
    na_values: list[str] = ["?"]
    categorical: list[str] = []
    numeric: list[str] = []
    drop: list[str] = []
    pii: list[str] = []
    drop_missing_rows: bool = True
    sensitive_as_inputs: bool = False

    @field_validator("source")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a CSV or Parquet file")
        return value


class SplitConfig(_Section):
    test_size: float = Field(0.2, gt=0, lt=1)
    validation_size: float = Field(0.1, gt=0, lt=1)
    seed: int = 42


class ValidateConfig(_Section):
    suite: str = "expectations/suite.json"  # Great Expectations suite; `mobile-mlops expectations build`
    min_rows: int = Field(100, ge=1)
    max_missing_fraction: float = Field(0.5, ge=0, le=1)
    null_margin: float = Field(0.02, ge=0, le=1)  # allowed rise in a column's null share
    range_margin: float = Field(0.1, ge=0)  # numeric range widened by this share of the trusted range
    max_categories: int = Field(100, ge=1)  # columns with more distinct values get no allowed-set check
    category_mostly: float = Field(1.0, ge=0, le=1)  # share of values that must be known categories
    duplicate_margin: float = Field(0.05, ge=0, le=1)  # allowed rise in the share of duplicated rows


class DriftConfig(_Section):
    reference: str = "auto"  # auto: production release, else the previous candidate; or a release folder
    psi_threshold: float = Field(0.2, gt=0)
    p_value: float = Field(0.01, gt=0, lt=1)  # KS (numeric) / chi-squared (categorical)
    min_effect: float = Field(0.1, ge=0)  # a test also needs PSI above this to count (large-n guard)
    blocking: bool = True
    sample_rows: int = Field(20000, ge=100)


class TrainConfig(_Section):
    hidden_units: list[int] = [64, 32]
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(256, ge=1)
    learning_rate: float = Field(0.001, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    seed: int = 42
    threshold: float = Field(0.5, gt=0, lt=1)


class ConvertConfig(_Section):
    representative_samples: int = Field(500, ge=10)
    coreml_minimum_deployment_target: Literal["iOS15", "iOS16", "iOS17", "iOS18"] = "iOS16"


class GatesConfig(_Section):
    min_accuracy: float = Field(0.8, ge=0, le=1)
    min_agreement: float = Field(0.97, ge=0, le=1)  # each on-device variant vs the Keras model


class MlflowConfig(_Section):
    tracking_uri: str = "sqlite:///mlflow.db"  # relative to the project root; MLFLOW_TRACKING_URI overrides
    artifact_root: str = "mlartifacts"
    experiment: str = "mobile-mlops"


class ReleaseConfig(_Section):
    model_name: str = "adult-income"
    directory: str = "releases"


class Params(_Section):
    data: DataConfig
    split: SplitConfig = SplitConfig()
    validate_: ValidateConfig = Field(ValidateConfig(), alias="validate")
    drift: DriftConfig = DriftConfig()
    train: TrainConfig = TrainConfig()
    convert: ConvertConfig = ConvertConfig()
    gates: GatesConfig = GatesConfig()
    mlflow: MlflowConfig = MlflowConfig()
    release: ReleaseConfig = ReleaseConfig()

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Settings(BaseModel):
    """Parsed params plus where they came from; paths in params are relative to `root`."""

    params: Params
    path: Path
    raw: dict[str, Any]

    @property
    def root(self) -> Path:
        return self.path.parent

    def resolve(self, relative: str) -> Path:
        candidate = Path(relative).expanduser()
        return candidate if candidate.is_absolute() else self.root / candidate

    def section_hash(self) -> str:
        """sha256 of the canonical params, for the release lineage."""
        text = json.dumps(self.raw, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _describe(error: ValidationError, path: Path) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"{path.name}: unknown key '{key}'"
    if first["type"] == "missing":
        return f"{path.name}: missing key '{key}'"
    return f"{path.name}: key '{key}': {first['msg']} (got {first.get('input')!r})"


def _apply_override(raw: dict[str, Any], dotted: str, value: Any) -> None:
    node = raw
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise PipelineError(f"override '{dotted}': '{part}' is not a section")
    node[leaf] = value


def load_settings(path: str | Path = "params.yaml", overrides: dict[str, Any] | None = None) -> Settings:
    """Read and validate params; `overrides` maps dotted keys (train.epochs) to values."""
    path = Path(path).resolve()
    if not path.is_file():
        raise PipelineError(f"{path}: params file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise PipelineError(f"{path.name}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(raw, dict):
        raise PipelineError(f"{path.name}: top level must be a mapping of sections")
    for dotted, value in (overrides or {}).items():
        _apply_override(raw, dotted, value)
    try:
        params = Params.model_validate(raw)
    except ValidationError as exc:
        raise PipelineError(_describe(exc, path)) from exc
    return Settings(params=params, path=path, raw=raw)
