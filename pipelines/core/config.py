"""params.yaml parsed once into typed, validated objects."""
from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipelines.core.errors import PipelineError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # nan/inf pass `gt=` bounds or break libraries


MAX_NAME = 100  # characters in a name that becomes a path component, a git branch or an MLflow model name
_PATH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_BRANCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")
MAX_COLUMN = 180  # MLflow caps metric/param names at 250; the longest prefix+suffix the pipeline adds is < 70
_COLUMN_TEXT = re.compile(r"[\w .:/-]+")  # what MLflow accepts in a metric or param name (besides the length)


def path_name(value: str) -> str:
    """A name that becomes a path component: a safe character set, no `..`, a length limit."""
    if len(value) > MAX_NAME:
        raise ValueError(f"is {len(value)} characters; at most {MAX_NAME}")
    if ".." in value or not _PATH_NAME.fullmatch(value):
        raise ValueError("must be letters, digits, '.', '_' or '-', start with a letter or digit, and hold no '..'")
    return value


def branch_name(value: str) -> str:
    """A git branch or remote name: path_name's rules, plus '/' between parts (no empty part, no '.lock')."""
    if len(value) > MAX_NAME:
        raise ValueError(f"is {len(value)} characters; at most {MAX_NAME}")
    if (".." in value or "//" in value or not _BRANCH.fullmatch(value) or value.endswith(("/", ".", ".lock"))
            or "/." in value):
        raise ValueError("must be letters, digits, '.', '_', '-' or '/', start with a letter or digit, and hold no "
                         "'..'")
    return value


def column_name(value: str) -> str:
    """A column name MLflow can log metrics under (pipelines add prefixes such as `importance_`)."""
    if len(value) > MAX_COLUMN:
        raise ValueError(f"is {len(value)} characters; MLflow metric names hold at most 250, so a column at most "
                         f"{MAX_COLUMN}")
    if not value.strip() or not _COLUMN_TEXT.fullmatch(value):
        raise ValueError("must be letters, digits, '_', '-', '.', ' ', ':' or '/' (what MLflow accepts in a metric "
                         "name)")
    return value


PathName = Annotated[str, AfterValidator(path_name)]
ColumnName = Annotated[str, AfterValidator(column_name)]
Seed = Annotated[int, Field(ge=0, lt=2**32)]  # numpy and TensorFlow seeds are unsigned 32-bit


class IncomingConfig(_Section):
    """Daily files an upstream system drops (Dagster's daily_batch partitions)."""

    folder: str = "data/incoming"  # an upstream system drops one file a day here: YYYY-MM-DD.parquet (or .csv)
    start_date: str = "2026-01-01"  # the first daily partition (Dagster's daily_batch asset), YYYY-MM-DD

    @field_validator("start_date", mode="before")
    @classmethod
    def _iso_day(cls, value: Any) -> str:
        text = value.isoformat() if isinstance(value, date) else str(value)  # YAML reads 2026-01-01 as a date
        try:
            date.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a YYYY-MM-DD date") from exc
        return text

    @property
    def first_day(self) -> date:
        return date.fromisoformat(self.start_date)


class DataConfig(_Section):
    """The data set: its source files, label, column roles and how they are read."""

    source: str  # a CSV or Parquet file, or a folder of daily files (the accepted days in it, data.incoming)
    label: str  # the column to predict: positive_label against every other value
    positive_label: str | bool | int | float  # compared by value: 1 matches "1" and "1.0"; true matches "True"
    sensitive_features: list[ColumnName] = Field(min_length=1, description="columns whose groups fairness is "
                                                 "measured over; model inputs only with sensitive_as_inputs")
    test_source: str | None = None  # a fixed test split shipped with the data (UCI Adult has one)
    key: ColumnName | None = Field(None, description=(
        "a column whose text identifies a row: the splits hash it (with split.seed), so a row keeps its split when "
        "rows are added or reordered; read as text, never a model input. None: the row's file and number"))
    columns: list[str] | None = None  # names for a header-less file
    rename: dict[str, str] = Field({}, description=(
        "New names for columns as the file names them ({old: new}); `old#k` names the k-th column called old, "
        "so repeated headers can be told apart ({\"age#2\": age_2})"))
    na_values: list[str] = ["?"]  # values read as missing (a blank field always is)
    thousands: Literal[",", ".", "'", "_", " ", "\u00a0", "\u202f"] | None = Field(
        None, description="the thousands separator of numbers written like 1,234 (removed before parsing; "
                          "a '.' separator is for data whose decimals are not '.'); None: such a column is refused")
    categorical: list[ColumnName] = []  # columns read as text categories (one-hot), even if numeric
    numeric: list[ColumnName] = []  # columns that must parse as numbers (else refused)
    drop: list[str] = []  # columns removed when the source is read
    pii: list[str] = []  # personal-data columns: removed when read, named in the model card
    drop_missing_rows: bool = True  # true: rows with a missing value are dropped after the suite
    sensitive_as_inputs: bool = False  # true: sensitive_features are model inputs too
    batch_rows: int = Field(500_000, ge=1, description=(
        "rows the data steps read, type and validate at a time: their memory is bounded by it, not by the data's "
        "size; the first batch fixes each column's type (numeric or text) for the rest. A train split with more "
        "rows is read from its Parquet file in batches (tf.data) by trained_model, not held as a frame"))
    incoming: IncomingConfig = IncomingConfig()  # daily partitions an upstream system drops (Dagster asset daily_batch)

    @field_validator("source")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a CSV or Parquet file")
        return value

    @field_validator("columns")
    @classmethod
    def _unique_names(cls, value: list[str] | None) -> list[str] | None:
        repeated = sorted({name for name in value or [] if (value or []).count(name) > 1})
        if repeated:
            raise ValueError(f"names repeated: {', '.join(repeated)}")
        return value


_MASTER = re.compile(r"local(\[(\*|[1-9][0-9]*)(,[1-9][0-9]*)?\])?|spark://[^/\s]+|k8s://https?://[^/\s]+|yarn")


