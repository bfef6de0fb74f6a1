"""The stage catalog: every pipeline stage declared once, and every other Dagster asset beside them.

Each entry names the stage, its group (= the code package pipelines/<group>/, whose steps.py holds a function of
the stage's name), the artifacts it reads and writes (paths from pipelines.core.paths) and the params keys it reads.
Everything else is derived from it: the Dagster assets (deps, group, code version, description), dvc.yaml
(`mobile-mlops dvc generate`), the lineage check, and which stages a code change makes stale.

A stage's gates are declared with it: functions in pipelines/<group>/gates.py that the step wrapper (`step_function`)
evaluates right after the step, writing the stage's verdict (reports/gates/<stage>.json) that downstream stages read.

The daily partitions of incoming data and the post-release fleet assets are entries too (kind incoming /
post_release, with their partitioning): Dagster builds them like the stages; dvc.yaml and the release job leave
them out.

A new stage = one entry here + one step function in pipelines/<group>/steps.py + one line in assets/stages.py.
This module imports only pipelines.core; step functions are found by name, so nothing here imports a domain.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from pipelines.core import paths as p
from pipelines.core.errors import PipelineError
from pipelines.core.paths import metrics_file, verdict_file
from pipelines.core.verdict import gated, write_verdict

SOURCE = "source_data"  # the observable Dagster asset standing for the files params data.* name
SUITE = "@suite"  # the model's expectation suite: validate.suite, else expectations/<model>/suite.json


@dataclass(frozen=True)
class Plot:
    """A DVC plot: a PNG shown as an image, or a CSV drawn with x and y columns."""

    path: str
    x: str | None = None
    y: str | None = None


@dataclass(frozen=True)
class Gate:
    """A blocking check of a stage: pipelines/<group>/gates.py `function` judges what the step just wrote."""

    name: str  # the check's name: the Dagster asset check and the verdict's entry
    function: str
    description: str  # one line: the check's description in the UI
    after_failure: bool = False  # also judged when the step fails (the expectation suite stops validation)


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
    gates: tuple[Gate, ...] = ()  # judged right after the step; a failed blocking one stops the run here
    kind: str = "stage"  # stage (dvc.yaml and the release job), incoming or post_release (Dagster only)
    partitions: str | None = None  # daily (from data.incoming.start_date) or fleet_day (one per telemetry day)

    @property
    def metrics(self) -> str:
        return metrics_file(self.name)

    @property
    def verdict(self) -> str | None:
        """The gates' verdict file (reports/gates/<stage>.json), if the stage has gates."""
        return verdict_file(self.name) if self.gates else None

    @property
    def writes(self) -> tuple[str, ...]:
        """Every path the stage writes."""
        verdict = (self.verdict,) if self.verdict else ()
        metrics = (self.metrics,) if self.kind == "stage" else ()  # a DVC metric: stages only
        return self.outs + self.reports + verdict + tuple(plot.path for plot in self.plots) + metrics


def _stage(name: str, group: str, description: str, inputs: list[str], params: list[str], *, outs=(), reports=(),
           plots=(), tools=(), gates=(), kind="stage", partitions=None) -> Stage:
    return Stage(name, group, description, tuple(inputs), tuple(params), tuple(outs), tuple(reports),
                 tuple(plots), frozenset(tools), tuple(gates), kind, partitions)


_MODEL_INPUTS = [p.DATASET_SPLITS, p.TRAINED_MODEL]
_VARIANT_INPUTS = [*_MODEL_INPUTS, p.TFLITE_MODEL, p.TFLITE_REPORT]

