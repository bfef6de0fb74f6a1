"""The telemetry server's Prometheus metrics (`GET /metrics`), one registry per server so servers never share counts."""
from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = CONTENT_TYPE_LATEST  # the text format's content type, version included
ROUTES = ("/v1/telemetry", "/healthz", "/metrics")  # any other path is counted as "other": labels stay bounded
# batch answers take milliseconds (a refusal) to seconds (5,000 records parsed and written with fsync)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServerMetrics:
    """Requests by route and status, batch latency, records accepted/quarantined/rejected, bytes, connections."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("telemetry_requests", "HTTP requests answered, by route and status",
                                ("route", "status"), registry=self.registry)
        self.batch_seconds = Histogram("telemetry_batch_seconds", "Time to answer a POST of a batch, from its "
                                       "headers to the answer (body read, checks, store)",
                                       buckets=LATENCY_BUCKETS, registry=self.registry)
        self.records = Counter("telemetry_records", "Device-day records by outcome: accepted (stored), quarantined "
                               "(stored apart: impossible values), rejected (in a refused batch)", ("outcome",),
                               registry=self.registry)
        self.received_bytes = Counter("telemetry_received_bytes", "Request body bytes read (refused bodies "
                                      "included)", registry=self.registry)
        self.connections = Gauge("telemetry_open_connections", "Open client connections", registry=self.registry)
        self.refused_connections = Counter("telemetry_refused_connections", "Connections answered 503 at once "
                                           "because fleet.max_connections were open", registry=self.registry)
        self.timeouts = Counter("telemetry_read_timeouts", "Requests whose headers or body did not arrive within "
                                "fleet.read_timeout_s", registry=self.registry)
        for outcome in ("accepted", "quarantined", "rejected"):
            self.records.labels(outcome)  # present (at 0) from the start, so rate() and alerts see the series

    def answered(self, path: str, status: int) -> None:
        self.requests.labels(path if path in ROUTES else "other", str(status)).inc()

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format (served as CONTENT_TYPE)."""
        return generate_latest(self.registry)
