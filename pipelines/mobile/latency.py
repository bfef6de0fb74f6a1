"""Latency on the measuring host: single-sample LiteRT and Keras calls, and LiteRT batch throughput.

Wall-clock numbers from this host, one thread. Device tiers scale them into estimates
(pipelines/footprint.py). They feed reports and budgets; no test asserts a time.
"""
from __future__ import annotations

import gc
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from pipelines.core.config import BenchmarkConfig


def summarize(samples_ns: np.ndarray) -> dict[str, float]:
    """Percentiles and mean of per-call times, in milliseconds."""
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    return {
        "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()), "min_ms": float(ms.min()),
        "runs": int(len(ms)),
    }


def time_calls(call: Callable[[Any], Any], inputs: list, runs: int, warmup: int) -> np.ndarray:
    """Nanoseconds per call over `runs` calls after `warmup` untimed ones, cycling through `inputs`."""
    for i in range(warmup):
        call(inputs[i % len(inputs)])
    samples = np.empty(runs, dtype=np.int64)
    clock = time.perf_counter_ns
    enabled = gc.isenabled()
    gc.disable()  # a collection inside one call would be noise, not model latency
    try:
        for i in range(runs):
            row = inputs[i % len(inputs)]
            start = clock()
            call(row)
            samples[i] = clock() - start
    finally:
        if enabled:
            gc.enable()
    return samples


def litert_latency(content: bytes, x: np.ndarray, config: BenchmarkConfig) -> dict[str, Any]:
    """Single-thread LiteRT: per-sample latency (set input, invoke, read output) and batch throughput."""
    from pipelines.release_format.litert import runner, to_input

    detail, call = runner(content, batch_size=1, num_threads=1)
    inputs = to_input(detail, x[:min(len(x), config.runs)])  # converted once; each call gets one row of it
    rows = [inputs[i:i + 1] for i in range(len(inputs))]
    single = summarize(time_calls(call, rows, config.runs, config.warmup))
    detail, call = runner(content, batch_size=config.batch_size, num_threads=1)
    batch = to_input(detail, x[np.arange(config.batch_size) % len(x)])
    batch_ns = time_calls(call, [batch], config.batch_repeats, warmup=2)
    return {**single, "warmup": config.warmup, "threads": 1, "batch_size": config.batch_size,
            "batch_rows_per_s": float(config.batch_size / (np.median(batch_ns) / 1e9))}


def keras_latency(model, x: np.ndarray, config: BenchmarkConfig) -> dict[str, Any]:
    """Keras single-sample latency through a traced tf.function (faster than eager model(x)).

    TensorFlow's thread pools are fixed once it starts, so this runs with its default threads;
    for a one-row MLP the extra threads have nothing to split.
    """
    import tensorflow as tf

    width = x.shape[1]
    fn = tf.function(lambda t: model(t, training=False), input_signature=[tf.TensorSpec([1, width], tf.float32)])
    rows = [tf.constant(x[i:i + 1]) for i in range(min(len(x), config.keras_runs))]
    warmup = max(1, min(config.warmup, config.keras_runs))
    return {**summarize(time_calls(fn, rows, config.keras_runs, warmup)), "warmup": warmup,
            "method": "tf.function(model(x, training=False)) on one row"}


def host_info() -> dict[str, Any]:
    """The machine the latencies were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        from importlib.metadata import version

        litert = version("ai-edge-litert")
    except Exception:  # version is informative only
        litert = "unknown"
    return {"cpu": cpu, "cores": os.cpu_count(), "machine": platform.machine(), "system": platform.system(),
            "python": platform.python_version(), "ai_edge_litert": litert}
