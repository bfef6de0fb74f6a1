"""This process's memory: resident set and high-water mark (Linux /proc), and handing freed memory back.

The CLI runs every step in one process, so what one step's allocators keep cached after it returns (pyarrow's
mimalloc pool, glibc's heap) is the floor of every later step; at millions of rows that floor, not any one
step, decides the run's peak.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from pathlib import Path


def memory_kb() -> dict[str, int]:
    """This process's resident set now (VmRSS) and its high-water mark (VmHWM), in kB; empty off Linux."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return {}
    return {key: int(line.split()[1]) for line in lines for key in ("VmRSS", "VmHWM") if line.startswith(key + ":")}


def reset_peak() -> bool:
    """Reset the high-water mark to the current RSS (Linux: "5" to clear_refs), so VmHWM is what follows's peak.

    getrusage's max RSS only ever grows: in a one-process run it would show the largest step's peak for
    every later step.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _libc():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name and sys.platform.startswith("linux") else None
    except OSError:
        return None


_LIBC = _libc()


def release_memory() -> None:
    """Hand memory freed by the last step back to the system: pyarrow's pool keeps freed pages for reuse (~0.5 GB
    after loading a 1M-row CSV), glibc keeps its heap top; neither shrinks by itself."""
    pyarrow = sys.modules.get("pyarrow")  # only if some step imported it: importing it here would cost time
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


YOUNG_THRESHOLD = 10_000  # allocations between young collections (Python's default, 700, suits small programs)


def tune_collector() -> None:
    """Collect garbage cycles less often: a run imports millions of long-lived objects (TensorFlow, Dagster,
    MLflow), and at the default thresholds the collector rescanned them for 2.5 s of a 20 s run here."""
    gc.set_threshold(YOUNG_THRESHOLD, 10, 10)


def freeze_startup() -> None:
    """After an orchestrator's start-up (imports, definitions): freeze what it built, uncollected. Start-up makes
    almost no garbage, and a collection of Dagster's objects here took 0.17 s."""
    gc.freeze()


def settle_heap() -> None:
    """Before a step: collect the garbage cycles earlier steps left, then freeze every surviving object.

    Frozen objects are skipped by later collections (reference counting still frees them), so a step's
    collections scan only what it made itself, not everything the earlier steps imported."""
    tune_collector()
    gc.collect()
    gc.freeze()


RETAINED_MB = 512  # a step that keeps more than this after returning is searched for garbage cycles


def release_after(rss_before_kb: int) -> None:
    """After a step: hand cached memory back; if the step still holds over RETAINED_MB, collect garbage cycles first.
    TensorFlow's traced functions sit in reference cycles with the tensors they captured (a whole training split),
    which only the cycle collector frees. A full collection took 2.6-3.2 s with TensorFlow, Dagster and MLflow
    imported (on a busy machine), so steps that keep little skip it."""
    release_memory()
    if rss_before_kb and memory_kb().get("VmRSS", 0) - rss_before_kb > RETAINED_MB * 1024:
        settle_heap()  # collected and frozen: the next step's settle_heap has nothing left to rescan
        release_memory()
