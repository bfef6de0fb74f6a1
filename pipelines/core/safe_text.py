"""Untrusted values in reports: shown as inert text in Markdown tables and CSV cells."""
from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_MD_SPECIAL = str.maketrans({"|": "\\|", "`": "\\`", "*": "\\*", "_": "\\_", "[": "\\[", "]": "\\]",
                             "<": "&lt;", ">": "&gt;", "\n": " ", "\r": " "})


def csv_cell(value: object) -> str:
    """A spreadsheet will not evaluate it: formula-looking text gets a leading apostrophe (OWASP)."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) and not _is_number(text) else text


def md_cell(value: object, limit: int = 80) -> str:
    """Safe inside a Markdown table cell: no pipes, markup or line breaks; formulas neutralized."""
    text = csv_cell(value)
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.translate(_MD_SPECIAL)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
