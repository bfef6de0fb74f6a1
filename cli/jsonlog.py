"""`python -m cli.jsonlog SERVICE LOG -- COMMAND...`: run COMMAND with its output as JSON lines appended to LOG.

The services profile runs every server through this, so each log under .services/logs/ is one JSON object a line
(the shape of `mobile-mlops --log-format json`: time, level, message, then service, run_id and step where known).
A line that already is a JSON object (Prometheus, Alertmanager and Dagster with `--log-format json`, the
project's own lines) is kept, with `service` added; Dagster's console lines (`... - dagster - INFO - job - run id
- pid - step - EVENT - message`, also inside a Celery worker's `[time: LEVEL/process]` line) give their run id and
step; any other line becomes the message as it is (colour codes dropped).
The wrapper shares COMMAND's process group: `services down` stops both; it ends when COMMAND's output does.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

LEVELS = {"DEBUG": "debug", "INFO": "info", "WARNING": "warning", "WARN": "warning", "ERROR": "error",
          "CRITICAL": "critical", "FATAL": "critical", "LOG": "info", "NOTICE": "info"}
DAGSTER = re.compile(r"^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}) - (?P<logger>[\w.]+) - (?P<level>[A-Z]+) - "
                     r"(?P<rest>.*)$")
RUN_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
EVENT = re.compile(r"^[A-Z][A-Z_]+$")
# a Celery worker's line; a step's console output arrives inside one
CELERY = re.compile(r"^\[(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(?P<ms>\d{3}): (?P<level>[A-Z]+)/"
                    r"(?P<process>[^\]]+)\] (?P<rest>.*)$")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # colours (coloredlogs) are dropped
LEVEL_WORD = re.compile(r"\b(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)\b")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _dagster(match: re.Match[str]) -> dict[str, Any]:
    """Dagster's console line: its own time and level, and run_id, step, event when the message carries them."""
    stamp = dt.datetime.strptime(match["time"], "%Y-%m-%d %H:%M:%S %z").astimezone(dt.UTC)
    record: dict[str, Any] = {"time": stamp.isoformat(timespec="milliseconds"),
                              "level": LEVELS.get(match["level"], match["level"].lower()), "logger": match["logger"]}
    parts = match["rest"].split(" - ")
    if len(parts) >= 3 and RUN_ID.match(parts[1]):
        record["job"], record["run_id"], rest = parts[0], parts[1], parts[2:]
        if rest and rest[0].isdigit() and len(rest) > 1:
            record["pid"], rest = int(rest[0]), rest[1:]
        if len(rest) > 1 and not EVENT.match(rest[0]):
            record["step"], rest = rest[0], rest[1:]
        if len(rest) > 1 and EVENT.match(rest[0]):
            record["event"], rest = rest[0], rest[1:]
        record["message"] = " - ".join(rest)
    else:
        record["message"] = match["rest"]
    return record


def convert(line: str, service: str) -> str:
    """One output line as one JSON object line (an empty line: an empty string)."""
    text = line.rstrip("\r\n")
    if not text.strip():
        return ""
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return json.dumps({**parsed, "service": parsed.get("service", service)}, default=str)
    text = ANSI.sub("", text)
    celery = CELERY.match(text)
    if celery:
        text = celery["rest"]
    if match := DAGSTER.match(text):
        record = _dagster(match)
    elif celery:
        stamp = dt.datetime.fromisoformat(f"{celery['time']}.{celery['ms']}").astimezone(dt.UTC)  # worker's local time
        record = {"time": stamp.isoformat(timespec="milliseconds"),
                  "level": LEVELS.get(celery["level"], celery["level"].lower()), "message": text}
    else:
        word = LEVEL_WORD.search(text[:80])
        record = {"time": _now(), "level": LEVELS[word[1]] if word else "info", "message": text}
    if celery:
        record["process"] = celery["process"]
    ordered = {"time": record.pop("time"), "level": record.pop("level"), "message": record.pop("message"),
               "service": service, **record}
    return json.dumps(ordered, default=str)


def main(argv: list[str]) -> int:
    """Run the command after `--`, converting its stdout and stderr line by line into LOG."""
    if len(argv) < 4 or argv[2] != "--":
        print("usage: python -m cli.jsonlog SERVICE LOG -- COMMAND...", file=sys.stderr)
        return 2
    service, log, command = argv[0], Path(argv[1]), argv[3:]
    # `services down` signals the whole group: the command stops; this process reads its last lines, then ends
    signal.signal(signal.SIGTERM, lambda *_: None)
    with log.open("a", encoding="utf-8") as out:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   text=True, errors="replace", bufsize=1)
        assert process.stdout is not None
        for line in process.stdout:
            if converted := convert(line, service):
                out.write(converted + "\n")
                out.flush()
    return process.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
