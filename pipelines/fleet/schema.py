"""The telemetry contract (v1): what an app reports per device and day, and the rules that refuse or quarantine it.

Structure is checked by pydantic (a batch that does not parse is refused whole); values that parse but cannot
be true (negative counts, a latency over an hour, more crashes than sessions) quarantine the record's device.
Nothing in a record names a person: the device id is a salted hash (the salt rotates every epoch), and the
sensitive attribute arrives only as a randomized-response report (pipelines/fleet/ldp.py).
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from pipelines.core.config import FleetTelemetryConfig

SCHEMA = "mobile-mlops/fleet-telemetry/v1"
# On-device latency histogram: two buckets per decade from 1 us to 10 s; bucket i counts latencies in
# [EDGES[i-1], EDGES[i]); the first and last buckets are open.
LATENCY_EDGES_MS = tuple(float(10 ** (k / 2)) for k in range(-6, 9))
BUCKETS = len(LATENCY_EDGES_MS) + 1
MAX_FEATURE_BINS = 128
# Every integer is checked against the range JSON parsers agree on (I-JSON, RFC 7493) before any arithmetic: so
# int64 columns, histogram sums and feature sums cannot overflow, and 10**30 is a 400 naming the field.
MAX_INT = 2**53 - 1
Int = Annotated[int, Field(ge=-MAX_INT, le=MAX_INT)]

COUNTS = ("sessions", "inferences", "crashes", "download_bytes_wifi", "download_bytes_cellular", "offload_calls",
          "offload_bytes", "predicted_positive", "feedback_count", "feedback_correct")
AMOUNTS = ("battery_mj", "cloud_latency_ms_sum", "latency_max_ms")
HIST = tuple(f"lat_{i:02d}" for i in range(BUCKETS))
KEYS = ("device_id", "salt_epoch", "day", "app_version", "model_version", "variant", "platform", "tier", "group_rr")
COLUMNS = KEYS + COUNTS + AMOUNTS + HIST


class DeviceDay(BaseModel):
    """One device's day. Counts are plain ints here so impossible values reach the quarantine rules."""

    model_config = ConfigDict(extra="forbid", strict=False)

    device_id: str = Field(pattern=r"^[0-9a-f]{32}$")  # sha256(salt of the epoch + install id)[:32]
    salt_epoch: int = Field(ge=0, le=MAX_INT)
    day: dt.date
    app_version: str = Field(min_length=1, max_length=32)
    model_version: str = Field(min_length=1, max_length=32)
    variant: str = Field(min_length=1, max_length=32)  # rollout cohort (canary/production) or A/B arm
    platform: Literal["android", "ios"]
    tier: str = Field(min_length=1, max_length=16)
    group_rr: Int  # randomized-response report of the sensitive attribute: an index into fleet.groups
    sessions: Int
    inferences: Int
    crashes: Int
    latency_hist: list[Int] = Field(min_length=BUCKETS, max_length=BUCKETS)
    latency_max_ms: float
    battery_mj: float  # energy attributable to inference
    download_bytes_wifi: Int
    download_bytes_cellular: Int
    offload_calls: Int
    offload_bytes: Int
    cloud_latency_ms_sum: float
    predicted_positive: Int
    feedback_count: Int = 0  # inferences whose outcome the app later learned
    feedback_correct: Int = 0
    features: dict[str, list[Int]] | None = None  # bucket counts of a few sampled inputs (production drift)

    @field_validator("day")
    @classmethod
    def _in_window(cls, value: dt.date, info: ValidationInfo) -> dt.date:
        """Not after `last`, not before `first` (the server's window, given as validation context)."""
        first, last = (info.context or {}).get("days", (None, None))
        if last is not None and value > last:
            raise ValueError(f"{value} is after tomorrow ({last}, UTC)")
        if first is not None and value < first:
            raise ValueError(f"{value} is before the model's first release ({first}; fleet.first_day)")
        return value

    @field_validator("features")
    @classmethod
    def _bounded(cls, value: dict[str, list[int]] | None) -> dict[str, list[int]] | None:
        if value is not None and (len(value) > 256 or any(len(v) > MAX_FEATURE_BINS for v in value.values())):
            raise ValueError(f"at most 256 features of at most {MAX_FEATURE_BINS} bins")
        return value


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: Literal["mobile-mlops/fleet-telemetry/v1"] = Field(alias="schema")
    batch_id: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")  # unique per batch: a replay is refused
    records: list[DeviceDay] = Field(min_length=1)


