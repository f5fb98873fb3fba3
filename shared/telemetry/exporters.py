"""Where telemetry goes, from the settings; imported on the first invocation only when one is configured.

- `APPLICATIONINSIGHTS_CONNECTION_STRING`: Microsoft's distro (`configure_azure_monitor`), with the
  app's managed identity as its credential (the Application Insights resource refuses local auth,
  `infra/core/monitor/monitoring.bicep`), the connector's logger (`connector`) exported with its records'
  attributes as custom dimensions, and no other instrumentation: kiota traces every Graph request
  already, `ports.MeasuredWebhook` the host's webhook; the Azure SDKs' spans (a dozen Table and Queue
  calls per sync job) are left off, and kiota's dozen spans per Graph request too: the connector's
  transport makes one (`graph.py`, `sampling.py`).
- `TELEMETRY_EXPORTER=console`: spans, metrics and log records printed on stdout (the local host's log).
  `TELEMETRY_SAMPLING_RATIO` (default 1) exports that share of the traces, failed spans always
  (`sampling.py`).
- `TELEMETRY_EXPORTER=http://127.0.0.1:4318`: OTLP over HTTP to a local collector (Jaeger, Aspire's
  dashboard, an OpenTelemetry Collector); `opentelemetry-exporter-otlp-proto-http` is a development
  dependency.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from shared.telemetry.sampling import ErrorsKept, RoutineTraces, quieten_graph_spans

if TYPE_CHECKING:
    from opentelemetry._logs import LoggerProvider
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.trace import TracerProvider

    from shared.settings import Settings
SERVICE_NAME: Final = "m365-calendar-connector"
METRIC_INTERVAL_MS: Final = 60_000  # as the distro's default
Providers = tuple["TracerProvider", "MeterProvider", "LoggerProvider | None", Callable[[], None]]


def _resource(settings: Settings) -> Resource:
    from opentelemetry.sdk.resources import Resource

    return Resource.create({"service.name": SERVICE_NAME, "service.version": settings.version})


def providers_for(settings: Settings) -> Providers | None:
    if settings.applicationinsights_connection_string:
        return _azure_monitor(settings, settings.applicationinsights_connection_string)
    if settings.telemetry_exporter:
        return _local(settings, settings.telemetry_exporter)
    return None


def _azure_monitor(settings: Settings, connection_string: str) -> Providers:
    from azure.monitor.opentelemetry import configure_azure_monitor
    from opentelemetry import _logs, metrics, trace

    credential = None
    if settings.identity.client_id and not settings.identity.uses_secret:
        from azure.identity import ManagedIdentityCredential

        credential = ManagedIdentityCredential(client_id=settings.identity.client_id)
    off = {"enabled": False}
    configure_azure_monitor(
        connection_string=connection_string,
        credential=credential,
        logger_name="connector",
        resource=_resource(settings),
        instrumentation_options={
            **{name: off for name in ("azure_sdk", "httpx", "requests", "urllib", "urllib3")},
            **{name: off for name in ("django", "fastapi", "flask", "psycopg2")},
        },
    )
    tracer_provider, meter_provider = trace.get_tracer_provider(), metrics.get_meter_provider()
    quieten_graph_spans(tracer_provider)

    def flush() -> None:
        for provider in (tracer_provider, meter_provider):
            force_flush = getattr(provider, "force_flush", None)
            if force_flush is not None:
                force_flush()

    # The distro puts OpenTelemetry's log handler on the connector's logger; `install` puts the
    # connector's cheaper one (`log_events.py`) in its place, on the distro's provider.
    return tracer_provider, meter_provider, _logs.get_logger_provider(), flush


def _local(settings: Settings, exporter: str) -> Providers:
    from opentelemetry import metrics
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

    spans: SpanExporter
    metric_exporter: MetricExporter
    logs: LogRecordExporter
    if exporter == "console":
        from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        spans, metric_exporter = ConsoleSpanExporter(), ConsoleMetricExporter()
        logs = ConsoleLogRecordExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        base = exporter.rstrip("/")
        spans = OTLPSpanExporter(endpoint=f"{base}/v1/traces")
        metric_exporter = OTLPMetricExporter(endpoint=f"{base}/v1/metrics")
        logs = OTLPLogExporter(endpoint=f"{base}/v1/logs")
    resource = _resource(settings)
    tracer_provider = TracerProvider(
        resource=resource, sampler=RoutineTraces(settings.telemetry_sampling_ratio)
    )
    quieten_graph_spans(tracer_provider)
    tracer_provider.add_span_processor(ErrorsKept(BatchSpanProcessor(spans)))
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=[PeriodicExportingMetricReader(metric_exporter, METRIC_INTERVAL_MS)],
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(logs))
    # Not global: kiota's tracers stay the API's no-op ones (the connector's transport traces Graph).
    metrics.set_meter_provider(meter_provider)

    def shutdown() -> None:
        tracer_provider.shutdown()
        meter_provider.shutdown()
        logger_provider.shutdown()

    return tracer_provider, meter_provider, logger_provider, shutdown