_STAGES = [
    _stage("raw_dataset", "data",
           "The source data as typed columns, labels normalized, PII and dropped columns removed.",
           ["${data.source}", "${data.test_source}"], ["data", "validate.max_categories"], outs=[p.RAW_DATASET],
           tools=["pandas", "parquet"]),
    _stage("validated_dataset", "data",
           "The raw dataset after the Great Expectations suite and invariants, incomplete rows dropped.",
           [p.RAW_DATASET, SUITE],
           ["data.label", "data.positive_label", "data.sensitive_features", "data.drop_missing_rows", "validate"],
           outs=[p.VALIDATED_DATASET], reports=[p.VALIDATION_REPORT], tools=["greatexpectations", "parquet"],
           gates=[Gate("expectations", "expectations",
                       "The Great Expectations suite (validate.suite) passes on the raw rows.", after_failure=True)]),
    _stage("data_drift", "data",
           "PSI and KS / chi-squared drift of today's data (and reference-model scores) against the reference release.",
           [p.VALIDATED_DATASET], ["drift", "release.model_name", "release.directory", "release.encryption",
                                    "release.keyset"],
           outs=[p.DATA_PROFILE], reports=[p.DRIFT_REPORT], plots=[Plot(p.DRIFT_PLOT)], tools=["scipy", "matplotlib"],
           gates=[Gate("drift_gate", "drift",
                       "Today's data has not drifted from the reference release (blocks only when drift.blocking).")]),
    _stage("dataset_splits", "data",
           "Train / validation / test splits by a seeded hash of each row's key, as Parquet; the test share sized so "
           "the fairness gate can tell a fair model (split.auto_test_size).",
           [p.VALIDATED_DATASET], ["data.key", "data.label", "data.positive_label", "data.test_source",
                                   "data.sensitive_features", "split", "fairness.pass_share", "fairness.seed",
                                   "gates.fairness"], outs=[p.DATASET_SPLITS], tools=["parquet"]),
    _stage("teacher_model", "training",
           "The distillation teacher: LightGBM on the network's encoded inputs (no sensitive column), logged to "
           "MLflow, scored on the test rows.",
           [p.DATASET_SPLITS], ["data", "distill", "train.seed", "train.threshold", "mlflow", "release.model_name"],
           outs=[p.TEACHER_MODEL], reports=[p.TEACHER_REPORT], tools=["lightgbm", "mlflow"]),
    _stage("trained_model", "training",
           "The seeded Keras model (every mitigation strength of the sweep; the deployed one chosen on validation "
           "rows) with its feature spec, logged and registered in MLflow as `candidate`.",
           [p.DATASET_SPLITS, p.DRIFT_REPORT, p.TEACHER_MODEL],
           ["data", "train", "distill", "privacy", "fairness.constraint", "fairness.features", "fairness.method",
            "fairness.strength", "fairness.sweep", "fairness.sample_rows", "fairness.target",
            "fairness.bound", "fairness.bound_fractions", "fairness.cv_below_rows", "fairness.cv_folds",
            "fairness.fair_targets", "fairness.pass_share", "fairness.seed",
            "fairness.baseline_eps", "fairness.baseline_max_iter", "gates.fairness", "gates.keras", "mlflow",
            "release.model_name"],
           outs=[p.TRAINED_MODEL], reports=[p.TRAINING_HISTORY], plots=[Plot(p.TRAINING_PLOT)],
           tools=["keras", "mlflow"],
           gates=[Gate("fairness_gate", "strength",
                       "With fairness.strength auto, a strength met the fairness limit and "
                       "gates.keras on the validation rows.")]),
    _stage("model_evaluation", "training",
           "Test-split metrics of the Keras model, overall and per sensitive group, beside the teacher and baselines.",
           [*_MODEL_INPUTS, p.TEACHER_REPORT], ["data.sensitive_features", "train.threshold", "gates.keras"],
           reports=[p.EVALUATION_REPORT], plots=[Plot(p.CONFUSION_MATRIX_PLOT)], tools=["scikitlearn", "matplotlib"],
           gates=[Gate("accuracy_gate", "accuracy",
                       "The Keras model's test accuracy meets gates.keras.min_accuracy and "
                       "the simple baselines.")]),
    _stage("tflite_model", "mobile",
           "TFLite variants (float32, float16, dynamic and full-integer int8), builtin ops only, scored and timed "
           "with LiteRT.",
           [*_MODEL_INPUTS, p.EVALUATION_REPORT],
           ["convert.representative_samples", "convert.tflite_variants", "convert.prune",
            "convert.litert_quantizer_recipes", "convert.int4_max_loss", "split.seed",
            "train.seed", "train.threshold", "data.sensitive_features", "benchmark", "gates.conversion"],
           outs=[p.TFLITE_MODEL], reports=[p.TFLITE_REPORT], tools=["tflite"],
           gates=[Gate("agreement_gate", "agreement", "Every TFLite variant agrees with the Keras model on at least "
                       "gates.conversion.min_agreement_with_keras.")]),
    _stage("coreml_model", "mobile",
           "Core ML variants (float16 ML Program, 8-bit linear, 6/4-bit palettized) with spec and reference-run "
           "metrics.",
           [*_MODEL_INPUTS, p.EVALUATION_REPORT],
           ["convert.coreml_minimum_deployment_target", "convert.coreml_variants", "convert.coreml_weight_threshold",
            "train.threshold", "data.sensitive_features"],
           outs=[p.COREML_MODEL], reports=[p.COREML_REPORT], tools=["coreml"]),
    _stage("onnx_model", "mobile",
           "ONNX Runtime Mobile variants (float32, float16, dynamic and static int8) in ORT format, from one "
           "tf2onnx export, scored and timed with onnxruntime.",
           [*_MODEL_INPUTS, p.EVALUATION_REPORT],
           ["convert.onnx_variants", "convert.representative_samples", "split.seed", "train.threshold",
            "data.sensitive_features", "benchmark"],
           outs=[p.ONNX_MODEL], reports=[p.ONNX_REPORT], tools=["onnx"]),
    _stage("fairness_report", "governance",
           "Per-group metrics with bootstrap intervals for Keras and every TFLite and ORT variant, and each group's "
           "change.",
           [*_VARIANT_INPUTS, p.ONNX_MODEL, p.ONNX_REPORT],
           ["data.sensitive_features", "train.threshold", "fairness.bootstrap", "fairness.confidence", "fairness.seed",
            "gates.fairness"],
           reports=[p.FAIRNESS_REPORT], tools=["fairlearn"],
           gates=[Gate("fairness_gate", "fairness", "Keras meets gates.fairness (parity, equalized odds) and each "
                       "runtime (TFLite, ORT as ort_<variant>) has a variant meeting them and the per-group accuracy "
                       "drop; a variant that fails any is never released.")]),
    _stage("footprint_report", "mobile",
           "Size, latency and device-tier estimates per variant; the smallest download passing every gate per "
           "platform (on-device and fairness).",
           [p.TRAINED_MODEL, p.TFLITE_REPORT, p.COREML_REPORT, p.ONNX_REPORT, p.FAIRNESS_REPORT],
           ["devices", "gates.on_device"],
           reports=[p.FOOTPRINT_REPORT],
           plots=[Plot(p.FOOTPRINT_TABLE, x="size_bytes", y="host_p95_ms"), Plot(p.FOOTPRINT_CHART)],
           tools=["matplotlib"],
           gates=[Gate("footprint_gate", "footprint", "Each platform has a released variant: the smallest passing "
                       "gates.on_device and its gates.fairness verdicts.")]),
    _stage("offload_policy", "finops",
           "Hybrid inference: on-device int8 answers unless |p - threshold| < delta; the delta grid and the chosen "
           "one.",
           _VARIANT_INPUTS, ["offload", "train.threshold"], reports=[p.OFFLOAD_REPORT],
           plots=[Plot(p.OFFLOAD_GRID, x="delta", y="hybrid_accuracy")], tools=["tflite"]),
    _stage("fairness_tradeoff", "governance",
           "Accuracy vs disparity over mitigation strengths, beside fairlearn's ExponentiatedGradient baseline.",
           _MODEL_INPUTS, ["data.sensitive_features", "train.threshold", "fairness", "gates.fairness.min_group_size"],
           reports=[p.FAIRNESS_TRADEOFF],
           plots=[Plot(p.FAIRNESS_TRADEOFF_TABLE, x="demographic_parity_difference", y="accuracy"),
                  Plot(p.FAIRNESS_TRADEOFF_PLOT)],
           tools=["fairlearn", "matplotlib"]),
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
            p.FAIRNESS_TRADEOFF, p.IMPORTANCE_REPORT, p.FOOTPRINT_REPORT, p.TEACHER_REPORT],
           ["data", "train.hidden_units", "train.threshold", "train.distill", "distill", "governance"],
           reports=[p.MODEL_CARD_MARKDOWN, p.MODEL_CARD_JSON], tools=["markdown"]),
    _stage("finops_report", "finops",
           "Monthly cost per variant and of the release, the run's compute cost, the placement matrix, budgets.",
           [p.FOOTPRINT_REPORT, p.OFFLOAD_REPORT, "@metrics of every earlier stage"],
           ["project", "finops", "devices", "gates.on_device.max_p95_ms", "gates.on_device.max_energy_mj",
            "gates.budgets", "data.pii", "release.model_name", "release.directory"],
           outs=[p.OFFLOAD_ENDPOINT], reports=[p.COST_REPORT], tools=["kubernetes"],
           gates=[Gate("budget_gate", "budget", "The release fits gates.budgets (monthly $, MB per device, model "
                       "bytes); blocks when gates.budgets.blocking.")]),
    _stage("release_candidate", "release",
           "The release candidate: model files, feature spec, reports and a manifest with hashes and lineage, signed.",
           [p.RAW_DATASET, p.VALIDATED_DATASET, p.DATA_PROFILE, p.TRAINED_MODEL, p.EVALUATION_REPORT, p.TFLITE_REPORT,
            p.COREML_REPORT, p.FOOTPRINT_REPORT, p.OFFLOAD_REPORT, p.DRIFT_REPORT, p.FAIRNESS_REPORT,
            p.FAIRNESS_TRADEOFF, p.FAIRNESS_TRADEOFF_PLOT, p.MODEL_CARD_MARKDOWN, p.MODEL_CARD_JSON, p.COST_REPORT,
            p.OFFLOAD_ENDPOINT, p.TFLITE_MODEL, p.COREML_MODEL, p.ONNX_REPORT, p.ONNX_MODEL,
            "@verdicts of every earlier gated stage"],
           ["release.model_name", "release.directory", "release.encryption", "release.keyset", "project"],
           outs=[p.RELEASE_CANDIDATE], tools=["json"]),
]


