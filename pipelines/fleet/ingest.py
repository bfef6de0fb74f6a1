"""Accepting telemetry: authenticate, parse, quarantine impossible values, append atomically, refuse replays."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipelines.core.config import FleetTelemetryConfig
from pipelines.fleet import store
from pipelines.fleet.schema import Batch, Refused, impossible, parse_batch, to_frame


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

    def __init__(self, directory: Path, config: FleetTelemetryConfig, key: bytes):
        self.directory, self.config, self.key = Path(directory), config, key
        self._lock = threading.Lock()

    def accept(self, body: bytes, sent_signature: str | None) -> Accepted:
        """Store a batch or raise Refused (401 unauthenticated, 413 too large, 400 malformed, 409 replayed)."""
        if len(body) > self.config.max_body_bytes:
            raise Refused(413, f"body is {len(body)} bytes; fleet.max_body_bytes is {self.config.max_body_bytes}",
                          _count(body))
        if not sent_signature or not hmac.compare_digest(signature(self.key, body), sent_signature.strip().lower()):
            raise Refused(401, "missing or wrong X-Signature (HMAC-SHA256 of the body)", _count(body))
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise Refused(400, f"body is not JSON ({exc.__class__.__name__})", 0) from None
        batch = parse_batch(payload, self.config)
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
        records = json.loads(body).get("records")
    except (ValueError, AttributeError):
        return 0
    return len(records) if isinstance(records, list) else 0