class SparkConfig(_Section):
    """The Spark cluster the data steps run on with `engine: spark` (pyspark, a Java 17+ runtime)."""

    master: str = Field("local[*]", description="where the Spark jobs run: local[N] (N threads in the step's "
                        "process), spark://HOST:PORT (a standalone cluster; HOST1:PORT1,HOST2:PORT2 with standby "
                        "masters), k8s://https://API-SERVER:PORT (Kubernetes) or yarn; checked before any step starts")
    driver_memory: str = Field("2g", pattern=r"[1-9][0-9]*[kmgt]", description="spark.driver.memory: the JVM heap "
                               "of the driver, which runs inside the step's process (e.g. 2g)")
    conf: dict[str, str] = Field({}, description="further Spark properties, passed as given (e.g. "
                                 "{spark.executor.memory: 4g, spark.kubernetes.container.image: ...})")

    @field_validator("master")
    @classmethod
    def _known_master(cls, value: str) -> str:
        if not _MASTER.fullmatch(value):
            raise ValueError("must be local, local[N], local[*], spark://HOST:PORT, k8s://https://HOST:PORT or yarn")
        return value


class SplitConfig(_Section):
    """Train / validation / test split of the prepared rows, by a seeded hash of each row's key (data.key)."""

    test_size: float = Field(0.2, gt=0, lt=1)  # expected test share; unused when data.test_source is set
    auto_test_size: bool = True  # raise the test share until the fairness gate can tell a fair model (split_size.py)
    max_test_size: float = Field(0.4, gt=0, lt=1)  # the most auto_test_size takes for the test split (of the rows)
    validation_size: float = Field(0.1, gt=0, lt=1)  # expected validation share of the non-test rows
    seed: Seed = 42  # hashed with each row's key: another seed, another split


class ValidateConfig(_Section):
    """Data validation: the Great Expectations suite and the checks on the rows."""

    suite: str | None = None  # Great Expectations suite; None: expectations/<release.model_name>/suite.json
    min_rows: int = Field(100, ge=1)  # fewer rows after cleaning stop the run
    max_missing_fraction: float = Field(0.5, ge=0, le=1)  # a column with a larger missing share stops the run
    null_margin: float = Field(0.02, ge=0, le=1)  # allowed rise in a column's null share
    range_margin: float = Field(0.1, ge=0)  # numeric range widened by this share of the trusted range
    max_categories: int = Field(100, ge=1)  # columns with more distinct values get no allowed-set check; one
    # such column whose values look numeric is refused when the source is read (list it in data.numeric or categorical)
    category_mostly: float = Field(1.0, ge=0, le=1)  # share of values that must be known categories
    duplicate_margin: float = Field(0.05, ge=0, le=1)  # allowed rise in the share of duplicated rows