# Assets outside the stage graph, Dagster only: dvc.yaml and the release job leave them out on purpose.
# Incoming data as daily partitions (pipelines/data/partitions.py): a partition is one file with its own `.dvc`
# record, not a dvc.yaml stage; raw_dataset reads the accepted days when data.source is their folder.
# Post-release assets on fleet telemetry (pipelines/fleet): daily partitions and decisions about what is deployed,
# not files a `dvc repro` rebuilds.
_TELEMETRY = "${fleet.directory}"
_OTHER_ASSETS = [
    _stage("daily_batch", "data",
           "One day of incoming data (data.incoming.folder/YYYY-MM-DD), validated, drift-checked and DVC-recorded.",
           [], ["data", "validate", "drift", "release.model_name", "release.directory"],
           outs=["${data.incoming.folder}"],
           tools=["parquet", "dvc", "greatexpectations"], kind="incoming", partitions="daily"),
    _stage("fleet_telemetry", "fleet", "One day of accepted fleet telemetry (device-day records, daily-partitioned "
           "Parquet).", [], ["fleet.directory"], outs=[_TELEMETRY], tools=["parquet"], kind="post_release",
           partitions="fleet_day"),
    _stage("canary_analysis", "fleet",
           "Canary vs production (and A/B) on every guardrail with an anytime-valid sequential test.",
           [_TELEMETRY], ["fleet", "release"], reports=[p.FLEET_CANARY_REPORT], plots=[Plot(p.FLEET_GUARDRAILS_PLOT)],
           tools=["scipy"], kind="post_release",
           gates=[Gate("guardrails", "guardrails", "No guardrail is breached (a breach decides rollback).")]),
    _stage("observed_finops", "fleet",
           "Observed monthly cost, traffic and battery from telemetry beside cost.json's estimates.",
           [_TELEMETRY], ["fleet", "finops", "devices", "gates.budgets", "release.model_name", "release.directory"],
           reports=[p.FLEET_FINOPS_REPORT], plots=[Plot(p.FLEET_COST_PLOT)], tools=["pandas"], kind="post_release",
           gates=[Gate("observed_budget", "observed_budget",
                       "Observed spend and traffic stay within gates.budgets.")]),
    _stage("production_drift", "fleet",
           "PSI of DP-noised production input histograms against the release's reference profile.",
           [_TELEMETRY], ["fleet", "drift.psi_threshold", "release.model_name", "release.directory"],
           reports=[p.FLEET_DRIFT_REPORT], tools=["scipy"], kind="post_release",
           gates=[Gate("no_production_drift", "production_drift",
                       "DP-noised production inputs match the release's reference profile.")]),
]


