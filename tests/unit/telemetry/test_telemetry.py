"""Telemetry read back through OpenTelemetry's in-memory exporters: one notification's path is one trace
across the queues (webhook -> sync job -> feed -> delivery job -> host webhook), log records carry the
bound tenant, user and invocation as attributes, and the metrics count what happened."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import azure.functions as func
import httpx
import pytest
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared import bootstrap, telemetry
from shared.domain.signing import client_state
from shared.domain.tenants import TenantState
from shared.observability import LOGGER_NAME, bound, configure_logging, get_logger
from shared.service import jobs
from shared.service.context import Services
from shared.service.delivery_requests import DeliveryRequests
from shared.service.errors import DeliveryFailed
from shared.service.job_codec import decode, decode_envelope, encode
from shared.service.job_handlers import run_job, run_message
from shared.service.keys import HOST_WEBHOOK_SECRET, NOTIFICATION_KEY
from shared.telemetry import names
from shared.telemetry.graph import CountedTransport
from tests.fakes.events import event
from tests.fakes.graph_http import graph_over
from tests.fakes.services import FakeWorld, add_tenant, fake_world
from tests.fakes.storage import MessageJobs
from tests.unit.functions.host_api import http_routes

pytestmark = pytest.mark.unit

TID = "contoso.example"
DIRECTORY = "9188040d-6c67-4c5b-b112-36a304b66dad"
HOST_REQUEST = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"  # the host's, for the webhook
QUEUE_INVOCATION = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"  # the host's, for a job


@dataclass
class Exported:
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    logs: InMemoryLogRecordExporter

    def points(self, name: str) -> list[tuple[dict[str, Any], float]]:
        """(attributes, value) of every data point of the metric `name` collected so far."""
        data = self.metrics.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            value = getattr(point, "value", None)
                            found.append((dict(point.attributes or {}), getattr(point, "count", value)))
        return found

    def total(self, name: str, **attributes: Any) -> float:
        return sum(v for a, v in self.points(name) if all(a.get(k) == w for k, w in attributes.items()))


def _install() -> Exported:
    configure_logging()  # the connector's records at INFO, as the composition root sets them
    spans, reader, logs = InMemorySpanExporter(), InMemoryMetricReader(), InMemoryLogRecordExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    telemetry.install(tracer_provider, MeterProvider(metric_readers=[reader]), logger_provider)
    return Exported(spans, reader, logs)


@pytest.fixture
def telemetry_off_afterwards() -> Iterator[None]:
    yield
    telemetry.uninstall()


class _TraceContext:
    def __init__(self, parent: str) -> None:
        self.trace_parent, self.trace_state, self.attributes = parent, "", {}


class _Context:
    def __init__(self, invocation_id: str, parent: str) -> None:
        self.invocation_id = invocation_id
        self.trace_context = _TraceContext(parent)


class _Out:
    value: Any = None

    def set(self, value: Any) -> None:
        self.value = value


@dataclass
class _Container:
    services: Services


async def _migrated_world() -> tuple[FakeWorld, Services, MessageJobs, Exported]:
    """A migrated user s1 (event A); then telemetry on, over in-memory exporters, and the services
    measured, their queue keeping messages as the Storage adapter sends them."""
    world = fake_world()
    await add_tenant(world, TID, TenantState.MIGRATING, directory_id=DIRECTORY, matched=1)
    world.secrets.values[HOST_WEBHOOK_SECRET] = "whsec-telemetry"
    world.mailboxes.put("g1", event("A"))
    await run_job(world.services, jobs.migrate_user(TID, "s1"))
    world.jobs.take()
    exported = _install()
    queue = MessageJobs()
    services = dataclasses.replace(world.services, jobs=queue, delivery_requests=DeliveryRequests(queue))
    return world, telemetry.instrument(services), queue, exported


async def _notify(services: Services, graph_user_id: str, event_id: str, *, forged: int = 0) -> list[str]:
    """POST one valid notification (and `forged` forged ones) to the webhook function; the messages its
    queue output binding was given."""
    key = await services.keys.signing(NOTIFICATION_KEY)
    user = await services.users.get(TID, "s1")
    assert user is not None
    item = {
        "subscriptionId": user.subscription_id,
        "tenantId": DIRECTORY,
        "changeType": "updated",
        "resource": f"Users/{graph_user_id}/Events/{event_id}",
    }
    value = [{**item, "clientState": client_state(key.secret, key.version, DIRECTORY, graph_user_id)}]
    value += [{**item, "clientState": "v1.forged"}] * forged
    webhook = http_routes().match("POST", "graph/notifications").target
    request = func.HttpRequest(
        "POST", "http://localhost/api/graph/notifications", body=json.dumps({"value": value}).encode()
    )
    out = _Out()
    bootstrap.use_container(_Container(services))  # type: ignore[arg-type]
    try:
        answer = await webhook(request, jobs=out, context=_Context("inv-webhook", HOST_REQUEST))
    finally:
        bootstrap.use_container(None)
    assert answer.status_code == 202
    return list(out.value or [])


async def _run_messages(services: Services, queue: str, messages: list[str], invocation: str) -> None:
    for message in messages:
        await run_message(
            services,
            queue,
            message,
            trace_parent=QUEUE_INVOCATION,
            function=queue,
            invocation_id=invocation,
            message_id=f"msg-{invocation}",
        )


async def test_one_notification_is_one_trace_across_the_queues(telemetry_off_afterwards: None) -> None:
    world, services, queue, exported = await _migrated_world()
    world.mailboxes.put("g1", dataclasses.replace(event("A"), subject="Moved"))
    messages = await _notify(services, "g1", "A")
    await _run_messages(services, jobs.SYNC_QUEUE, messages, "inv-sync")
    deliveries = queue.take(jobs.DELIVERY_QUEUE)
    assert deliveries, "the sync queued a delivery"
    await _run_messages(services, jobs.DELIVERY_QUEUE, deliveries, "inv-deliver")
    assert [json.loads(d.body)["changes"][0]["type"] for d in world.webhook.received] == ["event.updated"]

    spans = {span.name: span for span in exported.spans.get_finished_spans()}
    webhook = spans["graph change notifications"]
    sync = spans["process sync-jobs notified"]
    append = spans["feed append"]
    deliver = spans["process host-deliveries deliver"]
    post = spans["POST host webhook"]
    assert len({s.context.trace_id for s in (webhook, sync, append, deliver, post)}) == 1
    # the webhook continues the host's request; each job continues the work that queued it
    assert webhook.context.trace_id == int(HOST_REQUEST.split("-")[1], 16)
    assert _parent(sync) == webhook.context.span_id and sync.kind is SpanKind.CONSUMER
    assert _parent(append) == sync.context.span_id
    assert _parent(deliver) == sync.context.span_id
    assert _parent(post) == deliver.context.span_id and post.kind is SpanKind.CLIENT
    assert post.attributes is not None and post.attributes["connector.changes"] == 1
    # ... and is linked to its own invocation's context (the host's trace of the queue trigger)
    invocation_trace = int(QUEUE_INVOCATION.split("-")[1], 16)
    assert [link.context.trace_id for link in sync.links] == [invocation_trace]


def _parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_log_records_carry_tenant_user_and_invocation_as_attributes(
    telemetry_off_afterwards: None,
) -> None:
    world, services, _, exported = await _migrated_world()
    world.mailboxes.put("g1", event("B"))
    messages = await _notify(services, "g1", "B")
    await _run_messages(services, jobs.SYNC_QUEUE, messages, "inv-42")

    records = [r.log_record for r in exported.logs.get_finished_logs()]
    synced = [r for r in records if str(r.body).startswith("synced (")]
    assert len(synced) == 1
    attributes = dict(synced[0].attributes or {})
    assert attributes["tenant"] == TID
    assert attributes["user"] == "s1"
    assert attributes["invocation_id"] == "inv-42"
    assert attributes["job"] == "notified"
    job_span = next(s for s in exported.spans.get_finished_spans() if s.name.startswith("process sync-jobs"))
    assert synced[0].trace_id == job_span.context.trace_id  # the record is in the job's trace


def test_a_records_dimensions_are_its_attributes_each_once_flat(telemetry_off_afterwards: None) -> None:
    exported = _install()
    logger = get_logger("telemetry-test")
    with bound(tenant=TID, user="s1", invocation_id="inv-7"):
        logger.info("refused %d", 2, extra={"custom_dimensions": {"forged": 2, "user": "s2"}})

    [record] = [r.log_record for r in exported.logs.get_finished_logs()]
    assert record.body == "refused 2"
    assert record.severity_text == "INFO"
    # The record's own dimension wins over the bound one; no nested copy of them all.
    assert dict(record.attributes or {}) == {
        "tenant": TID,
        "user": "s2",
        "invocation_id": "inv-7",
        "forged": 2,
    }


def test_a_failed_records_exception_is_exported_with_its_type_and_stack(
    telemetry_off_afterwards: None,
) -> None:
    exported = _install()
    logger = get_logger("telemetry-test")
    try:
        raise ValueError("no such list")
    except ValueError:
        logger.exception("the list lookup failed")

    [record] = [r.log_record for r in exported.logs.get_finished_logs()]
    attributes = dict(record.attributes or {})
    assert record.severity_text == "ERROR"
    assert attributes["exception.type"] == "ValueError"
    assert attributes["exception.message"] == "no such list"
    assert "raise ValueError" in str(attributes["exception.stacktrace"])


def test_the_distros_log_handler_gives_way_each_record_exported_once(telemetry_off_afterwards: None) -> None:
    """The distro puts OpenTelemetry's handler on the connector's logger before `install` attaches the
    connector's: one handler, one export per record."""
    configure_logging()
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    connector = logging.getLogger(LOGGER_NAME)
    distros = LoggingHandler(logger_provider=logger_provider)
    connector.addHandler(distros)
    try:
        telemetry.install(
            TracerProvider(), MeterProvider(metric_readers=[InMemoryMetricReader()]), logger_provider
        )
        with bound(tenant=TID):
            get_logger("telemetry-test").info("once")
    finally:
        connector.removeHandler(distros)

    exported = [r.log_record for r in logs.get_finished_logs()]
    assert [r.body for r in exported] == ["once"]
    assert "custom_dimensions" not in dict(exported[0].attributes or {})


