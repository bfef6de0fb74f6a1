"""The fairness benchmark harness: a real run on a small slice, its summary and acceptance rule, and bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.fairness.__main__ import entry
from benchmarks.fairness.baselines import grid_size
from benchmarks.fairness.pipeline import fairness_gate, stop_line
from benchmarks.fairness.summary import acceptance, frontier_summary, gate_count, pareto, reaches, summarize


def _split(seed: int, eg: tuple[float, float], released: tuple[float, float] | None, gate: bool = True) -> dict:
    split = {"seed": seed, "baselines": {"eg_randomized": {"accuracy": eg[0], "dpd": eg[1], "eod": 0.1}}}
    if released is None:
        split["stop"] = "gate fairness_gate failed on trained_model: no strength meets the limit"
    else:
        figures = {"accuracy": released[0], "dpd": released[1], "eod": 0.2}
        split["pipeline"] = {"variant": "int8", **figures, "keras": figures, "fairness_gate": gate,
                             "mitigation": {"method": "bound", "constraint": "demographic_parity", "strength": 0.05,
                                            "chosen_by": "cross-validation"}}
    return split


def test_acceptance_rule_on_means_over_splits():
    within = summarize([_split(0, (0.80, 0.02), (0.795, 0.025)), _split(1, (0.82, 0.04), (0.81, 0.04))])
    assert within["acceptance"] == {"passed": True, "why": "meets both bounds"}
    assert within["methods"]["eg_randomized"]["accuracy"]["mean"] == pytest.approx(0.81)
    assert within["methods"]["pipeline"]["dpd"]["std"] == pytest.approx(0.0106066, abs=1e-6)
    worse = summarize([_split(0, (0.80, 0.02), (0.78, 0.05)), _split(1, (0.80, 0.02), (0.78, 0.05))])
    assert worse["acceptance"] == {"passed": False,
                                   "why": "accuracy 0.780 < 0.800 - 0.01; DPD 0.050 > 0.020 + 0.01"}


def test_a_stop_on_any_split_fails_the_rule_and_is_listed():
    summary = summarize([_split(0, (0.80, 0.02), (0.80, 0.02)), _split(1, (0.80, 0.02), None)])
    assert summary["acceptance"] == {"passed": False, "why": "released on 1 of 2 splits"}
    assert summary["stops"] == [{"seed": 1, "line": "gate fairness_gate failed on trained_model: no strength meets "
                                                   "the limit"}]
    assert acceptance({}, 0, 0) == {"passed": False, "why": "no ExponentiatedGradient baseline was measured"}


def test_mitigations_count_what_each_release_chose():
    splits = [_split(0, (0.8, 0.0), (0.8, 0.0)), _split(1, (0.8, 0.0), (0.8, 0.0)), _split(2, (0.8, 0.0), None)]
    splits[1]["pipeline"]["mitigation"] = {"method": "none", "strength": 1.0}
    splits.append(_split(3, (0.8, 0.0), (0.8, 0.0)))
    assert summarize(splits)["mitigations"] == {"bound 0.05": 2, "none": 1}


def test_gate_count_counts_releases_whose_fairness_gates_passed():
    splits = [_split(0, (0.8, 0.0), (0.8, 0.0)), _split(1, (0.8, 0.0), (0.8, 0.0), gate=False),
              _split(2, (0.8, 0.0), None)]
    assert gate_count(splits) == {"splits": 3, "passed": 1, "released": 2,
                                  "stops": ["gate fairness_gate failed on trained_model: no strength meets the limit"],
                                  "references": {}, "reference_splits": 0}


def test_gate_count_counts_the_references_passing_the_same_gate():
    splits = [_split(seed, (0.8, 0.0), (0.8, 0.0)) for seed in range(3)]
    splits[0]["reference_gates"] = {"eg_randomized": [], "logistic": ["demographic_parity_difference sex"]}
    splits[1]["reference_gates"] = {"eg_randomized": ["demographic_parity_difference sex"], "logistic": []}
    counted = gate_count(splits)  # split 2 did not judge them (an older run): not counted either way
    assert counted["references"] == {"eg_randomized": 1, "logistic": 1} and counted["reference_splits"] == 2


def test_gate_failures_judge_references_with_the_runs_own_fairness_gate():
    """Decisions built by hand on two 100-row groups: the one with equal rates passes, the one that selects only
    group a fails parity and equalized odds on `sex`, as the run's gate line names them."""
    import numpy as np
    import pandas as pd

    from benchmarks.fairness.baselines import GATED, gate_failures
    from benchmarks.fairness.datasets import DATASETS
    from pipelines.core.config import load_settings

    settings = load_settings(DATASETS["german-credit"].params)
    test = pd.DataFrame({"sex": ["a"] * 100 + ["b"] * 100})
    y = np.tile([1.0, 0.0], 100)  # every group half positives
    fair = y.copy()  # right on every row: equal selection, true and false positive rates
    unfair = np.r_[np.ones(100), np.zeros(100)]
    decisions = {"eg_randomized": fair, "eg_thresholded": fair, "grid_search": unfair, "logistic": fair}
    failures = gate_failures(settings, test, y, decisions)
    assert set(failures) == set(GATED)
    assert failures["eg_randomized"] == [] and failures["logistic"] == []
    assert failures["grid_search"] == ["demographic_parity_difference sex", "equalized_odds_difference sex"]