def _expand(stages: list[Stage]) -> dict[str, Stage]:
    """Resolve the `@metrics of every earlier stage` input (the cost report sums their measured compute) and the
    `@verdicts of every earlier gated stage` input (the release reads them instead of judging again)."""
    result: dict[str, Stage] = {}
    for stage in stages:
        if stage.name in result:
            raise PipelineError(f"stage catalog: {stage.name} is declared twice")
        verdicts = [e.verdict for e in result.values() if e.verdict]
        inputs = tuple(i for s in stage.inputs
                       for i in ([e.metrics for e in result.values()] if s.startswith("@metrics") else
                                 verdicts if s.startswith("@verdicts") else [s]))
        result[stage.name] = Stage(**{**stage.__dict__, "inputs": inputs})
    return result


STAGES: dict[str, Stage] = _expand(_STAGES)  # in execution order
# Every Dagster asset but the observed source: the incoming partitions, the stages, then the post-release assets.
ASSETS: dict[str, Stage] = _expand([a for a in _OTHER_ASSETS if a.kind == "incoming"]) | STAGES | _expand(
    [a for a in _OTHER_ASSETS if a.kind == "post_release"])
if len(ASSETS) != len(STAGES) + len(_OTHER_ASSETS):
    raise PipelineError("stage catalog: an asset outside the stage graph has a stage's name")