async def test_metrics_count_notifications_jobs_runs_changes_and_deliveries(
    telemetry_off_afterwards: None,
) -> None:
    world, services, queue, exported = await _migrated_world()
    world.mailboxes.put("g1", event("C"))
    messages = await _notify(services, "g1", "C", forged=2)
    await _run_messages(services, jobs.SYNC_QUEUE, messages, "inv-1")
    await _run_messages(services, jobs.SYNC_QUEUE, ["not a job"], "inv-2")
    await _run_messages(services, jobs.DELIVERY_QUEUE, queue.take(jobs.DELIVERY_QUEUE), "inv-3")

    assert exported.total(names.NOTIFICATIONS, kind="change", outcome="accepted") == 1
    assert exported.total(names.NOTIFICATIONS, kind="change", outcome="forged") == 2
    assert exported.total(names.WEBHOOK_DURATION, kind="change") == 1  # one answer timed
    assert exported.total(names.JOBS, queue="sync-jobs", job="notified", outcome="ok") == 1
    assert exported.total(names.JOBS, queue="sync-jobs", outcome="dropped") == 1
    assert exported.total(names.SYNC_RUNS, outcome="synced") == 1
    assert exported.total(names.CHANGES_PUBLISHED, tenant=TID, type="event.created") == 1
    assert exported.total(names.DELIVERIES, outcome="delivered") == 1
    assert exported.total(names.FEED_BACKLOG, tenant=TID) == 0  # published, then delivered


