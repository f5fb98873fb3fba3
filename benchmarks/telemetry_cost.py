"""What the connector's telemetry costs in CPU, in process, away from the shared VM's noise.

    .venv/bin/python -m benchmarks.telemetry_cost [--users 300] [--requests 2000] [--records 5000]
                                                  [--jobs 1000]

1. A migration on the fakes (`tests/fakes`): `--users` users of 20 events, each migrate job run through the
   job dispatch as a queue message, telemetry off, then on (the connector's spans, log records and metrics,
   serialised as OTLP protobuf as the exporter would, flushed before the clock stops). CPU per user.
2. A Graph request through msgraph-sdk's middleware on a mock transport under the connector's
   `CountedTransport`, `--requests` times: no tracer provider (telemetry off), the SDK's provider with
   kiota's tracers off and the transport's one span and counts (the connector's, `shared/telemetry/`), and
   with all of kiota's spans (and nothing of the connector's). CPU per request. Each variant runs in its
   own process (a tracer provider is set once per process).
3. One log record of the connector's logger with its bound context (tenant, user, invocation, job) and a
   dimension of its own, `--records` times, exported in batches that encode it as OTLP protobuf: through
   OpenTelemetry's `LoggingHandler` (what the distro attaches; the record's dimensions also its members,
   as they were before) and through the connector's `ContextHandler` (`shared/telemetry/log_events.py`),
   alternating. CPU per record.
4. What telemetry adds to the path of one Outlook change: `--jobs` notified sync runs (one new event each,
   20 migrated users on the fakes) through the job dispatch as queue messages, telemetry off and on
   alternating (on: the local exporters' sampler and processors, every trace, spans and records encoded as
   OTLP protobuf in their batch threads, flushed before the clock stops). CPU per job.

Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class EncodingSpans(SpanExporter):
    """Encodes each batch as the OTLP exporter would, and sends it nowhere."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        encode_spans(spans).SerializeToString()
        return SpanExportResult.SUCCESS


class EncodingLogs(LogRecordExporter):
    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs

        encode_logs(batch).SerializeToString()
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


async def migration(users: int, on: bool) -> float:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from shared import telemetry
    from shared.domain.tenants import TenantState
    from shared.observability import configure_logging
    from shared.service import jobs
    from shared.service.job_codec import encode
    from shared.service.job_handlers import run_message
    from tests.fakes.events import event
    from tests.fakes.services import add_tenant, fake_world

    configure_logging()
    logging.getLogger("connector").propagate = False  # the records go to telemetry only, not stderr
    world = fake_world()
    directory = "9188040d-6c67-4c5b-b112-36a304b66dad"
    await add_tenant(world, "bench.example", TenantState.MIGRATING, directory_id=directory, matched=users)
    for user in range(1, users + 1):
        for number in range(20):
            world.mailboxes.put(f"g{user}", event(f"E{user}-{number}"))
    if on:
        tracer_provider, logger_provider = TracerProvider(), LoggerProvider()
        tracer_provider.add_span_processor(BatchSpanProcessor(EncodingSpans()))
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(EncodingLogs()))
        telemetry.install(
            tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()]), logger_provider
        )
    services = telemetry.instrument(world.services)
    started = time.process_time()
    for user in range(1, users + 1):
        message = encode(jobs.migrate_user("bench.example", f"s{user}"), telemetry.carrier())
        await run_message(services, jobs.SYNC_QUEUE, message, invocation_id="bench")
    if on:
        tracer_provider.force_flush()
        logger_provider.force_flush()
    used = time.process_time() - started
    telemetry.uninstall()
    return used / users * 1000


def graph_request(mode: str, requests: int) -> float:
    import httpx

    from shared import telemetry
    from shared.telemetry.graph import CountedTransport
    from tests.fakes.graph_http import graph_over

    if mode != "none":
        from opentelemetry import trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from shared.telemetry.sampling import quieten_graph_spans

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(EncodingSpans()))
        trace.set_tracer_provider(provider)
        if mode == "one span":
            quieten_graph_spans(provider)
            telemetry.install(provider, MeterProvider(metric_readers=[InMemoryMetricReader()]))
    mock = httpx.MockTransport(lambda request: httpx.Response(200, json={}))
    graph = graph_over(CountedTransport(mock), "https://g.example")

    async def run() -> float:
        for _ in range(100):
            await graph.request_json("GET", "/users/g1/events")
        started = time.process_time()
        for _ in range(requests):
            await graph.request_json("GET", "/users/g1/events")
        return (time.process_time() - started) / requests * 1e6

    return asyncio.run(run())


