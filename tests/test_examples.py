"""Every example data set is complete: params written the documented way that load, a SOURCE.md stating origin,
licence, row count, label and sensitive attribute, and data (shipped or extracted from a package) with that many
rows; every example is in the fairness benchmark."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from benchmarks.fairness.datasets import DATASETS
from pipelines.core.config import load_settings
from pipelines.data.load import load_dataset

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.parent.name for p in (REPO / "examples").glob("*/params.yaml"))
FACTS = ("Origin", "Licence", "Rows", "Label", "Sensitive attribute")


def source_facts(text: str) -> dict[str, str]:
    """The `- Name: text` bullets of a SOURCE.md (continuation lines joined)."""
    facts: dict[str, str] = {}
    name = None
    for line in text.splitlines():
        match = re.match(r"- ([A-Z][A-Za-z ]+): (.*)", line)
        if match:
            name = match.group(1)
            facts[name] = match.group(2)
        elif name and line.startswith("  "):
            facts[name] += " " + line.strip()
        else:
            name = None
    return facts


def test_every_example_is_benchmarked():
    assert len(EXAMPLES) >= 5
    assert {d.params.parent.name for d in DATASETS.values() if d.params.parent.parent.name == "examples"} == set(EXAMPLES)
    assert all(d.source.is_file() and d.params.is_file() for d in DATASETS.values())  # Adult's too


@pytest.mark.parametrize("name", EXAMPLES)
def test_params_are_written_the_documented_way(name: str):
    params = REPO / "examples" / name / "params.yaml"
    raw = yaml.safe_load(params.read_text())
    assert set(raw) == {"data", "release"} and set(raw["release"]) == {"model_name"}  # defaults for the rest
    assert raw["release"]["model_name"] == name
    settings = load_settings(params)
    assert settings.params.data.label and settings.params.data.sensitive_features


@pytest.mark.parametrize("name", EXAMPLES)
def test_source_states_every_fact_and_the_row_count_holds(name: str, tmp_path: Path):
    folder = REPO / "examples" / name
    facts = source_facts((folder / "SOURCE.md").read_text())
    assert set(FACTS) <= set(facts), sorted(set(FACTS) - set(facts))
    data = load_settings(folder / "params.yaml").params.data
    assert f"`{data.label}`" in facts["Label"] and f"`{data.positive_label}`" in facts["Label"]
    for feature in data.sensitive_features:
        assert f"`{feature}`" in facts["Sensitive attribute"]
    shutil.copy2(folder / "params.yaml", tmp_path / "params.yaml")
    DATASETS[name].write_files(tmp_path)  # the shipped file, or the package's, as the benchmark gets it
    frame = load_dataset(data, tmp_path / data.source)  # raises when the positive label never occurs
    assert f"{len(frame):,}" == facts["Rows"].strip(), (len(frame), facts["Rows"])
    assert set(data.sensitive_features) <= set(frame.columns)
