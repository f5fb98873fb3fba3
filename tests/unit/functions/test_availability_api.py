"""The availability routes in process over fakes: the answers' shapes, and each stated maximum a 400 naming
the member and saying why."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from shared.domain.users import SyncState
from shared.service.records import BusyInstance, SyncedBusy
from tests.unit.functions.host_api import TENANT, HostApi, host_api

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
ROUTE = f"v1/tenants/{TENANT}/availability"


@pytest.fixture
async def api() -> HostApi:
    api = await host_api()
    for n in (1, 2):
        api.world.schedules.know(f"user{n}@contoso.example", f"g{n}")
    user = await api.world.users.get(TENANT, "s1")
    assert user is not None
    await api.world.users.save(replace(user, sync_state=SyncState.SYNCED, last_sync_at=NOW))
    instances = (
        BusyInstance(
            "k1", datetime(2026, 12, 1, 9, tzinfo=UTC), datetime(2026, 12, 1, 10, tzinfo=UTC), "busy"
        ),
        BusyInstance("k2", date(2026, 12, 2), date(2026, 12, 3), "oof", all_day=True),
    )
    window = (datetime(2026, 10, 23, tzinfo=UTC), datetime(2027, 5, 22, tzinfo=UTC))
    await api.world.busy.write_index(TENANT, "s1", SyncedBusy(instances, *window, NOW, complete=True))
    return api


def question(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "participants": [{"staff_ids": ["s1"]}],
        "periods": [{"start": "2026-12-01T10:00:00", "end": "2026-12-01T12:00:00"}],  # Amsterdam: 09-11 UTC
        "duration_minutes": 60,
        "interval_minutes": 30,
        "time_zone": "Europe/Amsterdam",
    }
    body.update(changes)
    return body


async def test_busy_times_are_when_and_how_busy_never_what(api: HostApi) -> None:
    answer = await api.call(
        "GET",
        f"v1/tenants/{TENANT}/staff/s1/busy",
        query={"start": "2026-12-01T00:00:00Z", "end": "2026-12-03T00:00:00Z"},
    )
    assert answer.status == 200, answer.body
    assert answer.json() == {
        "staff_id": "s1",
        "source": "synced",
        "as_of": "2026-11-22T08:00:00Z",
        "busy": [
            {
                "start": "2026-12-01T09:00:00Z",
                "end": "2026-12-01T10:00:00Z",
                "show_as": "busy",
                "all_day": False,
            },
            {"start": "2026-12-02", "end": "2026-12-03", "show_as": "oof", "all_day": True},
        ],
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"end": "2026-12-02T00:00:00Z"}, "start"),
        ({"start": "2026-12-02T00:00:00Z", "end": "2026-12-01T00:00:00Z"}, "end"),
        ({"start": "2026-12-01T00:00:00Z", "end": "2027-02-02T00:00:00Z"}, "end"),
        ({"start": "tomorrow", "end": "2026-12-02T00:00:00Z"}, "start"),
        ({"start": "1451-04-04T19:36:31+01:04", "end": "1451-04-05T00:00:00Z"}, "start"),
        ({"start": "2999-12-31T00:00:00Z", "end": "3000-01-01T01:00:00Z"}, "end"),
    ],
)
async def test_a_bad_busy_span_is_a_400_naming_it(api: HostApi, query: dict[str, str], field: str) -> None:
    answer = await api.call("GET", f"v1/tenants/{TENANT}/staff/s1/busy", query=query)
    assert (answer.status, answer.error_field) == (400, field)


async def test_an_unknown_staff_member_is_a_404_for_busy_times_and_a_one_person_question(
    api: HostApi,
) -> None:
    span = {"start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"}
    answer = await api.call("GET", f"v1/tenants/{TENANT}/staff/nobody/busy", query=span)
    assert (answer.status, answer.error_field) == (404, "staff_id")
    answer = await api.call("POST", ROUTE, question(participants=[{"staff_ids": ["nobody"]}]))
    assert (answer.status, answer.error_field) == (404, "staff_id")


async def test_slots_name_each_groups_free_staff_and_each_staff_members_source(api: HostApi) -> None:
    answer = await api.call(
        "POST", ROUTE, question(participants=[{"staff_ids": ["s1", "s2"], "required": 1}])
    )
    assert answer.status == 200, answer.body
    body = answer.json()
    assert body["slots"] == [
        {
            "start": "2026-12-01T09:00:00Z",
            "end": "2026-12-01T10:00:00Z",
            "participants": [{"staff_ids": ["s2"]}],
        },
        {
            "start": "2026-12-01T09:30:00Z",
            "end": "2026-12-01T10:30:00Z",
            "participants": [{"staff_ids": ["s2"]}],
        },
        {
            "start": "2026-12-01T10:00:00Z",
            "end": "2026-12-01T11:00:00Z",
            "participants": [{"staff_ids": ["s1", "s2"]}],
        },
    ]
    assert [(s["staff_id"], s["source"], s["error"]) for s in body["staff"]] == [
        ("s1", "synced", None),
        ("s2", "graph", None),
    ]


async def test_free_periods_are_merged(api: HostApi) -> None:
    answer = await api.call("POST", ROUTE, question(format="periods", duration_minutes=30))
    assert answer.status == 200, answer.body
    assert answer.json()["periods"] == [{"start": "2026-12-01T10:00:00Z", "end": "2026-12-01T11:00:00Z"}]


def days_of_periods(days: int) -> list[dict[str, str]]:
    """Two one-hour periods, `days` days from the first start to the last end."""
    first = datetime(2026, 12, 1, 9)
    last_end = first + timedelta(days=days)
    return [
        {"start": first.isoformat(), "end": (first + timedelta(hours=1)).isoformat()},
        {"start": (last_end - timedelta(hours=1)).isoformat(), "end": last_end.isoformat()},
    ]


@pytest.mark.parametrize(
    ("changes", "field", "why"),
    [
        ({"interval_minutes": 45}, "interval_minutes", "divide 60"),
        ({"interval_minutes": 90}, "interval_minutes", "multiple of 60"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", ""),
        ({"duration_minutes": 121}, "duration_minutes", "longest period"),
        ({"periods": days_of_periods(63)}, "periods", "getSchedule"),
        ({"periods": [{"start": "2026-12-01T10:00:00", "end": "2026-12-01T09:00:00"}]}, "periods[0].end", ""),
        ({"periods": [{"start": "soon", "end": "2026-12-01T09:00:00"}]}, "periods[0].start", "ISO 8601"),
        (
            {"periods": [{"start": "1899-12-01T09:00:00", "end": "1899-12-01T10:00:00"}]},
            "periods[0].start",
            "1900",
        ),
        (
            {"participants": [{"staff_ids": [f"s{n}"]} for n in range(21)]},
            "participants",
            "at most 20",
        ),
        (
            {"participants": [{"staff_ids": [f"g{g}-{n}" for n in range(20)]} for g in range(3)]},
            "participants",
            "getSchedule batch",
        ),
        ({"participants": [{"staff_ids": ["s1", "s2"], "required": 3}]}, "participants[0].required", "2"),
        ({"participants": [{"staff_ids": ["s1"], "required": "most"}]}, "participants[0].required", "all"),
        ({"max_results": 513}, "max_results", "512"),
        ({"format": "list"}, "format", "slots"),
        ({"ranking": "random"}, "ranking", "least_booked"),
    ],
)
async def test_a_question_past_a_stated_maximum_is_a_400_naming_the_member_and_why(
    api: HostApi, changes: dict[str, Any], field: str, why: str
) -> None:
    answer = await api.call("POST", ROUTE, question(**changes))
    assert (answer.status, answer.error_field) == (400, field), answer.body
    assert why in answer.json()["error"]["message"]


async def test_a_question_of_62_days_is_answered(api: HostApi) -> None:
    answer = await api.call("POST", ROUTE, question(periods=days_of_periods(62)))
    assert answer.status == 200, answer.body


async def test_the_blocking_settings_are_patched_and_read_back(api: HostApi) -> None:
    tentative = BusyInstance(
        "k3", datetime(2026, 12, 1, 10, tzinfo=UTC), datetime(2026, 12, 1, 11, tzinfo=UTC), "tentative"
    )
    stored = await api.world.busy.read(TENANT, "s1")
    assert stored.index is not None
    await api.world.busy.write_index(
        TENANT, "s1", replace(stored.index, instances=(*stored.index.instances, tentative))
    )
    body = question(format="periods", duration_minutes=30)
    assert (await api.call("POST", ROUTE, body)).json()["periods"] == []  # tentative blocks by default
    patched = await api.call("PATCH", f"v1/tenants/{TENANT}/settings", {"tentative_blocks": False})
    assert patched.status == 200, patched.body
    assert patched.json()["settings"]["tentative_blocks"] is False
    assert patched.json()["settings"]["working_elsewhere_blocks"] is False
    answer = await api.call("POST", ROUTE, body)
    assert answer.json()["periods"] == [{"start": "2026-12-01T10:00:00Z", "end": "2026-12-01T11:00:00Z"}]
    refused = await api.call("PATCH", f"v1/tenants/{TENANT}/settings", {"working_elsewhere_blocks": "yes"})
    assert (refused.status, refused.error_field) == (400, "settings.working_elsewhere_blocks")
