"""OpenTelemetry at the connector's edges: triggers, job dispatch, the Graph client, the host's webhook.

Configured once by the composition root (`configure`, from `shared.bootstrap.container()`): Microsoft's
distro for Azure Monitor when `APPLICATIONINSIGHTS_CONNECTION_STRING` is set, else the local exporter that
`TELEMETRY_EXPORTER` names (`console`, or an OTLP/HTTP endpoint), else nothing. Nothing here imports
OpenTelemetry at import time (the worker's cold start), and with nothing configured every helper is a
no-op that imports nothing.

What is traced: each HTTP function (a child of the invocation's own trace context, which the host
passes), each queued job (a child of the context its message carries: `shared.service.job_codec` puts
`carrier()` in the envelope, so one change is one trace from the webhook through the sync job, Graph and
the feed to the host's webhook; linked to the invocation's context), every Graph request (kiota's own
spans, children of the job's), each post to the host. Metric names are in `names.py`; the services are
left alone: ports are wrapped (`ports.py`; a user's sync run is counted, with its outcome, from the one
monitor message the sync's executor records as the run ends).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry._logs import LoggerProvider
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from shared.service.context import Services
    from shared.settings import Settings
    from shared.telemetry.instruments import Instruments

_instruments: Instruments | None = None
_teardown: list[Callable[[], None]] = []


def configure(settings: Settings) -> None:
    """Once per worker, from the composition root: the exporters the settings name (or none)."""
    if _instruments is not None:
        return
    from shared.telemetry.exporters import providers_for

    built = providers_for(settings)
    if built is not None:
        tracer_provider, meter_provider, logger_provider, teardown = built
        install(tracer_provider, meter_provider, logger_provider)
        _teardown.append(teardown)


def install(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    logger_provider: LoggerProvider | None = None,
) -> None:
    """Send the connector's spans and metrics to these providers (and its log records, when given, with
    their bound context as attributes). `configure` calls it; tests pass the SDK's in-memory exporters."""
    global _instruments  # noqa: PLW0603 (one set of instruments per worker)
    from shared.telemetry.instruments import Instruments
    from shared.telemetry.log_events import attach

    uninstall()
    _instruments = Instruments.build(tracer_provider, meter_provider)
    _teardown.append(attach(logger_provider))


def uninstall() -> None:
    """Stop sending (and flush what the providers hold); for tests and the local host's stop."""
    global _instruments  # noqa: PLW0603
    _instruments = None
    while _teardown:
        _teardown.pop()()


def enabled() -> bool:
    return _instruments is not None


def current() -> Instruments | None:
    return _instruments


def instrument(services: Services) -> Services:
    """The services with their feed, dead letters, host webhook and subscriptions measured (as they are
    when telemetry is off)."""
    if _instruments is None:
        return services
    from shared.telemetry.ports import instrumented

    return instrumented(services)


def carrier() -> dict[str, str]:
    """The current W3C trace context (`traceparent`, `tracestate`) for a queue message; {} when off."""
    if _instruments is None:
        return {}
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    found: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(found)
    return found


def _context_of(trace: Mapping[str, str]) -> Any:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract(dict(trace))


def _links(trace_parent: str | None) -> list[Any]:
    """A link to the invocation's own trace context (the host's), when it is a valid one."""
    if not trace_parent:
        return []
    from opentelemetry import trace

    span_context = trace.get_current_span(_context_of({"traceparent": trace_parent})).get_span_context()
    return [trace.Link(span_context)] if span_context.is_valid else []


def invocation_parent(context: object) -> str | None:
    """The `traceparent` the Functions host gives an invocation (`context.trace_context`), if any."""
    trace_context = getattr(context, "trace_context", None)
    parent = getattr(trace_context, "trace_parent", None)
    return parent if isinstance(parent, str) and parent else None


@contextlib.contextmanager
def http_function(function: str, trace_parent: str | None) -> Iterator[None]:
    """A span for one HTTP invocation, a child of the host's context for it (internal: the host reports
    the request itself)."""
    instruments = _instruments
    if instruments is None:
        yield
        return
    parent = _context_of({"traceparent": trace_parent}) if trace_parent else None
    with instruments.tracer.start_as_current_span(
        function, context=parent, attributes={"faas.trigger": "http"}
    ):
        yield


class WebhookCall:
    """What the Graph webhook tells about one POST: its notifications by outcome."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def received(self, accepted: int, forged: int, malformed: int) -> None:
        instruments = _instruments
        if instruments is None:
            return
        for outcome, count in (("accepted", accepted), ("forged", forged), ("malformed", malformed)):
            if count:
                instruments.notifications.add(count, {"kind": self.kind, "outcome": outcome})


@contextlib.contextmanager
def webhook_call(kind: str, trace_parent: str | None) -> Iterator[WebhookCall]:
    """Graph's webhook (`kind` change|lifecycle): a span, and its answer time."""
    call = WebhookCall(kind)
    instruments = _instruments
    if instruments is None:
        yield call
        return
    started = time.perf_counter()
    try:
        with http_function(f"graph {kind} notifications", trace_parent):
            yield call
    finally:
        instruments.webhook_duration.record((time.perf_counter() - started) * 1000, {"kind": kind})


def job_dropped(queue: str) -> None:
    """A message that carries no job (logged and dropped by the dispatch)."""
    instruments = _instruments
    if instruments is not None:
        instruments.jobs.add(1, {"queue": queue, "job": "", "outcome": "dropped"})


@contextlib.contextmanager
def job_run(
    queue: str,
    kind: str,
    trace: Mapping[str, str],
    trace_parent: str | None,
    *,
    tenant: str,
    message_id: str | None = None,
    last_try: bool = False,
) -> Iterator[None]:
    """One job from its queue: a span continuing the trace its message carries (linked to the
    invocation's own), its outcome and time; a failure on the `last_try` counts as poisoned."""
    instruments = _instruments
    if instruments is None:
        yield
        return
    from opentelemetry.trace import SpanKind

    attributes: dict[str, str] = {
        "messaging.system": "azure_queue_storage",
        "messaging.destination.name": queue,
        "messaging.operation.type": "process",
        "connector.job": kind,
        "connector.tenant": tenant,
    }
    if message_id:
        attributes["messaging.message.id"] = message_id
    labels = {"queue": queue, "job": kind}
    started, outcome = time.perf_counter(), "ok"
    try:
        # The message's context when it carries one (the work that queued it), else the invocation's.
        parent = trace or ({"traceparent": trace_parent} if trace_parent else {})
        with instruments.tracer.start_as_current_span(
            f"process {queue} {kind}",
            context=_context_of(parent) if parent else None,
            kind=SpanKind.CONSUMER,
            links=_links(trace_parent) if trace else [],
            attributes=attributes,
        ):
            yield
    except BaseException:
        outcome = "failed"
        if last_try:
            instruments.jobs_poisoned.add(1, {"queue": queue})
        raise
    finally:
        instruments.jobs.add(1, {**labels, "outcome": outcome})
        instruments.job_duration.record((time.perf_counter() - started) * 1000, labels)
