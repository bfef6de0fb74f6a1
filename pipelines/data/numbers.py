"""Numbers written as text: thousands separators ("1,234") parsed when params name one (data.thousands), and
columns that only look like text because of them refused by name instead of becoming a huge categorical."""
from __future__ import annotations

import re

import pandas as pd

from pipelines.core.errors import PipelineError

SEPARATORS = (",", "'", " ", "\u00a0", "\u202f", "_", ".")
_NOISE = re.compile(r"[\s,'_\u00a0\u202f$€£¥%]")  # what numeric-looking text carries besides digits
LOOKS_NUMERIC = 0.9  # share of a high-cardinality text column's values that parse once the noise is removed


def grouped(separator: str) -> str:
    """A number with digit groups of three, e.g. -1,234,567.89 for ','; for '.', decimals after a ','."""
    sep, point = re.escape(separator), "," if separator == "." else r"\."
    return rf"[+-]?\d{{1,3}}(?:{sep}\d{{3}})+(?:{point}\d+)?"


def strip_thousands(values: pd.Series, separator: str) -> pd.Series:
    """Values written with `separator` between digit groups, without it (and a decimal ',' as '.' when the
    separator is '.'); other values unchanged."""
    match = values.str.fullmatch(grouped(separator), na=False)
    if not match.any():
        return values
    plain = values.where(~match, values.str.replace(separator, "", regex=False))
    if separator == ".":
        plain = plain.where(~match, plain.str.replace(",", ".", regex=False))
    return plain


def _is_number(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").notna()


def separated_example(values: pd.Series) -> tuple[str, str] | None:
    """(separator, example) when every value is a number and some are written with a thousands separator."""
    present = values.dropna().str.strip()
    present = present[present != ""]
    if present.empty:
        return None
    plain = _is_number(present)
    for separator in SEPARATORS[:-1]:  # '.' groups are plain decimals to pandas: never guessed
        hits = present.str.fullmatch(grouped(separator), na=False)
        if hits.any() and bool((hits | plain).all()):
            return separator, str(present[hits].iloc[0])
    return None


def refuse_separated(column: str, values: pd.Series) -> None:
    """One line naming the column and data.thousands when the column is numbers written with separators."""
    found = separated_example(values)
    if found:
        separator, example = found
        raise PipelineError(f"data.source: column '{column}' holds numbers written with a thousands separator "
                            f"({example!r}); set data.thousands: {separator!r} to read them as numbers, "
                            "or list the column in data.categorical")


def refuse_numeric_looking(column: str, values: pd.Series, max_categories: int) -> None:
    """One line naming a text column with more distinct values than validate.max_categories that looks numeric."""
    present = values.dropna()
    distinct = present.nunique()
    if distinct <= max_categories:
        return
    cleaned = present.str.replace(_NOISE, "", regex=True)
    parsed = _is_number(cleaned) & (cleaned != "")
    if parsed.mean() >= LOOKS_NUMERIC:
        example = str(present[parsed].iloc[0])
        raise PipelineError(f"data.source: column '{column}' has {distinct} distinct text values, more than "
                            f"validate.max_categories ({max_categories}), and looks numeric ({example!r}): list it in "
                            "data.numeric (with data.thousands for separators) or in data.categorical")
