"""group_metrics computes rates from confusion counts; fairlearn (MetricFrame, demographic_parity_difference,
equalized_odds_difference) is the reference they must equal, on real Adult rows and on edge cases."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score

from pipelines.training.metrics import RATES, group_metrics, groupings
from tests.conftest import ADULT

FAIRLEARN = {"accuracy": accuracy_score, "selection_rate": selection_rate,
             "true_positive_rate": true_positive_rate, "false_positive_rate": false_positive_rate}
COLUMNS = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
           "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country", "income"]


@pytest.fixture(scope="module")
def adult() -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """The Adult test file's 16,281 rows: labels, a seeded score of a few columns, and the sensitive columns."""
    frame = pd.read_csv(ADULT / "adult.test.gz", skiprows=1, names=COLUMNS, skipinitialspace=True, na_values="?")
    y = frame["income"].str.startswith(">50K").to_numpy(dtype=int)
    logit = (0.35 * (frame["education_num"] - 10) + 0.04 * (frame["age"] - 38)
             + 0.03 * (frame["hours_per_week"] - 40) + 0.0003 * frame["capital_gain"] - 1.2)
    noise = np.random.default_rng(0).normal(0, 0.8, len(frame))
    proba = 1 / (1 + np.exp(-(logit.to_numpy() + noise)))
    return y, proba, frame[["sex", "race", "native_country"]]