def test_fairness_gate_reads_the_released_variant_and_keras_only():
    gates = [{"name": "max_demographic_parity_difference[keras/sex]", "passed": True},
             {"name": "max_equalized_odds_difference[int8/sex]", "passed": True},
             {"name": "max_demographic_parity_difference[float16/sex]", "passed": False},
             {"name": "max_group_accuracy_drop[int8/sex]", "passed": False}]
    assert fairness_gate({"gates": gates}, "int8")
    assert not fairness_gate({"gates": gates}, "float16")
    assert not fairness_gate({"gates": []}, "int8")  # nothing measured is no pass


def test_grid_size_follows_fairlearns_advice_within_bounds():
    assert [grid_size(g, parity=True) for g in (2, 4, 6, 8)] == [10, 10, 32, 64]
    assert grid_size(4, parity=False) == 64 and grid_size(2, parity=False) == 10


def _point(key, accuracy: float, dpd: float) -> dict:
    return {"eps" if isinstance(key, float) else "index": key, "accuracy": accuracy, "dpd": dpd, "eod": 0.1}


def test_frontier_summary_means_each_bound_and_keeps_gridsearchs_efficient_models():
    splits = [{"frontier": {"eg_thresholded": [_point(0.01, 0.70, 0.10), _point(0.05, 0.74, 0.20)],
                            "grid_search": [_point(0, 0.70, 0.05), _point(1, 0.69, 0.06), _point(2, 0.75, 0.30),
                                            _point(3, 0.75, 0.30)]}},
              {"frontier": {"eg_thresholded": [_point(0.01, 0.72, 0.06), _point(0.05, 0.76, 0.20)],
                            "grid_search": [_point(0, 0.70, 0.05), _point(1, 0.69, 0.06), _point(2, 0.75, 0.30),
                                            _point(3, 0.75, 0.30)]}}]
    summary = frontier_summary(splits)
    assert [r["key"] for r in summary["eg_thresholded"]] == [0.01, 0.05]
    assert summary["eg_thresholded"][0]["accuracy"]["mean"] == pytest.approx(0.71)
    assert summary["eg_thresholded"][0]["dpd"]["mean"] == pytest.approx(0.08)
    assert summary["eg_thresholded"][0]["dpd"]["n"] == 2
    assert [r["key"] for r in summary["grid_search"]] == [0, 2]  # 1 is beaten by 0; 3 ties 2, kept once
    assert summarize(splits)["frontier"] == summary


