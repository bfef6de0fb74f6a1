"""`--log-format json`: the project's own log and progress lines as one JSON object per line, for a log stack."""
from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any, TextIO

FORMATS = ("text", "json")
_format = "text"


def use(name: str) -> None:
    """Set the format for this process (`mobile-mlops --log-format`)."""
    global _format
    _format = name


def is_json() -> bool:
    return _format == "json"


def line(level: str, message: str, stream: TextIO | None = None, **fields: Any) -> None:
    """One JSON object (time UTC, level, message, then run_id/step/... where known) on its own line."""
    record = {"time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), "level": level,
              "message": message}
    record.update({key: value for key, value in fields.items() if value is not None})
    out = stream or sys.stderr
    out.write(json.dumps(record, default=str) + "\n")
    out.flush()