class Refused(Exception):
    """A batch refused whole: the HTTP status, one line, and how many records it held."""

    def __init__(self, status: int, message: str, rejected: int):
        super().__init__(message)
        self.status, self.message, self.rejected = status, message, rejected


def parse_batch(payload: object, config: FleetTelemetryConfig,
                days: tuple[dt.date | None, dt.date | None] = (None, None)) -> Batch:
    """A validated batch, or Refused(400/413) naming the first problem and the record count.

    `days` is the window (first, last) a record's day must fall in; None leaves that side open.
    """
    count = len(payload.get("records") or []) if isinstance(payload, dict) and \
        isinstance(payload.get("records"), list) else 0
    if count > config.max_records:
        raise Refused(413, f"batch holds {count} records; fleet.max_records is {config.max_records}", count)
    try:
        batch = Batch.model_validate(payload, context={"days": days})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        bad = len({e["loc"][1] for e in exc.errors() if len(e["loc"]) > 1 and e["loc"][0] == "records"})
        detail = f"{bad} of {count} records invalid" if bad else f"batch of {count} records refused"
        raise Refused(400, f"{where}: {first['msg']} ({detail})", count) from None
    return batch


def to_frame(records: list[DeviceDay]) -> pd.DataFrame:
    """Records as the stored columns (one latency column per bucket)."""
    rows = [r.model_dump(exclude={"features", "latency_hist"}) for r in records]
    frame = pd.DataFrame(rows)
    hist = np.array([r.latency_hist for r in records], dtype=np.int64).reshape(len(records), BUCKETS)
    frame[list(HIST)] = hist
    frame["day"] = pd.to_datetime(frame["day"]).dt.date.astype(str)
    return typed(frame)


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """The stored dtypes: ints as int64, amounts float64, labels as strings."""
    out = frame[list(COLUMNS)].copy()
    for column in COUNTS + HIST + ("salt_epoch", "group_rr"):
        out[column] = out[column].astype("int64")
    for column in AMOUNTS:
        out[column] = out[column].astype("float64")
    for column in ("device_id", "day", "app_version", "model_version", "variant", "platform", "tier"):
        out[column] = out[column].astype(str)
    return out


def impossible(frame: pd.DataFrame, config: FleetTelemetryConfig) -> pd.Series:
    """Why each row cannot be true ("" when it can): the quarantine rule, vectorized."""
    reasons = pd.Series("", index=frame.index, dtype=object)

    def flag(mask: pd.Series, why: str) -> None:
        reasons[mask & (reasons == "")] = why

    counts = frame[list(COUNTS + HIST)]
    flag((counts < 0).any(axis=1), "negative count")
    flag((frame[list(AMOUNTS)] < 0).any(axis=1) | ~np.isfinite(frame[list(AMOUNTS)]).all(axis=1), "negative or "
         "non-finite amount")
    flag(frame["latency_max_ms"] > config.max_latency_ms,
         f"latency over fleet.max_latency_ms ({config.max_latency_ms:g})")
    flag(frame[list(HIST)].sum(axis=1) != frame["inferences"], "latency histogram does not sum to inferences")
    flag(frame["crashes"] > frame["sessions"], "more crashes than sessions")
    flag(frame["predicted_positive"] > frame["inferences"], "more positive predictions than inferences")
    flag((frame["feedback_correct"] > frame["feedback_count"]) | (frame["feedback_count"] > frame["inferences"]),
         "feedback counts inconsistent")
    flag(frame["offload_calls"] > frame["inferences"], "more offload calls than inferences")
    flag((frame["group_rr"] < 0) | (frame["group_rr"] >= len(config.groups)), "group_rr outside fleet.groups")
    return reasons