def test_pareto_drops_undefined_and_dominated_points():
    def row(key, accuracy, dpd):
        return {"key": key, "accuracy": {"mean": accuracy}, "dpd": {"mean": dpd}}
    assert [r["key"] for r in pareto([row(0, 0.8, 0.1), row(1, 0.8, None), row(2, 0.7, 0.2), row(3, 0.9, 0.3)])] \
        == [0, 3]


def test_reaches_is_the_acceptance_slack_around_the_reference():
    reference = {"accuracy": {"mean": 0.80}, "dpd": {"mean": 0.05}}
    assert reaches({"accuracy": {"mean": 0.79}, "dpd": {"mean": 0.06}}, reference)
    assert not reaches({"accuracy": {"mean": 0.789}, "dpd": {"mean": 0.02}}, reference)
    assert not reaches({"accuracy": {"mean": 0.85}, "dpd": {"mean": 0.061}}, reference)
    assert not reaches({"accuracy": {"mean": 0.85}, "dpd": {"mean": None}}, reference)


def test_stop_line_is_the_runs_error_line():
    assert stop_line("  start raw_dataset\nerror: gate x failed on y: why\n") == "gate x failed on y: why"
    assert stop_line("Traceback...\nValueError: boom\n") == "ValueError: boom"
    assert stop_line("") == "no output"


def test_run_stages_stops_with_the_steps_one_line(tmp_path: Path):
    from benchmarks.fairness.datasets import DATASETS, project_copy
    from benchmarks.fairness.pipeline import DATA_STAGES, read_splits, run_stages
    from pipelines.core.config import load_settings

    settings = load_settings(project_copy(DATASETS["german-credit"], tmp_path / "p", {"data.label": "nope"}))
    seconds: dict[str, float] = {}
    assert run_stages(settings, DATA_STAGES, seconds) == "raw_dataset: data.label: column 'nope' is not in " \
                                                         "german_credit.csv"
    assert list(seconds) == ["raw_dataset"]  # nothing after the stop ran
    assert read_splits(settings) is None


def test_run_stages_reports_a_steps_bug_as_its_stop_line(monkeypatch):
    import pipelines.catalog
    from benchmarks.fairness.pipeline import run_stages

    def broken(name):
        def step(settings):
            if name == "coreml_model":
                raise ValueError("Input contains NaN.\nmore detail")
        return step
    monkeypatch.setattr(pipelines.catalog, "step_function", broken)
    seconds: dict[str, float] = {}
    assert run_stages(None, ["tflite_model", "coreml_model", "onnx_model"], seconds) == \
        "coreml_model: ValueError: Input contains NaN."
    assert list(seconds) == ["tflite_model", "coreml_model"]


def test_merge_combines_runs_made_in_separate_folders(tmp_path: Path):
    from benchmarks.fairness.datasets import DATASETS
    from benchmarks.fairness.run import RESULTS, describe_dataset
    from pipelines.core.io import write_json

    for name, released in (("recidivism", (0.65, 0.05)), ("german-credit", None)):
        splits = [_split(0, (0.65, 0.05), released) | {"rows": {"train": 80, "validation": 10, "test": 10}}]
        entry_ = describe_dataset(DATASETS[name], splits, {}, "abc1234") | {"date": "2026-01-01", "wall_s": 60.0}
        counts = {name: gate_count(splits) | {"commit": "abc1234", "planned": 20, "runner": "stages"}}
        write_json(tmp_path / name / RESULTS, {"datasets": {name: entry_}, "gate_counts": counts,
                                               "machine": {"cpu": "cpu", "cores": 2, "memory_gib": 1, "python": "3",
                                                           "versions": {}}, "fairlearn": "0"})
    assert entry(["--merge", str(tmp_path / "recidivism"), str(tmp_path / "german-credit"), "--docs",
                  str(tmp_path / "docs")]) == 0
    merged = json.loads((tmp_path / "docs" / RESULTS).read_text())
    assert list(merged["datasets"]) == ["german-credit", "recidivism"]  # the benchmark's order
    page = (tmp_path / "docs" / "fairness-benchmark.md").read_text()
    assert "| recidivism | 100 | `black` | 0.650 / 0.050 | 0.650 / 0.050 | 1/1 | bound 0.05 (1) | pass | `abc1234` |" in page
    assert "| german-credit | 100 | `sex` | 0.650 / 0.050 | - | 0/1 | - | fail: released on 0 of 1 splits | `abc1234` |" in page
    assert "| adult | - | - | - | - | - | - | not measured: no split finished | - |" in page
    assert "| recidivism | 1 of 1 | 1 of 1 | partial: 1 of 20 splits run | not run | `abc1234`, stages | - |" in page
    assert (tmp_path / "docs" / "fairness-benchmark" / "recidivism.png").is_file()


