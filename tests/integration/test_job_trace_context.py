"""The Storage adapter's job messages carry the trace context of the work that queued them (the W3C
`traceparent` in the envelope), so a job's span continues that trace across the queue; with telemetry off
they carry none. On an Azurite of its own: the session's queues are read by other tests."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator

import pytest
from azure.storage.queue.aio import QueueServiceClient
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from devhost.azurite import Azurite
from shared import telemetry
from shared.adapters.queues import StorageJobQueue
from shared.adapters.storage import StorageClients
from shared.service.job_codec import decode_envelope
from shared.service.jobs import SYNC_QUEUE, sync_user
from tests.fixtures.azurite import fresh_storage

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_azurite() -> Iterator[Azurite]:
    with Azurite() as instance:
        yield instance


@pytest.fixture
async def storage(own_azurite: Azurite) -> AsyncIterator[StorageClients]:
    async with fresh_storage(own_azurite, "trace") as clients:
        yield clients


async def _sent(azurite: Azurite) -> list[bytes]:
    """Every message on the sync queue, taken off it (as a queue trigger receives them: base64 text)."""
    async with QueueServiceClient.from_connection_string(azurite.connection_string) as service:
        client = service.get_queue_client(SYNC_QUEUE)
        messages = [m async for m in client.receive_messages(messages_per_page=32)]
        for message in messages:
            await client.delete_message(message)
    return [base64.b64decode(m.content) for m in messages]


async def test_a_queued_job_carries_the_trace_of_the_work_that_queued_it(
    own_azurite: Azurite, storage: StorageClients
) -> None:
    provider = TracerProvider()
    telemetry.install(provider, MeterProvider(metric_readers=[InMemoryMetricReader()]))
    try:
        with provider.get_tracer("test").start_as_current_span("PUT appointment") as span:
            await StorageJobQueue(storage).enqueue([sync_user("contoso.example", "s1")])
        context = span.get_span_context()
    finally:
        telemetry.uninstall()

    [body] = await _sent(own_azurite)
    envelope = decode_envelope(SYNC_QUEUE, body)
    assert envelope.job == sync_user("contoso.example", "s1")
    version, trace_id, parent_id, flags = envelope.trace["traceparent"].split("-")
    assert (trace_id, parent_id) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")
    assert version == "00"
    assert int(flags, 16) & 1  # sampled


async def test_with_telemetry_off_a_queued_job_carries_no_trace(
    own_azurite: Azurite, storage: StorageClients
) -> None:
    await StorageJobQueue(storage).enqueue([sync_user("contoso.example", "s2")])

    [body] = await _sent(own_azurite)
    envelope = decode_envelope(SYNC_QUEUE, body)
    assert envelope.job == sync_user("contoso.example", "s2")
    assert not envelope.trace