class AutomationConfig(_Section):
    """Retraining on its own: the nightly Dagster schedule and the data-version sensor."""

    cron: str = "0 2 * * *"  # nightly retraining check, in `timezone`
    timezone: str = "UTC"  # IANA time zone of `cron` (UTC, Europe/Paris...)
    sensor_interval_seconds: int = Field(300, ge=30)  # how often the DVC data-version sensor looks

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        fields = value.split()
        if len(fields) != 5 or not all(re.fullmatch(r"[0-9A-Za-z*/,?-]+", f) for f in fields):
            raise ValueError("must be a cron expression of five fields (minute hour day month weekday)")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except (ValueError, OSError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise ValueError("must be an IANA time zone such as UTC or Europe/Paris") from exc
        return value


class DriftConfig(_Section):
    """Drift of new data against a reference release: PSI and KS / chi-squared tests per feature."""

    reference: str = "auto"  # auto: production release, else the previous candidate; or a release folder
    psi_threshold: float = Field(0.2, gt=0)  # a feature whose PSI exceeds this has drifted, tests or not
    p_value: float = Field(0.01, gt=0, lt=1)  # KS (numeric) / chi-squared (categorical)
    min_effect: float = Field(0.1, ge=0)  # a test also needs PSI above this to count (large-n guard)
    blocking: bool = True  # true: drift fails drift_gate and stops the run; false: reported only
    sample_rows: int = Field(20000, ge=100)  # larger data is sampled to this many rows (seeded)


class TrainConfig(_Section):
    """The Keras MLP and how long it trains; `epochs: auto` sizes training to the data."""

    hidden_units: list[Annotated[int, Field(ge=1, le=65536)]] = Field([64, 32], max_length=16)  # units per hidden layer; [] a linear network
    epochs: Annotated[int, Field(ge=1, le=100_000)] | Literal["auto"] = "auto"  # auto: enough epochs for min_steps optimizer steps (at most max_epochs)
    min_steps: int = Field(1000, ge=1)  # epochs auto: at least this many optimizer steps
    max_epochs: int = Field(200, ge=1, le=100_000)  # epochs auto: at most this many epochs
    early_stopping_patience: int | None = Field(5, ge=1)  # epochs without a better val loss; best weights kept
    min_patience_steps: int = Field(200, ge=0, description="early stopping waits at least this many optimizer "
                                    "steps without a better val loss (more epochs than early_stopping_patience when an "
                                    "epoch is a few batches: 5 epochs of 4 steps stopped on noise)")
    class_weight: Literal["none", "balanced"] = "none"  # balanced: each class weighs as much in the loss
    batch_size: int = Field(256, ge=1)  # rows per optimizer step
    learning_rate: float = Field(0.001, gt=0)  # Adam learning rate
    dropout: float = Field(0.2, ge=0, lt=1)  # after each hidden layer: small data sets overfit without it
    seed: Seed = 42  # Keras/numpy/Python random seed of training
    threads: int = Field(1, ge=0, le=1024, description="TensorFlow intra-op threads of a training process; 0: one "
                         "per core. 1 is faster for the default network, whose ops per batch are small (Adult's six "
                         "heads: 1 s sooner on 2 cores); raise it for wide layers or large batches")
    threshold: float = Field(0.5, gt=0, lt=1)  # positive when the predicted probability >= this
    privacy: Literal["none", "dp_sgd", "federated"] = "none"  # how trained_model trains: privacy.dp / .federated
    distill: Literal["none", "lightgbm"] = Field(
        "none", description="none: the network learns the labels; lightgbm: it learns the teacher_model stage's "
                            "soft labels mixed with the labels (distill.temperature, distill.mix)")


class DistillConfig(_Section):
    """The teacher (teacher_model stage) and how the student network learns from it (train.distill)."""

    num_leaves: int = Field(15, ge=2, description="LightGBM leaves per tree")
    n_estimators: int = Field(200, ge=1, description="LightGBM boosting rounds")
    learning_rate: float = Field(0.1, gt=0, description="LightGBM shrinkage")
    min_child_samples: int = Field(20, ge=1, description="LightGBM rows per leaf at least")
    temperature: float = Field(2.0, gt=0, description="the teacher's logit divided by this before the sigmoid: "
                                                      "above 1 softens its labels")
    mix: float = Field(0.7, ge=0, le=1, description="student target = mix x soft label + (1 - mix) x label")


class DpConfig(_Section):
    """DP-SGD (train.privacy: dp_sgd): per-example clipping + Gaussian noise, Poisson sampling, PRV accountant."""

    target_epsilon: float = Field(3.0, gt=0)  # noise_multiplier auto: the smallest noise reaching this epsilon
    delta: float = Field(1e-5, gt=0, lt=1)  # the delta of (epsilon, delta)-DP, DP-SGD and federated client DP
    max_epsilon: float = Field(3.0, gt=0)  # the gate: a configuration whose epsilon exceeds it never trains
    l2_clip: float = Field(1.0, gt=0)  # per-example gradient norm bound C
    noise_multiplier: float | Literal["auto"] = "auto"  # sigma: noise std = sigma x C on the summed gradients
    epochs: int = Field(15, ge=1)  # expected passes (steps = epochs / sampling rate); fixed, for the accountant
    batch_size: int = Field(512, ge=1)  # expected Poisson batch (sampling rate = batch_size / rows)
    learning_rate: float = Field(0.002, gt=0)  # Adam learning rate on the noisy gradients

    @field_validator("noise_multiplier")
    @classmethod
    def _positive_noise(cls, value: float | str) -> float | str:
        if value != "auto" and value <= 0:  # type: ignore[operator]  # not "auto": a number
            raise ValueError("must be auto or a number > 0")
        return value


class FederatedConfig(_Section):
    """Federated averaging with Flower (train.privacy: federated) over simulated devices."""

    devices: int = Field(10, ge=2)  # simulated devices the training rows are split over
    partition_column: str = "workclass"  # non-IID: each value's rows spread over devices by Dirichlet(alpha)
    alpha: float = Field(0.5, gt=0)  # smaller: more skewed devices
    rounds: int = Field(20, ge=1)  # federated averaging rounds
    local_epochs: int = Field(2, ge=1)  # epochs each sampled device trains per round
    fraction_fit: float = Field(1.0, gt=0, le=1)  # share of devices sampled each round
    client_dp: bool = False  # Flower client-side fixed clipping of each update + Gaussian noise on the sum
    noise_multiplier: float = Field(0.1, ge=0)  # client DP: noise std = noise_multiplier x clipping_norm
    clipping_norm: float = Field(1.0, gt=0)  # client DP: bound on each device's update (L2)
    secagg: bool = False  # Flower SecAgg+: the server sees only the sum of masked updates
    secagg_shares: int = Field(5, ge=3)  # SecAgg+ shares per secret: odd (the device and (n-1)/2 neighbours each side)
    secagg_threshold: int = Field(3, ge=2)  # shares needed to reconstruct a dropped device's mask
    seed: Seed = 42  # seed of the device partition and of training

    @model_validator(mode="after")
    def _threshold_within_shares(self) -> FederatedConfig:
        if self.secagg_threshold >= self.secagg_shares:
            raise ValueError("secagg_threshold must be below secagg_shares (SecAgg+)")
        if self.secagg_shares % 2 == 0:  # Flower 1.42 fails mid-round on an even integer (its ring needs odd)
            raise ValueError("secagg_shares must be odd (SecAgg+ shares with (n-1)/2 neighbours on each side)")
        return self


class PrivacyConfig(_Section):
    """Privacy-preserving training: DP-SGD and federated learning (train.privacy picks one)."""

    dp: DpConfig = DpConfig()
    federated: FederatedConfig = FederatedConfig()


TfliteVariant = Literal["float32", "float16", "dynamic_int8", "int8", "int8_float_io"]
CoremlVariant = Literal["float16", "linear8", "palette6", "palette4"]
OnnxVariant = Literal["float32", "float16", "dynamic_int8", "int8"]


class PruneConfig(_Section):
    """Magnitude pruning of the Keras network before TFLite conversion (pipelines.mobile.prune)."""

    sparsity: list[float] = Field([0.5], description="target shares of zero Dense weights; each makes variants "
                                                     "pruned<pct>_<variant> (empty: no pruning)")
    variants: list[TfliteVariant] = Field(["float32", "dynamic_int8"], min_length=1,
                                          description="TFLite variants converted from each pruned network")
    epochs: int = Field(5, ge=1, description="fine-tune epochs (the sparsity rises, then the network recovers)")
    batch_size: int = Field(1024, ge=1, description="fine-tune batch size")
    learning_rate: float = Field(0.002, gt=0, description="fine-tune Adam learning rate")
    begin: float = Field(0.0, ge=0, lt=1, description="share of the fine-tune steps before pruning starts")
    end: float = Field(0.5, gt=0, le=1, description="share of the steps when the target sparsity is reached")
    frequency: int = Field(10, ge=1, description="steps between mask updates")

    @field_validator("sparsity")
    @classmethod
    def _fractions(cls, values: list[float]) -> list[float]:
        for value in values:
            if not 0 < value < 1:
                raise ValueError(f"sparsity {value} must be between 0 and 1 (exclusive)")
        return values


class ConvertConfig(_Section):
    """Conversion of the Keras model to TFLite, Core ML and ONNX variants."""

    representative_samples: int = Field(500, ge=10)  # seeded training rows that calibrate quantization
    coreml_minimum_deployment_target: Literal["iOS15", "iOS16", "iOS17", "iOS18"] = "iOS16"  # oldest iOS to run on
    tflite_variants: list[TfliteVariant] = Field(  # TFLite variants converted; float32 required (the reference)
        ["float32", "float16", "dynamic_int8", "int8", "int8_float_io"], min_length=1)
    coreml_variants: list[CoremlVariant] = Field(["float16", "linear8", "palette6", "palette4"], min_length=1,
                                                 description="Core ML variants: float16 ML Program; linear8: 8-bit "
                                                 "linear weights; palette6/palette4: 6/4-bit lookup-table weights")
    coreml_weight_threshold: int = Field(512, ge=1)  # compress weight tensors with at least this many elements
    onnx_variants: list[OnnxVariant] = Field(
        ["float32", "float16", "dynamic_int8", "int8"], min_length=1,
        description="ONNX Runtime Mobile variants (ORT format) of the onnx_model stage; float32 is the reference")
    prune: PruneConfig = Field(PruneConfig(), description="magnitude-pruned TFLite variants (tflite_model stage)")
    litert_quantizer_recipes: list[Literal["dynamic_wi4", "weight_only_wi4", "mixed_wi4_wi8",
                                           "mixed_sensitivity"]] = Field(
        ["dynamic_wi4", "weight_only_wi4", "mixed_wi4_wi8", "mixed_sensitivity"],
        description="ai-edge-quantizer recipes applied to the float32 TFLite model, variants aeq_<recipe> "
                    "(mixed_wi4_wi8: int4 hidden layers, int8 output layer; mixed_sensitivity: int4 or int8 per "
                    "layer by convert.int4_max_loss); empty: none")
    int4_max_loss: float = Field(
        0.005, ge=0, lt=1,
        description="mixed_sensitivity: a weight layer keeps int4 when quantizing it alone to int4 changes at most "
                    "this share of the validation rows' decisions (1 - agreement with the float32 model); else int8")

    @model_validator(mode="after")
    def _compression_needs_ios16(self) -> ConvertConfig:
        if "float32" not in self.tflite_variants:
            raise ValueError("tflite_variants must include float32 (the reference for parity and the drift profile)")
        compressed = [v for v in self.coreml_variants if v != "float16"]
        if compressed and self.coreml_minimum_deployment_target == "iOS15":
            raise ValueError(f"coreml_variants {compressed} need coreml_minimum_deployment_target iOS16 or later")
        return self


Limit = float | dict[str, float] | None  # one limit for every grouping, a limit per grouping, or report only


class KerasGates(_Section):
    """The float model on the test split, against the simple baselines of the same split and inputs."""

    min_accuracy: float | None = Field(None, ge=0, le=1)  # a floor that depends on the data set; None: none
    min_gain_over_majority: float | None = Field(0.01, ge=0, le=1)  # beat always answering the majority class
    max_gap_to_logistic: float | None = Field(0.03, ge=0, le=1)  # at most this far below logistic regression


class ConversionGates(_Section):
    """Every converted TFLite variant; lower agreement means a broken conversion and stops the run."""

    min_agreement_with_keras: float = Field(0.97, ge=0, le=1)  # share of test decisions each variant shares with Keras


class OnDeviceGates(_Section):
    """What an on-device variant must meet to be released (the smallest passing one per platform is)."""

    min_agreement_with_keras: float = Field(0.99, ge=0, le=1)  # decisions shared with the Keras model
    max_accuracy_drop: float = Field(0.005, ge=0, le=1)  # Keras accuracy minus variant accuracy
    max_parity_increase: float = Field(0.02, ge=0, le=1)  # rise in demographic parity difference, per feature
    max_bytes: int = Field(262144, ge=1)  # largest model file, in bytes
    max_p95_ms: dict[str, Annotated[float, Field(gt=0)]] = {"low": 2.0, "mid": 1.0, "high": 0.5}  # per device tier (estimates)
    max_energy_mj: float = Field(1.0, gt=0)  # per inference, every tier (estimate)


class FairnessGates(_Section):
    """The Keras model, and every TFLite and ORT variant (one that fails is not released), over groups with enough
    test rows.

    A dict limit names groupings: a sensitive feature, or `a:b` for the intersection; unlisted ones are
    reported, not gated. None reports without gating.
    """

    max_demographic_parity_difference: Limit = 0.1  # dicts name a data set's columns: params.yaml sets Adult's
    max_equalized_odds_difference: Limit = 0.2  # largest TPR or FPR gap between groups
    max_group_accuracy_drop: float | None = Field(0.02, ge=0, le=1)  # Keras minus variant accuracy, any group
    min_group_size: int = Field(30, ge=1)  # smaller groups, and TPRs (FPRs) on fewer positives (negatives): not gated


class BudgetGates(_Section):
    """FinOps budgets; None: reported only. `blocking`: over budget fails the release, else warns."""

    max_monthly_usd: float | None = Field(100.0, ge=0)  # downloads + cloud requests + training compute
    max_device_mb_per_month: float | None = Field(1.0, ge=0)  # model downloads + offload traffic, per device
    max_model_bytes: int | None = Field(1_048_576, ge=1)  # what one device downloads per update, per platform
    blocking: bool = True  # true: over budget fails budget_gate, no release; false: warns


class GatesConfig(_Section):
    """Every blocking threshold, in one place."""

    keras: KerasGates = KerasGates()
    conversion: ConversionGates = ConversionGates()
    on_device: OnDeviceGates = OnDeviceGates()
    fairness: FairnessGates = FairnessGates()
    budgets: BudgetGates = BudgetGates()


class BenchmarkConfig(_Section):
    """Host latency measurement (single thread); device tiers turn it into estimates."""

    warmup: int = Field(100, ge=0)  # untimed single-sample calls before timing
    runs: int = Field(1000, ge=10)  # single-sample LiteRT invocations per TFLite variant
    keras_runs: int = Field(200, ge=10)  # Keras calls are ~100x slower; fewer keep the run short
    batch_size: int = Field(256, ge=1)  # rows per batched call (batch throughput)
    batch_repeats: int = Field(20, ge=1)  # timed batched calls per variant


class DeviceTier(_Section):
    """Assumptions for one device tier; every figure derived from them is an estimate."""

    slowdown: float = Field(gt=0)  # device latency / measuring-host latency (an assumption per tier)
    active_power_w: float = Field(gt=0)  # CPU power while inferring
    battery_mah: float = Field(gt=0)  # battery capacity, mAh
    battery_voltage: float = Field(3.85, gt=0)  # nominal; Wh = mAh * V / 1000
    inferences_per_day: int = Field(ge=0)  # on-device inferences per device per day


class DevicesConfig(_Section):
    """Device tiers: assumptions turning measured host latency into device estimates."""

    tiers: dict[str, DeviceTier] = Field(min_length=1, default_factory=lambda: {  # tier name -> its assumptions
        "low": DeviceTier(slowdown=8.0, active_power_w=1.0, battery_mah=4000, inferences_per_day=500),
        "mid": DeviceTier(slowdown=3.0, active_power_w=2.0, battery_mah=4500, inferences_per_day=500),
        "high": DeviceTier(slowdown=1.5, active_power_w=3.5, battery_mah=5000, inferences_per_day=500),
    })


class OffloadConfig(_Section):
    """Hybrid inference: the device model answers unless |p - threshold| < delta, then the cloud float model."""

    device_variant: TfliteVariant = "int8"  # the TFLite variant answering on the device
    deltas: list[Annotated[float, Field(ge=0, le=1)]] = Field([0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3],
        min_length=1, description="the delta grid of the offload trade-off (cloud share vs accuracy); the cloud "
                                  "answers when |p - threshold| < delta")
    delta: float | None = Field(None, ge=0, le=1)  # fixed delta; None: smallest grid delta meeting the target
    accuracy_target: float | None = Field(None, ge=0, le=1)  # None: the cloud float model's test accuracy
    daily_inferences: int = Field(1_000_000, ge=0)  # fleet-wide, for the cloud request volume


class FairnessConfig(_Section):
    """Mitigation (one deployable network), its strength sweep, the reductions baseline and the measurement."""

    constraint: Literal["demographic_parity", "equalized_odds"] = "demographic_parity"  # mitigation/baseline target
    features: list[str] | None = None  # sensitive features constrained (their intersection); None: all
    method: Literal["bound", "penalty", "reweighing"] = Field("bound", description=(
        "bound: primal-dual training towards disparity bounds (pipelines.training.bounded); penalty: a fixed "
        "strength x the group gap in the loss; reweighing: Kamiran-Calders weights"))
    strength: float | Literal["auto"] = "auto"  # auto: chosen on validation rows; 0: unmitigated; else pinned
    sweep: list[float] = Field([0.0, 1.0, 2.0, 4.0], min_length=1)  # strengths in the trade-off table
    bound: float | None = Field(None, gt=0, le=1, description=(
        "method bound: the disparity the model must reach on the constrained grouping; None: the fairness "
        "gate's limit for it"))
    bound_fractions: list[float] = Field([1.0, 0.7, 0.5, 0.3, 0.15], min_length=1, description=(
        "method bound: the heads trained together, each towards bound x fraction (and one unconstrained); "
        "tighter heads leave room for the spread between held-out rows and the test split"))
    fair_targets: bool = Field(True, description=(
        "method bound: also train unconstrained heads on fair targets (ExponentiatedGradient's soft decisions, "
        "massaged labels; pipelines.training.targets) and choose among all heads"))
    cv_below_rows: int = Field(2000, ge=0, description=(
        "below this many validation rows the bound choice and early stopping use k-fold cross-validation on "
        "the training rows (0: never)"))
    cv_folds: int = Field(3, ge=2, le=10, description="folds of that cross-validation")
    pass_share: float = Field(0.9, gt=0, le=1, description=(
        "method bound: the share of simulated test splits (a two-stage bootstrap: held-out rates, then the "
        "test split's group sizes) in which the chosen model must meet the limit"))
    target: Literal["frontier", "gate", "baseline"] = Field("frontier", description=(
        "auto's choice: frontier: the most accurate model reaching the reductions baseline's point on held-out rows "
        "(accuracy within 0.01, disparity at most its own), else as gate; gate: the most accurate within the gate's "
        "limits; baseline: disparity also <= the reductions baseline's (no model where it cannot be reached)"))
    sample_rows: int | None = Field(100_000, ge=1000)  # sweep, baselines on a stratified sample above this; None: all
    baseline_eps: float = Field(0.01, gt=0)  # ExponentiatedGradient's allowed constraint violation
    baseline_max_iter: int = Field(50, ge=1)  # ExponentiatedGradient iterations at most
    bootstrap: int = Field(200, ge=0)  # resamples for the confidence intervals; 0: none
    confidence: float = Field(0.95, gt=0, lt=1)  # level of the bootstrap intervals
    seed: Seed = 42  # samples, bootstrap and permutation importance

    @field_validator("sweep")
    @classmethod
    def _non_negative(cls, values: list[float]) -> list[float]:
        if any(v < 0 for v in values):
            raise ValueError("strengths must be >= 0")
        return values

    @field_validator("strength")
    @classmethod
    def _strength_non_negative(cls, value: float | str) -> float | str:
        if value != "auto" and value < 0:  # type: ignore[operator]  # not "auto": a number
            raise ValueError("must be auto or a number >= 0")
        return value

    @field_validator("bound_fractions")
    @classmethod
    def _fractions(cls, values: list[float]) -> list[float]:
        if any(not 0 < v <= 1 for v in values):
            raise ValueError("fractions must be in (0, 1]")
        return values

    @model_validator(mode="after")
    def _bound_is_chosen_not_pinned(self) -> FairnessConfig:
        if self.method == "bound" and self.strength not in ("auto", 0):
            raise ValueError("method bound takes fairness.bound, not a strength: set strength auto (or 0: "
                             "unmitigated), or method penalty")
        return self

    @model_validator(mode="after")
    def _reweighing_is_for_parity(self) -> FairnessConfig:
        if self.method == "reweighing" and self.constraint != "demographic_parity":
            raise ValueError("method reweighing decorrelates label and group: it needs constraint demographic_parity")
        return self


class ComplianceConfig(_Section):
    """Statements for the model card's compliance section; the pipeline reports them, it does not judge them."""

    regulations: dict[str, str] = {}  # e.g. gdpr: "applies: ...", hipaa: "not applicable: ..."
    data_categories: list[str] = []  # kinds of data processed, as stated
    special_categories: list[str] = []  # e.g. GDPR Art. 9 data such as racial or ethnic origin
    lawful_basis: str | None = None  # lawful basis of the processing, as stated
    retention: str | None = None  # how long data and artifacts are kept, as stated
    contact: str | None = None  # who answers questions about the data, as stated


class GovernanceConfig(_Section):
    """What the model card states, and the explanation it carries."""

    intended_use: str = "Not stated in params (governance.intended_use)."  # the card's intended use
    out_of_scope: list[str] = []  # uses the card rules out
    limitations: list[str] = []  # known limits of the data or use, added to the ones the pipeline measures
    importance_variant: TfliteVariant = "int8"  # permutation importance runs this TFLite variant through LiteRT
    importance_repeats: int = Field(5, ge=1)  # shuffles per feature in permutation importance
    importance_rows: int = Field(5000, ge=10)  # test rows sampled for importance
    compliance: ComplianceConfig = ComplianceConfig()


class MlflowConfig(_Section):
    """MLflow tracking: the store, the artifact location and the experiment."""

    tracking_uri: str = "sqlite:///mlflow.db"  # relative to the project root; MLFLOW_TRACKING_URI overrides
    artifact_root: str = "mlartifacts"  # a new experiment's artifact folder (relative to the project)
    experiment: str = "mobile-mlops"  # the MLflow experiment of the runs (created if missing)
    ui_url: str = "http://127.0.0.1:5000"  # the MLflow UI Dagster links to (`make mlflow-ui`); an http(s) tracking URI wins


class ProjectConfig(_Section):
    """Who owns the project: Dagster asset owners, and the tags FinOps reports and cloud resources carry."""

    name: str = "mobile-mlops"  # the FinOps `project` tag; the offload Deployment's part-of label
    owner: str = "team:ml-platform"  # an email or team:NAME (Dagster's owner format)
    cost_center: str = "ml-platform"  # the FinOps `cost_center` tag (MLflow runs, release manifest)
    environment: Literal["dev", "staging", "production"] = "dev"  # the FinOps environment tag

    @field_validator("owner")
    @classmethod
    def _owner_format(cls, value: str) -> str:
        if not re.fullmatch(r"team:[A-Za-z0-9_.-]+|[^@\s]+@[^@\s]+\.[^@\s]+", value):
            raise ValueError("must be an email or team:NAME")
        return value

    def tags(self) -> dict[str, str]:
        """The FinOps tag set, one value per key."""
        return {"project": self.name, "owner": self.owner, "cost_center": self.cost_center,
                "environment": self.environment}


class SigningConfig(_Section):
    """The release signature's keys (OpenSSF model signing)."""

    private_key: str = "keys/private/release-signing.pem"  # made on first use; MOBILE_MLOPS_SIGNING_KEY overrides
    public_key: str = "keys/release-signing.pub"  # committed: the key `verify` and CI trust


class KeysetConfig(_Section):
    """Where the Tink streaming AEAD keyset of encrypted releases comes from (the key itself never goes in params)."""

    source: Literal["local", "env", "kms"] = "local"  # local: dev file; env: JSON in $env; kms: `file` wrapped by kms_uri
    file: str = "keys/private/release-keyset.json"  # local: cleartext, made on first use (0600, git-ignored)
    env: str = "MOBILE_MLOPS_RELEASE_KEYSET"  # source env: the variable holding the JSON keyset
    kms_uri: str | None = None  # source kms: gcp-kms://... or aws-kms://... (needs tink[gcpkms] / tink[awskms])
    template: Literal["AES256_GCM_HKDF_1MB", "AES256_GCM_HKDF_4KB", "AES128_GCM_HKDF_1MB",
                      "AES128_GCM_HKDF_4KB"] = "AES256_GCM_HKDF_1MB"  # Tink streaming AEAD templates for new keys

    @model_validator(mode="after")
    def _kms_needs_uri(self) -> KeysetConfig:
        if self.source == "kms" and not self.kms_uri:
            raise ValueError("source kms needs kms_uri")
        return self


class GithubConfig(_Section):
    """The github release provider: API, repository and the token's variable."""

    api_url: str = "https://api.github.com"  # GitHub Enterprise: https://HOST/api/v3
    repository: str | None = None  # owner/name; default: parsed from the remote's URL
    token_env: str = "GITHUB_TOKEN"  # the variable holding the token; the token never goes in params


class RolloutStage(_Section):
    """One stage of the staged rollout."""

    name: PathName  # stage name (canary, early, full...)
    percent: int = Field(ge=1, le=100)  # share of the fleet, in percent, that gets the release in this stage
    min_hours: int = Field(24, ge=0)  # soak time before the next stage


class Guardrails(_Section):
    """Online thresholds the rollout controller watches at every stage; a breach halts and rolls back."""

    max_crash_rate: float = Field(0.001, ge=0, le=1)  # crashes per inference session
    max_p95_latency_ms: float = Field(50.0, gt=0)  # on-device inference
    max_accuracy_drop: float = Field(0.02, ge=0, le=1)  # online proxy vs the production model
    max_selection_rate_gap: float = Field(0.1, ge=0, le=1)  # across sensitive groups


class RolloutConfig(_Section):
    """Staged rollout (deploy/production.yaml); a guardrail breach halts and rolls back."""

    stages: list[RolloutStage] = [RolloutStage(name="canary", percent=5), RolloutStage(name="early", percent=25),
                                  RolloutStage(name="full", percent=100, min_hours=0)]  # in order, up to 100%
    guardrails: Guardrails = Guardrails()

    @model_validator(mode="after")
    def _increasing_to_100(self) -> RolloutConfig:
        percents = [stage.percent for stage in self.stages]
        if not percents or percents != sorted(set(percents)) or percents[-1] != 100:
            raise ValueError("stages need strictly increasing percents ending at 100")
        return self


class ReleaseConfig(_Section):
    """The release: folder, signing, encryption, pull request and rollout."""

    model_name: PathName = "adult-income"  # a folder under release.directory, a git branch part, the MLflow model
    directory: str = "releases"  # releases go in <directory>/<model_name>/ (relative to the project)
    allow_outside_project: bool = False  # a release directory outside the project must be allowed explicitly
    provider: Literal["local", "github"] = "local"  # where release pull requests go
    remote: PathName = "origin"  # the git remote the github provider pushes to
    base_branch: Annotated[str, AfterValidator(branch_name)] | None = None  # the pull request's target; default: the checked-out branch
    signing: SigningConfig = SigningConfig()
    encryption: Literal["none", "tink"] = "none"  # tink: model files encrypted with release.keyset (streaming AEAD)
    keyset: KeysetConfig = KeysetConfig()
    github: GithubConfig = GithubConfig()
    rollout: RolloutConfig = RolloutConfig()
    dvc_files_over_bytes: int | None = Field(None, ge=0, description="release files larger than this many bytes go "
                                             "to the DVC remote and the release branch carries their .dvc records "
                                             "(docs/deployment.md); None: every file is committed to git")


class FleetConfig(_Section):
    """Who runs the model: the fleet behind every monthly figure of the cost report."""

    monthly_active_devices: int = Field(100_000, ge=0)  # devices running the model each month
    updates_per_month: float = Field(1.0, ge=0)  # releases each device downloads per month
    inferences_per_device_per_day: float = Field(10.0, ge=0)  # inferences per device per day
    cellular_share: float = Field(0.3, ge=0, le=1)  # share of model downloads made over cellular data
    platform_share: dict[str, float] = {"android": 0.7, "ios": 0.3}  # share of devices per platform (normalized)
    tier_share: dict[str, float] | None = {"low": 0.3, "mid": 0.5, "high": 0.2}  # per devices.tiers; None: equal
    connectivity_share: dict[Literal["wifi", "cellular", "offline"], float] = {
        "wifi": 0.6, "cellular": 0.35, "offline": 0.05}  # share of inferences made under each connectivity


class PricesConfig(_Section):
    """List prices in USD (sources and dates: params.yaml and docs/finops.md)."""

    cdn_egress_per_gb: float = Field(0.085, ge=0)  # AWS CloudFront, first 10 TB/month, US & Europe
    serverless_per_million_requests: float = Field(0.20, ge=0)  # AWS Lambda requests (x86)
    serverless_per_gb_second: float = Field(0.0000166667, ge=0)  # AWS Lambda duration (x86, first tier)
    compute_vcpu_hour: float = Field(0.04048, ge=0)  # AWS Fargate Linux/x86 vCPU-hour, us-east-1
    electricity_per_kwh: float = Field(0.16, ge=0)  # what device owners pay; reported, not in our total


class EndpointConfig(_Section):
    """The cloud offload endpoint: how each request is billed and the Deployment the release carries."""

    memory_gb: float = Field(0.5, gt=0)  # serverless memory size, and the container's memory limit
    duration_ms: float = Field(50.0, gt=0)  # billed duration per request
    payload_bytes: int = Field(2048, ge=0)  # request + response on the device's network, per call
    network_rtt_ms: dict[Literal["wifi", "cellular"], float] = {"wifi": 40.0, "cellular": 120.0}  # assumed RTT, ms
    cpu: str = "500m"  # Kubernetes CPU request per replica
    replicas: int = Field(2, ge=1)  # Kubernetes Deployment replicas
    image: str = "mobile-mlops-offload"  # tagged with the model version; `mlflow models build-docker` builds it
    port: int = Field(8080, ge=1, le=65535)  # the container's HTTP port (`mlflow models serve -p`)


class FinopsConfig(_Section):
    """Cost of every variant and of the run, the placement decision matrix, budgets."""

    fleet: FleetConfig = FleetConfig()
    prices: PricesConfig = PricesConfig()
    endpoint: EndpointConfig = EndpointConfig()
    latency_target_ms: float = Field(100.0, gt=0)  # what a user waits for one answer, network included
    max_battery_share_per_day: float = Field(0.01, gt=0, le=1)  # battery budget of on-device inference
    min_hybrid_accuracy_gain: float = Field(0.001, ge=0)  # hybrid must beat on-device by this to pay for the cloud
    privacy_class: Literal["public", "internal", "confidential", "pii"] | None = None  # None: pii if data.pii


class FleetMargins(_Section):
    """How much worse than the production cohort the canary may be (the absolute limits are the rollout's
    guardrails in deploy/production.yaml)."""

    crash_rate_increase: float = Field(0.0005, ge=0, le=1)  # crashes per session, canary minus production
    latency_ratio: float = Field(1.2, ge=1)  # canary / production mean on-device latency (geometric)
    accuracy_drop: float | None = Field(None, ge=0, le=1)  # None: the guardrail max_accuracy_drop


class FleetTelemetryConfig(_Section):
    """After release: telemetry ingestion, privacy, the canary/A-B analysis and observed FinOps (`fleet:`)."""

    directory: str = "telemetry"  # daily-partitioned Parquet: <directory>/day=YYYY-MM-DD/<batch>.parquet
    host: str = "127.0.0.1"  # `mobile-mlops telemetry serve` binds here (loopback unless changed)
    port: int = Field(8787, ge=0, le=65535)  # `telemetry serve` listens here (--port overrides)
    hmac_key_env: str = "MOBILE_MLOPS_TELEMETRY_KEY"  # the variable holding the apps' HMAC key; never in params
    max_body_bytes: int = Field(1_048_576, ge=1024)  # larger request bodies are refused (413)
    max_records: int = Field(5000, ge=1)  # device-day records per batch
    read_timeout_s: float = Field(30.0, gt=0, description="`telemetry serve`: a request's headers must arrive "
                                  "within this many seconds of the connection opening (or of the previous answer), "
                                  "and its body within as many again; else 408 and the connection closes")
    max_connections: int = Field(512, ge=1, description="`telemetry serve`: open connections beyond this are "
                                 "answered 503 at once and closed (stalled clients cannot exhaust the server)")
    first_day: date | None = Field(None, description="records dated before this day are refused (400); None: the "
                                   "day of the model's first release (manifest created_at), no bound without one. "
                                   "Records dated after tomorrow (UTC) are always refused")
    max_latency_ms: float = Field(3_600_000.0, gt=0)  # a device reporting more is quarantined (impossible)
    epsilon: float = Field(1.0, gt=0)  # local DP: randomized response on the sensitive attribute
    histogram_epsilon: float = Field(1.0, gt=0)  # DP (Laplace) on each production-drift feature histogram
    sensitive_feature: str = "sex"  # reported only through randomized response
    groups: list[str] = Field(["Female", "Male"], min_length=2)  # its categories, in the contract's order
    alpha: float = Field(0.05, gt=0, lt=1)  # anytime-valid error rate of the sequential test, all guardrails
    tuning_devices: int = Field(1000, ge=1)  # the confidence sequence is tightest near this many devices
    min_devices: int = Field(200, ge=1)  # per cohort, before a promote decision
    margins: FleetMargins = FleetMargins()
    rollback_commit: bool = False  # true: a rollback decision commits the revert; false: opens a pull request
    webhook_url: str | None = None  # budget alerts are POSTed here as JSON; None: no alert
    drift_psi_threshold: float | None = None  # None: drift.psi_threshold


class Params(_Section):
    """All of params.yaml."""

    project: ProjectConfig = ProjectConfig()
    data: DataConfig
    engine: Literal["local", "spark"] = Field("local", description="what runs the data steps (raw_dataset, "
                                              "validated_dataset, data_drift, dataset_splits): local: pandas in the "
                                              "step's process; spark: Spark jobs on spark.master, with the same "
                                              "results (docs/deployment.md)")
    spark: SparkConfig = SparkConfig()
    split: SplitConfig = SplitConfig()
    validate_: ValidateConfig = Field(ValidateConfig(), alias="validate")
    drift: DriftConfig = DriftConfig()
    automation: AutomationConfig = AutomationConfig()
    train: TrainConfig = TrainConfig()
    distill: DistillConfig = DistillConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    convert: ConvertConfig = ConvertConfig()
    gates: GatesConfig = GatesConfig()
    benchmark: BenchmarkConfig = BenchmarkConfig()
    devices: DevicesConfig = DevicesConfig()
    offload: OffloadConfig = OffloadConfig()
    fairness: FairnessConfig = FairnessConfig()
    governance: GovernanceConfig = GovernanceConfig()
    finops: FinopsConfig = FinopsConfig()
    mlflow: MlflowConfig = MlflowConfig()
    release: ReleaseConfig = ReleaseConfig()
    fleet: FleetTelemetryConfig = FleetTelemetryConfig()

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Settings(BaseModel):
    """Parsed params plus where they came from; paths in params are relative to `root`."""

    params: Params
    path: Path
    raw: dict[str, Any]
    overrides: dict[str, Any] = {}  # dotted key -> value (`--set`), already applied to raw and params

    @property
    def root(self) -> Path:
        return self.path.parent

    def resolve(self, relative: str) -> Path:
        candidate = Path(relative).expanduser()
        return candidate if candidate.is_absolute() else self.root / candidate

    def section_hash(self) -> str:
        """sha256 of the canonical params, for the release lineage."""
        text = json.dumps(self.raw, sort_keys=True, separators=(",", ":"), default=str)  # YAML dates as text
        return hashlib.sha256(text.encode()).hexdigest()


# Keys that describe one data set rather than the pipeline: params.yaml holds Adult's values for them, and
# the code's defaults are what a new data set starts from (tests/core/test_config.py compares the rest).
DATASET_KEYS = ("data", "gates.keras.min_accuracy", "fairness.features", "fairness.strength", "fairness.target",
                "gates.fairness.max_demographic_parity_difference",
                "gates.fairness.max_equalized_odds_difference", "gates.fairness.min_group_size",
                "governance.intended_use", "governance.out_of_scope",
                "governance.limitations", "governance.compliance", "release.model_name")

# Keys that moved: an old params file gets one line naming the new place.
MOVED = {
    "gates.min_accuracy": "gates.keras.min_accuracy",
    "gates.min_agreement": "gates.conversion.min_agreement_with_keras",
    "footprint.min_agreement": "gates.on_device.min_agreement_with_keras",
    "footprint": "gates.on_device",
    "fairness.gates": "gates.fairness",
    "finops.budgets.monthly_usd": "gates.budgets.max_monthly_usd",
    "finops.budgets.device_mb_per_month": "gates.budgets.max_device_mb_per_month",
    "finops.budgets": "gates.budgets",
}


def _moved_key(raw: dict[str, Any], path: Path) -> None:
    for old, new in MOVED.items():
        node: Any = raw
        for part in old.split("."):
            node = node.get(part, _ABSENT) if isinstance(node, dict) else _ABSENT
        if node is not _ABSENT:
            raise PipelineError(f"{path.name}: key '{old}' has moved to '{new}'")


_ABSENT = object()


_UNION_TAGS = {"int", "float", "str", "bool", "none", "list", "dict"}  # pydantic names a union's member in `loc`


def _key(loc: tuple) -> str:
    parts = [str(p) for p in loc if not (isinstance(p, str) and (p in _UNION_TAGS or "[" in p
                                                                  or p.startswith("constrained-")))]
    return ".".join(parts) or "(top level)"


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser: 6x faster; every step reads params


def _without_aliases(text: str) -> Any:
    """YAML without aliases: a few nested aliases expand to gigabytes (a "billion laughs"), and params never
    need them. The events are read first, so an alias is refused before anything is built."""
    if _ALIAS_HINT.search(text):  # every alias matches; most params have none and skip the event scan
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.AliasEvent):
                raise _AliasFound(event.start_mark.line + 1)
    return yaml.load(text, Loader=_LOADER)


