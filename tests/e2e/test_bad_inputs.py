"""The bad-input corpus (tests/data/bad/): each broken file stops at ingestion or validation with one line.

The realistic flow: the expectation suite is built from the good small-project data (trusted), then
data.source points at a new, broken file. The broken file is the whole new data (test_source removed),
so 600 good test rows cannot dilute its defect. Most cases call the step functions in-process; a few go
through `mobile-mlops run` in a subprocess, and one through Dagster to read the check's metadata.
"""
from __future__ import annotations

import importlib.util
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipelines.core.config import load_settings
from pipelines.core.errors import PipelineError
from pipelines.core.paths import ArtifactPaths, suite_path
from pipelines.data import steps as data_steps

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad"
COLUMNS = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())["data"]["columns"]
INJECTION = "=cmd|' /C calc'!A0"
RAW, VALIDATED = "raw_dataset", "validated_dataset"


@dataclass(frozen=True)
class Case:
    id: str
    file: str
    stage: str  # the step that stops the run
    message: str  # the PipelineError text (the CLI prints it after `error: `)
    data: dict = field(default_factory=dict)  # params data.* edits the case needs (None removes the key)


CASES = [
    Case("empty file", "empty.csv", RAW, "data.source: empty.csv has no data rows"),
    Case("header only", "header_only.csv", RAW, "data.source: header_only.csv has no data rows",
         {"columns": None}),
    Case("missing label column", "missing_label.csv", RAW,
         "data.label: column 'income' is not in missing_label.csv",
         {"columns": [c for c in COLUMNS if c != "income"]}),
    Case("missing label column, columns not updated", "missing_label.csv", RAW,
         "data.source: missing_label.csv is not a readable table: line 1 has 14 fields, expected 15 (data.columns)"),
    Case("unknown label value", "unknown_label.csv", RAW,
         "data.label: column 'income' has 3 distinct values (<=50K, >50K, unknown); a binary label needs exactly two"),
    Case("missing sensitive column", "missing_sensitive.csv", RAW,
         "data.sensitive_features: column 'sex' is not in missing_sensitive.csv",
         {"columns": [c for c in COLUMNS if c != "sex"]}),
    Case("text in a numeric column", "text_in_numeric.csv", VALIDATED,
         "validation failed: column 'age': expect_column_values_to_be_in_type_list "
         "(12 of 300 rows; e.g. 'forty'; expected numbers); 1 more failed"),
    Case("all-null column", "all_null.csv", VALIDATED,
         "validate.max_missing_fraction: column 'hours-per-week' is 100% empty"),
    Case("single-class label", "single_class.csv", RAW,
         "data.positive_label: '>50K' never occurs in column 'income' (seen: <=50K)"),
    Case("single-class label, only positives", "single_class_positive.csv", RAW,
         "data.label: column 'income' has 1 distinct value (>50K); a binary label needs exactly two"),
    Case("repeated column names", "repeated_column_names.csv", RAW,
         "data.source: repeated_column_names.csv has repeated column names: age "
         '(rename the later ones by position, e.g. data.rename: {"age#2": age_2})', {"columns": None}),
    Case("out-of-range values", "negative_age.csv", VALIDATED,
         "validation failed: column 'age': expect_column_values_to_be_between "
         "(15 of 300 rows; e.g. '-39.0', '-40.0', '-31.0'; allowed 9.7 to 97.3)"),
    Case("duplicate rows above the allowed share", "duplicates.csv", VALIDATED,
         "validation failed: columns age ... income (14): expect_compound_columns_to_be_unique "
         "(180 of 300 rows = 60.0%, allowed 7.0%; e.g. 'age=39.0, workclass=State-gov, education=Bachelors, educa...')"),
    Case("non-UTF-8 bytes", "non_utf8.csv", RAW,
         "data.source: non_utf8.csv is not UTF-8 text (line 151, column 'native-country', byte 0xe9)"),
    Case("ragged rows", "ragged.csv", RAW,
         "data.source: ragged.csv is not a readable table: line 101 has 14 fields, expected 15 (data.columns)"),
    Case("formula injection", "formula_injection.csv", VALIDATED,
         "validation failed: column 'occupation': expect_column_values_to_be_in_set "
         "(20 of 300 rows; e.g. \"'=cmd|' /C calc'!A0\")"),
    Case("truncated gzip", "truncated.csv.gz", RAW,
         "data.source: truncated.csv.gz is cut short (its compressed stream ends early)"),
    Case("ZIP archive named .csv", "zipped.csv", RAW,
         "data.source: zipped.csv is a ZIP archive (unzip it and point at the file inside); "
         "expected CSV (plain or gzip/bz2/xz) or Parquet"),
]
BY_ID = {case.id: case for case in CASES}
GOOD = {"good_control.csv", "integer_label.csv", "boolean_label.csv"}  # files that must pass


@pytest.fixture
def trusted(small_project: Path) -> Path:
    """The small project with its expectation suite built from its good data (what a reviewer committed)."""
    settings = load_settings(small_project / "params.yaml", {})
    data_steps.raw_dataset(settings)
    data_steps.build_expectations(settings)
    assert suite_path(settings).is_file()
    return small_project