async def test_a_failed_delivery_stays_in_the_backlog_and_a_last_try_failure_is_poisoned(
    telemetry_off_afterwards: None,
) -> None:
    world, services, queue, exported = await _migrated_world()
    world.mailboxes.put("g1", event("D"))
    await _run_messages(services, jobs.SYNC_QUEUE, await _notify(services, "g1", "D"), "inv-1")
    refused = DeliveryFailed("410 from the host", retryable=False, status=410)
    world.webhook.failures.append(refused)  # the delivery dead-letters at once
    await _run_messages(services, jobs.DELIVERY_QUEUE, queue.take(jobs.DELIVERY_QUEUE), "inv-2")
    assert exported.total(names.DEAD_LETTERS, tenant=TID) == 1
    assert exported.total(names.FEED_BACKLOG, tenant=TID) == 1  # not delivered

    class Broken(Exception):
        pass

    async def broken(*_: Any) -> None:
        raise Broken

    message = encode(jobs.migrate_user(TID, "s1"))
    with pytest.raises(Broken):
        await run_message(dataclasses.replace(services, tenants=_Raising(broken)), "sync-jobs", message)
    await run_message(  # the last try: parked on the poison queue, not raised
        dataclasses.replace(services, tenants=_Raising(broken)), "sync-jobs", message, tries=jobs.MAX_DEQUEUE
    )
    assert exported.total(names.JOBS, queue="sync-jobs", job="migrate", outcome="failed") == 2
    assert exported.total(names.JOBS_POISONED, queue="sync-jobs") == 1


