"""The one escaping function for untrusted text in Markdown, tables and CSV, against an injection corpus."""
from __future__ import annotations

import csv
import io
import re

import pytest

from pipelines.core.safe_text import csv_cell, md_cell, md_text, safe_markdown

CORPUS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "=cmd|' /C calc'!A0",
    "+SUM(A1:A9)",
    "-2+3",
    "@SUM(1)",
    "[x](javascript:alert(1))",
    "![x](javascript:alert(1))",
    "[x]( JavaScript:alert(1) )",
    "<javascript:alert(1)>",
    "a|b",
    "a\\|b",
    "a\\\\|b",
    "line\nbreak",
    "cr\rlf\r\n",
    "tick`code`",
    "nul\x00byte\x1b[31m",
    "\u2028sep",
    "[link][ref]\n\n[ref]: javascript:alert(1)",
]


@pytest.mark.parametrize("value", CORPUS)
def test_md_text_leaves_no_tag_link_pipe_or_line_break(value: str):
    text = md_text(value)
    assert not re.search(r"<[A-Za-z/!?]", text) and "`" not in text
    assert not re.search(r"[\r\n\x00-\x08\x0b-\x1f\u2028\u2029]", text)
    assert not re.search(r"(?<!\\)(\\\\)*[|\[\]]", text)  # every pipe and bracket escaped
    assert md_text(text) == text  # escaping twice changes nothing


@pytest.mark.parametrize("value", CORPUS)
def test_a_table_row_keeps_its_columns_whatever_the_cell_holds(value: str):
    row = f"| {md_cell(value)} | 1 |"
    cells = re.split(r"(?<!\\)\|", row.replace("\\\\", ""))
    assert len(cells) == 4, row


def test_comparison_signs_of_ordinary_values_stay_readable():
    assert md_text("<=50K") == "<=50K" and md_text(">50K") == ">50K" and md_text("a < b") == "a < b"


@pytest.mark.parametrize(("value", "cell"), [("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"), ("+SUM(A1)", "'+SUM(A1)"),
                                            ("-2+3", "'-2+3"), ("@SUM(1)", "'@SUM(1)"), ("-1.5", "-1.5"), ("x=1", "x=1")])
def test_csv_cells_never_start_a_formula(value: str, cell: str):
    assert csv_cell(value) == cell
    buffer = io.StringIO()
    csv.writer(buffer).writerow([csv_cell(value)])
    assert next(csv.reader(io.StringIO(buffer.getvalue())))[0] == cell


def test_safe_markdown_blocks_raw_tags_and_script_links_and_keeps_plots_and_folds():
    document = ("[x](javascript:alert(1)) [y]( VBScript:z) <script>a</script> a < b\n"
                "![plot](data:image/png;base64,AAAA) ![bad](data:text/html;base64,AAAA)\n"
                "<details><summary>3 files</summary>\n\n</details>")
    assert safe_markdown(document) == (
        "[x](#blocked:alert(1)) [y](#blocked:z) &lt;script>a&lt;/script> a < b\n"
        "![plot](data:image/png;base64,AAAA) ![bad](#blocked:text/html;base64,AAAA)\n"
        "<details><summary>3 files</summary>\n\n</details>")


def test_csv_outputs_neutralize_formula_cells_and_keep_numbers(tmp_path):
    from pipelines.core.io import write_csv

    write_csv(tmp_path / "t.csv", [{"group": "=cmd|' /C calc'!A0", "change": -0.25, "label": "-x"}])
    assert (tmp_path / "t.csv").read_text() == "group,change,label\n'=cmd|' /C calc'!A0,-0.25,'-x\n"
