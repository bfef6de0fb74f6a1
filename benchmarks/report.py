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


def render(result: dict) -> str:
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
    return "\n\n".join(parts) + "\n"
