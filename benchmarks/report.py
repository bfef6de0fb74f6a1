"""docs/benchmarks.md from reports/benchmarks.json."""
from __future__ import annotations


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _us(ms) -> str:
    return f"{ms * 1000:.1f}" if isinstance(ms, (int, float)) else "-"


def _variants(variants: dict) -> str:
    if "platforms" in variants.get("footprint", {}):  # every runtime, with gzip bytes, DPD and verdicts
        from benchmarks.variants import variants_table

        return variants_table(variants["footprint"])
    tflite = variants.get("tflite", {}).get("variants", {})
    rows = []
    for name, v in tflite.items():
        latency = v.get("latency", {})
        rows.append([f"TFLite {name}", v.get("size_bytes"), f"{v.get('accuracy', float('nan')):.4f}",
                     f"{v.get('agreement_with_keras', v.get('agreement', float('nan'))):.4f}",
                     _us(latency.get("p50_ms")), _us(latency.get("p95_ms"))])
    coreml = variants.get("coreml", {})
    for name, v in (coreml.get("variants") or {"float16": coreml}).items():
        if isinstance(v, dict) and "size_bytes" in v:
            rows.append([f"Core ML {name}", v["size_bytes"], "macOS only", "macOS only", "-", "-"])
    return _table(["variant", "bytes", "accuracy", "agreement", "p50 µs", "p95 µs"],
                  rows) if rows else "(no variant reports)"


SCALE_HEADING = "## Scale: 1M, 10M and 30M rows end to end (make bench-scale)"


def _loads(sizes: list[dict]) -> str:
    """Each size's measured load average range, or `not recorded`."""
    return "; ".join(f"{r['rows'] / 1e6:g}M {r['load_range'][0]}-{r['load_range'][1]}" if "load_range" in r
                     else f"{r['rows'] / 1e6:g}M not recorded" for r in sizes)


def scale_section(bench: dict) -> str:
    """The `make bench-scale` section: per size, each step's wall, CPU and peak memory, and the curves' plot."""
    m = bench["machine"]
    sizes = bench["sizes"]
    names = list(dict.fromkeys(n for r in sizes for n in r["steps"]))
    header = ["step", *[f"{r['rows'] / 1e6:g}M: wall s / CPU s / peak MiB" for r in sizes]]
    rows = [[name, *[("{wall_s} / {cpu_s} / {max_rss_mb}".format(**r["steps"][name]) if name in r["steps"] else "-")
                     for r in sizes]] for name in names]
    rows.append(["**all steps**", *[f"{r['wall_s']} / {r['cpu_s']} / {r['peak_rss_mb']}" for r in sizes]])
    notes = [f"{r['rows'] / 1e6:g}M ({r.get('scope', 'all')} steps"
             + (f", measured {r['date']}" if "date" in r else "")
             + (f", {r['generate_s']} s to generate the CSV" if "generate_s" in r else "") + "): "
             + (f"stopped at {r['failed']}" if r.get("failed") else
                f"release verified: {r['release_verified']}" if "release_verified" in r else "completed")
             for r in sizes]
    return "\n\n".join([
        SCALE_HEADING,
        "Each step in a fresh process on synthetic Adult-like rows (`make bench-scale`, or `python -m "
        "benchmarks.scale ROWS ...` for some sizes; CSV source, "
        "`data.batch_rows` 500,000, one epoch, gates opened: it measures time and memory, not a model). "
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, shared with other jobs (1-minute load "
        f"average after the steps: {_loads(sizes)}): wall times are inflated and noisy, CPU seconds and peak memory "
        "are not.",
        _table(header, rows),
        "; ".join(notes) + ".",
        "![peak memory per step and time by rows](images/bench-scale.png)",
        "What each step holds in memory, and what still grows with the rows: docs/data-at-scale.md.",
    ])


def render(result: dict, scale: dict | None = None) -> str:
    m = result["machine"]
    over, scale, noop = result["overhead"], result["scale"], result["noop"]
    parts = [
        "# Benchmarks",
        f"Measured {result['date']} with `make bench` ({result['mode']} mode). Regenerate with `make bench`.",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".",
        "## End to end (cold, default data)",
        f"Whole graph: **{result['end_to_end']['wall_s']} s** (one fresh process, imports included).",
        _table(["step", "seconds"], sorted(result["end_to_end"]["steps_s"].items(), key=lambda kv: -kv[1])),
        "## Orchestration overhead",
        "Same work as (a) a plain script calling pipelines/ steps, (b) a Dagster materialization, (c) `dvc repro -f`; "
        f"runs interleaved a b c, {len(over['runs']['plain'])} times, each a fresh process; median, min and max.",
        _table(["way", "median s", "min s", "max s", "runs"],
               [[k, over["median_s"][k], over.get("min_s", {}).get(k, "-"), over.get("max_s", {}).get(k, "-"),
                 over["runs"][k]] for k in over["median_s"]]),
        "Ratios: " + ", ".join(f"{k} = {v}" for k, v in over["ratios"].items()) + f" (goal: {over['goal']}).",
        "## No-op cost",
        _table(["what", "value"], [["nightly check with nothing stale (s)", noop["noop_check_s"]],
                                   ["stale assets found", ", ".join(noop["stale"]) or "none"],
                                   ["training steps executed", noop["trainings_executed"]],
                                   ["training CPU-seconds", noop["training_cpu_s"]],
                                   ["`dvc repro` with nothing changed (s)",
                                    noop.get("dvc_repro", {}).get("process_wall_s", "-")]]),
        "## Scale (ingest, validate, split, train 1 epoch, convert, evaluate)",
        _table(["rows", "wall s", "peak RSS MB", "time growth", "rows growth"],
               [[r["rows"], r["wall_s"], r["max_rss_mb"], r.get("time_growth", "-"), r.get("rows_growth", "-")]
                for r in scale["sizes"]]),
        f"Goal: {scale['goal']}.",
        "## On-device variants (default data)",
        _variants(result["variants"]),
    ]
    if scale:
        parts.append(scale_section(scale))
    return "\n\n".join(parts) + "\n"
