"""Untrusted values in reports: shown as inert text in Markdown (cards, PR reports, Dagster metadata), tables and
CSV cells. `md_text` is the one escaping function for a value placed in Markdown; `md_cell` adds what a table
cell needs; `safe_markdown` is the last guard on a whole document before it is written or shown."""
from __future__ import annotations

import re

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ESCAPED = re.compile(r"(?<!\\)((?:\\\\)*)([|\[\]])")  # a pipe or bracket not already escaped
_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")  # what a renderer reads as an HTML tag or autolink (`<=50K` is not)
_RAW_TAG = re.compile(r"<(?!/?(?:details|summary)>)(?=[A-Za-z/!?])")  # an HTML tag's start (but the report's folds)
_BAD_LINK = re.compile(r"\]\(\s*<?\s*(?:javascript|vbscript|file|data(?!:image/png;base64,))\s*:", re.IGNORECASE)


def csv_cell(value: object) -> str:
    """A spreadsheet will not evaluate it: formula-looking text gets a leading apostrophe (OWASP)."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) and not _is_number(text) else text


def md_text(value: object) -> str:
    """Inert inside Markdown text, a table cell or a code span: no HTML tag or autolink, link or image, table
    pipe, line break or control character (`<=50K` stays as it is). Escaping twice changes nothing."""
    text = _TAG_START.sub("&lt;", _CONTROL.sub("", _BREAKS.sub(" ", str(value)))).replace("`", "'")
    return _ESCAPED.sub(r"\1\\\2", text)


def md_cell(value: object, limit: int = 80) -> str:
    """Safe inside a Markdown table cell: md_text, formulas neutralized, at most `limit` characters."""
    text = csv_cell(value)
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return md_text(text)


def safe_markdown(document: str) -> str:
    """The last guard on a Markdown document built by the pipeline: no raw HTML tag, no script-capable link
    (`[x](javascript:...)`), whatever a value escaped or not. Inline PNG images (plots) are kept."""
    return _BAD_LINK.sub("](#blocked:", _RAW_TAG.sub("&lt;", document))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
