"""Numbers written with thousands separators: parsed with data.thousands, else refused by column; a huge
numeric-looking text column is named instead of becoming thousands of categories."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.core.config import DataConfig
from pipelines.core.errors import PipelineError
from pipelines.data.load import load_dataset


def config(**overrides) -> DataConfig:
    return DataConfig(**{"source": "t.csv", "label": "income", "positive_label": ">50K",
                         "sensitive_features": ["sex"], **overrides})


def _rows(n: int, amount) -> str:
    return "amount,sex,income\n" + "".join(f'"{amount(i)}",{"Male" if i % 2 else "Female"},{">50K" if i % 3 else "<=50K"}\n'
                                           for i in range(n))


def test_separated_numbers_are_parsed_with_data_thousands(tmp_path: Path):
    source = tmp_path / "t.csv"
    source.write_text(_rows(300, lambda i: f"{1000 + i * 997:,}"))  # "1,000", "1,997", ... and plain 3-digit ones
    frame = load_dataset(config(thousands=","), source)
    assert frame["amount"].dtype == "float64"
    assert frame["amount"].tolist()[:3] == [1000.0, 1997.0, 2994.0]


def test_a_dot_separator_reads_a_decimal_comma(tmp_path: Path):
    source = tmp_path / "t.csv"
    source.write_text(_rows(10, lambda i: f"1.234.{i:03d},5"))
    assert load_dataset(config(thousands="."), source)["amount"].tolist()[:2] == [1234000.5, 1234001.5]


def test_separated_numbers_without_the_param_are_refused_naming_column_and_param(tmp_path: Path):
    source = tmp_path / "t.csv"
    source.write_text(_rows(3000, lambda i: f"{i * 7:,}"))  # the first 143 values have no separator
    with pytest.raises(PipelineError) as caught:
        load_dataset(config(), source, max_categories=100)
    assert str(caught.value) == ("data.source: column 'amount' holds numbers written with a thousands separator "
                                 "('1,001'); set data.thousands: ',' to read them as numbers, or list the column in "
                                 "data.categorical")


def test_a_column_listed_as_categorical_is_kept_as_text(tmp_path: Path):
    source = tmp_path / "t.csv"
    source.write_text(_rows(50, lambda i: f"{i * 100:,}"))
    frame = load_dataset(config(categorical=["amount"]), source, max_categories=100)
    assert frame["amount"].tolist()[10:12] == ["1,000", "1,100"]


def test_a_numeric_looking_column_with_more_values_than_max_categories_is_named(tmp_path: Path):
    source = tmp_path / "t.csv"
    source.write_text(_rows(500, lambda i: f"$ {i * 13}"))  # numbers in text clothing, 500 distinct
    with pytest.raises(PipelineError) as caught:
        load_dataset(config(), source, max_categories=100)
    assert str(caught.value) == ("data.source: column 'amount' has 500 distinct text values, more than "
                                 "validate.max_categories (100), and looks numeric ('$ 0'): list it in data.numeric "
                                 "(with data.thousands for separators) or in data.categorical")
    assert load_dataset(config(), source, max_categories=1000)["amount"].nunique() == 500  # under the limit: text


def test_text_categories_stay_categories(tmp_path: Path):
    source = tmp_path / "t.csv"
    source.write_text(_rows(500, lambda i: f"city-{i}"))
    assert load_dataset(config(), source, max_categories=100)["amount"].nunique() == 500
