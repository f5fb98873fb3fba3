"""One span per Graph request, not a dozen: kiota opens a span for its request and one under it for each of
its middleware handlers, each retry and redirect (13 for a plain GET, about 12 KB exported). The outermost
(`send_primitive_async - ...` and its siblings) carries the method, URL and status, so the spans beneath it
are dropped; everything else is left to the sampler the provider had."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

# kiota's outer span of a request: `{method} - {url template}`
KIOTA_REQUESTS: Final = (
    "send_async",
    "send_primitive_async",
    "send_collection_async",
    "send_collection_of_primitive_async",
    "send_no_response_content_async",
)
KIOTA_NOISE: Final = ("retry_cae_response_if_required",)  # an empty span beside each request


class OneSpanPerGraphRequest(Sampler):
    def __init__(self, inner: Sampler) -> None:
        self._inner = inner

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
        parent = trace.get_current_span(parent_context)
        parent_name = getattr(parent, "name", None)
        within_request = isinstance(parent_name, str) and parent_name.startswith(KIOTA_REQUESTS)
        parent_context_of = parent.get_span_context()
        dropped_parent = (
            parent_context_of.is_valid
            and not parent_context_of.is_remote
            and not parent_context_of.trace_flags.sampled
        )
        if within_request or dropped_parent or name.startswith(KIOTA_NOISE):
            return SamplingResult(
                Decision.DROP, None, parent_context_of.trace_state if parent_context_of.is_valid else None
            )
        return self._inner.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"OneSpanPerGraphRequest({self._inner.get_description()})"


def quieten_graph_spans(provider: object) -> None:
    """Wrap the provider's sampler (before any tracer is made from it)."""
    if isinstance(provider, TracerProvider) and not isinstance(provider.sampler, OneSpanPerGraphRequest):
        provider.sampler = OneSpanPerGraphRequest(provider.sampler)
