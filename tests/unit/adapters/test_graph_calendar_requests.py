"""What the Graph calendar adapters put on the wire, through the SDK's real middleware on an
`httpx.MockTransport`: the emulator is lenient where real Graph is not (it ignores `IdType`, accepts
either id type in `translateExchangeIds`), so the request shapes are pinned here."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest

from shared.adapters.graph.calendar import GraphCalendar, GraphSubscriptions
from shared.adapters.graph.client import TenantGraph, TenantKey
from shared.domain.calendar import APPOINTMENT_PROPERTY_ID, RemovedEvent
from shared.domain.tenants import Tenant
from shared.service.errors import DeltaTokenRejected, MailboxUnavailable, TenantAccessError
from tests.fakes.graph_http import graph_over
from tests.integration.graph.harness import tenant_named

pytestmark = pytest.mark.unit

BASE = "https://graph.example/v1.0"
WINDOW = (datetime(2030, 3, 1, tzinfo=UTC), datetime(2030, 4, 1, tzinfo=UTC))
TENANT = tenant_named("6d1f4a52-0000-4000-8000-000000000001", "contoso.example")
EVENT = {
    "id": "AAMkE1=",
    "subject": "Visit",
    "start": {"dateTime": "2030-03-10T09:00:00.0000000", "timeZone": "UTC"},
    "end": {"dateTime": "2030-03-10T10:00:00.0000000", "timeZone": "UTC"},
}


class Recorder:
    """Answers from a script, keyed by (method, path); keeps every request."""

    def __init__(self, answers: dict[tuple[str, str], Any]) -> None:
        self.answers = answers
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[(request.method, request.url.path)]
        if callable(answer):
            answer = answer(request)
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)


class OneTenant:
    """`GraphClients` for one tenant on a mock transport."""

    def __init__(self, recorder: Recorder) -> None:
        self.graph = graph_over(httpx.MockTransport(recorder), BASE)

    async def for_tenant(self, key: TenantKey) -> TenantGraph:
        return self.graph


async def key_for(tenant: Tenant) -> TenantKey:
    return TenantKey(tenant.directory_id, "client")


def calendar(recorder: Recorder, page_size: int = 200) -> GraphCalendar:
    return GraphCalendar(OneTenant(recorder), key_for, page_size=page_size)  # type: ignore[arg-type]


def error(status: int, code: str, message: str = "", headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}}, headers=headers)


def prefer(request: httpx.Request) -> set[str]:
    return {part.strip() for part in request.headers.get("Prefer", "").split(",")}


async def test_a_first_delta_read_asks_for_the_window_in_utc_with_immutable_ids_and_the_page_size():
    link = f"{BASE}/users/u1/calendarView/delta?$deltatoken=abc"
    recorder = Recorder(
        {("GET", "/v1.0/users/u1/calendarView/delta"): {"value": [EVENT], "@odata.deltaLink": link}}
    )

    read = await calendar(recorder, page_size=50).read_delta(TENANT, "u1", None, WINDOW)

    [request] = recorder.requests
    assert parse_qs(request.url.query.decode()) == {
        "startDateTime": ["2030-03-01T00:00:00Z"],
        "endDateTime": ["2030-04-01T00:00:00Z"],
    }
    assert prefer(request) == {'outlook.timezone="UTC"', "odata.maxpagesize=50", 'IdType="ImmutableId"'}
    assert (read.delta_link, read.requests, [i.id for i in read.items]) == (link, 1, ["AAMkE1="])


async def test_a_stored_link_is_followed_as_it_is_through_every_next_link_with_the_same_preferences():
    next_link = f"{BASE}/users/u1/calendarView/delta?$skiptoken=page2"
    delta_link = f"{BASE}/users/u1/calendarView/delta?$deltatoken=new"

    def page(request: httpx.Request) -> dict[str, Any]:
        if "skiptoken" in str(request.url):
            return {
                "value": [{"id": "AAMkGone=", "@removed": {"reason": "deleted"}}],
                "@odata.deltaLink": delta_link,
            }
        return {"value": [EVENT], "@odata.nextLink": next_link}

    recorder = Recorder({("GET", "/v1.0/users/u1/calendarView/delta"): page})
    stored = f"{BASE}/users/u1/calendarView/delta?$deltatoken=old"

    read = await calendar(recorder).read_delta(TENANT, "u1", stored, WINDOW)

    assert [str(r.url) for r in recorder.requests] == [stored, next_link]
    assert all('IdType="ImmutableId"' in prefer(r) for r in recorder.requests)
    assert read.items[1] == RemovedEvent("AAMkGone=")
    assert (read.delta_link, read.requests) == (delta_link, 2)


async def test_a_naive_window_is_refused_before_anything_is_sent():
    recorder = Recorder({})
    with pytest.raises(ValueError, match="timezone-aware"):
        await calendar(recorder).read_delta(TENANT, "u1", None, (datetime(2030, 3, 1), datetime(2030, 4, 1)))
    assert recorder.requests == []


async def test_a_410_with_resync_required_is_a_rejected_token():
    recorder = Recorder({("GET", "/v1.0/users/u1/calendarView/delta"): error(410, "resyncRequired")})
    with pytest.raises(DeltaTokenRejected):
        await calendar(recorder).read_delta(
            TENANT, "u1", f"{BASE}/users/u1/calendarView/delta?$deltatoken=x", WINDOW
        )


async def test_a_403_is_told_apart_by_one_directory_read():
    denied = error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
    open_directory = Recorder(
        {
            ("GET", "/v1.0/users/u1/calendarView/delta"): denied,
            ("GET", "/v1.0/users"): {"value": [{"id": "x"}]},
        }
    )
    with pytest.raises(MailboxUnavailable):
        await calendar(open_directory).read_delta(TENANT, "u1", None, WINDOW)
    assert parse_qs(open_directory.requests[-1].url.query.decode()) == {"$top": ["1"], "$select": ["id"]}

    closed_directory = Recorder(
        {
            ("GET", "/v1.0/users/u1/calendarView/delta"): denied,
            ("GET", "/v1.0/users"): error(403, "Authorization_RequestDenied", "Insufficient privileges"),
        }
    )
    with pytest.raises(TenantAccessError, match="consent"):
        await calendar(closed_directory).read_delta(TENANT, "u1", None, WINDOW)


async def test_ews_ids_are_translated_to_immutable_rest_ids_a_thousand_at_a_time():
    def translate(request: httpx.Request) -> dict[str, Any]:
        body = json.loads(request.content)
        return {
            "value": [{"sourceId": i, "targetId": f"rest-{i}"} for i in body["inputIds"] if i.endswith("7")]
        }

    recorder = Recorder({("POST", "/v1.0/users/u1/translateExchangeIds"): translate})
    ids = [f"ews-{n}" for n in range(2500)]

    found = await calendar(recorder).translate_ews_ids(TENANT, "u1", [*ids, "ews-7"])

    bodies = [json.loads(r.content) for r in recorder.requests]
    assert [len(b["inputIds"]) for b in bodies] == [1000, 1000, 500]
    assert {(b["sourceIdType"], b["targetIdType"]) for b in bodies} == {("ewsId", "restImmutableEntryId")}
    assert len(found) == 250 and found["ews-7"] == "rest-ews-7"


async def test_connector_events_filter_and_expand_the_appointment_property_only():
    tagged = {
        "id": "AAMkT=",
        "singleValueExtendedProperties": [{"id": APPOINTMENT_PROPERTY_ID, "value": "appt-1"}],
    }
    recorder = Recorder({("GET", "/v1.0/users/u1/events"): {"value": [tagged, {"id": "AAMkNoProp="}]}})

    assert await calendar(recorder, page_size=100).connector_events(TENANT, "u1") == {"AAMkT=": "appt-1"}

    [request] = recorder.requests
    query = parse_qs(unquote(request.url.query.decode()).replace("+", "%2B"))
    assert query["$filter"] == [
        f"singleValueExtendedProperties/Any(ep: ep/id eq '{APPOINTMENT_PROPERTY_ID}' and ep/value ne null)"
    ]
    assert query["$expand"] == [f"singleValueExtendedProperties($filter=id eq '{APPOINTMENT_PROPERTY_ID}')"]
    assert (query["$select"], query["$top"]) == (["id"], ["100"])
    assert 'IdType="ImmutableId"' in prefer(request)


async def test_a_subscription_is_asked_for_the_users_events_with_both_urls_and_immutable_ids():
    answer = {
        "id": "sub-1",
        "resource": "users/u1/events",
        "expirationDateTime": "2030-03-03T10:00:00.0000000Z",
    }
    recorder = Recorder({("POST", "/v1.0/subscriptions"): httpx.Response(201, json=answer)})
    gateway = GraphSubscriptions(
        OneTenant(recorder),  # type: ignore[arg-type]
        key_for,
        notification_url="https://connector.example/api/graph/notifications",
        lifecycle_url="https://connector.example/api/graph/lifecycle",
    )

    created = await gateway.create(TENANT, "u1", "state-1", datetime(2030, 3, 3, 10, tzinfo=UTC))

    [request] = recorder.requests
    assert json.loads(request.content) == {
        "changeType": "created,updated,deleted",
        "notificationUrl": "https://connector.example/api/graph/notifications",
        "lifecycleNotificationUrl": "https://connector.example/api/graph/lifecycle",
        "resource": "users/u1/events",
        "expirationDateTime": "2030-03-03T10:00:00.000000Z",
        "clientState": "state-1",
    }
    assert 'IdType="ImmutableId"' in prefer(request)
    assert (created.id, created.expires_at) == ("sub-1", datetime(2030, 3, 3, 10, tzinfo=UTC))
    assert urlsplit(str(request.url)).path == "/v1.0/subscriptions"


async def test_working_hours_are_read_from_mailbox_settings_with_their_select() -> None:
    settings = {
        "timeZone": "UTC",
        "workingHours": {
            "daysOfWeek": ["monday"],
            "startTime": "08:00:00.0000000",
            "endTime": "17:00:00.0000000",
            "timeZone": {"name": "Pacific Standard Time"},
        },
    }
    recorder = Recorder({("GET", "/v1.0/users/u1/mailboxSettings"): settings})
    hours = await calendar(recorder).working_hours(TENANT, "u1")
    assert hours is not None and hours.zone == "Pacific Standard Time"
    query = parse_qs(urlsplit(str(recorder.requests[0].url)).query)
    assert query["$select"] == ["workingHours,timeZone"]


@pytest.mark.parametrize("status", [403, 404])
async def test_a_mailbox_refusing_its_settings_is_unavailable_without_a_directory_probe(status: int) -> None:
    recorder = Recorder({("GET", "/v1.0/users/u1/mailboxSettings"): error(status, "ErrorAccessDenied")})
    with pytest.raises(MailboxUnavailable):
        await calendar(recorder).working_hours(TENANT, "u1")
    assert len(recorder.requests) == 1  # never taken for the tenant's refusal


async def test_series_masters_a_long_list_did_not_hold_are_read_in_batches_with_their_cancellations():
    master = {
        **EVENT,
        "type": "seriesMaster",
        "recurrence": {"pattern": {"type": "daily", "interval": 1}, "range": {"type": "noEnd"}},
        "cancelledOccurrences": ["OID.AAMkE1=.2030-03-12"],
    }
    missing = {"error": {"code": "ErrorItemNotFound", "message": "The specified object was not found."}}
    throttled = {"error": {"code": "ApplicationThrottled", "message": "MailboxConcurrency"}}

    def batch(request: httpx.Request) -> dict[str, Any]:
        items = json.loads(request.content)["requests"]
        by_path = {"AAMkE1=": (200, master), "gone": (404, missing), "busy": (429, throttled)}
        answers = []
        for item in items:
            status, body = by_path[unquote(urlsplit(item["url"]).path.rsplit("/", 1)[1])]
            answers.append({"id": item["id"], "status": status, "body": body})
        return {"responses": answers}

    def endless_list(request: httpx.Request) -> dict[str, Any]:  # a mailbox of many other series
        skip = int(parse_qs(request.url.query.decode()).get("$skip", ["0"])[0])
        others = [{**master, "id": f"other{skip + n}"} for n in range(2)]
        return {"value": others, "@odata.nextLink": f"{BASE}/users/u1/events?$skip={skip + 2}"}

    recorder = Recorder(
        {
            ("GET", "/v1.0/users/u1/events"): endless_list,
            ("POST", "/v1.0/$batch"): batch,
            ("GET", "/v1.0/users/u1/events/busy"): {**master, "id": "busy"},
        }
    )
    read = await calendar(recorder).read_events(TENANT, "u1", ["AAMkE1=", "gone", "busy"])
    assert read["AAMkE1="] is not None and read["AAMkE1="].cancelled_dates == (datetime(2030, 3, 12).date(),)
    assert read["gone"] is None
    assert read["busy"] is not None  # throttled in the batch: asked again alone
    listed, sent, again = recorder.requests[:3], recorder.requests[3], recorder.requests[4]
    assert len(recorder.requests) == 5  # the list stops after as many pages as masters wanted
    assert {r.url.path for r in listed} == {"/v1.0/users/u1/events"}
    items = json.loads(sent.content)["requests"]
    selected = parse_qs(urlsplit(items[0]["url"]).query)["$select"][0].split(",")
    assert {"recurrence", "cancelledOccurrences", "originalStart", "responseStatus"} <= set(selected)
    assert items[0]["headers"] == {"Prefer": 'outlook.timezone="UTC", IdType="ImmutableId"'}
    assert again.url.path == "/v1.0/users/u1/events/busy"


async def test_one_series_master_is_read_alone_and_a_missing_one_is_none():
    recorder = Recorder({("GET", "/v1.0/users/u1/events/gone"): error(404, "ErrorItemNotFound")})
    assert await calendar(recorder).read_events(TENANT, "u1", ["gone"]) == {"gone": None}
    assert prefer(recorder.requests[0]) == {'outlook.timezone="UTC"', 'IdType="ImmutableId"'}


async def test_several_series_masters_are_read_from_the_list_of_masters_a_page_at_a_time():
    master = {
        **EVENT,
        "type": "seriesMaster",
        "recurrence": {"pattern": {"type": "daily", "interval": 1}, "range": {"type": "noEnd"}},
        "cancelledOccurrences": ["OID.AAMkE2=.2030-03-12"],
    }
    pages = {
        "0": {
            "value": [{**master, "id": "AAMkE1="}, {**master, "id": "unwanted"}],
            "@odata.nextLink": f"{BASE}/users/u1/events?$skip=2",
        },
        "2": {"value": [{**master, "id": "AAMkE2="}]},
    }

    def listing(request: httpx.Request) -> dict[str, Any]:
        return pages[parse_qs(request.url.query.decode()).get("$skip", ["0"])[0]]

    recorder = Recorder({("GET", "/v1.0/users/u1/events"): listing})
    read = await calendar(recorder).read_events(TENANT, "u1", ["AAMkE1=", "AAMkE2=", "gone"])
    assert read.keys() == {"AAMkE1=", "AAMkE2=", "gone"}
    assert read["AAMkE2="] is not None and read["AAMkE2="].cancelled_dates == (datetime(2030, 3, 12).date(),)
    assert read["gone"] is None  # the list read to its end does not hold it
    assert len(recorder.requests) == 2  # two pages for three masters, no per-master read
    first = recorder.requests[0]
    query = parse_qs(urlsplit(str(first.url)).query)
    assert query["$filter"] == ["type eq 'seriesMaster'"]
    assert {"recurrence", "cancelledOccurrences", "changeKey"} <= set(query["$select"][0].split(","))
    assert prefer(first) == {'outlook.timezone="UTC"', 'IdType="ImmutableId"'}