def test_unknown_dataset_is_one_line(capsys):
    assert entry(["--datasets", "nope"]) == 1
    assert capsys.readouterr().err.strip() == ("error: --datasets: unknown data set 'nope' (known: "
                                               "german-credit, boston-mortgage, recidivism, cps-labor-force, "
                                               "401k-eligibility, adult)")



def _german_split_0(folder: Path) -> dict[str, int]:
    """German credit's split sizes at split.seed 0 by the hash rule (its 1,000 rows are all kept, keyed by row), at
    the test share split.auto_test_size sizes from its sensitive groups and labels."""
    import pandas as pd

    from benchmarks.fairness.datasets import DATASETS
    from pipelines.core.config import load_settings
    from pipelines.data.rowsplit import assign, unit_hash
    from pipelines.data.split_size import sized_split

    german = DATASETS["german-credit"]
    folder.mkdir()
    german.write_files(folder)
    params = load_settings(german.params).params
    pd.read_csv(folder / params.data.source).to_parquet(folder / "validated.parquet")
    config = sized_split(params.model_copy(update={"split": params.split.model_copy(update={"seed": 0})}),
                         folder / "validated.parquet")[0]
    codes = assign(unit_hash([f"source:{n}" for n in range(1000)], 0), None, config)
    return {name: int((codes == code).sum()) for code, name in enumerate(("train", "validation", "test"))}