def point_at(project: Path, file: str, edits: dict | None = None) -> Path:
    """params.yaml now reads one corpus file as the whole data; returns the params path."""
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["data"]["source"] = str(CORPUS / file)
    params["data"].pop("test_source", None)
    for key, value in (edits or {}).items():
        if value is None:
            params["data"].pop(key, None)
        else:
            params["data"][key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def run_steps(params: Path) -> tuple[str, str]:
    """Run raw_dataset then validated_dataset; return (failed step, one-line message)."""
    settings = load_settings(params, {})
    stage = RAW
    try:
        data_steps.raw_dataset(settings)
        stage = VALIDATED
        data_steps.validated_dataset(settings)
    except PipelineError as error:
        return stage, str(error)
    raise AssertionError(f"{params}: the data passed validation")


def assert_nothing_trained(project: Path) -> None:
    paths = ArtifactPaths(project)
    assert not paths.validated_dataset.exists() and not paths.dataset_splits.exists()
    for folder in ("models", "releases", "build", "mlartifacts"):
        assert not (project / folder).exists(), folder
    store = project / "mlflow.db"
    if store.exists():  # created but empty is fine; a run or a registered version is not
        with sqlite3.connect(store) as db:
            for table in ("runs", "registered_models", "model_versions"):
                assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table


def test_committed_corpus_is_what_make_corpus_writes():
    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = module.corpus()
    assert {f.name for f in CORPUS.glob("*.csv*")} == set(expected) == {c.file for c in CASES} | GOOD
    for name, content in expected.items():
        assert (CORPUS / name).read_bytes() == content, f"{name}: rerun tests/data/bad/make_corpus.py"
        assert len(content) < 100_000


def test_control_file_passes(trusted: Path):
    settings = load_settings(point_at(trusted, "good_control.csv"), {})
    data_steps.raw_dataset(settings)
    step = data_steps.validated_dataset(settings)  # the unbroken rows pass: each file fails for its defect
    assert step.summary["raw_rows"] == 300


@pytest.mark.parametrize(("file", "positive"), [("integer_label.csv", 1), ("boolean_label.csv", True)])
def test_integer_and_boolean_labels_of_a_new_model_get_their_own_suite(trusted: Path, file: str, positive):
    """A new model (another release.model_name) on a 0/1 or true/false label: its suite is built on its first
    run from its data, not borrowed from another model's, and the label reads as the same classes."""
    control = load_settings(point_at(trusted, "good_control.csv"), {})
    data_steps.raw_dataset(control)
    expected = data_steps.validated_dataset(control).summary["positive_rate"]
    params = point_at(trusted, file, {"positive_label": positive})
    settings = load_settings(params, {"release.model_name": f"income-{file.split('_')[0]}"})
    data_steps.raw_dataset(settings)
    step = data_steps.validated_dataset(settings)
    assert "built from this data on the model's first run" in step.summary["suite"]
    assert suite_path(settings) != suite_path(control) and suite_path(settings).is_file()
    assert step.summary["positive_rate"] == expected


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_stops_with_one_line_naming_the_check(trusted: Path, case: Case):
    stage, message = run_steps(point_at(trusted, case.file, case.data))
    assert (stage, message) == (case.stage, case.message)
    assert "\n" not in message
    assert_nothing_trained(trusted)
    if message.startswith("validation failed"):  # the report lists the failures for the blocking check
        report = yaml.safe_load((trusted / "reports" / "validation.json").read_text())
        assert report["success"] is False and report["expectations"]["failed"]


def test_formula_injection_is_kept_as_text_and_reported_inert(trusted: Path):
    settings = load_settings(point_at(trusted, "formula_injection.csv"), {})
    data_steps.raw_dataset(settings)
    raw = pd.read_parquet(ArtifactPaths(trusted).raw_dataset)
    assert pd.api.types.is_string_dtype(raw["occupation"])
    assert (raw["occupation"] == INJECTION).sum() == 20  # verbatim text, not a formula result
    with pytest.raises(PipelineError):
        data_steps.validated_dataset(settings)
    report = yaml.safe_load((trusted / "reports" / "validation.json").read_text())
    failure = report["expectations"]["failed"][0]
    assert failure["examples"] == ["'" + INJECTION]  # a spreadsheet opening it shows text
    table = data_steps.expectations_table(report["expectations"])
    assert "'=cmd\\|' /C calc'!A0" in table and INJECTION not in table


CLI_CASES = ["ragged rows", "formula injection"]  # stopped by ingestion, and by the blocking gate


@pytest.mark.parametrize("case_id", CLI_CASES)
def test_cli_run_prints_one_error_line_and_exits_1(trusted: Path, case_id: str):
    case = BY_ID[case_id]
    point_at(trusted, case.file, case.data)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DAGSTER_HOME")}
    done = subprocess.run([sys.executable, "-m", "cli.main", "run", "--params", "params.yaml"],
                          cwd=trusted, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    expected = (f"error: gate expectations failed on validated_dataset: {case.message}"
                if case.message.startswith("validation failed") else f"error: {case.stage}: {case.message}")
    assert lines == [expected], done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert_nothing_trained(trusted)


def test_dagster_check_records_failed_expectations_with_escaped_examples(trusted: Path):
    from dagster import DagsterInstance

    from assets.build import materialize_all

    params = point_at(trusted, "formula_injection.csv")
    result = materialize_all(load_settings(params), instance=DagsterInstance.ephemeral(), raise_on_error=False,
                             selection=["source_data", "raw_dataset", "validated_dataset"])
    assert not result.success
    checks = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert [(c.check_name, c.passed) for c in checks] == [("expectations", False)]
    metadata = {key: value.value for key, value in checks[0].metadata.items()}
    assert metadata["failed"] == 1 and metadata["evaluated"] > 50
    table = metadata["expectations"]
    row = next(line for line in table.splitlines() if line.startswith("| occupation |"))
    assert "expect_column_values_to_be_in_set" in row and "20 of 300" in row
    assert "'=cmd\\|' /C calc'!A0" in row  # leading apostrophe, pipe escaped: inert and one table cell
    assert row.count(" | ") == 3  # the payload's pipe did not open a new column
    assert not result.asset_materializations_for_node("validated_dataset")
    assert_nothing_trained(trusted)
