"""`mobile-mlops run --profile`: each step under cProfile, and one page of where the time went.

Per step: wall and CPU seconds, the time spent importing modules (cumulative time of importlib's
`_find_and_load`, i.e. first imports only), the process's resident memory before the step and at its peak
during it, and the functions with the most cumulative time outside imports.
The raw profiles stay beside the page (`snakeviz reports/profile/<step>.prof` or `python -m pstats`).
"""
from __future__ import annotations

import cProfile
import os
import pstats
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.core.compute import cpu_seconds
from pipelines.core.memory import memory_kb, reset_peak

_WRAPPER = str(Path(__file__).with_name("step.py"))  # the step wrapper: every step's top line, no news
PROFILE_ENV = "MOBILE_MLOPS_PROFILE"  # a folder: set by `run --profile`, read by every step
TOP = 8


def profile_folder() -> Path | None:
    """Where step profiles go, when profiling is on."""
    folder = os.environ.get(PROFILE_ENV)
    return Path(folder) if folder else None


def profiled(name: str, folder: Path, call: Callable[[], Any]) -> Any:
    """Run `call` under cProfile; write <folder>/<name>.prof, its wall and CPU seconds and its memory."""
    folder.mkdir(parents=True, exist_ok=True)
    profile = cProfile.Profile()
    reset = reset_peak()
    before = memory_kb().get("VmRSS", 0)
    cpu, wall = cpu_seconds(), time.perf_counter()
    profile.enable()
    try:
        return call()
    finally:
        profile.disable()
        elapsed, used = time.perf_counter() - wall, cpu_seconds() - cpu
        after = memory_kb()
        peak = after.get("VmHWM", 0) if reset else 0  # without a reset the mark may be an earlier step's
        profile.dump_stats(folder / f"{name}.prof")
        (folder / f"{name}.times").write_text(
            f"{elapsed:.3f} {used:.3f} {before} {peak} {after.get('VmRSS', 0)}\n")


def _is_import(func: tuple[str, int, str]) -> bool:
    filename, _, function = func
    return "importlib" in filename or function in ("<module>", "_find_and_load", "_call_with_frames_removed")


def step_profile(path: Path) -> dict[str, Any]:
    """One step's figures from its .prof file."""
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]  # func -> (calls, primitive calls, own time, cumulative time, callers)
    # cProfile counts a recursive function's time once, at its outermost call: nested imports are not added twice
    imports = sum(cum for func, (_, _, _, cum, _) in stats.items() if func[2] == "_find_and_load")
    top = sorted(((cum, func) for func, (_, _, _, cum, _) in stats.items() if not _is_import(func)
                  and func[0] not in ("~", __file__, _WRAPPER)), reverse=True)
    wall, cpu, *memory = (float(x) for x in path.with_suffix(".times").read_text().split())
    before, peak, after = (memory + [0.0, 0.0, 0.0])[:3]
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "import_s": round(imports, 4),
            "rss_before_mib": round(before / 1024), "peak_rss_mib": round(peak / 1024),
            "rss_after_mib": round(after / 1024),
            "top": [(round(cum, 3), f"{Path(func[0]).name}:{func[1]} {func[2]}") for cum, func in top[:TOP]]}


def write_report(folder: Path, order: list[str]) -> Path:
    """profile.md beside the .prof files: one table of all steps, then each step's top functions."""
    steps = {name: step_profile(folder / f"{name}.prof") for name in order if (folder / f"{name}.prof").is_file()}
    total = sum(s["wall_s"] for s in steps.values()) or 1.0
    lines = ["# Where the run's time went", "", f"{len(steps)} steps, {total:.1f} s of step wall time.", "",
             "Memory: the process's resident set before the step, its peak during it (0: not measurable here) and "
             "after it, in MiB. The run is one process, so what a step leaves behind is the next step's floor.", "",
             "| step | wall s | share | CPU s | imports s | RSS before MiB | peak RSS MiB | RSS after MiB |",
             "|---|---|---|---|---|---|---|---|"]
    for name, s in sorted(steps.items(), key=lambda kv: -kv[1]["wall_s"]):
        lines.append(f"| {name} | {s['wall_s']:.2f} | {s['wall_s'] / total:.0%} | {s['cpu_s']:.2f} | "
                     f"{s['import_s']:.2f} "
                     f"| {s['rss_before_mib']} | {s['peak_rss_mib']} | {s['rss_after_mib']} |")
    for name, s in steps.items():
        lines += ["", f"## {name}", "", "| cumulative s | function |", "|---|---|"]
        lines += [f"| {cum:.3f} | `{where}` |" for cum, where in s["top"]]
    report = folder / "profile.md"
    report.write_text("\n".join(lines) + "\n")
    return report
