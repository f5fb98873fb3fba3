"""calendarView delta through HTTP: paging, rounds, removals, token expiry and rejection."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from m365emulator.calendar.model import MailboxOwner
from m365emulator.calendar.testing import Harness

pytestmark = pytest.mark.contract

ALICE = MailboxOwner("tid-1", "uid-1", "alice@contoso.com", "alice@contoso.com", "Alice", "UTC")
BOB = MailboxOwner("tid-1", "uid-2", "bob@contoso.com", "bob@contoso.com", "Bob", "UTC")
BASE = "/v1.0/users/alice@contoso.com"
WINDOW = {"startDateTime": "2026-06-01T00:00:00Z", "endDateTime": "2026-07-01T00:00:00Z"}


@pytest.fixture
async def graph():
    harness = Harness([ALICE, BOB])
    client = TestClient(TestServer(harness.app()))
    await client.start_server()
    yield harness, client
    await client.close()


def event(subject, day, hour=9, **extra):
    body = {
        "subject": subject,
        "start": {"dateTime": f"2026-06-{day:02d}T{hour:02d}:00:00", "timeZone": "UTC"},
        "end": {"dateTime": f"2026-06-{day:02d}T{hour + 1:02d}:00:00", "timeZone": "UTC"},
    }
    body.update(extra)
    return body


async def create(client, body):
    resp = await client.post(BASE + "/events", json=body)
    assert resp.status == 201
    return await resp.json()


async def run_round(client, first_url, page_size=None, params=None):
    """Follow nextLinks to the deltaLink; (items, deltaLink, pages)."""
    headers = {"Prefer": f"odata.maxpagesize={page_size}"} if page_size else {}
    resp = await client.session.get(first_url, headers=headers, params=params)
    pages, items = 0, []
    while True:
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        pages += 1
        items += page["value"]
        assert ("@odata.nextLink" in page) != ("@odata.deltaLink" in page)
        if "@odata.deltaLink" in page:
            assert "odata.track-changes" in resp.headers["Preference-Applied"]
            return items, page["@odata.deltaLink"], pages
        resp = await client.session.get(page["@odata.nextLink"], headers=headers)


async def test_initial_round_pages_instances_not_masters(graph):
    _, client = graph
    for day in range(1, 6):
        await create(client, event(f"single {day}", day))
    outside = event("outside", 1)
    outside["start"]["dateTime"], outside["end"]["dateTime"] = "2026-08-01T09:00:00", "2026-08-01T10:00:00"
    await create(client, outside)
    master = await create(
        client,
        event(
            "series",
            8,
            recurrence={
                "pattern": {"type": "daily", "interval": 7},
                "range": {"type": "noEnd", "startDate": "2026-06-08"},
            },
        ),
    )
    items, delta_link, pages = await run_round(
        client, client.make_url(BASE + "/calendarView/delta()"), page_size=2, params=WINDOW
    )
    assert pages == 5  # 9 items, 2 per page
    assert all(i["@odata.type"] == "#microsoft.graph.event" and i["@odata.etag"] for i in items)
    types = sorted(i["type"] for i in items)
    assert types == ["occurrence"] * 4 + ["singleInstance"] * 5
    assert master["id"] not in {i["id"] for i in items}
    assert "$deltatoken=" in delta_link
    assert delta_link.startswith(str(client.make_url(BASE + "/calendarView/delta()")))

    # nothing changed: the next round is empty
    items, _, _ = await run_round(client, delta_link)
    assert items == []


async def test_incremental_round_reports_creates_updates_deletes_and_moves(graph):
    _, client = graph
    keep = await create(client, event("keep", 2))
    update = await create(client, event("update", 3))
    delete = await create(client, event("delete", 4))
    move = await create(client, event("move out", 5))
    series = await create(
        client,
        event(
            "series",
            10,
            recurrence={
                "pattern": {"type": "daily", "interval": 1},
                "range": {"type": "numbered", "startDate": "2026-06-10", "numberOfOccurrences": 3},
            },
        ),
    )
    items, delta_link, _ = await run_round(
        client, client.make_url(BASE + "/calendarView/delta"), params=WINDOW
    )
    assert len(items) == 7
    occurrence_ids = [i["id"] for i in items if i["type"] == "occurrence"]

    added = await create(client, event("added", 6))
    await client.patch(f"{BASE}/events/{update['id']}", json={"subject": "updated"})
    await client.delete(f"{BASE}/events/{delete['id']}")
    await client.patch(
        f"{BASE}/events/{move['id']}",
        json={
            "start": {"dateTime": "2026-09-01T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-09-01T10:00:00", "timeZone": "UTC"},
        },
    )
    await client.delete(f"{BASE}/events/{occurrence_ids[1]}")
    await client.patch(f"{BASE}/events/{occurrence_ids[2]}", json={"subject": "series (changed)"})

    items, delta_link2, _ = await run_round(client, delta_link)
    removed = {i["id"] for i in items if "@removed" in i}
    present = {i["id"]: i for i in items if "@removed" not in i}
    assert removed == {delete["id"], move["id"], occurrence_ids[1]}
    assert all(i["@removed"] == {"reason": "deleted"} for i in items if "@removed" in i)
    assert present[added["id"]]["subject"] == "added"
    assert present[update["id"]]["subject"] == "updated"
    assert present[occurrence_ids[2]]["type"] == "exception"
    assert keep["id"] not in present and series["id"] not in present

    # a round from the older delta link again: still valid, same changes
    again, _, _ = await run_round(client, delta_link)
    assert {i["id"] for i in again} == {i["id"] for i in items}

    items, _, _ = await run_round(client, delta_link2)
    assert items == []


async def test_changes_outside_the_window_come_as_removed(graph):
    _, client = graph
    _, delta_link, _ = await run_round(client, client.make_url(BASE + "/calendarView/delta"), params=WINDOW)
    outside = await create(
        client,
        {
            "subject": "far away",
            "start": {"dateTime": "2027-01-01T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2027-01-01T10:00:00", "timeZone": "UTC"},
        },
    )
    items, _, _ = await run_round(client, delta_link)
    assert items == [
        {"@odata.type": "#microsoft.graph.event", "id": outside["id"], "@removed": {"reason": "deleted"}}
    ]


async def test_tokens_expire_with_the_clock_and_on_demand(graph):
    harness, client = graph
    await create(client, event("one", 1))
    await create(client, event("two", 2))
    first = await client.get(
        BASE + "/calendarView/delta", params=WINDOW, headers={"Prefer": "odata.maxpagesize=1"}
    )
    next_link = (await first.json())["@odata.nextLink"]
    items, delta_link, _ = await run_round(
        client, client.make_url(BASE + "/calendarView/delta"), params=WINDOW
    )
    assert len(items) == 2

    harness.clock.advance(timedelta(days=8))
    for link in (next_link, delta_link):
        resp = await client.session.get(link)
        error = await resp.json()
        assert resp.status == 410
        assert error["error"]["code"] == "SyncStateNotFound"
        assert error["error"]["message"].startswith("The sync state generation is not found; generation=")

    _, delta_link, _ = await run_round(client, client.make_url(BASE + "/calendarView/delta"), params=WINDOW)
    assert harness.stores[ALICE.user_id].expire_delta_tokens() >= 1
    resp = await client.session.get(delta_link)
    assert resp.status == 410


async def test_replaying_an_older_next_link_after_a_newer_page_is_410(graph):
    _, client = graph
    for day in range(1, 5):
        await create(client, event(f"e{day}", day))
    headers = {"Prefer": "odata.maxpagesize=1"}
    resp = await client.get(BASE + "/calendarView/delta", params=WINDOW, headers=headers)
    link1 = (await resp.json())["@odata.nextLink"]
    resp = await client.session.get(link1, headers=headers)
    page2 = await resp.json()
    resp = await client.session.get(link1, headers=headers)  # retrying the latest page is fine
    assert resp.status == 200
    resp = await client.session.get(page2["@odata.nextLink"], headers=headers)
    assert resp.status == 200
    resp = await client.session.get(link1, headers=headers)
    assert resp.status == 410


async def test_malformed_or_foreign_tokens_are_400(graph):
    _, client = graph
    resp = await client.get(BASE + "/calendarView/delta", params={"$deltatoken": "not-a-token"})
    assert resp.status == 400
    _, bob_link, _ = await run_round(
        client, client.make_url("/v1.0/users/bob@contoso.com/calendarView/delta"), params=WINDOW
    )
    token = bob_link.split("$deltatoken=")[1]
    resp = await client.get(BASE + "/calendarView/delta", params={"$deltatoken": token})
    assert resp.status == 400


async def test_delta_without_a_window_is_400(graph):
    _, client = graph
    resp = await client.get(BASE + "/calendarView/delta()", params={"endDateTime": "", "startDateTime": ""})
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "ErrorInvalidParameter"


async def test_delta_items_honour_prefer_timezone(graph):
    _, client = graph
    await create(client, event("tz", 1))
    resp = await client.get(
        BASE + "/calendarView/delta",
        params=WINDOW,
        headers={"Prefer": 'outlook.timezone="Pacific Standard Time", odata.maxpagesize=10'},
    )
    page = await resp.json()
    assert page["value"][0]["start"] == {
        "dateTime": "2026-06-01T02:00:00.0000000",
        "timeZone": "Pacific Standard Time",
    }
    assert 'outlook.timezone="Pacific Standard Time"' in resp.headers["Preference-Applied"]


async def test_an_item_deleted_while_a_round_is_paged_comes_as_removed(graph):
    _, client = graph
    first = await create(client, event("first", 1))
    second = await create(client, event("second", 2))
    headers = {"Prefer": "odata.maxpagesize=1"}
    resp = await client.get(BASE + "/calendarView/delta", params=WINDOW, headers=headers)
    page1 = await resp.json()
    assert [i["id"] for i in page1["value"]] == [first["id"]]
    await client.delete(f"{BASE}/events/{second['id']}")
    resp = await client.session.get(page1["@odata.nextLink"], headers=headers)
    page2 = await resp.json()
    assert page2["value"] == [
        {"@odata.type": "#microsoft.graph.event", "id": second["id"], "@removed": {"reason": "deleted"}}
    ]
    # the deletion happened during the round: the next round may repeat it, never lose it
    items, _, _ = await run_round(client, page2["@odata.deltaLink"])
    assert {i["id"] for i in items} <= {second["id"]}


async def test_an_exception_moved_out_of_the_window_is_removed(graph):
    _, client = graph
    await create(
        client,
        event(
            "series",
            10,
            recurrence={
                "pattern": {"type": "daily", "interval": 1},
                "range": {"type": "numbered", "startDate": "2026-06-10", "numberOfOccurrences": 2},
            },
        ),
    )
    items, delta_link, _ = await run_round(
        client, client.make_url(BASE + "/calendarView/delta"), params=WINDOW
    )
    first, second = sorted(items, key=lambda i: i["start"]["dateTime"])
    resp = await client.patch(
        f"{BASE}/events/{second['id']}",
        json={
            "start": {"dateTime": "2026-07-15T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-07-15T10:00:00", "timeZone": "UTC"},
        },
    )
    assert resp.status == 200
    items, _, _ = await run_round(client, delta_link)
    removed = [i["id"] for i in items if "@removed" in i]
    assert removed == [second["id"]]
    assert [i["id"] for i in items if "@removed" not in i] == [first["id"]]
