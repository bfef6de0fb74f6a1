"""Blocking data checks on the raw dataset, and the profile they report."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.core.config import DataConfig, ValidateConfig
from pipelines.core.errors import PipelineError
from pipelines.data.validate import validate_dataset

DATA = DataConfig(source="t.csv", label="income", positive_label=">50K", sensitive_features=["sex"])


def frame(rows: int = 10) -> pd.DataFrame:
    return pd.DataFrame({
        "age": np.arange(rows, dtype="float64") + 20,
        "sex": pd.array(["Male", "Female"] * (rows // 2), dtype="string"),
        "income": pd.array([">50K"] * (rows // 5) + ["<=50K"] * (rows - rows // 5), dtype="string"),
    })


def test_passing_profile_reports_rows_balance_and_column_types():
    _, report = validate_dataset(frame(10), DATA, ValidateConfig(min_rows=10))
    assert report["rows"] == 10
    assert report["positive_rate"] == pytest.approx(0.2)
    assert report["columns"]["age"] == {"type": "numeric", "null_fraction": 0.0, "distinct": 10}
    assert report["columns"]["sex"] == {"type": "categorical", "null_fraction": 0.0, "distinct": 2}
    assert report["columns"]["income"]["type"] == "categorical"
    assert report["columns"]["income"]["distinct"] == 2


def test_too_few_rows():
    with pytest.raises(PipelineError, match="validate.min_rows: 10 rows after cleaning, need at least 11"):
        validate_dataset(frame(10), DATA, ValidateConfig(min_rows=11))


def test_single_class_label():
    data = frame(10).assign(income=pd.array(["<=50K"] * 10, dtype="string"))
    with pytest.raises(PipelineError, match="data.label: column 'income' must have exactly 2 classes, has 1"):
        validate_dataset(data, DATA, ValidateConfig(min_rows=1))


def test_three_label_classes():
    data = frame(10)
    data.loc[0, "income"] = "unknown"
    with pytest.raises(PipelineError, match="exactly 2 classes, has 3"):
        validate_dataset(data, DATA, ValidateConfig(min_rows=1))


def test_sensitive_feature_with_a_single_value():
    data = frame(10).assign(sex=pd.array(["Female"] * 10, dtype="string"))
    with pytest.raises(PipelineError, match="data.sensitive_features: column 'sex' has a single value"):
        validate_dataset(data, DATA, ValidateConfig(min_rows=1))


def test_column_too_empty_is_named_with_its_share():
    data = frame(10)
    data["hours"] = [np.nan] * 6 + [40.0] * 4
    rules = ValidateConfig(min_rows=1, max_missing_fraction=0.5)
    with pytest.raises(PipelineError, match="validate.max_missing_fraction: column 'hours' is 60% empty"):
        validate_dataset(data, DATA, rules)
    # at the limit it passes, and the profile records the share
    keep = DATA.model_copy(update={"drop_missing_rows": False})
    _, report = validate_dataset(data, keep, ValidateConfig(min_rows=1, max_missing_fraction=0.6))
    assert report["columns"]["hours"]["null_fraction"] == pytest.approx(0.6)
