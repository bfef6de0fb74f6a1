"""Canary and A/B analysis: every guardrail, cohort against cohort, with an anytime-valid sequential test.

Devices are the independent units (their days are summed), so a device's bad day cannot pass for many
devices. Each guardrail is a statistic where larger is worse, compared with a limit:
  crash_rate              canary crashes per session (limit: guardrails.max_crash_rate) and its increase
                          over production (fleet.margins.crash_rate_increase)
  latency                 canary/production geometric-mean latency ratio (fleet.margins.latency_ratio) and the
                          canary's share of inferences over guardrails.max_p95_latency_ms (at most 5%)
  accuracy_drop           production minus canary accuracy on labelled feedback (guardrails.max_accuracy_drop)
  selection_rate_gap      canary gap between sensitive groups, debiased from randomized response
                          (guardrails.max_selection_rate_gap)
  data_mb_per_device_month  canary downloads (once per device and update) + offload traffic per device-month,
                          as observed FinOps counts them (pipelines/fleet/figures.py;
                          gates.budgets.max_device_mb_per_month)

Sequential test: a normal-mixture confidence sequence (Robbins 1970; Howard et al. 2021; the asymptotic form
of Waudby-Smith et al. 2023): radius = se * sqrt((1 + r/n) * log((1 + n/r) / a^2)) with n canary devices and r
= fleet.tuning_devices. It holds at every look simultaneously, so checking every day keeps the error rate;
a = fleet.alpha split evenly over the guardrail tests (Bonferroni). A bound past the limit is a breach
(rollback); every bound inside its limit, after the stage's soak time and fleet.min_devices, promotes;
anything else holds. The same function compares two A/B arms.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.core.config import Guardrails, Params
from pipelines.fleet import figures, ldp
from pipelines.fleet.query import Source, run
from pipelines.fleet.schema import COUNTS, HIST, LATENCY_EDGES_MS

SUMMED = COUNTS + ("battery_mj", "cloud_latency_ms_sum") + HIST
_AMOUNTS = ("battery_mj", "cloud_latency_ms_sum")
# Device x cohort sums; a device's RR report is the one of its first day (it is memoized per epoch anyway).
UNITS_SQL = ("SELECT variant, device_id, " + ", ".join(
    f"sum({c})::{'DOUBLE' if c in _AMOUNTS else 'BIGINT'} AS {c}" for c in SUMMED) +
    ", count(*)::BIGINT AS device_days, arg_min(group_rr, day)::BIGINT AS group_rr FROM t "
    "GROUP BY variant, device_id ORDER BY variant, device_id")
# geometric centre of each latency bucket (open end buckets: one half-decade beyond the edge)
_EDGES = np.log(np.asarray(LATENCY_EDGES_MS))
LOG_CENTRES = np.concatenate([[_EDGES[0] - 0.5 * np.log(10) / 2], (_EDGES[1:] + _EDGES[:-1]) / 2,
                              [_EDGES[-1] + 0.5 * np.log(10) / 2]])
P95_SHARE = 0.05


def units(source: Source) -> pd.DataFrame:
    """Device x cohort sums (a device moved to the canary counts as a new unit there), from the store's shards
    queried in place or from a frame of stored rows."""
    return run(UNITS_SQL, source).set_index(["variant", "device_id"])


def add_units(total: pd.DataFrame | None, day: pd.DataFrame) -> pd.DataFrame:
    """Running device sums plus one day's (the rollout loop stays linear in days)."""
    today = units(day)
    if total is None:
        return today
    both = pd.concat([total, today])
    rr = both["group_rr"].groupby(level=[0, 1], sort=False).first()
    out = both.drop(columns="group_rr").groupby(level=[0, 1], sort=False).sum()
    out["group_rr"] = rr
    return out


def radius(se: float, n: int, alpha: float, tuning: int) -> float:
    """Half-width of the normal-mixture confidence sequence at n units."""
    if n < 2 or not np.isfinite(se):
        return float("inf")
    return float(se * np.sqrt((1 + tuning / n) * np.log((1 + n / tuning) / alpha ** 2)))


def ratio(a: np.ndarray, b: np.ndarray) -> tuple[float, float, int]:
    """(sum a / sum b, its delta-method standard error, units)."""
    n = len(a)
    if n < 2 or b.sum() <= 0:
        return float("nan"), float("inf"), n
    r = a.sum() / b.sum()
    influence = (a - r * b) / b.mean()
    se = influence.std(ddof=1) / np.sqrt(n)
    if np.all(a >= 0) and a.sum() < 1:  # no events yet: a zero spread says nothing; one event's worth instead
        se = max(se, 1 / b.sum())
    return float(r), float(se), n


@dataclass
class Test:
    guardrail: str
    statistic: str
    treatment: float | None  # the cohort under test (canary / B)
    control: float | None  # production / A (None for limits on the treatment alone)
    value: float  # the statistic (larger is worse)
    low: float
    high: float
    limit: float
    status: str  # breach | pass | undecided
    units: int

    def reason(self) -> str:
        shown = f"{self.statistic} {self.value:.4g} (CS {self.low:.4g}..{self.high:.4g}) vs limit {self.limit:.4g}"
        return {"breach": f"breached: {shown}", "pass": f"within: {shown}", "undecided": f"undecided: {shown}"}[
            self.status]

    def as_dict(self) -> dict:
        return {"guardrail": self.guardrail, "statistic": self.statistic, "treatment": self.treatment,
                "control": self.control, "value": self.value, "low": self.low, "high": self.high,
                "limit": self.limit, "status": self.status, "units": self.units, "reason": self.reason()}