@pytest.mark.slow  # ~25 s alone, 60 s on the shared 2-core machine: the data steps, TensorFlow, fairlearn
def test_harness_on_a_small_slice_writes_results_page_and_plot(tmp_path: Path):
    """German credit, one split, two epochs, baselines only (the pipeline row is the slow test's)."""
    assert entry(["--datasets", "german-credit", "--splits", "1", "--set", "train.epochs=2", "--no-pipeline",
                  "--docs", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "fairness-benchmark" / "results.json").read_text())
    entry_ = results["datasets"]["german-credit"]
    split, german = entry_["splits"][0], _german_split_0(tmp_path / "german")
    assert split["rows"] == german and german["test"] > 250  # the pipeline's own split at split.seed 0 (share 0.3)
    assert entry_["grouping"] == "sex" and entry_["rows"] == 1000 and entry_["test_rows"] == german["test"]
    assert set(split["baselines"]) == {"majority", "logistic", "eg_randomized", "eg_thresholded", "grid_search",
                                       "keras_unmitigated"}
    majority = split["baselines"]["majority"]  # German credit is 70% good risks; the hash split's test rows near that
    assert 0.6 < majority["accuracy"] < 0.8 and majority["dpd"] == 0
    assert all(0.5 < m["accuracy"] <= 1 for n, m in split["baselines"].items() if n != "keras_unmitigated")
    assert 0 <= split["baselines"]["keras_unmitigated"]["accuracy"] <= 1  # two epochs: any accuracy
    assert entry_["overrides"] == {"train.epochs": 2} and entry_["planned"] == 1
    page = (tmp_path / "fairness-benchmark.md").read_text()
    assert "| EG (randomized) |" in page and "![german-credit: accuracy against DPD](fairness-benchmark/german-credit.png)" in page
    assert "fail: released on 0 of 1 splits" in page
    from benchmarks.fairness.frontier import EPS_GRID

    assert split["runner"] == "data steps" and set(split["frontier"]) == {"eg_thresholded", "eg_distilled",
                                                                          "grid_search"}
    assert [p["eps"] for p in split["frontier"]["eg_thresholded"]] == list(EPS_GRID)
    assert [p["eps"] for p in split["frontier"]["eg_distilled"]] == list(EPS_GRID)
    assert len(split["frontier"]["grid_search"]) == 10  # one model per Lagrange multiplier (two groups: 10)
    assert all(0.5 < p["accuracy"] <= 1 for family in ("eg_thresholded", "grid_search")
               for p in split["frontier"][family])
    assert all(0 <= p["accuracy"] <= 1 and 0 <= p["dpd"] <= 1 for p in split["frontier"]["eg_distilled"])
    eg = next(p for p in split["frontier"]["eg_thresholded"] if p["eps"] == 0.01)
    assert eg == split["baselines"]["eg_thresholded"] | {"eps": 0.01}  # the baseline's own fit, reused
    assert "#### Deterministic frontier" in page and "| EG thresholded | eps 0.002 |" in page
    assert set(split["reference_gates"]) == {"eg_randomized", "eg_thresholded", "grid_search", "logistic"}
    assert all(isinstance(failed, list) for failed in split["reference_gates"].values())
    assert (tmp_path / "fairness-benchmark" / "german-credit.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["stages", "run"])
def test_harness_runs_the_real_pipeline_on_one_split(tmp_path: Path, runner: str):
    assert entry(["--datasets", "german-credit", "--splits", "1", "--set", "train.epochs=2", "--runner", runner,
                  "--docs", str(tmp_path)]) == 0
    split = json.loads((tmp_path / "fairness-benchmark" / "results.json").read_text())["datasets"]["german-credit"][
        "splits"][0]
    assert "pipeline" in split or split["stop"]  # a release with its figures, or the run's one-line stop
    assert split["runner"] == runner and split["steps_s"]["raw_dataset"] > 0  # each step's time, up to any stop
    assert split["rows"] == _german_split_0(tmp_path / "german") and "eg_randomized" in split["baselines"]
    if "pipeline" in split:
        assert split["pipeline"]["variant"] and 0.5 < split["pipeline"]["accuracy"] <= 1


@pytest.mark.slow  # the data steps of one German credit split and a logistic regression, ~15 s
def test_floor_gives_every_gated_limit_of_a_split_its_equal_rates_floor(tmp_path: Path, capsys):
    from benchmarks.fairness.floor import main, split_floors

    rows = split_floors("german-credit", 0, tmp_path)
    assert {(r["grouping"], r["limit_key"], r["limit"]) for r in rows} == {
        ("sex", "max_demographic_parity_difference", 0.1), ("sex", "max_equalized_odds_difference", 0.2)}
    assert all(0 < r["floor"] < 0.5 and r["test_rows"] > 150 for r in rows)
    main(["--datasets", "german-credit", "--splits", "1"])
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| data set | test rows | grouping | limit |") and len(table) == 4
    assert table[2].startswith("| german-credit |") and "| sex | demographic_parity_difference 0.1 |" in table[2]
    # how often a fair-by-construction model passes the whole gate, at a share set on the command line
    main(["--datasets", "german-credit", "--splits", "1", "--fair-draws", "50", "--set", "split.test_size=0.4",
          "--set", "split.auto_test_size=false"])
    lines = capsys.readouterr().out.splitlines()
    tested = {int(line.split("|")[2].split("-")[0]) for line in lines if line.startswith("| german-credit | ")
              and "-" in line.split("|")[2]}
    assert len(tested) == 1 and 350 < tested.pop() < 450  # split.test_size 0.4 of 1,000 rows, as set
    fair = lines[lines.index("| data set | a fair-by-construction model passes the whole gate (expected splits) |") + 2]
    assert fair.startswith("| german-credit | ") and " of 1 (per split " in fair
