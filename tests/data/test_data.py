"""Loading CSV / Parquet sources into the typed raw dataset, and every way a file can be wrong."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipelines.core.config import DataConfig
from pipelines.core.errors import PipelineError
from pipelines.data.load import ORIGIN, load_dataset, normalize_label
from pipelines.data.rowsplit import INTERNAL, ROW

ADULT_COLUMNS = ["age", "workclass", "sex", "income"]


def config(**overrides) -> DataConfig:
    values = {"source": "table.csv", "label": "income", "positive_label": ">50K", "sensitive_features": ["sex"]}
    values.update(overrides)
    return DataConfig(**values)


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


HEADER_CSV = "age,sex,city,income\n39,Male,Paris,<=50K\n50,Female,Lyon,>50K\n28,Female,Paris,>50K\n"


def test_header_csv_infers_numeric_and_text_columns(tmp_path):
    frame = load_dataset(config(), write(tmp_path / "t.csv", HEADER_CSV))
    assert list(frame.columns) == ["age", "sex", "city", "income", *INTERNAL]
    assert frame["age"].dtype == "float64"
    assert frame["age"].tolist() == [39.0, 50.0, 28.0]
    assert pd.api.types.is_string_dtype(frame["sex"]) and not pd.api.types.is_numeric_dtype(frame["sex"])
    assert pd.api.types.is_string_dtype(frame["city"])
    assert frame["income"].tolist() == ["<=50K", ">50K", ">50K"]
    assert set(frame[ORIGIN]) == {"source"}


def test_listed_categorical_column_stays_text_even_if_numeric(tmp_path):
    text = "zip,sex,income\n75001,Male,<=50K\n69001,Female,>50K\n"
    frame = load_dataset(config(categorical=["zip"]), write(tmp_path / "t.csv", text))
    assert not pd.api.types.is_numeric_dtype(frame["zip"])
    assert frame["zip"].tolist() == ["75001", "69001"]


def test_blank_cell_is_missing_not_text(tmp_path):
    # A blank field in a numeric column is a missing value; it must not turn the column into text.
    text = "age,sex,income\n39,Male,<=50K\n,Female,>50K\n41, ,>50K\n"  # blank and whitespace-only
    kept = load_dataset(config(drop_missing_rows=False), write(tmp_path / "t.csv", text))
    assert kept["age"].dtype == "float64"
    assert kept["age"].isna().tolist() == [False, True, False]
    assert kept["sex"].isna().tolist() == [False, False, True]
    # ingestion keeps incomplete rows whatever drop_missing_rows says: validation must see the nulls
    assert len(load_dataset(config(), tmp_path / "t.csv")) == 3


ADULT_TEST = (
    "|1x3 Cross validator\n"
    "25, Private, Male, <=50K.\n"
    "38, ?, Female, >50K.\n"
    "44, Self-emp, Female, >50K.\n"
)


def test_headerless_file_with_columns_missing_values_and_dotted_labels(tmp_path):
    source = write(tmp_path / "adult.test", ADULT_TEST)
    frame = load_dataset(config(columns=ADULT_COLUMNS, drop_missing_rows=False), source)
    # the comment line has no label and is gone; nothing of it leaks into the data
    assert len(frame) == 3
    assert not frame.astype(str).apply(lambda c: c.str.contains("Cross validator")).any().any()
    assert frame["age"].dtype == "float64"
    assert frame["age"].tolist() == [25.0, 38.0, 44.0]
    assert frame["income"].tolist() == ["<=50K", ">50K", ">50K"]
    # `?` is missing, and initial spaces are trimmed
    assert frame["workclass"].isna().tolist() == [False, True, False]
    assert frame.loc[0, "workclass"] == "Private"
    assert frame.loc[0, "sex"] == "Male"


def test_question_marks_are_missing_and_kept_for_validation(tmp_path):
    frame = load_dataset(config(columns=ADULT_COLUMNS), write(tmp_path / "adult.test", ADULT_TEST))
    assert frame["age"].tolist() == [25.0, 38.0, 44.0]
    assert frame.iloc[:, 1].isna().tolist() == [False, True, False]
    assert list(frame.index) == [0, 1, 2]


def test_gzip_source_is_read(tmp_path):
    import gzip

    path = tmp_path / "adult.test.gz"
    path.write_bytes(gzip.compress(ADULT_TEST.encode()))
    frame = load_dataset(config(columns=ADULT_COLUMNS), path)
    assert frame["age"].tolist() == [25.0, 38.0, 44.0]


def test_normalize_label_trims_spaces_and_one_full_stop():
    values = pd.Series([" >50K.", "<=50K", "<=50K. ", "a.."])
    assert normalize_label(values).tolist() == [">50K", "<=50K", "<=50K", "a."]


def test_test_source_rows_are_appended_and_marked(tmp_path):
    source = write(tmp_path / "adult.data", "30, Private, Male, >50K\n31, Private, Female, <=50K\n")
    test = write(tmp_path / "adult.test", ADULT_TEST)
    frame = load_dataset(config(columns=ADULT_COLUMNS), source, test)
    assert frame[ORIGIN].tolist() == ["source", "source", "test_source", "test_source", "test_source"]
    assert frame[ROW].tolist() == [0, 1, 1, 2, 3]  # numbered as read: the UCI comment line was row 0, then dropped
    assert frame["age"].tolist() == [30.0, 31.0, 25.0, 38.0, 44.0]
    assert frame["income"].tolist() == [">50K", "<=50K", "<=50K", ">50K", ">50K"]


def test_test_source_with_different_columns_is_rejected(tmp_path):
    source = write(tmp_path / "a.csv", HEADER_CSV)
    test = write(tmp_path / "b.csv", "age,sex,income\n39,Male,>50K\n")
    with pytest.raises(PipelineError, match="data.test_source: columns differ"):
        load_dataset(config(), source, test)


def test_pii_and_drop_columns_are_removed(tmp_path):
    text = "name,email,age,sex,income\nAda,ada@x.org,36,Female,>50K\nBob,bob@x.org,41,Male,<=50K\n"
    frame = load_dataset(config(pii=["email"], drop=["name"]), write(tmp_path / "t.csv", text))
    assert "email" not in frame.columns
    assert "name" not in frame.columns
    assert not frame.astype(str).isin(["ada@x.org", "Ada"]).any().any()
    assert list(frame.columns) == ["age", "sex", "income", *INTERNAL]


def test_parquet_source_is_typed_like_csv(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"age": [39, 50], "sex": ["Male", "Female"], "income": ["<=50K", ">50K."]}).to_parquet(path)
    frame = load_dataset(config(), path)
    assert frame["age"].dtype == "float64"
    assert frame["age"].tolist() == [39.0, 50.0]
    assert frame["sex"].tolist() == ["Male", "Female"]
    assert frame["income"].tolist() == ["<=50K", ">50K"]


def test_formula_injection_text_is_kept_verbatim_as_text(tmp_path):
    payload = "=cmd|' /C calc'!A0"
    text = f"age,sex,note,income\n39,Male,{payload},<=50K\n50,Female,-2+3,>50K\n41,Female,@SUM(A1),>50K\n"
    frame = load_dataset(config(), write(tmp_path / "t.csv", text))
    assert not pd.api.types.is_numeric_dtype(frame["note"])
    assert frame["note"].tolist() == [payload, "-2+3", "@SUM(A1)"]


# ---- failures: each one line naming the file, column or key -------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(PipelineError, match="data.source: file not found") as caught:
        load_dataset(config(), tmp_path / "absent.csv")
    assert "absent.csv" in str(caught.value)


def test_missing_test_source_file_names_the_key(tmp_path):
    with pytest.raises(PipelineError, match="data.test_source: file not found"):
        load_dataset(config(), write(tmp_path / "t.csv", HEADER_CSV), tmp_path / "absent.csv")


def test_empty_file(tmp_path):
    with pytest.raises(PipelineError, match=r"data.source: empty.csv is empty"):
        load_dataset(config(), write(tmp_path / "empty.csv", b""))


def test_empty_headerless_file(tmp_path):
    with pytest.raises(PipelineError, match="data.source: empty.csv"):
        load_dataset(config(columns=ADULT_COLUMNS), write(tmp_path / "empty.csv", b""))


def test_header_only_file_has_no_rows(tmp_path):
    with pytest.raises(PipelineError, match="head.csv has no data rows"):
        load_dataset(config(), write(tmp_path / "head.csv", "age,sex,income\n"))


def test_missing_label_column(tmp_path):
    text = "age,sex,target\n39,Male,>50K\n"
    with pytest.raises(PipelineError, match="data.label: column 'income' is not in t.csv"):
        load_dataset(config(), write(tmp_path / "t.csv", text))


def test_positive_label_never_present(tmp_path):
    text = "age,sex,income\n39,Male,low\n40,Female,high\n"
    with pytest.raises(PipelineError, match="data.positive_label: '>50K' never occurs in column 'income'") as caught:
        load_dataset(config(), write(tmp_path / "t.csv", text))
    assert "high" in str(caught.value) and "low" in str(caught.value)


def test_sensitive_feature_not_a_column(tmp_path):
    with pytest.raises(PipelineError, match="data.sensitive_features: column 'race' is not in t.csv"):
        load_dataset(config(sensitive_features=["sex", "race"]), write(tmp_path / "t.csv", HEADER_CSV))


def test_listed_numeric_column_with_text_names_the_column_and_value(tmp_path):
    text = "age,sex,income\n39,Male,>50K\nforty,Female,<=50K\n"
    with pytest.raises(PipelineError, match="data.numeric: column 'age' has non-numeric value 'forty'"):
        load_dataset(config(numeric=["age"]), write(tmp_path / "t.csv", text))


def test_column_listed_as_numeric_and_categorical(tmp_path):
    with pytest.raises(PipelineError, match="column 'age' is also listed as categorical"):
        load_dataset(config(numeric=["age"], categorical=["age"]), write(tmp_path / "t.csv", HEADER_CSV))


def test_non_utf8_bytes(tmp_path):
    content = b"age,sex,city,income\n39,Male,Paris,>50K\n40,Female," + b"Z\xfcrich" + b",<=50K\n"
    with pytest.raises(PipelineError, match="data.source: latin.csv is not UTF-8 text"):
        load_dataset(config(), write(tmp_path / "latin.csv", content))


def test_row_with_too_many_fields(tmp_path):
    text = "age,sex,income\n39,Male,>50K\n40,Female,<=50K,surprise\n"
    with pytest.raises(PipelineError, match="data.source: ragged.csv is not a readable table") as caught:
        load_dataset(config(), write(tmp_path / "ragged.csv", text))
    assert "line 3" in str(caught.value)


def test_row_with_too_few_fields_is_not_padded_silently(tmp_path):
    # pandas would fill the missing label with null and the row would vanish; the scan names the line
    text = "39, Private, Male, <=50K\n40, Private, Female\n41, Private, Male, >50K\n"
    with pytest.raises(PipelineError, match=r"short.csv is not a readable table: line 2 has 3 fields, "
                                            r"expected 4 \(data.columns\)$"):
        load_dataset(config(columns=ADULT_COLUMNS), write(tmp_path / "short.csv", text))


def test_non_utf8_error_names_line_column_and_byte(tmp_path):
    content = b"39, Private, Male, <=50K\n40, Priv\xe9, Female, >50K\n"
    with pytest.raises(PipelineError) as caught:
        load_dataset(config(columns=ADULT_COLUMNS), write(tmp_path / "latin.csv", content))
    assert str(caught.value) == "data.source: latin.csv is not UTF-8 text (line 2, column 'workclass', byte 0xe9)"


@pytest.mark.parametrize("positive,labels,expected", [
    (1, ["0", "1", "1.0", "0"], [0, 1, 1, 0]),  # an integer label, numbers compared as numbers
    (True, ["False", "true", "TRUE", "0"], [0, 1, 1, 0]),  # booleans as true/false or 1/0, any case
    (0.5, ["0.5", "1.5", "0.50", "1.5"], [1, 0, 1, 0]),
    (">50K", [">50K.", " <=50K", ">50K", "<=50K."], [1, 0, 1, 0]),  # text after the loader's normalization
])
def test_positive_label_is_compared_by_value(positive, labels, expected):
    from pipelines.data.load import positive_mask

    assert positive_mask(pd.Series(labels, dtype="string"), positive).astype(int).tolist() == expected


def test_integer_positive_label_in_params_and_data(tmp_path):
    from pipelines.core.config import load_settings
    from pipelines.data.features import encode_labels, fit_feature_spec

    (tmp_path / "params.yaml").write_text("data:\n  source: t.csv\n  label: churn\n  positive_label: 1\n"
                                          "  sensitive_features: [sex]\n")
    settings = load_settings(tmp_path / "params.yaml")
    assert settings.params.data.positive_label == 1  # not refused as "not a valid string"
    text = "age,sex,churn\n39,Male,0\n40,Female,1\n41,Female,1\n42,Male,0\n"
    frame = load_dataset(settings.params.data, write(tmp_path / "t.csv", text))
    spec = fit_feature_spec(frame.drop(columns=list(INTERNAL)), settings.params.data)
    assert encode_labels(frame, spec).tolist() == [0.0, 1.0, 1.0, 0.0]


def test_a_label_with_other_than_two_values_is_named(tmp_path):
    text = "age,sex,income\n39,Male,low\n40,Female,high\n41,Female,middle\n"
    with pytest.raises(PipelineError, match=r"data.label: column 'income' has 3 distinct values "
                                            r"\(high, low, middle\); a binary label needs exactly two$"):
        load_dataset(config(positive_label="high"), write(tmp_path / "t.csv", text))


def test_repeated_column_names_are_refused_naming_them(tmp_path):
    text = "age,sex,age,income\n39,Male,40,<=50K\n50,Female,51,>50K\n"
    with pytest.raises(PipelineError, match=r"data.source: t.csv has repeated column names: age \(rename the later"):
        load_dataset(config(), write(tmp_path / "t.csv", text))
    with pytest.raises(ValueError, match="names repeated: age"):
        config(columns=["age", "sex", "age", "income"])


def test_the_real_format_is_read_whatever_the_name(tmp_path):
    import gzip

    frame = pd.DataFrame({"age": ["39", "50"], "sex": ["Male", "Female"], "income": ["<=50K", ">50K"]})
    frame.to_parquet(tmp_path / "really_parquet.csv", index=False)
    assert len(load_dataset(config(), tmp_path / "really_parquet.csv")) == 2
    (tmp_path / "really_gzip.csv").write_bytes(gzip.compress(HEADER_CSV.encode()))
    assert len(load_dataset(config(), tmp_path / "really_gzip.csv")) == 3


def test_a_truncated_gzip_file_is_named(tmp_path):
    import gzip

    whole = gzip.compress((HEADER_CSV * 200).encode())
    (tmp_path / "t.csv.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(PipelineError, match=r"^data.source: t.csv.gz is cut short"):
        load_dataset(config(), tmp_path / "t.csv.gz")


def test_repeated_headers_renamed_by_position_with_the_fix_the_message_names(tmp_path):
    """The repeated-header message names a data.rename; params written that way load the file (end to end
    through the params parser: the suggestion is YAML)."""
    import re

    import yaml

    path = write(tmp_path / "t.csv", "age,sex,age,income\n39,Male,40,<=50K\n50,Female,51,>50K\n")
    with pytest.raises(PipelineError) as stopped:
        load_dataset(config(), path)
    assert str(stopped.value) == ('data.source: t.csv has repeated column names: age (rename the later ones by '
                                  'position, e.g. data.rename: {"age#2": age_2})')
    suggestion = re.search(r"data\.rename: (\{.*\})", str(stopped.value)).group(1)
    frame = load_dataset(config(rename=yaml.safe_load(suggestion)), path)
    assert list(frame.columns) == ["age", "sex", "age_2", "income", *INTERNAL]
    assert frame["age_2"].tolist() == [40.0, 51.0]
    assert len(frame) == 2  # the header line is not read as a data row


def test_rename_plain_and_positional_and_unknown(tmp_path):
    path = write(tmp_path / "t.csv", "Age,gender,Age,y\n39,Male,40,<=50K\n50,Female,51,>50K\n")
    frame = load_dataset(config(label="y", sensitive_features=["sex"],
                                rename={"gender": "sex", "Age": "age", "Age#2": "spouse_age"}), path)
    assert list(frame.columns) == ["age", "sex", "spouse_age", "y", *INTERNAL]
    with pytest.raises(PipelineError, match=r"^data.rename: column 'genre' is not in t.csv$"):
        load_dataset(config(label="y", rename={"genre": "sex", "Age#2": "a2"}), path)
    parquet = tmp_path / "t.parquet"
    pd.DataFrame({"gender": ["Male", "Female"], "income": ["<=50K", ">50K"]}).to_parquet(parquet, index=False)
    assert list(load_dataset(config(rename={"gender": "sex"}), parquet).columns) == ["sex", "income", *INTERNAL]


def test_a_numeric_sensitive_column_keeps_its_text(tmp_path):
    path = write(tmp_path / "t.csv", "age,male,income\n39,1,<=50K\n50,0,>50K\n51,1,>50K\n")
    frame = load_dataset(config(sensitive_features=["male"]), path)
    assert frame["male"].tolist() == ["1", "0", "1"]
    assert frame["age"].dtype == "float64"
    assert load_dataset(config(sensitive_features=["male"], numeric=["male"]), path)["male"].dtype == "float64"