class _DimensionsAsMembers(logging.Filter):
    """Each dimension a member of the record too, as the connector's records were for OpenTelemetry's
    handler (which exports the members) before its own handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (getattr(record, "custom_dimensions", None) or {}).items():
            setattr(record, key, value)
        return True


def log_records(handler_kind: str, records: int) -> float:
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    from shared.observability import bound, configure_logging, get_logger
    from shared.telemetry.log_events import ContextHandler

    configure_logging()
    provider = LoggerProvider()
    provider.add_log_record_processor(BatchLogRecordProcessor(EncodingLogs()))
    handler: logging.Handler = (
        ContextHandler(provider) if handler_kind == "connector" else LoggingHandler(logging.INFO, provider)
    )
    if handler_kind != "connector":
        handler.addFilter(_DimensionsAsMembers())
    connector = logging.getLogger("connector")
    connector.propagate = False
    connector.addHandler(handler)
    logger = get_logger("sync")
    try:
        with bound(tenant="contoso.example", user="s1", invocation_id="inv-1", job="notified"):
            started = time.process_time()
            for number in range(records):
                logger.info("synced (%d changes)", number, extra={"custom_dimensions": {"changes": number}})
            provider.force_flush()
            return (time.process_time() - started) / records * 1e6
    finally:
        connector.removeHandler(handler)
        provider.shutdown()


async def notified_runs(count: int, on: bool) -> float:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from shared import telemetry
    from shared.domain.tenants import TenantState
    from shared.observability import configure_logging
    from shared.service import jobs
    from shared.service.job_codec import encode
    from shared.service.job_handlers import run_job, run_message
    from shared.telemetry.sampling import ErrorsKept, RoutineTraces
    from tests.fakes.events import event
    from tests.fakes.services import add_tenant, fake_world

    configure_logging()
    logging.getLogger("connector").propagate = False
    world = fake_world()
    directory = "9188040d-6c67-4c5b-b112-36a304b66dad"
    await add_tenant(world, "bench.example", TenantState.MIGRATING, directory_id=directory, matched=20)
    for user in range(1, 21):
        world.mailboxes.put(f"g{user}", event(f"E{user}"))
        await run_job(world.services, jobs.migrate_user("bench.example", f"s{user}"))
    world.jobs.take()
    tracer_provider, logger_provider = TracerProvider(sampler=RoutineTraces(1.0)), LoggerProvider()
    if on:
        tracer_provider.add_span_processor(ErrorsKept(BatchSpanProcessor(EncodingSpans())))
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(EncodingLogs()))
        telemetry.install(
            tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()]), logger_provider
        )
    services = telemetry.instrument(world.services)
    started = time.process_time()
    for number in range(count):
        user = number % 20 + 1
        world.mailboxes.put(f"g{user}", event(f"N{number}"))
        message = encode(jobs.sync_user("bench.example", f"s{user}"), telemetry.carrier())
        await run_message(services, jobs.SYNC_QUEUE, message, invocation_id="bench")
        world.jobs.take()
    if on:
        tracer_provider.force_flush()
        logger_provider.force_flush()
    used = time.process_time() - started
    telemetry.uninstall()
    return used / count * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.telemetry_cost", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--graph-mode", default="", help=argparse.SUPPRESS)  # one variant, in a child process
    args = parser.parse_args(argv)
    if args.graph_mode:
        print(f"{graph_request(args.graph_mode, args.requests):.0f}")
        return
    print(f"1. Migration on the fakes, {args.users} users x 20 events (CPU per migrated user)")
    for on in (False, True, False, True):
        milliseconds = asyncio.run(migration(args.users, on))
        print(f"  telemetry {'on ' if on else 'off'}: {milliseconds:.2f} ms")
    print(f"2. One Graph request through msgraph-sdk's middleware, {args.requests} times (CPU per request)")
    for mode in ("none", "one span", "all of kiota's"):
        found = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.telemetry_cost",
                "--graph-mode",
                mode,
                "--requests",
                str(args.requests),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[-1]
        print(f"  {mode:<16} {found} us")
    print(f"3. One log record with its context, {args.records} times (CPU per record, encoding included)")
    for kind in ("opentelemetry", "connector", "opentelemetry", "connector"):
        cost = log_records(kind, args.records)
        label = f"{kind}'s handler"
        print(f"  {label:<26} {cost:.0f} us")
    print(f"4. A notified sync run of one changed event, {args.jobs} times (CPU per job)")
    for on in (False, True, False, True):
        milliseconds = asyncio.run(notified_runs(args.jobs, on))
        print(f"  telemetry {'on ' if on else 'off'}: {milliseconds:.3f} ms")


if __name__ == "__main__":
    main()
