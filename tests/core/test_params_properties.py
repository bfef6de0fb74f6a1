"""Property-based: whatever a params file or a --set override holds, loading it gives Settings or a one-line
PipelineError, never another exception (a traceback) or a hang. 2,000 derandomized cases per surface."""
from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.core.config import load_settings
from pipelines.core.errors import PipelineError

REPO = Path(__file__).resolve().parents[2]
BASE = yaml.safe_load((REPO / "params.yaml").read_text())
CASES = settings(max_examples=2000, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _keys(node, prefix=""):
    """Every dotted key of the shipped params (sections and leaves), the places a hostile value goes."""
    for key, value in node.items():
        yield f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _keys(value, f"{prefix}{key}.")


KEYS = sorted(_keys(BASE))
HOSTILE_TEXT = st.sampled_from(["../../victim", "/etc/passwd", "a\x00b", "x" * 5000, "", " ", "..", "\n", "~",
                                "<script>alert(1)</script>", "=cmd|' /C calc'!A0", "[x](javascript:alert(1))",
                                "é", "NaN", "inf", "-0", "1e309", "null", "*", "&a", "!!python/object:os.system"])
SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-2**70, max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30) | HOSTILE_TEXT)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=10) | st.sampled_from(KEYS), inner, max_size=4), max_leaves=12)


def _one_line(error: PipelineError) -> None:
    text = str(error)
    assert text and "\n" not in text and "\r" not in text, repr(text)
    assert "Traceback" not in text


@CASES
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, min_size=1, max_size=3))
def test_overrides_of_any_key_with_any_value_load_or_fail_in_one_line(tmp_path, changes):
    params = tmp_path / "params.yaml"
    if not params.is_file():  # once per test: the overrides change the loaded copy, never the file; only the
        params.write_text(yaml.safe_dump({"data": BASE["data"]}))  # required section, so each case is cheap
    try:
        load_settings(params, changes)
    except PipelineError as error:
        _one_line(error)


YAML_PIECES = st.sampled_from(["data:", "  source: x.csv", "  label: y", "release:", "  model_name: ", "train:",
                               "  epochs: ", "  hidden_units: [", "]", "{", "}", "- ", ": ", "&a ", "*a", "!!binary ",
                               "!!python/name:os.system", "%YAML 1.1", "---", "...", "? ", "|", ">", "'", '"', "#",
                               "\t", "\n", "  ", "\x00", "\ufeff", "-64", "1e999", ".inf", ".nan", "0x1F", "2026-13-45"])


@CASES
@given(st.lists(YAML_PIECES | st.text(max_size=8), max_size=40).map("".join))
def test_any_params_text_loads_or_fails_in_one_line(tmp_path, text):
    path = tmp_path / "params.yaml"
    try:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    except UnicodeEncodeError:
        path.write_bytes(text.encode("utf-8", "replace"))
    try:
        load_settings(path)
    except PipelineError as error:
        _one_line(error)


def test_deeply_nested_params_fail_in_one_line(tmp_path: Path):
    for text in ("[" * 100_000, "a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 2000)), "{" * 50_000):
        (tmp_path / "params.yaml").write_text(text)
        try:
            load_settings(tmp_path / "params.yaml")
        except PipelineError as error:
            _one_line(error)
