"""Write the bad-input corpus: real Adult rows with exactly one defect per file.

Every file starts from the first rows of data/adult/adult.data.gz, the same rows the `small_project`
fixture trusts, so each file is valid except for the one thing its name says. The output is
deterministic (no randomness); rerun after changing this script and commit the files:

    .venv/bin/python tests/data/bad/make_corpus.py
"""
from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
ROWS = 300  # inside the fixture's first 1,500 rows: every category and range is already trusted
TRUSTED = 1500
INJECTION = "=cmd|' /C calc'!A0"
COLUMNS: list[str] = yaml.safe_load((REPO / "params.yaml").read_text())["data"]["columns"]

Row = list[str]


def real_rows(count: int = TRUSTED) -> list[Row]:
    with gzip.open(REPO / "data" / "adult" / "adult.data.gz", "rt", encoding="utf-8") as handle:
        lines = [line.rstrip("\n") for _, line in zip(range(count), handle)]
    return [line.split(", ") for line in lines if line]


def text(rows: list[Row]) -> bytes:
    return "".join(", ".join(row) + "\n" for row in rows).encode("utf-8")


def every(rows: list[Row], step: int, change: Callable[[Row], Row]) -> list[Row]:
    """Apply `change` to every `step`-th row (rows 0, step, 2*step, ...)."""
    return [change(list(row)) if i % step == 0 else row for i, row in enumerate(rows)]


def setting(row: Row, column: str, value: str) -> Row:
    row[COLUMNS.index(column)] = value
    return row


def without(rows: list[Row], column: str) -> list[Row]:
    index = COLUMNS.index(column)
    return [row[:index] + row[index + 1:] for row in rows]


def corpus() -> dict[str, bytes]:
    trusted = real_rows()
    base = trusted[:ROWS]
    label = COLUMNS.index("income")
    ragged = [list(row) for row in base]
    ragged[100] = ragged[100][:-2] + ragged[100][-1:]  # a field lost mid-file (14 fields)
    ragged[200] = ragged[200] + ["40"]  # a stray field (16 fields)
    duplicated = base[:210] + base[:90]  # 180 of 300 rows (60%) belong to duplicate groups
    latin1 = text([setting(list(base[150]), "native-country", "Mexico")]).replace(b"Mexico", b"M\xe9xico")
    return {
        "good_control.csv": text(base),  # the control: passes validation, so each defect is what fails
        "empty.csv": b"",
        "header_only.csv": (", ".join(COLUMNS) + "\n").encode(),
        "missing_label.csv": text(without(base, "income")),
        "unknown_label.csv": text(every(base, 15, lambda r: setting(r, "income", "unknown"))),
        "missing_sensitive.csv": text(without(base, "sex")),
        "text_in_numeric.csv": text(every(base, 25, lambda r: setting(r, "age", "forty"))),
        "all_null.csv": text([setting(list(r), "hours-per-week", "?") for r in base]),
        "single_class.csv": text([r for r in trusted if r[label] == "<=50K"][:ROWS]),
        "single_class_positive.csv": text([r for r in trusted if r[label] == ">50K"][:ROWS]),
        "negative_age.csv": text(every(base, 20, lambda r: setting(r, "age", f"-{r[0]}"))),
        "duplicates.csv": text(duplicated),
        "non_utf8.csv": text(base[:150]) + latin1 + text(base[151:]),  # latin-1 e-acute
        "ragged.csv": text(ragged),
        "formula_injection.csv": text(every(base, 15, lambda r: setting(r, "occupation", INJECTION))),
        # a header naming `age` twice: pandas would read the second as `age.1` and train on both
        "repeated_column_names.csv": (", ".join(c if c != "education-num" else "age" for c in COLUMNS) + "\n").encode()
        + text(base),
        # half of a gzip stream, as an interrupted download leaves it
        "truncated.csv.gz": gzip.compress(text(base), mtime=0)[: len(gzip.compress(text(base), mtime=0)) // 2],
        "zipped.csv": zipped("adult.csv", text(base)),  # a ZIP archive saved under a .csv name
        # not defects: the same rows with the label as 0/1 and as true/false, what most other data sets use
        "integer_label.csv": text([setting(list(r), "income", "1" if r[label] == ">50K" else "0") for r in base]),
        "boolean_label.csv": text([setting(list(r), "income", "true" if r[label] == ">50K" else "false") for r in base]),
    }


def zipped(name: str, content: bytes) -> bytes:
    """A ZIP archive holding one file, with a fixed timestamp so the corpus is deterministic."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), content)
    return buffer.getvalue()


def main() -> None:
    for name, content in corpus().items():
        (HERE / name).write_bytes(content)
        print(f"{name}: {len(content):,} bytes")


if __name__ == "__main__":
    main()
