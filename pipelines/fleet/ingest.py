"""Accepting telemetry: authenticate, parse, quarantine impossible values, append atomically, refuse replays."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.core.config import FleetTelemetryConfig
from pipelines.fleet import store
from pipelines.fleet.schema import Batch, Refused, impossible, parse_batch, to_frame

MAX_DEPTH = 8  # the contract nests 5 deep ({"records": [{"features": {"age": [...]}}]}); JSON deeper is refused
_STEP = np.zeros(256, dtype=np.int8)
_STEP[list(b"[{")], _STEP[list(b"]}")] = 1, -1


def nesting(body: bytes) -> int:
    """How deep the body's arrays and objects nest, brackets inside strings not counted: linear passes in C before
    parsing, so 100,000 `[` cost milliseconds instead of a RecursionError (and there is no regex to backtrack)."""
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")  # pairs go left to right, as JSON reads them
    raw = np.frombuffer(unescaped, dtype=np.uint8)
    brackets, quotes = np.flatnonzero(_STEP[raw]), np.flatnonzero(raw == 0x22)
    outside = brackets[np.searchsorted(quotes, brackets) % 2 == 0]  # an even number of quotes before it
    return int(np.cumsum(_STEP[raw[outside]], dtype=np.int64).max(initial=0))


def parse_json(body: bytes) -> object:
    """The body as JSON, or Refused(400) naming why (too deep, not UTF-8 JSON, a number too long to read)."""
    if (depth := nesting(body)) > MAX_DEPTH:
        raise Refused(400, f"body nests {depth} levels deep; at most {MAX_DEPTH}", 0)
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, int digits limit
        raise Refused(400, f"body is not JSON ({exc.__class__.__name__})", 0) from None


def signature(key: bytes, body: bytes) -> str:
    """What an app sends in X-Signature: hex HMAC-SHA256 of the exact body."""
    return hmac.new(key, body, hashlib.sha256).hexdigest()


@dataclass
class Accepted:
    batch_id: str
    accepted: int
    quarantined: int
    reasons: dict[str, int]

    def as_dict(self) -> dict:
        return {"batch_id": self.batch_id, "accepted": self.accepted, "quarantined": self.quarantined,
                "quarantine_reasons": self.reasons, "rejected": 0}


def split(frame: pd.DataFrame, config: FleetTelemetryConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows to keep, rows to quarantine with a `reason` column)."""
    reasons = impossible(frame, config)
    bad = reasons != ""
    return frame[~bad], frame[bad].assign(reason=reasons[bad])


def feature_sums(batch: Batch) -> dict[str, dict[str, list[int]]]:
    """Per day, the batch's input-bucket counts summed over its devices (only the sums are stored)."""
    out: dict[str, dict[str, list[int]]] = defaultdict(dict)
    for record in batch.records:
        for name, counts in (record.features or {}).items():
            if any(c < 0 for c in counts):
                continue  # an impossible histogram adds nothing; the record itself is judged by its counts
            have = out[str(record.day)].get(name, [0] * len(counts))
            width = max(len(have), len(counts))
            out[str(record.day)][name] = [a + b for a, b in zip(have + [0] * (width - len(have)),
                                                                counts + [0] * (width - len(counts)), strict=True)]
    return dict(out)


class Ingestor:
    """The server's core, free of HTTP: one lock makes the replay check and the write one step."""

    def __init__(self, directory: Path, config: FleetTelemetryConfig, key: bytes, first_day: dt.date | None = None):
        self.directory, self.config, self.key = Path(directory), config, key
        self.first_day = first_day if first_day is not None else config.first_day
        self._lock = threading.Lock()

    def days(self) -> tuple[dt.date | None, dt.date]:
        """The days a record may carry now: from the first day (if known) to tomorrow, UTC."""
        return self.first_day, dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)

    def accept(self, body: bytes, sent_signature: str | None) -> Accepted:
        """Store a batch or raise Refused (401 unauthenticated, 413 too large, 400 malformed, 409 replayed)."""
        if len(body) > self.config.max_body_bytes:
            raise Refused(413, f"body is {len(body)} bytes; fleet.max_body_bytes is {self.config.max_body_bytes}",
                          _count(body))
        sent = (sent_signature or "").strip().lower().encode("utf-8", "replace")  # bytes: str must be ASCII
        if not sent or not hmac.compare_digest(signature(self.key, body).encode(), sent):
            raise Refused(401, "missing or wrong X-Signature (HMAC-SHA256 of the body)", _count(body))
        batch = parse_batch(parse_json(body), self.config, self.days())
        keep, quarantine = split(to_frame(batch.records), self.config)
        with self._lock:
            if store.seen(self.directory, batch.batch_id):
                raise Refused(409, f"batch {batch.batch_id} was already accepted (replay)", len(batch.records))
            store.write_batch(self.directory, batch.batch_id, keep, quarantine, feature_sums(batch))
        return Accepted(batch.batch_id, len(keep), len(quarantine),
                        {str(k): int(v) for k, v in quarantine["reason"].value_counts().items()})


def _count(body: bytes) -> int:
    """Records in a refused body, when it parses far enough to count them (else 0)."""
    try:
        payload = parse_json(body)
    except Refused:
        return 0
    records = payload.get("records") if isinstance(payload, dict) else None
    return len(records) if isinstance(records, list) else 0