class _Raising:
    def __init__(self, fail: Any) -> None:
        self.fail = fail

    def __getattr__(self, name: str) -> Any:
        return self.fail


async def test_every_graph_answer_is_counted_retries_and_throttles_included(
    telemetry_off_afterwards: None,
) -> None:
    exported = _install()
    answers = iter([httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(200, json={})])
    graph = graph_over(
        CountedTransport(httpx.MockTransport(lambda _: next(answers))), "https://graph.example/v1.0"
    )
    await graph.request_json("GET", "/users/g1/events", retries=1)
    assert exported.total(names.GRAPH_REQUESTS, method="GET", status=429) == 1
    assert exported.total(names.GRAPH_REQUESTS, method="GET", status=200) == 1
    assert exported.total(names.GRAPH_THROTTLES, method="GET") == 1


def test_a_message_queued_without_trace_context_decodes_as_before() -> None:
    job = jobs.migrate_user(TID, "s1")
    legacy = encode(job)
    assert "trace" not in json.loads(legacy)
    assert decode_envelope(jobs.SYNC_QUEUE, legacy).trace == {}
    carried = encode(job, {"traceparent": HOST_REQUEST})
    assert decode(jobs.SYNC_QUEUE, carried) == job
    assert decode_envelope(jobs.SYNC_QUEUE, carried).trace == {"traceparent": HOST_REQUEST}
    odd = json.dumps({**json.loads(legacy), "trace": "not a map"})
    assert decode_envelope(jobs.SYNC_QUEUE, odd).trace == {}


def test_with_telemetry_off_nothing_is_carried_or_wrapped() -> None:
    world = fake_world()
    assert telemetry.carrier() == {}
    assert telemetry.instrument(world.services) is world.services


def test_the_poison_count_follows_the_hosts_max_dequeue_count() -> None:
    from pathlib import Path

    from shared.service.jobs import MAX_DEQUEUE as MAX_DEQUEUE_COUNT

    host = json.loads((Path(__file__).parents[3] / "host.json").read_text(encoding="utf-8"))
    assert host["extensions"]["queues"]["maxDequeueCount"] == MAX_DEQUEUE_COUNT


def test_kiotas_tracers_are_switched_off_on_the_provider() -> None:
    from shared.telemetry.sampling import KIOTA_TRACERS, quieten_graph_spans

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    made_before = provider.get_tracer("com.microsoft.com:microsoft-kiota-http-httpx")
    quieten_graph_spans(provider)
    with provider.get_tracer("connector").start_as_current_span("process sync-jobs notified") as job:
        for tracer in [made_before, *(provider.get_tracer(name) for name in KIOTA_TRACERS)]:
            with tracer.start_as_current_span("send_primitive_async - UNKNOWN") as kiotas:
                assert not kiotas.is_recording()
                assert kiotas.get_span_context() == job.get_span_context()  # the job's stays the parent
    assert [s.name for s in spans.get_finished_spans()] == ["process sync-jobs notified"]


