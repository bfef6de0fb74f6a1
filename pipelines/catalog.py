"""The stage catalog: every pipeline stage declared once.

Each entry names the stage, its group (= the code package pipelines/<group>/, whose steps.py holds a function of
the stage's name), the artifacts it reads and writes (paths from pipelines.core.paths) and the params keys it reads.
Everything else is derived from it: the Dagster assets (deps, group, code version, description), dvc.yaml
(`mobile-mlops dvc generate`), the lineage check, and which stages a code change makes stale.

A new stage = one entry here + one step function in pipelines/<group>/steps.py + one line in assets/stages.py.
This module imports only pipelines.core; step functions are found by name, so nothing here imports a domain.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from pipelines.core import paths as p
from pipelines.core.errors import PipelineError
from pipelines.core.paths import metrics_file

SOURCE = "source_data"  # the observable Dagster asset standing for the files params data.* name
SUITE = "@suite"  # the model's expectation suite: validate.suite, else expectations/<model>/suite.json


@dataclass(frozen=True)
class Plot:
    """A DVC plot: a PNG shown as an image, or a CSV drawn with x and y columns."""

    path: str
    x: str | None = None
    y: str | None = None


@dataclass(frozen=True)
class Stage:
    name: str
    group: str  # Dagster group and code package: pipelines/<group>/steps.py defines `name`
    description: str  # one line: the Dagster asset's description
    inputs: tuple[str, ...]  # artifact paths, or ${params.key} for files params name
    params: tuple[str, ...]  # params keys read (a section name means all of it)
    outs: tuple[str, ...] = ()  # data and models: cached by DVC
    reports: tuple[str, ...] = ()  # small reports kept in git (DVC cache: false)
    plots: tuple[Plot, ...] = ()
    tools: frozenset[str] = field(default_factory=frozenset)  # what it is made with (Dagster kinds)

    @property
    def metrics(self) -> str:
        return metrics_file(self.name)

    @property
    def writes(self) -> tuple[str, ...]:
        """Every path the stage writes."""
        return self.outs + self.reports + tuple(plot.path for plot in self.plots) + (self.metrics,)


def _stage(name: str, group: str, description: str, inputs: list[str], params: list[str], *, outs=(), reports=(),
           plots=(), tools=()) -> Stage:
    return Stage(name, group, description, tuple(inputs), tuple(params), tuple(outs), tuple(reports),
                 tuple(plots), frozenset(tools))


_MODEL_INPUTS = [p.DATASET_SPLITS, p.TRAINED_MODEL]
_VARIANT_INPUTS = [*_MODEL_INPUTS, p.TFLITE_MODEL, p.TFLITE_REPORT]

_STAGES = [
    _stage("raw_dataset", "data", "The source data as typed columns, labels normalized, PII and dropped columns removed.",
           ["${data.source}", "${data.test_source}"], ["data"], outs=[p.RAW_DATASET], tools=["pandas", "parquet"]),
    _stage("validated_dataset", "data",
           "The raw dataset after the Great Expectations suite and invariants, incomplete rows dropped.",
           [p.RAW_DATASET, SUITE],
           ["data.label", "data.positive_label", "data.sensitive_features", "data.drop_missing_rows", "validate"],
           outs=[p.VALIDATED_DATASET], reports=[p.VALIDATION_REPORT], tools=["greatexpectations", "parquet"]),
    _stage("data_drift", "data",
           "PSI and KS / chi-squared drift of today's data (and reference-model scores) against the reference release.",
           [p.VALIDATED_DATASET], ["drift", "release.model_name", "release.directory", "release.encryption",
                                    "release.keyset"],
           outs=[p.DATA_PROFILE], reports=[p.DRIFT_REPORT], plots=[Plot(p.DRIFT_PLOT)], tools=["scipy", "matplotlib"]),
    _stage("dataset_splits", "data", "Seeded, label-stratified train / validation / test splits as Parquet.",
           [p.VALIDATED_DATASET], ["data.label", "split"], outs=[p.DATASET_SPLITS], tools=["parquet"]),
    _stage("trained_model", "training",
           "The seeded Keras model (every mitigation strength of the sweep; the deployed one chosen on validation "
           "rows) with its feature spec, logged and registered in MLflow as `candidate`.",
           [p.DATASET_SPLITS, p.DRIFT_REPORT],
           ["data", "train", "privacy", "fairness.constraint", "fairness.features", "fairness.method",
            "fairness.strength", "fairness.sweep", "fairness.sample_rows", "fairness.target",
            "fairness.bound", "fairness.bound_fractions", "fairness.cv_below_rows", "fairness.cv_folds",
            "fairness.pass_share", "fairness.seed",
            "fairness.baseline_eps", "fairness.baseline_max_iter", "gates.fairness", "gates.keras", "mlflow",
            "release.model_name"],
           outs=[p.TRAINED_MODEL], reports=[p.TRAINING_HISTORY], plots=[Plot(p.TRAINING_PLOT)],
           tools=["keras", "mlflow"]),
    _stage("model_evaluation", "training", "Test-split metrics of the Keras model, overall and per sensitive group.",
           _MODEL_INPUTS, ["data.sensitive_features", "train.threshold"], reports=[p.EVALUATION_REPORT],
           plots=[Plot(p.CONFUSION_MATRIX_PLOT)], tools=["scikitlearn", "matplotlib"]),
    _stage("tflite_model", "mobile",
           "TFLite variants (float32, float16, dynamic and full-integer int8), builtin ops only, scored and timed "
           "with LiteRT.",
           [*_MODEL_INPUTS, p.EVALUATION_REPORT],
           ["convert.representative_samples", "convert.tflite_variants", "split.seed", "train.threshold",
            "data.sensitive_features", "benchmark"],
           outs=[p.TFLITE_MODEL], reports=[p.TFLITE_REPORT], tools=["tflite"]),
    _stage("coreml_model", "mobile",
           "Core ML variants (float16 ML Program, 8-bit linear, 6/4-bit palettized) with spec and reference-run "
           "metrics.",
           [*_MODEL_INPUTS, p.EVALUATION_REPORT],
           ["convert.coreml_minimum_deployment_target", "convert.coreml_variants", "convert.coreml_weight_threshold",
            "train.threshold", "data.sensitive_features"],
           outs=[p.COREML_MODEL], reports=[p.COREML_REPORT], tools=["coreml"]),
    _stage("footprint_report", "mobile",
           "Size, latency and device-tier estimates per variant; the smallest variant passing every gate per platform.",
           [p.TRAINED_MODEL, p.TFLITE_REPORT, p.COREML_REPORT], ["devices", "gates.on_device"],
           reports=[p.FOOTPRINT_REPORT],
           plots=[Plot(p.FOOTPRINT_TABLE, x="size_bytes", y="host_p95_ms"), Plot(p.FOOTPRINT_CHART)],
           tools=["matplotlib"]),
    _stage("offload_policy", "finops",
           "Hybrid inference: on-device int8 answers unless |p - threshold| < delta; the delta grid and the chosen one.",
           _VARIANT_INPUTS, ["offload", "train.threshold"], reports=[p.OFFLOAD_REPORT],
           plots=[Plot(p.OFFLOAD_GRID, x="delta", y="hybrid_accuracy")], tools=["tflite"]),
    _stage("fairness_tradeoff", "governance",
           "Accuracy vs disparity over mitigation strengths, beside fairlearn's ExponentiatedGradient baseline.",
           _MODEL_INPUTS, ["data.sensitive_features", "train.threshold", "fairness", "gates.fairness.min_group_size"],
           reports=[p.FAIRNESS_TRADEOFF],
           plots=[Plot(p.FAIRNESS_TRADEOFF_TABLE, x="demographic_parity_difference", y="accuracy"),
                  Plot(p.FAIRNESS_TRADEOFF_PLOT)],
           tools=["fairlearn", "matplotlib"]),
    _stage("fairness_report", "governance",
           "Per-group metrics with bootstrap intervals for Keras and every TFLite variant, and each group's change.",
           _VARIANT_INPUTS,
           ["data.sensitive_features", "train.threshold", "fairness.bootstrap", "fairness.confidence", "fairness.seed",
            "gates.fairness"],
           reports=[p.FAIRNESS_REPORT], tools=["fairlearn"]),
    _stage("feature_importance", "governance",
           "Permutation importance of each raw input column, measured on a TFLite variant through LiteRT.",
           _VARIANT_INPUTS,
           ["governance.importance_variant", "governance.importance_repeats", "governance.importance_rows",
            "fairness.seed", "train.threshold"],
           reports=[p.IMPORTANCE_REPORT], tools=["tflite"]),
    _stage("model_card", "governance",
           "The model card (Markdown and JSON): use, lineage, per-group metrics, mitigation, limits, privacy, "
           "compliance.",
           [p.RAW_DATASET, p.VALIDATION_REPORT, *_MODEL_INPUTS, p.EVALUATION_REPORT, p.FAIRNESS_REPORT,
            p.FAIRNESS_TRADEOFF, p.IMPORTANCE_REPORT, p.FOOTPRINT_REPORT],
           ["data", "train.hidden_units", "train.threshold", "governance"],
           reports=[p.MODEL_CARD_MARKDOWN, p.MODEL_CARD_JSON], tools=["markdown"]),
    _stage("finops_report", "finops",
           "Monthly cost per variant and of the release, the run's compute cost, the placement matrix, budgets.",
           [p.FOOTPRINT_REPORT, p.OFFLOAD_REPORT, "@metrics of every earlier stage"],
           ["project", "finops", "devices", "gates.on_device.max_p95_ms", "gates.on_device.max_energy_mj",
            "gates.budgets", "data.pii", "release.model_name", "release.directory"],
           outs=[p.OFFLOAD_ENDPOINT], reports=[p.COST_REPORT], tools=["kubernetes"]),
    _stage("release_candidate", "release",
           "The release candidate: model files, feature spec, reports and a manifest with hashes and lineage, signed.",
           [p.RAW_DATASET, p.VALIDATED_DATASET, p.DATA_PROFILE, p.TRAINED_MODEL, p.EVALUATION_REPORT, p.TFLITE_REPORT,
            p.COREML_REPORT, p.FOOTPRINT_REPORT, p.OFFLOAD_REPORT, p.DRIFT_REPORT, p.FAIRNESS_REPORT,
            p.FAIRNESS_TRADEOFF, p.FAIRNESS_TRADEOFF_PLOT, p.MODEL_CARD_MARKDOWN, p.MODEL_CARD_JSON, p.COST_REPORT,
            p.OFFLOAD_ENDPOINT, p.TFLITE_MODEL, p.COREML_MODEL],
           ["gates", "release.model_name", "release.directory", "release.encryption", "release.keyset", "project"],
           outs=[p.RELEASE_CANDIDATE], tools=["json"]),
]


def _expand(stages: list[Stage]) -> dict[str, Stage]:
    """Resolve the `@metrics of every earlier stage` input (the cost report sums their measured compute)."""
    result: dict[str, Stage] = {}
    for stage in stages:
        if stage.name in result:
            raise PipelineError(f"stage catalog: {stage.name} is declared twice")
        inputs = tuple(i for s in stage.inputs
                       for i in ([e.metrics for e in result.values()] if s.startswith("@metrics") else [s]))
        result[stage.name] = Stage(**{**stage.__dict__, "inputs": inputs})
    return result


STAGES: dict[str, Stage] = _expand(_STAGES)  # in execution order
# Assets that run after a release, on fleet telemetry (pipelines/fleet, assets/fleet.py): daily partitions
# and decisions about what is deployed, not files a `dvc repro` rebuilds, so they are not stages and dvc.yaml
# leaves them out on purpose; the lineage check expects exactly these beside the stages.
POST_RELEASE = ("fleet_telemetry", "canary_analysis", "observed_finops", "production_drift")
# Incoming data as daily partitions (pipelines/data/partitions.py, assets/partitions.py): a partition is one file
# with its own `.dvc` record, not a dvc.yaml stage; raw_dataset reads the accepted days when data.source is their
# folder. Like the post-release assets, outside the stage graph and the release job.
INCOMING = ("daily_batch",)
NOT_STAGES = (*INCOMING, *POST_RELEASE)

GROUPS = ("data", "training", "mobile", "governance", "finops", "release", "fleet")  # bottom to top: imports go down only


def pipeline_outputs() -> list[str]:
    """Every path a stage writes, and dvc.lock: the pipeline's own files, which a run changes (lineage ignores
    them when it asks whether the code is dirty)."""
    return sorted({path for stage in STAGES.values() for path in stage.writes} | {"dvc.lock"})


def output_folders(settings) -> list:
    """The folders stages write into, and the model's release folder: where a killed run's temp folders lie."""
    release = settings.params.release
    folders = {(settings.root / path).parent for stage in STAGES.values() for path in stage.writes}
    return sorted(folders | {settings.resolve(release.directory) / release.model_name})


def producers() -> dict[str, str]:
    """Artifact path -> the stage that writes it."""
    return {path: stage.name for stage in STAGES.values() for path in stage.writes}


def parents(name: str) -> set[str]:
    """The stages whose outputs `name` reads; the source data for a stage reading files params name."""
    made_by = producers()
    found = {made_by[i] for i in STAGES[name].inputs if i in made_by}
    return found | ({SOURCE} if any(i.startswith("${data.") for i in STAGES[name].inputs) else set())


def downstream(names: set[str]) -> set[str]:
    """The stages in `names` and every stage that reads their outputs, directly or not."""
    closed = set(names)
    for stage in STAGES:  # execution order: parents come first
        if parents(stage) & closed:
            closed.add(stage)
    return closed


def step_function(name: str):
    """The step function of a stage: pipelines.<group>.steps.<name>, imported on first use."""
    if name not in STAGES:
        raise PipelineError(f"unknown stage '{name}' (stages: {', '.join(STAGES)})")
    module = importlib.import_module(f"pipelines.{STAGES[name].group}.steps")
    return getattr(module, name)