POST_RELEASE = tuple(name for name, a in ASSETS.items() if a.kind == "post_release")
INCOMING = tuple(name for name, a in ASSETS.items() if a.kind == "incoming")
NOT_STAGES = (*INCOMING, *POST_RELEASE)

# bottom to top: imports go down only
GROUPS = ("data", "training", "mobile", "governance", "finops", "release", "fleet")


def pipeline_outputs() -> list[str]:
    """Every path a stage writes, and dvc.lock: the pipeline's own files, which a run changes (lineage ignores
    them when it asks whether the code is dirty)."""
    return sorted({path for stage in STAGES.values() for path in stage.writes} | {"dvc.lock"})


def output_folders(settings) -> list:
    """The folders stages write into, and the model's release folder: where a killed run's temp folders lie."""
    release = settings.params.release
    folders = {(settings.root / path).parent for stage in STAGES.values() for path in stage.writes}
    return sorted(folders | {settings.resolve(release.directory) / release.model_name})


def output_roots(settings) -> list:
    """Where a run may write: the project, and the release directory (outside it only when allowed)."""
    return [settings.root, settings.resolve(settings.params.release.directory)]


def missing_outputs(settings) -> list[str]:
    """Stages with a declared output missing on disk (deleted by hand, or never written in this checkout)."""
    return [name for name, stage in STAGES.items() if any(not (settings.root / path).exists() for path in stage.writes)]


def producers() -> dict[str, str]:
    """Artifact path -> the stage (or other asset) that writes it."""
    return {path: stage.name for stage in ASSETS.values() for path in stage.writes}


def parents(name: str) -> set[str]:
    """The assets whose outputs `name` reads; the source data for a stage reading files params name."""
    made_by = producers()
    found = {made_by[i] for i in ASSETS[name].inputs if i in made_by}
    return found | ({SOURCE} if any(i.startswith("${data.") for i in ASSETS[name].inputs) else set())


def downstream(names: set[str]) -> set[str]:
    """The stages in `names` and every stage that reads their outputs, directly or not."""
    closed = set(names)
    for stage in STAGES:  # execution order: parents come first
        if parents(stage) & closed:
            closed.add(stage)
    return closed


def verdicts_read(name: str) -> list[str]:
    """The gated stages whose verdicts `name` reads (its inputs), in execution order."""
    return [s for s, stage in STAGES.items() if stage.verdict and stage.verdict in STAGES[name].inputs]


def gate_function(name: str, gate: Gate):
    """A gate's function: pipelines.<group>.gates.<function> of the stage it belongs to, imported on first use."""
    return getattr(importlib.import_module(f"pipelines.{ASSETS[name].group}.gates"), gate.function)


def judge(name: str, settings) -> dict:
    """Evaluate the stage's gates on what its step last wrote and write its verdict (as the step wrapper does)."""
    return write_verdict(name, {g.name: gate_function(name, g)(settings) for g in ASSETS[name].gates}, settings)


def step_function(name: str):
    """The step of a stage (or other asset) as every orchestrator runs it: pipelines.<group>.steps.<name>, imported
    on first use, then its gates and verdict (pipelines.core.verdict.gated): a failed blocking gate raises there."""
    if name not in ASSETS:
        raise PipelineError(f"unknown stage '{name}' (stages: {', '.join(STAGES)})")
    module = importlib.import_module(f"pipelines.{ASSETS[name].group}.steps")
    gates = [(g.name, gate_function(name, g), g.after_failure) for g in ASSETS[name].gates]
    return gated(name, getattr(module, name), gates)