def _gap(metric, y: np.ndarray, decisions: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> float | None:
    """fairlearn's between-groups difference over `rows`; undefined (None) with fewer than two groups there."""
    if len(np.unique(labels[rows])) < 2:
        return None
    return float(MetricFrame(metrics=metric, y_true=y[rows], y_pred=decisions[rows],
                             sensitive_features=labels[rows]).difference())


def assert_equals_fairlearn(facts: dict, y: np.ndarray, decisions: np.ndarray, labels: np.ndarray,
                            min_group_size: int = 1) -> None:
    """Every rate equals MetricFrame's where it has a denominator (None where fairlearn says 0), and every gap
    equals fairlearn's over the groups with at least `min_group_size` rows, and as many positives (true positive
    rate) or negatives (false positive rate)."""
    frame = MetricFrame(metrics=FAIRLEARN, y_true=y, y_pred=decisions, sensitive_features=labels).by_group
    assert sorted(facts["groups"]) == sorted(str(g) for g in frame.index)
    positives = pd.Series(y).groupby(labels).agg(["sum", "size"])
    for group, rates in facts["groups"].items():
        assert rates["count"] == positives.loc[group, "size"]
        has = {"true_positive_rate": positives.loc[group, "sum"] > 0,
               "false_positive_rate": positives.loc[group, "sum"] < positives.loc[group, "size"]}
        for rate in RATES:
            if has.get(rate, True):
                assert rates[rate] == frame.loc[group, rate], (group, rate)  # the same float, not just close
            else:
                assert rates[rate] is None and frame.loc[group, rate] == 0, (group, rate)
    size = pd.Series(labels).map(pd.Series(labels).value_counts()).to_numpy()
    eligible = size >= min_group_size
    enough = max(min_group_size, 1)
    in_positive_group = pd.Series(y).groupby(labels).transform("sum").to_numpy() >= enough
    in_negative_group = pd.Series(1 - y).groupby(labels).transform("sum").to_numpy() >= enough
    tpr = _gap(true_positive_rate, y, decisions, labels, eligible & in_positive_group)
    fpr = _gap(false_positive_rate, y, decisions, labels, eligible & in_negative_group)
    expected = {
        "demographic_parity_difference": _gap(selection_rate, y, decisions, labels, eligible),
        "equalized_odds_difference": None if tpr is None and fpr is None else max(v for v in (tpr, fpr) if v is not None),
        "accuracy_gap": _gap(accuracy_score, y, decisions, labels, eligible),
    }
    assert {k: facts[k] for k in expected} == expected
    if expected["demographic_parity_difference"] is not None:
        assert facts["demographic_parity_difference"] == demographic_parity_difference(
            y[eligible], decisions[eligible], sensitive_features=labels[eligible])
    if (eligible & in_positive_group & in_negative_group).sum() == eligible.sum() and tpr is not None:
        assert facts["equalized_odds_difference"] == equalized_odds_difference(
            y[eligible], decisions[eligible], sensitive_features=labels[eligible])


@pytest.mark.parametrize("min_group_size", [1, 50])
def test_group_metrics_equal_fairlearn_on_adult_rows(adult, min_group_size):
    y, proba, groups = adult
    decisions = (proba >= 0.5).astype(int)
    result = group_metrics(y, proba, groups[["sex", "race"]], 0.5, intersection=True, min_group_size=min_group_size)
    assert list(result) == ["sex", "race", "sex:race"]
    labels = groupings(groups[["sex", "race"]], intersection=True)
    for name, facts in result.items():
        assert_equals_fairlearn(facts, y, decisions, labels[name], min_group_size)
    if min_group_size == 50:
        assert result["sex:race"]["small_groups"] == ["Female:Other"]  # Female:Other has 46 rows: the gaps skip them


def test_group_metrics_equal_fairlearn_with_a_missing_value_group(adult):
    """fairlearn rejects missing values; the pipeline names them `(missing)`, the labels fairlearn is given here."""
    y, proba, groups = adult
    facts = group_metrics(y, proba, groups[["native_country"]], 0.5)["native_country"]
    assert facts["groups"]["(missing)"]["count"] == groups["native_country"].isna().sum() > 0
    labels = groupings(groups[["native_country"]])["native_country"]
    assert_equals_fairlearn(facts, y, (proba >= 0.5).astype(int), labels)


def test_group_without_positives_has_no_tpr_where_fairlearn_reports_zero(adult):
    y, proba, groups = adult
    y, proba, labels = y.copy(), proba.copy(), groups[["sex"]].astype(object).copy()
    nobody = np.flatnonzero(y == 0)[:40]  # 40 negatives, half of them selected, as a group of their own
    labels.iloc[nobody, 0] = "Other"
    proba[nobody[:20]], proba[nobody[20:]] = 0.9, 0.1
    facts = group_metrics(y, proba, labels, 0.5)["sex"]
    assert facts["groups"]["Other"]["true_positive_rate"] is None
    assert facts["groups"]["Other"]["false_positive_rate"] == 0.5
    assert_equals_fairlearn(facts, y, (proba >= 0.5).astype(int), groupings(labels)["sex"])


def test_single_group_rates_equal_fairlearn_and_has_no_gap(adult):
    y, proba, _ = adult
    decisions = (proba >= 0.5).astype(int)
    facts = group_metrics(y, proba, pd.DataFrame({"all": ["everyone"] * len(y)}), 0.5)["all"]
    assert_equals_fairlearn(facts, y, decisions, np.array(["everyone"] * len(y), dtype=object))
    assert facts["demographic_parity_difference"] is None  # fairlearn says 0: one group has no gap to measure
    assert demographic_parity_difference(y, decisions, sensitive_features=np.zeros(len(y))) == 0


def test_hand_counted_intersection_equals_fairlearn():
    y = np.array([1, 1, 0, 0, 1, 0, 0, 0, 1, 0])
    proba = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.2])
    groups = pd.DataFrame({"sex": list("AAAABBBBAB"), "race": ["x", "y", "x", None, "x", "y", "x", "y", None, "y"]})
    result = group_metrics(y, proba, groups, 0.5, intersection=True)
    labels = groupings(groups, intersection=True)
    assert "A:(missing)" in result["sex:race"]["groups"]
    for name, facts in result.items():
        assert_equals_fairlearn(facts, y, (proba >= 0.5).astype(int), labels[name])


def test_bootstrap_leaves_the_point_figures_as_fairlearn_gives_them(adult):
    y, proba, groups = adult
    plain = group_metrics(y, proba, groups[["sex", "race"]], 0.5, intersection=True, min_group_size=50)
    booted = group_metrics(y, proba, groups[["sex", "race"]], 0.5, intersection=True, min_group_size=50,
                           n_boot=50, seed=1)
    for name, facts in booted.items():
        assert {k: v for k, v in facts.items() if k != "ci"} | {"groups": None} == plain[name] | {"groups": None}
        for group, rates in facts["groups"].items():
            assert {k: v for k, v in rates.items() if k != "ci"} == plain[name]["groups"][group]
