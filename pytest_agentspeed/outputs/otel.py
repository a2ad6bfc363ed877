"""``--agentspeed-otel``: each session as an OpenTelemetry trace, plus the GenAI client
metrics, sent over OTLP/HTTP (protobuf) as the standard ``OTEL_*`` variables say.

The spans and metric values come from :mod:`pytest_agentspeed.outputs.otel_spans`; this
module hands them to the SDK with their recorded times, on a tracer and meter provider of its
own (never the process's global ones: the user's process may have its own), and sends them
once, at the end of the run (:meth:`OtelExporter.run_finished`, in the process that ends it,
so an xdist run exports every worker's sessions). The SDK's exporters only log a failure; the
export results are checked here, and a refusal is an ``OSError`` like any output that cannot
be written. The SDK is imported when the run ends, never when the plugin loads.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from pytest_agentspeed.outputs.otel_spans import (
    CAPTURE_CONTENT_VARIABLE,
    METRIC_UNITS,
    OPERATION_DURATION,
    TIME_PER_OUTPUT_TOKEN,
    TIME_TO_FIRST_TOKEN,
    TOKEN_USAGE,
    SessionTrace,
    SpanSpec,
    metric_points,
    session_trace,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource

    from pytest_agentspeed.records import RunRecord, SessionRecord

#: ``service.name`` unless ``OTEL_SERVICE_NAME`` or ``OTEL_RESOURCE_ATTRIBUTES`` say another.
DEFAULT_SERVICE_NAME = "pytest-agentspeed"
#: The OTLP/HTTP default when no endpoint variable is set.
DEFAULT_OTLP_ENDPOINT = "http://localhost:4318"
#: The instrumentation scope the spans and metrics are reported under.
SCOPE = "pytest_agentspeed"
#: Spans per export request (a long run's trace is sent in several).
SPANS_PER_REQUEST = 1024

#: The bucket boundaries the GenAI semantic conventions advise for each histogram.
BUCKETS: dict[str, tuple[float, ...]] = {
    OPERATION_DURATION: (
        0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
    ),
    TOKEN_USAGE: (
        1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216,
        67108864,
    ),
    TIME_TO_FIRST_TOKEN: (
        0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
        10.0,
    ),
    TIME_PER_OUTPUT_TOKEN: (
        0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
    ),
}  # fmt: skip
DESCRIPTIONS = {
    OPERATION_DURATION: "GenAI operation duration",
    TOKEN_USAGE: "Number of input and output tokens used",
    TIME_TO_FIRST_TOKEN: "Time to generate first token for successful responses",
    TIME_PER_OUTPUT_TOKEN: "Time per output token generated after the first token",
}


def otlp_endpoint(signal: str, environ: Mapping[str, str] = os.environ) -> str:
    """Where ``signal`` (``traces`` or ``metrics``) is sent: ``OTEL_EXPORTER_OTLP_<SIGNAL>_
    ENDPOINT`` as given, else ``OTEL_EXPORTER_OTLP_ENDPOINT`` (default
    ``http://localhost:4318``) plus ``/v1/<signal>``, as the OTLP exporter specification
    says."""
    given = environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
    if given:
        return given
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or DEFAULT_OTLP_ENDPOINT
    return f"{base.rstrip('/')}/v1/{signal}"


def shown_url(url: str) -> str:
    """``url`` as a message may show it: without user, password or query (a collector's
    token sometimes rides there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def capture_content(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the user opted in to exporting content (``docs/otel.md``, Privacy)."""
    return environ.get(CAPTURE_CONTENT_VARIABLE, "").strip().lower() == "true"


class OtelExporter:
    """Exports the run's sessions as traces and the GenAI client metrics over OTLP/HTTP.

    The ``OTEL_*`` variables are the process's, read when it is made (the endpoints) and when
    the SDK sends (headers, timeout, compression, resource).

    :param instructions: the run's task instructions by task id, asked for only when the user
        opted in to content capture.
    """

    def __init__(self, *, instructions: Callable[[], Mapping[str, str]] | None = None) -> None:
        self.instructions = instructions
        self.traces_url = otlp_endpoint("traces")
        self.metrics_url = otlp_endpoint("metrics")

    @property
    def target(self) -> str:
        """The collector, as the line saying it refused names it."""
        return f"OpenTelemetry collector {shown_url(self.traces_url)}"

    def session_finished(self, record: SessionRecord) -> None:
        """Nothing: the traces are sent at the end, by the process that ends the run."""

    def run_finished(self, run: RunRecord) -> None:
        """Send one trace per session, then the metrics.

        :raises OSError: when the collector cannot be reached or refuses either.
        """
        traces = self.traces(run)
        if not traces:
            return
        resource = self._resource()
        with _sdk_logs_kept() as logs:
            if not _export_spans(traces, resource, self.traces_url, run.agentspeed_version):
                raise OSError(_refusal("traces", None, logs))
            if not _export_metrics(traces, resource, self.metrics_url, run.agentspeed_version):
                raise OSError(_refusal("metrics", self.metrics_url, logs))

    def traces(self, run: RunRecord) -> list[SessionTrace]:
        """The run's sessions as traces (with content only when the user opted in)."""
        endpoints = {e.name: e for e in run.endpoints}
        texts: Mapping[str, str] = {}
        if capture_content() and self.instructions is not None:
            texts = self.instructions()
        return [
            session_trace(s, endpoints.get(s.endpoint), instruction=texts.get(s.task))
            for s in run.sessions
        ]

    def _resource(self) -> Resource:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource

        # Resource.create reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME; without a
        # service name it says "unknown_service", which ours replaces.
        resource = Resource.create({})
        if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
            resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
        return resource


def _export_spans(
    traces: Sequence[SessionTrace], resource: Resource, url: str, version: str
) -> bool:
    """Emit the spans on a provider of our own and send them; whether the collector took
    every request."""
    from opentelemetry import trace as api
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    kept = InMemorySpanExporter()
    # Every session is exported: a benchmark's trace is not sampled (OTEL_TRACES_SAMPLER is
    # for the user's own spans).
    provider = TracerProvider(resource=resource, sampler=ALWAYS_ON)
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer(SCOPE, version)
    kinds = {"internal": api.SpanKind.INTERNAL, "client": api.SpanKind.CLIENT}
    for t in traces:
        root = _emit(tracer, t.root, kinds, None)
        parent = api.set_span_in_context(root)
        for child in t.children:
            _emit(tracer, child, kinds, parent)
    spans = kept.get_finished_spans()
    exporter = OTLPSpanExporter(endpoint=url)
    try:
        return all(
            exporter.export(spans[i : i + SPANS_PER_REQUEST]) == SpanExportResult.SUCCESS
            for i in range(0, len(spans), SPANS_PER_REQUEST)
        )
    finally:
        exporter.shutdown()  # type: ignore[no-untyped-call]  # the SDK leaves it untyped
        provider.shutdown()


def _emit(tracer: Any, spec: SpanSpec, kinds: Mapping[str, Any], context: Any) -> Any:
    """Start and end one span at its recorded times; returns it (ended)."""
    from opentelemetry.trace import Status, StatusCode

    span = tracer.start_span(
        spec.name,
        context=context,
        kind=kinds[spec.kind],
        attributes=spec.attributes,
        start_time=spec.start_ns,
    )
    for event in spec.events:
        span.add_event(event.name, timestamp=event.time_ns)
    if spec.error is not None:
        span.set_status(Status(StatusCode.ERROR, spec.error))
    span.end(end_time=spec.end_ns)
    return span


def _export_metrics(
    traces: Sequence[SessionTrace], resource: Resource, url: str, version: str
) -> bool:
    """Record the GenAI client metrics on a meter provider of our own and send them once;
    whether the collector took them."""
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult

    points = metric_points(traces)
    if not points:
        return True
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter(SCOPE, version)
    histograms = {
        name: meter.create_histogram(
            name,
            unit=unit,
            description=DESCRIPTIONS[name],
            explicit_bucket_boundaries_advisory=list(BUCKETS[name]),
        )
        for name, unit in METRIC_UNITS.items()
    }
    for point in points:
        histograms[point.name].record(point.value, attributes=point.attributes)
    data = reader.get_metrics_data()
    exporter = OTLPMetricExporter(endpoint=url)
    try:
        return data is None or exporter.export(data) == MetricExportResult.SUCCESS
    finally:
        exporter.shutdown()
        provider.shutdown()


@contextmanager
def _sdk_logs_kept() -> Iterator[list[logging.LogRecord]]:
    """What the SDK's exporters log while they send: kept for the refusal's line, not shown
    (pytest would show each retry and traceback besides our one line)."""
    logger = logging.getLogger("opentelemetry.exporter")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.WARNING)
    saved = logger.propagate, logger.level
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.propagate, logger.level = saved


def _refusal(signal: str, url: str | None, logs: Sequence[logging.LogRecord]) -> str:
    """What went wrong, in words that follow ``cannot write <collector>:``: the HTTP status
    when the collector answered, and the signal (``url``: where it went, when that is not the
    collector the line names)."""
    status = next(
        (
            arg
            for record in reversed(logs)
            if isinstance(record.args, tuple)
            for arg in record.args
            if isinstance(arg, int) and 100 <= arg <= 599
        ),
        None,
    )
    what = f"the {signal}" if url is None else f"the {signal} at {shown_url(url)}"
    if status is not None:
        return f"HTTP {status} in answer to {what}"
    return f"no answer to {what} within OTEL_EXPORTER_OTLP_TIMEOUT (is the collector running?)"