async def test_a_graph_request_is_one_client_span_per_try_with_its_ids_taken_out(
    telemetry_off_afterwards: None,
) -> None:
    exported = _install()
    answers = iter([httpx.Response(503, headers={"Retry-After": "0"}), httpx.Response(200, json={})])
    graph = graph_over(
        CountedTransport(httpx.MockTransport(lambda _: next(answers))), "https://g.example/v1.0"
    )
    user = "8c1f2f6e-1234-4a5b-9c6d-0123456789ab"
    instruments = telemetry.current()
    assert instruments is not None
    with instruments.tracer.start_as_current_span("process sync-jobs migrate") as job:
        await graph.request_json("GET", f"/users/{user}/calendar/events/delta", retries=1)
    tries = [s for s in exported.spans.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert [s.name for s in tries] == ["GET /v1.0/users/{id}/calendar/events/delta"] * 2
    assert [dict(s.attributes or {})["http.response.status_code"] for s in tries] == [503, 200]
    assert [s.status.is_ok for s in tries] == [False, True]
    assert {_parent(s) for s in tries} == {job.get_span_context().span_id}
    assert all(user not in json.dumps(dict(s.attributes or {})) for s in tries)


@pytest.mark.parametrize("value", ["console", "http://127.0.0.1:4318", "https://collector.example"])
def test_the_local_exporter_setting_takes_console_or_an_otlp_url(value: str) -> None:
    from shared.settings import Settings
    from tests.unit.service.test_deliveries import minimal_environ

    parsed = Settings.from_environ(minimal_environ(TELEMETRY_EXPORTER=value))
    assert parsed.telemetry_exporter == value
    assert parsed.applicationinsights_connection_string is None


@pytest.mark.parametrize("value", ["jaeger", "127.0.0.1:4318", "otlp"])
def test_an_unusable_exporter_setting_stops_the_app_naming_it(value: str) -> None:
    from shared.settings import Settings, SettingsError
    from tests.unit.service.test_deliveries import minimal_environ

    with pytest.raises(SettingsError, match="TELEMETRY_EXPORTER"):
        Settings.from_environ(minimal_environ(TELEMETRY_EXPORTER=value))


async def test_renewals_are_counted_by_outcome_and_expiring_subscriptions_per_tenant(
    telemetry_off_afterwards: None,
) -> None:
    from datetime import timedelta

    from shared.service.errors import SubscriptionGone

    world = fake_world()
    tenant = await add_tenant(world, TID, TenantState.ACTIVE, directory_id=DIRECTORY, matched=2)
    now = world.clock.now()
    soon = await world.mailboxes.create(tenant, "g1", "state", now + timedelta(hours=5))
    await world.mailboxes.create(tenant, "g2", "state", now + timedelta(hours=40))
    exported = _install()
    subscriptions = telemetry.instrument(world.services).subscriptions

    assert len(await subscriptions.list(tenant)) == 2
    assert exported.points(names.SUBSCRIPTIONS_EXPIRING) == [({"tenant": TID}, 1)]  # within a day
    await subscriptions.renew(tenant, soon.id, now + timedelta(hours=48))
    with pytest.raises(SubscriptionGone):
        await subscriptions.renew(tenant, "gone-sub", now + timedelta(hours=48))
    assert exported.total(names.SUBSCRIPTION_RENEWALS, outcome="renewed") == 1
    assert exported.total(names.SUBSCRIPTION_RENEWALS, outcome="gone") == 1
    await subscriptions.list(tenant)
    assert exported.points(names.SUBSCRIPTIONS_EXPIRING) == [({"tenant": TID}, 0)]  # renewed: none soon


async def test_a_throttled_run_and_a_failed_one_count_as_such(telemetry_off_afterwards: None) -> None:
    from shared.service.errors import MailboxUnavailable
    from tests.fakes.calendar import throttled

    world = fake_world()
    await add_tenant(world, TID, TenantState.MIGRATING, directory_id=DIRECTORY, matched=2)
    world.mailboxes.mailbox("g1").faults.append(throttled(30))
    world.mailboxes.mailbox("g2").faults.append(MailboxUnavailable("the mailbox is not enabled for REST"))
    exported = _install()
    services = telemetry.instrument(world.services)
    for staff in ("s1", "s2"):
        await run_message(services, jobs.SYNC_QUEUE, encode(jobs.migrate_user(TID, staff)))
    assert exported.total(names.SYNC_RUNS, mode="migrate", outcome="throttled") == 1
    assert exported.total(names.SYNC_RUNS, mode="migrate", outcome="error") == 1
    assert exported.total(names.SYNC_RUNS, mode="migrate", outcome="synced") == 0
    # the To Do lists, reachable, migrated on their own beside the failed calendars
    assert exported.total(names.SYNC_RUNS, mode="tasks_migrate", outcome="synced") == 2


async def test_a_workers_first_call_is_traced_telemetry_set_up_before_its_span(
    monkeypatch: pytest.MonkeyPatch, telemetry_off_afterwards: None
) -> None:
    """Regression: the composition root configured telemetry inside the first call, after its span had
    (not) opened, so each worker's first request went untraced."""
    from shared.telemetry import exporters
    from tests.unit.service.test_deliveries import minimal_environ

    world = fake_world()
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    built = (tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()]), None, lambda: None)
    monkeypatch.setattr(exporters, "providers_for", lambda _settings: built)  # the exporter the settings name
    monkeypatch.setattr(bootstrap, "Container", lambda _settings: _Container(world.services))
    monkeypatch.setattr(bootstrap.os, "environ", minimal_environ())
    calls = {
        "graph change notifications": ("POST", "graph/notifications", b'{"value": []}'),
        "tenants_collection": ("GET", "v1/tenants", b""),
    }
    for name, (method, route, body) in calls.items():
        telemetry.uninstall()
        bootstrap.use_container(None)  # a new worker: nothing built, telemetry not configured
        spans.clear()
        endpoint = http_routes().match(method, route).target
        request = func.HttpRequest(method, f"http://localhost/api/{route}", body=body)
        try:
            if route.startswith("graph"):
                answer = await endpoint(request, jobs=_Out(), context=_Context("inv-first", HOST_REQUEST))
            else:
                answer = await endpoint(request, _Context("inv-first", HOST_REQUEST))
        finally:
            bootstrap.use_container(None)
        assert answer.status_code < 300
        assert [s.name for s in spans.get_finished_spans()] == [name]