_ALIAS_HINT = re.compile(r"\*[^\s,\[\]{}]")  # `*name`: an alias token (a cron's `* * *` is not one)


class _AliasFound(Exception):
    def __init__(self, line: int):
        self.line = line


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(error: ValidationError, path: Path) -> str:
    errors = error.errors()
    first = errors[0]
    key = _key(first["loc"])
    if first["type"] == "extra_forbidden":
        return f"{path.name}: unknown key '{key}'"
    if first["type"] == "missing":
        return f"{path.name}: missing key '{key}'"
    messages = list(dict.fromkeys(e["msg"] for e in errors if _key(e["loc"]) == key))  # every union member's
    return f"{path.name}: key '{key}': {' or '.join(messages)} (got {_shown(first.get('input'))})"


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
        raw = _without_aliases(path.read_text()) or {}
    except _AliasFound as found:
        raise PipelineError(f"{path.name}: YAML aliases (*name) are not allowed in params (line {found.line}); "
                            "write the value out") from None
    except yaml.YAMLError as exc:
        raise PipelineError(f"{path.name}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # a constructor's: e.g. date 2026-13-45
        raise PipelineError(f"{path.name}: not valid YAML ({_shown(str(exc))})") from exc
    if not isinstance(raw, dict):
        raise PipelineError(f"{path.name}: top level must be a mapping of sections")
    for dotted, value in (overrides or {}).items():
        _apply_override(raw, dotted, value)
    _moved_key(raw, path)
    try:
        params = Params.model_validate(raw)
    except ValidationError as exc:
        raise PipelineError(_describe(exc, path)) from exc
    settings = Settings(params=params, path=path, raw=raw, overrides=dict(overrides or {}))
    releases = settings.resolve(params.release.directory).resolve()
    if not params.release.allow_outside_project and not releases.is_relative_to(settings.root.resolve()):
        raise PipelineError(f"{path.name}: key 'release.directory': {releases} is outside the project "
                            f"({settings.root}); set release.allow_outside_project: true to publish there")
    return settings
