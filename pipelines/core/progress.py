"""Progress of long work (epochs, federated rounds, privacy sweeps, simulated days, backfills, benchmarks).

On a terminal a rich progress bar; otherwise (logs, CI, a Dagster step's captured output) plain lines
`label: 3/10 (30%) note`, at most one per ~5% of the work or per PROGRESS_SECONDS, plus the first and the last.
MOBILE_MLOPS_PROGRESS=plain|bar|json|off overrides the choice. Lines go to stderr so stdout stays the command's result.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any, TypeVar

T = TypeVar("T")
PROGRESS_SECONDS = 10.0
MODES = ("plain", "bar", "json", "off")  # json: one object a line (`mobile-mlops --log-format json`)


def mode(stream: IO[str]) -> str:
    """bar on a terminal, plain otherwise; MOBILE_MLOPS_PROGRESS overrides."""
    chosen = os.environ.get("MOBILE_MLOPS_PROGRESS", "").strip().lower()
    if chosen in MODES:
        return chosen
    isatty = getattr(stream, "isatty", None)
    return "bar" if isatty is not None and isatty() else "plain"


class Progress:
    """One piece of long work of `total` steps (None: unknown); use as a context manager, call advance()."""

    def __init__(self, label: str, total: int | None, stream: IO[str] | None = None):
        self.label, self.total, self.done = label, total, 0
        self.stream = stream or sys.stderr
        self.mode = mode(self.stream)
        self._last_line, self._last_step = 0.0, -1
        self._bar: Any = None  # a rich Progress, in bar mode
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[note]}"), TimeElapsedColumn(),
                            console=Console(file=self.stream), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, note="")
        elif self.mode == "plain":
            self._line("started")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self.mode == "plain" and exc[0] is None and self._last_step != self.done:
            self._line("")

    def advance(self, steps: int = 1, note: str = "") -> None:
        """`steps` more done; `note` (e.g. a loss or a day) is shown beside the count."""
        self.done += steps
        if self._bar is not None:
            self._bar.update(self._task, advance=steps, note=note)
            return
        if self.mode not in ("plain", "json"):
            return
        now = time.monotonic()
        small = self.total is not None and self.total <= 20
        crossed = self.total and (self.done * 20 // self.total) != (self._last_step * 20 // self.total)
        finished = self.total is not None and self.done >= self.total
        if small or crossed or finished or now - self._last_line >= PROGRESS_SECONDS:
            self._line(note)

    def _line(self, note: str) -> None:
        if self.total:
            count = f"{self.done}/{self.total} ({100 * self.done // self.total}%)"
        else:
            count = f"{self.done}"
        if self.mode == "json":
            record = {"time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), "level": "info",
                      "message": "progress", "task": self.label, "done": self.done, "total": self.total}
            print(json.dumps(record | ({"note": note} if note else {})), file=self.stream, flush=True)
        else:
            print(f"{self.label}: {count}{' ' + note if note else ''}", file=self.stream, flush=True)
        self._last_line, self._last_step = time.monotonic(), self.done


def track(items: Iterable[T], label: str, total: int | None = None, stream: IO[str] | None = None) -> Iterator[T]:
    """Iterate `items`, advancing a Progress after each."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(label, total, stream) as progress:
        for item in items:
            yield item
            progress.advance()