async def test_a_run_the_mass_deletion_guard_held_counts_once_as_held(telemetry_off_afterwards: None) -> None:
    """Regression: counted from the sync's log lines, a held run counted twice, `held` and `synced` (the
    guard's warning and the run's closing line); the executor counts the run once, with its outcome."""
    world = fake_world()
    await add_tenant(world, TID, TenantState.MIGRATING, directory_id=DIRECTORY, matched=1)
    for number in range(15):
        world.mailboxes.put("g1", event(f"E{number}"))
    await run_job(world.services, jobs.migrate_user(TID, "s1"))
    for number in range(15):
        world.mailboxes.remove("g1", f"E{number}")
    exported = _install()
    await run_message(
        telemetry.instrument(world.services),
        jobs.SYNC_QUEUE,
        encode(jobs.sync_user(TID, "s1", "admin", kind="resync")),
    )
    assert exported.total(names.SYNC_RUNS, mode="resync", outcome="held") == 1
    assert exported.total(names.SYNC_RUNS) == 1


def test_a_sampled_share_of_traces_is_exported_whole_and_failed_spans_always() -> None:
    from opentelemetry.trace import Status, StatusCode

    from shared.telemetry.sampling import ErrorsKept, RoutineTraces

    def exported_spans(ratio: float) -> list[str]:
        spans = InMemorySpanExporter()
        provider = TracerProvider(sampler=RoutineTraces(ratio))
        provider.add_span_processor(ErrorsKept(SimpleSpanProcessor(spans)))
        tracer = provider.get_tracer("connector")
        with tracer.start_as_current_span("process sync-jobs migrate"):
            with tracer.start_as_current_span("GET /v1.0/users/{id}/events/delta") as failed:
                failed.set_status(Status(StatusCode.ERROR))
            with tracer.start_as_current_span("feed append"):
                pass
        # a job continuing a trace from its queue message: decided by the trace id, not the flag it carries
        parent = _context_of_message(QUEUE_INVOCATION)
        with tracer.start_as_current_span("process host-deliveries deliver", context=parent):
            pass
        return sorted(s.name for s in spans.get_finished_spans())

    assert exported_spans(1.0) == [
        "GET /v1.0/users/{id}/events/delta",
        "feed append",
        "process host-deliveries deliver",
        "process sync-jobs migrate",
    ]
    assert exported_spans(1e-12) == ["GET /v1.0/users/{id}/events/delta"]  # only the failed one


