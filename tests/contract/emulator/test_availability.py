"""Availability through the real msgraph-sdk: working hours (mailboxSettings) and getSchedule.

Each test works in mailboxes it creates (the session's data stays between tests, and is never rebuilt
here: the session's connector app lives in it) and in 2027. Raw HTTP only where the SDK cannot go
(a path it has no builder for, a body it would not serialise).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.custom_time_zone import CustomTimeZone
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.day_of_week import DayOfWeek
from msgraph.generated.models.daylight_time_zone_offset import DaylightTimeZoneOffset
from msgraph.generated.models.event import Event
from msgraph.generated.models.free_busy_status import FreeBusyStatus
from msgraph.generated.models.location import Location
from msgraph.generated.models.mailbox_settings import MailboxSettings
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.patterned_recurrence import PatternedRecurrence
from msgraph.generated.models.recurrence_pattern import RecurrencePattern
from msgraph.generated.models.recurrence_pattern_type import RecurrencePatternType
from msgraph.generated.models.recurrence_range import RecurrenceRange
from msgraph.generated.models.recurrence_range_type import RecurrenceRangeType
from msgraph.generated.models.schedule_information import ScheduleInformation
from msgraph.generated.models.sensitivity import Sensitivity
from msgraph.generated.models.standard_time_zone_offset import StandardTimeZoneOffset
from msgraph.generated.models.time_zone_base import TimeZoneBase
from msgraph.generated.models.working_hours import WorkingHours
from msgraph.generated.users.item.calendar.get_schedule.get_schedule_post_request_body import (
    GetSchedulePostRequestBody,
)
from msgraph.generated.users.item.events.item.instances.instances_request_builder import (
    InstancesRequestBuilder,
)

from m365emulator.directory import GRAPH_PERMISSIONS
from tests.contract.emulator.conftest import GRAPH_SCOPE, Connector, credential, graph_client, unique
from tests.fixtures.emulator import EmulatorInfo

pytestmark = pytest.mark.contract

WRITE_SETTINGS = "MailboxSettings.ReadWrite"
STRENGTH = {"0": 0, "4": 1, "1": 2, "2": 3, "3": 4}  # free < workingElsewhere < tentative < busy < oof
DIGIT = {
    FreeBusyStatus.Free: "0",
    FreeBusyStatus.Tentative: "1",
    FreeBusyStatus.Busy: "2",
    FreeBusyStatus.Oof: "3",
    FreeBusyStatus.WorkingElsewhere: "4",
}


async def app_with(emulator: EmulatorInfo, permissions: list[str]) -> AsyncIterator[Connector]:
    """The demo connector app consented in Contoso with exactly `permissions`, for one test."""
    async with emulator.control as control:
        await control.revoke_consent(emulator.tenant_id, emulator.client_id)
        await control.consent(emulator.tenant_id, emulator.client_id, permissions)
    cred = credential(emulator, emulator.tenant_id, emulator.client_id, emulator.client_secret)
    token = (await cred.get_token(GRAPH_SCOPE)).token
    http = httpx.AsyncClient(
        base_url=emulator.graph + "/",
        verify=emulator.ssl_context(),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    try:
        yield Connector(emulator, cred, graph_client(emulator, cred), http, token)
    finally:
        await http.aclose()
        await cred.close()
        async with emulator.control as control:
            await control.revoke_consent(emulator.tenant_id, emulator.client_id)


@pytest.fixture
async def settings_writer(emulator_reset: EmulatorInfo) -> AsyncIterator[Connector]:
    async for app in app_with(emulator_reset, [*GRAPH_PERMISSIONS, WRITE_SETTINGS]):
        yield app


@pytest.fixture
async def basic_reader(emulator_reset: EmulatorInfo) -> AsyncIterator[Connector]:
    async for app in app_with(emulator_reset, ["Calendars.ReadBasic"]):
        yield app


async def new_mailbox(control, tenant_id: str, zone: str = "UTC") -> str:
    upn = f"{unique('avail')}@contoso.example"
    await control.create_user(tenant_id, upn, time_zone=zone)
    return upn


def at(text: str, zone: str = "UTC") -> DateTimeTimeZone:
    return DateTimeTimeZone(date_time=text, time_zone=zone)


def schedule_request(
    schedules: list[str], start: str, end: str, interval: int | None = 60, zone: str = "UTC"
) -> GetSchedulePostRequestBody:
    return GetSchedulePostRequestBody(
        schedules=schedules,
        start_time=at(start, zone),
        end_time=at(end, zone),
        availability_view_interval=interval,
    )


def prefer_zone(zone: str) -> RequestConfiguration:
    config = RequestConfiguration()
    config.headers.add("Prefer", f'outlook.timezone="{zone}"')
    return config


def expected_view(info: ScheduleInformation, start: dt.datetime, end: dt.datetime, minutes: int) -> str:
    """The availabilityView the items imply (each slot: the strongest status overlapping it)."""
    slot = dt.timedelta(minutes=minutes)
    spans = [
        (
            DIGIT[item.status],
            dt.datetime.fromisoformat(item.start.date_time[:19]).replace(tzinfo=dt.UTC),
            dt.datetime.fromisoformat(item.end.date_time[:19]).replace(tzinfo=dt.UTC),
        )
        for item in info.schedule_items
    ]
    digits = []
    for i in range(math.ceil((end - start) / slot)):
        lo, hi = start + i * slot, start + (i + 1) * slot
        here = [d for d, s, e in spans if s < hi and e > lo]
        digits.append(max(here, key=STRENGTH.__getitem__) if here else "0")
    return "".join(digits)


# ------------------------------------------------------------------------------------- working hours


async def test_working_hours_default_then_patched_through_the_sdk(settings_writer, control):
    upn = await new_mailbox(control, settings_writer.tenant_id, "W. Europe Standard Time")
    settings = settings_writer.graph.users.by_user_id(upn).mailbox_settings

    default = await settings.get()
    assert default.time_zone == "W. Europe Standard Time"
    hours = default.working_hours
    assert hours.days_of_week == [
        DayOfWeek.Monday,
        DayOfWeek.Tuesday,
        DayOfWeek.Wednesday,
        DayOfWeek.Thursday,
        DayOfWeek.Friday,
    ]
    assert (hours.start_time, hours.end_time) == (dt.time(8), dt.time(17))
    assert hours.time_zone.name == "W. Europe Standard Time"

    answer = await settings.patch(
        MailboxSettings(
            working_hours=WorkingHours(
                days_of_week=[DayOfWeek.Tuesday, DayOfWeek.Saturday],
                start_time=dt.time(9, 30),
                time_zone=TimeZoneBase(name="America/Los_Angeles"),
            )
        )
    )
    assert answer.time_zone is None  # only what was updated comes back
    assert answer.working_hours.days_of_week == [DayOfWeek.Tuesday, DayOfWeek.Saturday]
    assert answer.working_hours.end_time == dt.time(17)  # left out of the PATCH: kept

    again = (await settings.get()).working_hours
    assert (again.start_time, again.end_time, again.time_zone.name) == (
        dt.time(9, 30),
        dt.time(17),
        "America/Los_Angeles",
    )
    raw = await settings_writer.http.get(f"users/{upn}/mailboxSettings/workingHours")
    assert raw.status_code == 200
    assert raw.json()["startTime"] == "09:30:00.0000000"
    assert raw.json()["daysOfWeek"] == ["tuesday", "saturday"]
    selected = (
        await settings_writer.http.get(f"users/{upn}/mailboxSettings", params={"$select": "workingHours"})
    ).json()
    assert set(selected) == {"@odata.context", "workingHours"}

    await settings.patch(MailboxSettings(time_zone="Tokyo Standard Time"))
    assert (await settings.get()).time_zone == "Tokyo Standard Time"


async def test_custom_time_zone_round_trips(settings_writer, control):
    upn = await new_mailbox(control, settings_writer.tenant_id)
    settings = settings_writer.graph.users.by_user_id(upn).mailbox_settings
    custom = CustomTimeZone(
        bias=-300,
        name="Customized Time Zone",
        standard_offset=StandardTimeZoneOffset(
            time=dt.time(2), day_occurrence=2, day_of_week=DayOfWeek.Sunday, month=10, year=0
        ),
        daylight_offset=DaylightTimeZoneOffset(
            daylight_bias=100,
            time=dt.time(2),
            day_occurrence=4,
            day_of_week=DayOfWeek.Sunday,
            month=5,
            year=0,
        ),
    )
    await settings.patch(
        MailboxSettings(working_hours=WorkingHours(end_time=dt.time(18, 30), time_zone=custom))
    )
    zone = (await settings.get()).working_hours.time_zone
    assert isinstance(zone, CustomTimeZone)
    assert (zone.bias, zone.name, zone.standard_offset.month, zone.daylight_offset.daylight_bias) == (
        -300,
        "Customized Time Zone",
        10,
        100,
    )


@pytest.mark.parametrize(
    ("working_hours", "code"),
    [
        ({"startTime": "08"}, "RequestBodyRead"),
        ({"startTime": "18:00:00", "endTime": "09:00:00"}, "ErrorInvalidTimeSettings"),
        ({"daysOfWeek": ["monday", "RandomDay"]}, "InvalidArguments"),
        ({"timeZone": {"name": "Mars/Olympus Mons"}}, "InvalidTimeZone"),
        ({"lunchBreak": "12:00"}, "RequestBodyRead"),
    ],
)
async def test_invalid_working_hours_are_400s_as_documented(settings_writer, control, working_hours, code):
    upn = await new_mailbox(control, settings_writer.tenant_id)
    response = await settings_writer.http.patch(
        f"users/{upn}/mailboxSettings", json={"workingHours": working_hours}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    unchanged = (await settings_writer.http.get(f"users/{upn}/mailboxSettings/workingHours")).json()
    assert (unchanged["startTime"], unchanged["endTime"]) == ("08:00:00.0000000", "17:00:00.0000000")


async def test_patching_mailbox_settings_needs_mailbox_settings_readwrite(connector, control):
    upn = await new_mailbox(control, connector.tenant_id)
    with pytest.raises(ODataError) as failure:
        await connector.graph.users.by_user_id(upn).mailbox_settings.patch(
            MailboxSettings(working_hours=WorkingHours(start_time=dt.time(7)))
        )
    assert failure.value.response_status_code == 403
    assert failure.value.error.code == "ErrorAccessDenied"


async def test_control_surface_sets_working_hours_and_the_demo_has_a_part_timer(connector, control):
    upn = await new_mailbox(control, connector.tenant_id, "India Standard Time")
    await control.set_working_hours(
        connector.tenant_id, upn, {"daysOfWeek": ["sunday", "monday"], "startTime": "10:00:00"}
    )
    hours = (await connector.graph.users.by_user_id(upn).mailbox_settings.get()).working_hours
    assert hours.days_of_week == [DayOfWeek.Sunday, DayOfWeek.Monday]
    assert (hours.start_time, hours.end_time, hours.time_zone.name) == (
        dt.time(10),
        dt.time(17),
        "India Standard Time",
    )
    await control.set_working_hours(connector.tenant_id, upn, None)
    back = (await connector.graph.users.by_user_id(upn).mailbox_settings.get()).working_hours
    assert back.start_time == dt.time(8)

    debra = (
        await connector.graph.users.by_user_id("debra.berger@contoso.example").mailbox_settings.get()
    ).working_hours
    assert debra.days_of_week[-1] == DayOfWeek.Thursday
    assert (debra.start_time, debra.end_time) == (dt.time(7, 30), dt.time(15, 30))


# ------------------------------------------------------------------------------------------ getSchedule


async def test_get_schedule_over_singles_a_series_an_all_day_and_a_free_event(connector, control):
    upn = await new_mailbox(control, connector.tenant_id)
    mailbox = connector.graph.users.by_user_id(upn)
    await mailbox.events.post(
        Event(
            subject="Budget review",
            start=at("2027-03-02T10:00:00"),
            end=at("2027-03-02T11:30:00"),
            location=Location(display_name="Room 1"),
        )
    )
    series = await mailbox.events.post(
        Event(
            subject="Weekly sync",
            start=at("2027-03-01T09:00:00"),
            end=at("2027-03-01T10:00:00"),
            recurrence=PatternedRecurrence(
                pattern=RecurrencePattern(
                    type=RecurrencePatternType.Weekly,
                    interval=1,
                    days_of_week=[DayOfWeek.Monday],
                    first_day_of_week=DayOfWeek.Monday,
                ),
                range=RecurrenceRange(
                    type=RecurrenceRangeType.Numbered, start_date=dt.date(2027, 3, 1), number_of_occurrences=3
                ),
            ),
        )
    )
    occurrences = await mailbox.events.by_event_id(series.id).instances.get(
        request_configuration=RequestConfiguration(
            query_parameters=InstancesRequestBuilder.InstancesRequestBuilderGetQueryParameters(
                start_date_time="2027-03-01T00:00:00Z", end_date_time="2027-03-31T00:00:00Z"
            )
        )
    )
    _first, second, third = (o.id for o in occurrences.value)
    await mailbox.events.by_event_id(second).patch(
        Event(
            start=at("2027-03-08T13:00:00"), end=at("2027-03-08T14:00:00"), show_as=FreeBusyStatus.Tentative
        )
    )
    await mailbox.events.by_event_id(third).delete()
    await mailbox.events.post(
        Event(
            subject="Conference in Tokyo",
            is_all_day=True,
            start=at("2027-03-04T00:00:00", "Tokyo Standard Time"),
            end=at("2027-03-05T00:00:00", "Tokyo Standard Time"),
            show_as=FreeBusyStatus.Oof,
        )
    )
    await mailbox.events.post(
        Event(
            subject="Focus time",
            start=at("2027-03-03T14:00:00"),
            end=at("2027-03-03T16:00:00"),
            show_as=FreeBusyStatus.Free,
        )
    )
    await mailbox.events.post(
        Event(
            subject="Doctor",
            start=at("2027-03-05T12:00:00"),
            end=at("2027-03-05T13:00:00"),
            sensitivity=Sensitivity.Private,
        )
    )
    await mailbox.events.post(
        Event(
            subject="Customer site",
            start=at("2027-03-11T09:00:00"),
            end=at("2027-03-11T17:00:00"),
            show_as=FreeBusyStatus.WorkingElsewhere,
        )
    )

    answer = await connector.graph.users.by_user_id(upn).calendar.get_schedule.post(
        schedule_request([upn], "2027-03-01T00:00:00", "2027-03-20T00:00:00")
    )
    (info,) = answer.value
    assert info.schedule_id == upn and info.error is None
    got = [(i.status, i.start.date_time[:16], i.end.date_time[:16], i.subject) for i in info.schedule_items]
    assert got == [
        (FreeBusyStatus.Busy, "2027-03-01T09:00", "2027-03-01T10:00", "Weekly sync"),
        (FreeBusyStatus.Busy, "2027-03-02T10:00", "2027-03-02T11:30", "Budget review"),
        (FreeBusyStatus.Free, "2027-03-03T14:00", "2027-03-03T16:00", "Focus time"),
        (FreeBusyStatus.Oof, "2027-03-03T15:00", "2027-03-04T15:00", "Conference in Tokyo"),
        (FreeBusyStatus.Busy, "2027-03-05T12:00", "2027-03-05T13:00", None),  # private: no subject
        (FreeBusyStatus.Tentative, "2027-03-08T13:00", "2027-03-08T14:00", "Weekly sync"),
        (FreeBusyStatus.WorkingElsewhere, "2027-03-11T09:00", "2027-03-11T17:00", "Customer site"),
    ]  # the cancelled 15 March occurrence is no item
    assert [i.is_private for i in info.schedule_items] == [False, False, False, False, True, False, False]
    assert info.schedule_items[1].location == "Room 1"
    assert {i.start.time_zone for i in info.schedule_items} == {"UTC"}

    start, end = dt.datetime(2027, 3, 1, tzinfo=dt.UTC), dt.datetime(2027, 3, 20, tzinfo=dt.UTC)
    view = info.availability_view
    assert len(view) == 19 * 24
    assert view == expected_view(info, start, end, 60)

    def hour(day: int, h: int) -> str:
        return view[(day - 1) * 24 + h]

    assert hour(1, 9) == "2" and hour(1, 10) == "0"
    assert hour(2, 10) == hour(2, 11) == "2"  # 10:00-11:30 touches two hourly slots
    assert hour(3, 14) == "0" and hour(3, 15) == "3"  # free, then free under out of office
    assert hour(8, 9) == "0" and hour(8, 13) == "1"  # the exception moved and became tentative
    assert hour(11, 9) == hour(11, 16) == "4"
    assert hour(15, 9) == "0"  # cancelled occurrence
    assert info.working_hours.start_time == dt.time(8)

    tokyo = await connector.graph.users.by_user_id(upn).calendar.get_schedule.post(
        schedule_request([upn], "2027-03-04T00:00:00", "2027-03-05T00:00:00", 1440, "Tokyo Standard Time"),
        request_configuration=prefer_zone("Tokyo Standard Time"),
    )
    (day,) = tokyo.value
    assert day.availability_view == "3"
    oof = [i for i in day.schedule_items if i.status == FreeBusyStatus.Oof]
    assert (oof[0].start.date_time, oof[0].start.time_zone) == (
        "2027-03-04T00:00:00.0000000",
        "Tokyo Standard Time",
    )


async def test_items_are_not_clipped_and_the_default_interval_is_30_minutes(connector, control):
    upn = await new_mailbox(control, connector.tenant_id, "Pacific Standard Time")
    await connector.graph.users.by_user_id(upn).events.post(
        Event(
            subject="Early",
            start=at("2027-05-03T08:30:00", "Pacific Standard Time"),
            end=at("2027-05-03T09:30:00", "Pacific Standard Time"),
        )
    )
    answer = await connector.graph.users.by_user_id(upn).calendar.get_schedule.post(
        schedule_request([upn], "2027-05-03T09:00:00", "2027-05-03T11:00:00", None, "Pacific Standard Time"),
        request_configuration=prefer_zone("Pacific Standard Time"),
    )
    (info,) = answer.value
    assert info.availability_view == "2000"
    assert info.schedule_items[0].start.date_time == "2027-05-03T08:30:00.0000000"
    assert info.working_hours.time_zone.name == "Pacific Standard Time"


async def test_unknown_addresses_fail_alone(connector, control):
    known = await new_mailbox(control, connector.tenant_id)
    answer = await connector.graph.users.by_user_id(known).calendar.get_schedule.post(
        schedule_request(
            ["nobody@contoso.example", known, "it.admin@contoso.example"],
            "2027-06-01T09:00:00",
            "2027-06-01T10:00:00",
        )
    )
    nobody, ok, no_mailbox = answer.value
    assert nobody.schedule_id == "nobody@contoso.example"
    assert nobody.error.response_code == "5009"
    assert "nobody@contoso.example" in nobody.error.message
    assert nobody.availability_view is None and nobody.schedule_items is None
    assert ok.error is None and ok.availability_view == "0"
    assert no_mailbox.error.response_code == "5009"


async def test_an_alias_finds_the_mailbox_and_is_echoed(connector):
    answer = await connector.graph.users.by_user_id("adele.vance@contoso.example").calendar.get_schedule.post(
        schedule_request(["CEO@contoso.example"], "2027-06-01T09:00:00", "2027-06-01T10:00:00")
    )
    (info,) = answer.value
    assert info.schedule_id == "CEO@contoso.example" and info.error is None


async def test_limits_are_400s_with_the_services_codes(connector, control):
    upn = await new_mailbox(control, connector.tenant_id)
    schedule = connector.graph.users.by_user_id(upn).calendar.get_schedule

    with pytest.raises(ODataError) as failure:
        await schedule.post(schedule_request([upn] * 101, "2027-06-01T00:00:00", "2027-06-02T00:00:00"))
    assert failure.value.response_status_code == 400
    assert failure.value.error.code == "ErrorMailboxDataArrayTooBig"
    assert "allowed size = 100; the actual size = 101" in failure.value.error.message
    hundred = await schedule.post(schedule_request([upn] * 100, "2027-06-01T00:00:00", "2027-06-02T00:00:00"))
    assert len(hundred.value) == 100

    with pytest.raises(ODataError) as failure:
        await schedule.post(schedule_request([upn], "2027-01-01T00:00:00", "2027-03-05T00:00:00"))
    assert failure.value.error.code == "ErrorTimeIntervalTooBig"
    assert "allowed limit = 62 days; the actual limit = 63 days" in failure.value.error.message
    sixty_two = await schedule.post(
        schedule_request([upn], "2027-01-01T00:00:00", "2027-03-04T00:00:00", 1440)
    )
    assert sixty_two.value[0].availability_view == "0" * 62

    for interval in (4, 1441):
        with pytest.raises(ODataError) as failure:
            await schedule.post(
                schedule_request([upn], "2027-06-01T00:00:00", "2027-06-02T00:00:00", interval)
            )
        assert failure.value.response_status_code == 400
        assert "availabilityViewInterval" in failure.value.error.message

    with pytest.raises(ODataError) as failure:
        await schedule.post(schedule_request([upn], "2027-06-02T00:00:00", "2027-06-01T00:00:00"))
    assert "endTime" in failure.value.error.message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"startTime": {"dateTime": "2027-06-01T00:00:00", "timeZone": "UTC"}}, "schedules"),
        ({"schedules": "a@contoso.example"}, "schedules"),
        (
            {
                "schedules": ["a@contoso.example"],
                "endTime": {"dateTime": "2027-06-01T01:00:00", "timeZone": "UTC"},
            },
            "startTime",
        ),
    ],
)
async def test_malformed_bodies_are_400s_naming_the_field(connector, body, field):
    response = await connector.http.post("users/adele.vance@contoso.example/calendar/getSchedule", json=body)
    assert response.status_code == 400
    assert field in response.json()["error"]["message"]


async def test_the_concept_pages_request_shape_is_understood(connector, control):
    upn = await new_mailbox(control, connector.tenant_id)
    response = await connector.http.post(
        f"users/{upn}/calendar/getSchedule",
        json={
            "Schedules": [upn],
            "StartTime": {"dateTime": "2027-06-01T09:00:00", "timeZone": "Pacific Standard Time"},
            "EndTime": {"dateTime": "2027-06-01T18:00:00", "timeZone": "Pacific Standard Time"},
            "availabilityViewInterval": "15",
        },
    )
    assert response.status_code == 200
    assert response.json()["value"][0]["availabilityView"] == "0" * 36


async def test_read_basic_gives_free_busy_without_subjects(basic_reader, control):
    upn = await new_mailbox(control, basic_reader.tenant_id)
    await control.seed_events(
        basic_reader.tenant_id,
        upn,
        [
            {
                "subject": "Secret plan",
                "start": {"dateTime": "2027-07-01T09:00:00", "timeZone": "UTC"},
                "end": {"dateTime": "2027-07-01T10:00:00", "timeZone": "UTC"},
            }
        ],
    )
    answer = await basic_reader.graph.users.by_user_id(upn).calendar.get_schedule.post(
        schedule_request([upn], "2027-07-01T08:00:00", "2027-07-01T11:00:00")
    )
    (item,) = answer.value[0].schedule_items
    assert (item.status, item.subject, item.location, item.is_private) == (
        FreeBusyStatus.Busy,
        None,
        None,
        None,
    )
    assert answer.value[0].availability_view == "020"


async def test_get_schedule_is_refused_without_a_calendar_permission(emulator_reset):
    async for app in app_with(emulator_reset, ["User.Read.All"]):
        with pytest.raises(ODataError) as failure:
            await app.graph.users.by_user_id("adele.vance@contoso.example").calendar.get_schedule.post(
                schedule_request(
                    ["adele.vance@contoso.example"], "2027-06-01T09:00:00", "2027-06-01T10:00:00"
                )
            )
        assert failure.value.response_status_code == 403


async def test_latency_setting_applies_to_get_schedule(connector, control):
    await control.set_latency(400)
    began = time.monotonic()
    await connector.graph.users.by_user_id("adele.vance@contoso.example").calendar.get_schedule.post(
        schedule_request(["adele.vance@contoso.example"], "2027-06-01T09:00:00", "2027-06-01T10:00:00")
    )
    assert time.monotonic() - began >= 0.4
