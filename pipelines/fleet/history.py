"""Daily guardrail values per cohort (the guardrails-over-time chart), from day totals queried in place.

Per day and cohort: crash rate, geometric-mean latency and accuracy on feedback of that day's devices; the
selection-rate gap and MB per device-month over the devices seen so far, as the guardrail tests count them. Both
cumulative figures need only totals (ldp.debiased_rates on totals per reported group; figures.device_mb_per_month
on download, traffic, device and device-day totals), so three SQL aggregates replace per-device running sums.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.core.config import Params
from pipelines.fleet import figures, ldp
from pipelines.fleet.canary import LOG_CENTRES
from pipelines.fleet.query import Source, run
from pipelines.fleet.schema import HIST

DAILY_SQL = ("SELECT day, variant, count(DISTINCT device_id) AS devices, count(*) AS device_days, "
             "sum(crashes)::DOUBLE AS crashes, sum(sessions)::DOUBLE AS sessions, "
             "sum(feedback_correct)::DOUBLE AS feedback_correct, sum(feedback_count)::DOUBLE AS feedback_count, "
             "sum(download_bytes_wifi)::DOUBLE + sum(download_bytes_cellular)::DOUBLE AS downloads, "
             "sum(offload_bytes)::DOUBLE AS offload_bytes, " +
             ", ".join(f"sum({c})::DOUBLE AS {c}" for c in HIST) + " FROM t GROUP BY day, variant")
# a device counts from its first day in a cohort, with the RR report of that day (as canary.units counts it)
FIRST = "SELECT variant, device_id, min(day) AS first_day, arg_min(group_rr, day) AS report FROM t GROUP BY ALL"
NEW_SQL = f"SELECT first_day AS day, variant, count(*) AS new_devices FROM ({FIRST}) GROUP BY ALL"
GROUPS_SQL = (f"WITH first AS ({FIRST}) SELECT t.day, t.variant, first.report, "
              "sum(t.predicted_positive)::DOUBLE AS positives, sum(t.inferences)::DOUBLE AS inferences "
              "FROM t JOIN first USING (variant, device_id) GROUP BY ALL")


def history(source: Source, params: Params) -> list[dict[str, Any]]:
    """One row per day and cohort, oldest day first, cohorts by name."""
    fleet, updates = params.fleet, params.finops.fleet.updates_per_month
    k = len(fleet.groups)
    daily = run(DAILY_SQL, source).sort_values(["day", "variant"], ignore_index=True)
    new = run(NEW_SQL, source).set_index(["day", "variant"])["new_devices"]
    groups = run(GROUPS_SQL, source)
    rows: list[dict[str, Any]] = []
    seen: dict[str, dict[str, Any]] = {}
    for day, today in daily.groupby("day", sort=True):
        for cohort, part in today.groupby("variant", sort=True):
            s = seen.setdefault(cohort, {"devices": 0, "device_days": 0.0, "downloads": 0.0, "offload": 0.0,
                                         "positives": np.zeros(k), "inferences": np.zeros(k)})
            d = part.iloc[0]
            s["devices"] += int(new.get((day, cohort), 0))
            s["device_days"] += float(d["device_days"])
            s["downloads"] += float(d["downloads"])
            s["offload"] += float(d["offload_bytes"])
            mine = groups[(groups["day"] == day) & (groups["variant"] == cohort)]
            report = mine["report"].to_numpy(np.int64)
            s["positives"] += np.bincount(report, weights=mine["positives"].to_numpy(float), minlength=k)[:k]
            s["inferences"] += np.bincount(report, weights=mine["inferences"].to_numpy(float), minlength=k)[:k]
            enough = s["devices"] >= 2  # as the per-device tests: no spread, no figure, below two devices
            gap = ldp.gap(ldp.debiased_rates(s["positives"], s["inferences"], fleet.epsilon, k)) if enough else None
            mb = figures.device_mb_per_month(s["downloads"], s["offload"], s["devices"], s["device_days"],
                                             updates) if enough else float("nan")
            hist = d[list(HIST)].to_numpy(float)
            rows.append({"day": day, "cohort": cohort, "devices": int(d["devices"]),
                         "crash_rate": float(d["crashes"] / max(d["sessions"], 1)),
                         "latency_ms": float(np.exp((hist @ LOG_CENTRES) / max(hist.sum(), 1))),
                         "accuracy": float(d["feedback_correct"] / max(d["feedback_count"], 1)),
                         "selection_rate_gap": gap, "mb_per_device_month": mb if np.isfinite(mb) else None})
    return rows


def days_in_stage(source: Source, version: str) -> int:
    """Days with telemetry from model `version` (the current stage's soak time)."""
    out = run("SELECT model_version, count(DISTINCT day) AS n FROM t GROUP BY model_version", source)
    match = out.loc[out["model_version"] == version, "n"]
    return int(match.iloc[0]) if len(match) else 0