def _context_of_message(traceparent: str) -> Any:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract({"traceparent": traceparent})


def test_the_sampling_ratio_setting_is_a_share_above_zero() -> None:
    from shared.settings import Settings, SettingsError
    from tests.unit.service.test_deliveries import minimal_environ

    assert Settings.from_environ(minimal_environ()).telemetry_sampling_ratio == 1.0
    assert (
        Settings.from_environ(minimal_environ(TELEMETRY_SAMPLING_RATIO="0.1")).telemetry_sampling_ratio == 0.1
    )
    for bad in ("0", "1.5", "ten", "-1"):
        with pytest.raises(SettingsError, match="TELEMETRY_SAMPLING_RATIO"):
            Settings.from_environ(minimal_environ(TELEMETRY_SAMPLING_RATIO=bad))


async def test_the_backlog_is_the_tenants_whichever_worker_delivers(telemetry_off_afterwards: None) -> None:
    """Regression: each worker counted what it appended less what it delivered, so a worker that only
    delivered reported a negative backlog and no worker the tenant's."""
    world, services, queue, _ = await _migrated_world()  # worker 1 publishes
    for event_id in ("E", "F", "G"):
        world.mailboxes.put("g1", event(event_id))
        await _run_messages(services, jobs.SYNC_QUEUE, await _notify(services, "g1", event_id), "inv-1")
    deliveries = queue.take(jobs.DELIVERY_QUEUE)
    assert len(deliveries) == 3
    telemetry.uninstall()
    exported = _install()  # worker 2 delivers the first change only
    worker_2 = telemetry.instrument(dataclasses.replace(world.services, jobs=queue))
    await _run_messages(worker_2, jobs.DELIVERY_QUEUE, deliveries[:1], "inv-2")
    assert exported.points(names.FEED_BACKLOG) == [({"tenant": TID}, 2)]  # two changes still to go
    await _run_messages(worker_2, jobs.DELIVERY_QUEUE, deliveries[1:], "inv-3")
    assert exported.points(names.FEED_BACKLOG) == [({"tenant": TID}, 0)]


def test_a_trace_id_made_from_a_uuid4_is_sampled_by_its_random_bits() -> None:
    """Regression: by the SDK's rule (the id's last 8 bytes) a UUID4-made trace id, as the local host makes
    them, has its variant bits set there and was never kept at a ratio under 1/2."""
    from opentelemetry.sdk.trace.sampling import Decision

    from shared.telemetry.sampling import RoutineTraces

    uuid_like = int("4bf92f3577b34da6" + "8000000000000001", 16)  # variant bits 10, random bits 0...01
    decision = RoutineTraces(0.1).should_sample(None, uuid_like, "graph change notifications").decision
    assert decision is Decision.RECORD_AND_SAMPLE
    far = int("4bf92f3577b34da6" + "80ffffffffffffff", 16)
    assert RoutineTraces(0.1).should_sample(None, far, "x").decision is Decision.RECORD_ONLY
