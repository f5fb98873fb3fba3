"""What the connector's traces cost: kiota's spans switched off, and locally a share of routine traces.

One span per Graph request, the connector's own (`graph.py`, at the HTTP transport under msgraph-sdk's
middleware), and none of kiota's: kiota opens a span for its request and one under it for each of its
middleware handlers, each retry and redirect (13 for a plain GET). Dropping all but the outermost by a
sampler still cost each of them a sampling decision, a span object and a context switch (about 100 us a
request, `python -m benchmarks.telemetry_cost`); a disabled tracer answers a non-recording span at once.

kiota's tracers are disabled on the provider by the SDK's tracer configurator (`_set_tracer_configurator`,
still underscored in opentelemetry-sdk: experimental in the specification), so the distro's provider is
quietened as the local one is.

Locally (`TELEMETRY_SAMPLING_RATIO`, default 1: every trace) `RoutineTraces` exports that share of the traces
whole, decided by trace id: the same decision in every worker a trace crosses through its queue messages,
whatever the sampled flag of a remote parent says. The others' spans are recorded but not exported, except a
failed one (`ErrorsKept`): errors are always kept. In Azure the distro's own sampler decides (by default at
most 5 traces a second, README); its unsampled spans are not recorded at all, so there a failed span of an
unsampled trace is not kept."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider, _TracerConfig
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

# kiota's tracer names (kiota_http's ObservabilityOptions, kiota_abstractions, kiota_authentication_azure)
KIOTA_TRACERS: Final = frozenset(
    {
        "com.microsoft.com:microsoft-kiota-http-httpx",
        "microsoft-python-kiota-abstractions",
        "microsoft-kiota-authentication-azure",
    }
)
# The trace id's rightmost 7 bytes: random in a W3C trace id (Trace Context level 2) and in a UUID4 made
# one (the local host's); the SDK's TraceIdRatioBased reads 8 bytes, whose top bits a UUID4 fixes (its
# variant), so it never kept one at a ratio under 1/2.
RANDOM_BITS: Final = 56
_ON: Final = _TracerConfig(is_enabled=True)
_OFF: Final = _TracerConfig(is_enabled=False)


def _tracer_config(scope: InstrumentationScope) -> _TracerConfig:
    return _OFF if scope.name in KIOTA_TRACERS else _ON


def quieten_graph_spans(provider: object) -> None:
    """Switch kiota's tracers off on this provider (those made already too)."""
    if isinstance(provider, TracerProvider):
        provider._set_tracer_configurator(tracer_configurator=_tracer_config)


class RoutineTraces(Sampler):
    """`ratio` of the traces exported (by trace id); the rest recorded only, for `ErrorsKept`."""

    def __init__(self, ratio: float) -> None:
        self._ratio = ratio
        self._bound = round(ratio * (1 << RANDOM_BITS))

    def should_sample(  # noqa: PLR0917 (the SDK's signature)
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if parent.is_valid and not parent.is_remote:
            kept = parent.trace_flags.sampled  # within a worker, a span follows its parent
        else:  # a new trace, or one continued from a queue message or the host: decided by its id
            kept = trace_id & ((1 << RANDOM_BITS) - 1) < self._bound
        return SamplingResult(
            Decision.RECORD_AND_SAMPLE if kept else Decision.RECORD_ONLY,
            attributes,
            parent.trace_state if parent.is_valid else None,
        )

    def get_description(self) -> str:
        return f"RoutineTraces({self._ratio})"


class ErrorsKept(SpanProcessor):
    """Passes the sampled spans to the exporting processor, and of the others those that failed."""

    def __init__(self, exporting: SpanProcessor) -> None:
        self._exporting = exporting

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._exporting.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None or context.trace_flags.sampled:
            self._exporting.on_end(span)
        elif span.status.status_code is StatusCode.ERROR:
            self._exporting.on_end(_exported(span, context))

    def shutdown(self) -> None:
        self._exporting.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._exporting.force_flush(timeout_millis)


def _exported(span: ReadableSpan, context: SpanContext) -> ReadableSpan:
    """The span as a sampled one (what an exporting processor sends)."""
    return ReadableSpan(
        name=span.name,
        context=SpanContext(
            context.trace_id, context.span_id, False, TraceFlags(TraceFlags.SAMPLED), context.trace_state
        ),
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes,
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
