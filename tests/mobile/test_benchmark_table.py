"""The on-device table of docs/benchmarks.md, generated from a footprint report (benchmarks/variants.py)."""
from __future__ import annotations

from benchmarks.variants import HEADING, main, replace_section, variants_table
from pipelines.core.io import write_json
from pipelines.mobile.footprint import build_footprint
from tests.mobile.test_footprint import _sections, params, synthetic_reports


def _footprint() -> dict:
    tflite, coreml = synthetic_reports()
    tflite["variants"]["float16"]["gzip_bytes"] = 15000
    return build_footprint(tflite, coreml, *_sections(params()))


def test_table_has_one_row_per_variant_with_runtime_gzip_dpd_and_latency():
    table = variants_table(_footprint())
    assert table.splitlines()[0] == ("| variant | runtime | bytes | gzip bytes | accuracy | DPD sex | p50 µs | p95 µs "
                                     "| verdict |")
    assert "| float16 | LiteRT (TFLite) | 20000 | 15000 | 0.8500 | 0.1000 | 10.0 | 20.0 | **released** |" in table
    assert "| palette4 | Core ML | 9000 | - | 0.8500 | 0.2000 | macOS only | macOS only | fails gates |" in table
    assert "| Keras (reference) | TensorFlow |" in table and len(table.splitlines()) == 2 + 1 + 6 + 2


def test_section_is_replaced_in_place_or_appended():
    page = f"# B\n\n{HEADING}\n\nold table\n\n## Later\n\nkept\n"
    assert replace_section(page, "NEW") == f"# B\n\n{HEADING}\n\nNEW\n\n## Later\n\nkept\n"
    assert replace_section("# B\n", "NEW") == f"# B\n\n{HEADING}\n\nNEW\n"


def test_main_rewrites_the_page_and_names_a_missing_report(tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/benchmarks.md").write_text("# Benchmarks\n")
    assert main(tmp_path) == 1
    assert capsys.readouterr().err == f"error: {tmp_path}/reports/footprint.json: not found; run `make run` first\n"
    write_json(tmp_path / "reports/footprint.json", _footprint())
    assert main(tmp_path) == 0
    assert "| palette6 | Core ML |" in (tmp_path / "docs/benchmarks.md").read_text()