def _test(guardrail: str, statistic: str, value: float, se: float, n: int, limit: float, alpha: float,
          tuning: int, treatment: float | None, control: float | None) -> Test:
    r = radius(se, n, alpha, tuning)
    low, high = value - r, value + r
    status = "breach" if low > limit else "pass" if high <= limit else "undecided"
    return Test(guardrail, statistic, treatment, control, float(value), float(low), float(high), float(limit),
                status, n)


def _latency_arrays(u: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    hist = u[list(HIST)].to_numpy(dtype=float)
    return hist @ LOG_CENTRES, hist.sum(axis=1)


def evaluate(units_frame: pd.DataFrame, treatment: str, control: str, guardrails: Guardrails,
             params: Params) -> list[Test]:
    """Every guardrail test of cohort `treatment` against cohort `control` (device-unit sums from `units`)."""
    fleet = params.fleet
    cohorts = set(units_frame.index.get_level_values(0))
    t = units_frame.loc[treatment] if treatment in cohorts else units_frame.iloc[:0]
    c = units_frame.loc[control] if control in cohorts else None
    has_control = c is not None and len(c) >= 2
    budget = params.gates.budgets.max_device_mb_per_month
    tests_planned = 6 + (1 if budget is not None else 0)
    alpha, tuning = fleet.alpha / tests_planned, fleet.tuning_devices
    n = len(t)
    out: list[Test] = []

    def both(a: str, b: str):
        return ratio(t[a].to_numpy(float), t[b].to_numpy(float)), (
            ratio(c[a].to_numpy(float), c[b].to_numpy(float)) if has_control else (None, None, 0))  # type: ignore[index]

    (cr, cr_se, _), (pr, pr_se, _) = both("crashes", "sessions")
    out.append(_test("crash_rate", "crashes per session", cr, cr_se, n, guardrails.max_crash_rate, alpha, tuning,
                     cr, pr))
    if has_control:
        out.append(_test("crash_rate", "increase over control", cr - pr, np.hypot(cr_se, pr_se), n,
                         fleet.margins.crash_rate_increase, alpha, tuning, cr, pr))
    t_log, t_n = _latency_arrays(t)
    tl, tl_se, _ = ratio(t_log, t_n)
    over = np.asarray(LATENCY_EDGES_MS) >= guardrails.max_p95_latency_ms  # lower edges of buckets 1..
    t_over = t[list(HIST)].to_numpy(float)[:, 1:][:, over].sum(axis=1)
    share, share_se, _ = ratio(t_over, t_n)
    out.append(_test("latency", f"share of inferences over {guardrails.max_p95_latency_ms:g} ms", share, share_se,
                     n, P95_SHARE, alpha, tuning, share, None))
    if has_control:
        c_log, c_n = _latency_arrays(c)
        cl, cl_se, _ = ratio(c_log, c_n)
        out.append(_test("latency", "log latency ratio to control", tl - cl, np.hypot(tl_se, cl_se), n,
                         float(np.log(fleet.margins.latency_ratio)), alpha, tuning, float(np.exp(tl)),
                         float(np.exp(cl))))
        (ta, ta_se, _), (ca, ca_se, _) = both("feedback_correct", "feedback_count")
        drop_limit = fleet.margins.accuracy_drop if fleet.margins.accuracy_drop is not None else \
            guardrails.max_accuracy_drop
        out.append(_test("accuracy_drop", "control minus treatment accuracy", ca - ta, np.hypot(ta_se, ca_se), n,
                         drop_limit, alpha, tuning, ta, ca))
    gap = ldp.group_rates(t["predicted_positive"].to_numpy(float), t["inferences"].to_numpy(float),
                          t["group_rr"].to_numpy(), fleet.epsilon, len(fleet.groups))
    out.append(_test("selection_rate_gap", "gap between groups (debiased RR)", gap["gap"] if gap["gap"] is not None
                     else float("nan"), gap["se"] if gap["se"] is not None else float("inf"), n,
                     guardrails.max_selection_rate_gap, alpha, tuning, gap["gap"], None))
    if budget is not None:
        mb, mb_se, _ = figures.mb_per_device_month(
            (t["download_bytes_wifi"] + t["download_bytes_cellular"]).to_numpy(float),
            t["offload_bytes"].to_numpy(float), t["device_days"].to_numpy(float),
            params.finops.fleet.updates_per_month)
        out.append(_test("data_mb_per_device_month", "MB per device-month", mb, mb_se, n, budget, alpha, tuning,
                         mb, None))
    return out


def decide(tests: list[Test], soaked: bool, enough: bool) -> tuple[str, list[str]]:
    """promote | hold | rollback, and the reason per guardrail."""
    breached = [t for t in tests if t.status == "breach"]
    if breached:
        return "rollback", [f"{t.guardrail}: {t.reason()}" for t in breached]
    reasons = [f"{t.guardrail}: {t.reason()}" for t in tests]
    if all(t.status == "pass" for t in tests) and soaked and enough:
        return "promote", reasons
    if not soaked:
        reasons.insert(0, "stage soak time not reached")
    if not enough:
        reasons.insert(0, "too few devices for a decision")
    return "hold", reasons


def table(tests: list[Test]) -> str:
    """The guardrail table (Markdown) a pull request body and the Dagster UI carry."""
    lines = ["| guardrail | statistic | treatment | control | value | confidence sequence | limit | status |",
             "|---|---|---:|---:|---:|---|---:|---|"]

    def fmt(v: float | None) -> str:
        return "" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.4g}"

    for t in tests:
        lines.append(f"| {t.guardrail} | {t.statistic} | {fmt(t.treatment)} | {fmt(t.control)} | {fmt(t.value)} | "
                     f"{fmt(t.low)} .. {fmt(t.high)} | {fmt(t.limit)} | {t.status} |")
    return "\n".join(lines)
