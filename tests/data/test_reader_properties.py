"""Property-based: whatever bytes a data file holds, the reader gives a typed frame or a one-line PipelineError,
never another exception (a traceback) or a hang. 2,000 derandomized cases per surface."""
from __future__ import annotations

import gzip

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.core.config import DataConfig
from pipelines.core.errors import PipelineError
from pipelines.data.load import load_dataset

CASES = settings(max_examples=2000, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
CONFIGS = st.builds(
    lambda thousands, categorical, numeric, na: DataConfig(
        source="t.csv", label="income", positive_label=">50K", sensitive_features=["sex"], thousands=thousands,
        categorical=categorical, numeric=numeric, na_values=na),
    st.sampled_from([None, ",", ".", " "]), st.sampled_from([[], ["city"]]), st.sampled_from([[], ["age"]]),
    st.sampled_from([["?"], [], ["?", "NA"]]))
CELLS = st.sampled_from(["39", "-1", "1,234", "1.234,5", "1e309", "nan", "?", "", " ", '"', '""', "a,b", '"a,b"',
                         "Male", "Female", ">50K", "<=50K", "<script>", "=cmd|' /C calc'!A0", "[x](javascript:1)",
                         "é", "\x00", "\ufeff", "\r", "\t", "x" * 300, "9" * 400, "0x1F", "-", "+5", "  7  "])
HEADERS = st.sampled_from(["age,sex,city,income", "income,sex", "age,sex,age,income", "", "sex,income,",
                           ",,,", "age;sex;income", "\ufeffage,sex,income", "a" * 300 + ",sex,income"])


def _one_line(error: PipelineError) -> None:
    text = str(error)
    assert text and "\n" not in text and "\r" not in text, repr(text)


def _read(folder, content: bytes, config: DataConfig, name: str = "t.csv") -> None:
    path = folder / name
    path.write_bytes(content)
    try:
        load_dataset(config, path, max_categories=5)
    except PipelineError as error:
        _one_line(error)


@CASES
@given(HEADERS, st.lists(st.lists(CELLS, min_size=0, max_size=6).map(",".join), max_size=12), CONFIGS)
def test_csv_like_text_reads_or_fails_in_one_line(tmp_path, header, rows, config):
    _read(tmp_path, ("\n".join([header, *rows]) + "\n").encode("utf-8"), config)


@CASES
@given(st.binary(max_size=400), st.sampled_from(["t.csv", "t.csv.gz", "t.parquet"]), CONFIGS)
def test_any_bytes_read_or_fail_in_one_line(tmp_path, content, name, config):
    _read(tmp_path, content, config, name)
    _read(tmp_path, gzip.compress(content), config, "z.csv.gz")
