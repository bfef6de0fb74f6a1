"""Traces: off unless the OTEL_* variables ask; a span per step with its figures when on."""
from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pipelines.core import tracing


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                 "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tracing, "_provider", None)
    monkeypatch.setattr(tracing, "_looked", False)


def test_off_by_default():
    with tracing.step_span("raw_dataset") as span:
        assert span is None
    assert tracing._provider is None


def test_the_standard_variables_choose_the_exporter(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert type(tracing._exporter()).__name__ == "OTLPSpanExporter"
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    assert type(tracing._exporter()).__name__ == "ConsoleSpanExporter"
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert tracing._exporter() is None


def test_a_step_span_carries_its_figures(monkeypatch):
    monkeypatch.setenv(tracing.RUN_ID_ENV, "run-1")
    spans, provider = InMemorySpanExporter(), TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracing.use(provider)
    with tracing.step_span("model_evaluation") as span:
        tracing.record(span, {"accuracy": 0.85, "passed": True, "rows": 10})
    (finished,) = spans.get_finished_spans()
    assert finished.name == "step model_evaluation"
    assert dict(finished.attributes) == {"mobile_mlops.step": "model_evaluation", "mobile_mlops.run_id": "run-1",
                                         "mobile_mlops.accuracy": 0.85, "mobile_mlops.passed": True,
                                         "mobile_mlops.rows": 10}
