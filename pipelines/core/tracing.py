"""OpenTelemetry traces of the pipeline: one span per step, its headline figures as attributes.

Off by default. The standard variables switch it on: `OTEL_TRACES_EXPORTER=otlp` (or any
`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) sends spans over OTLP/HTTP, `console` prints
them; `OTEL_SERVICE_NAME` names the service (default mobile-mlops); `OTEL_SDK_DISABLED=true` wins over both.
Spans are flushed when each step ends: `mobile-mlops run` leaves without the interpreter's teardown.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

_provider: Any = None  # the SDK provider this process exports with (None: tracing off)
_looked = False
RUN_ID_ENV = "MOBILE_MLOPS_RUN_ID"


def _exporter():
    """The exporter the OTEL_* variables ask for, or None."""
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    choice = os.environ.get("OTEL_TRACES_EXPORTER", "").lower()
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if choice == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if choice == "otlp" or (endpoint and choice in ("", "otlp")):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()  # reads the endpoint, headers and timeout from OTEL_EXPORTER_OTLP_*
    return None


def use(provider: Any) -> None:
    """Export with this SDK TracerProvider (a test's in-memory exporter, or an application's own set-up)."""
    global _provider, _looked
    _provider, _looked = provider, True


def _configured() -> Any:
    global _looked
    if not _looked:
        _looked = True
        exporter = _exporter()
        if exporter is not None:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor

            provider = TracerProvider(resource=Resource.create(
                {"service.name": os.environ.get("OTEL_SERVICE_NAME", "mobile-mlops")}))
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            use(provider)
    return _provider


def _attribute(value: Any) -> Any:
    return value if isinstance(value, bool | int | float | str) else str(value)


@contextlib.contextmanager
def step_span(name: str) -> Iterator[Any]:
    """A span around one step (a no-op when tracing is off); `record` adds the step's figures to it."""
    provider = _configured()
    if provider is None:
        yield None
        return
    tracer = provider.get_tracer("mobile-mlops")
    attributes = {"mobile_mlops.step": name}
    if os.environ.get(RUN_ID_ENV):
        attributes["mobile_mlops.run_id"] = os.environ[RUN_ID_ENV]
    try:
        with tracer.start_as_current_span(f"step {name}", attributes=attributes) as span:
            yield span
    finally:
        provider.force_flush()


def record(span: Any, figures: dict[str, Any]) -> None:
    """The step's headline figures as span attributes (`mobile_mlops.<name>`)."""
    if span is not None:
        span.set_attributes({f"mobile_mlops.{key}": _attribute(value) for key, value in figures.items()})
