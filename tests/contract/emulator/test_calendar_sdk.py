"""The calendar through the real msgraph-sdk against the running emulator (TLS, Entra token, pipeline).

Uses the shared session emulator (`connector`: the demo connector app, consented in Contoso).
Each test works in its own mailbox and in years the demo seed doesn't touch.
"""

from __future__ import annotations

import datetime as dt

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.attendee import Attendee
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.day_of_week import DayOfWeek
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.event import Event
from msgraph.generated.models.event_type import EventType
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.online_meeting_provider_type import OnlineMeetingProviderType
from msgraph.generated.models.patterned_recurrence import PatternedRecurrence
from msgraph.generated.models.recurrence_pattern import RecurrencePattern
from msgraph.generated.models.recurrence_pattern_type import RecurrencePatternType
from msgraph.generated.models.recurrence_range import RecurrenceRange
from msgraph.generated.models.recurrence_range_type import RecurrenceRangeType
from msgraph.generated.models.single_value_legacy_extended_property import SingleValueLegacyExtendedProperty
from msgraph.generated.users.item.calendar_view.calendar_view_request_builder import (
    CalendarViewRequestBuilder,
)
from msgraph.generated.users.item.calendar_view.delta.delta_request_builder import DeltaRequestBuilder
from msgraph.generated.users.item.events.events_request_builder import EventsRequestBuilder
from msgraph.generated.users.item.events.item.event_item_request_builder import EventItemRequestBuilder

pytestmark = pytest.mark.contract

PROP = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name HostAppointmentId"


def at(text: str, zone: str = "W. Europe Standard Time") -> DateTimeTimeZone:
    return DateTimeTimeZone(date_time=text, time_zone=zone)


def appointment(subject: str, day: str = "2026-05-04", **extra) -> Event:
    return Event(
        subject=subject,
        body=ItemBody(content_type=BodyType.Html, content=f"<p>{subject}</p>"),
        start=at(f"{day}T09:00:00"),
        end=at(f"{day}T10:00:00"),
        **extra,
    )


async def test_sdk_create_get_patch_delete_with_if_match(connector):
    events = connector.graph.users.by_user_id("adele.vance@contoso.example").events
    created = await events.post(
        appointment(
            "SDK fitting",
            transaction_id="sdk-txn-1",
            attendees=[Attendee(email_address=EmailAddress(address="ben@fabrikam.example", name="Ben"))],
            single_value_extended_properties=[SingleValueLegacyExtendedProperty(id=PROP, value="appt-sdk-1")],
        )
    )
    assert created.id and created.type == EventType.SingleInstance
    again = await events.post(appointment("SDK fitting", transaction_id="sdk-txn-1"))
    assert again.id == created.id

    config = RequestConfiguration(
        query_parameters=EventItemRequestBuilder.EventItemRequestBuilderGetQueryParameters(
            expand=[f"singleValueExtendedProperties($filter=id eq '{PROP}')"]
        )
    )
    config.headers.add("Prefer", 'outlook.timezone="Pacific Standard Time"')
    fetched = await events.by_event_id(created.id).get(request_configuration=config)
    assert fetched.start.time_zone == "Pacific Standard Time"
    assert fetched.start.date_time == "2026-05-04T00:00:00.0000000"
    assert [(p.id, p.value) for p in fetched.single_value_extended_properties] == [(PROP, "appt-sdk-1")]

    by_value = f"singleValueExtendedProperties/Any(ep: ep/id eq '{PROP}' and ep/value eq 'APPT-sdk-1')"
    found = await events.get(  # the value matches case-insensitively
        request_configuration=RequestConfiguration(
            query_parameters=EventsRequestBuilder.EventsRequestBuilderGetQueryParameters(filter=by_value)
        )
    )
    assert [e.id for e in found.value] == [created.id]

    patched = await events.by_event_id(created.id).patch(Event(subject="SDK fitting v2"))
    assert patched.subject == "SDK fitting v2"
    stale = RequestConfiguration()
    stale.headers.add("If-Match", created.additional_data["@odata.etag"])
    with pytest.raises(ODataError) as failure:
        await events.by_event_id(created.id).patch(Event(subject="v3"), request_configuration=stale)
    assert failure.value.response_status_code == 412
    assert failure.value.error.code == "ErrorIrresolvableConflict"

    await events.by_event_id(created.id).delete()
    with pytest.raises(ODataError) as failure:
        await events.by_event_id(created.id).get()
    assert failure.value.response_status_code == 404


async def test_sdk_series_calendar_view_and_teams(connector):
    user = connector.graph.users.by_user_id("alex.wilber@contoso.example")
    series = await user.events.post(
        appointment(
            "SDK weekly",
            day="2026-03-23",
            is_online_meeting=True,
            online_meeting_provider=OnlineMeetingProviderType.TeamsForBusiness,
            recurrence=PatternedRecurrence(
                pattern=RecurrencePattern(
                    type=RecurrencePatternType.Weekly,
                    interval=1,
                    days_of_week=[DayOfWeek.Monday],
                    first_day_of_week=DayOfWeek.Monday,
                ),
                range=RecurrenceRange(
                    type=RecurrenceRangeType.Numbered,
                    start_date=dt.date(2026, 3, 23),
                    number_of_occurrences=3,
                ),
            ),
        )
    )
    assert series.type == EventType.SeriesMaster
    assert series.online_meeting.join_url.startswith("https://teams.microsoft.com/l/meetup-join/")

    view = await user.calendar_view.get(
        request_configuration=RequestConfiguration(
            query_parameters=CalendarViewRequestBuilder.CalendarViewRequestBuilderGetQueryParameters(
                start_date_time="2026-03-01T00:00:00Z", end_date_time="2026-04-30T00:00:00Z"
            )
        )
    )
    ours = [e for e in view.value if e.series_master_id == series.id]
    assert [e.start.date_time[:16] for e in ours] == [
        "2026-03-23T08:00",
        "2026-03-30T07:00",
        "2026-04-06T07:00",
    ]
    assert {e.type for e in ours} == {EventType.Occurrence}

    await user.events.by_event_id(ours[1].id).delete()
    master = await user.events.by_event_id(series.id).get()
    assert master.cancelled_occurrences == [f"OID.{series.id}.2026-03-30"]


async def test_sdk_delta_rounds_with_paging(connector, control):
    upn = "allan.deyoung@contoso.example"
    user = connector.graph.users.by_user_id(upn)
    for day in ("2030-09-01", "2030-09-02", "2030-09-03"):
        await user.events.post(appointment(f"delta {day}", day=day))

    config = RequestConfiguration(
        query_parameters=DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
            start_date_time="2030-09-01T00:00:00Z", end_date_time="2030-10-01T00:00:00Z"
        )
    )
    config.headers.add("Prefer", "odata.maxpagesize=2")
    page = await user.calendar_view.delta.get(request_configuration=config)
    seen = [e.subject for e in page.value]
    while page.odata_next_link:
        page = await user.calendar_view.delta.with_url(page.odata_next_link).get(request_configuration=config)
        seen += [e.subject for e in page.value]
    ours = sorted(subject for subject in seen if subject.startswith("delta "))  # the demo has series too
    assert ours == ["delta 2030-09-01", "delta 2030-09-02", "delta 2030-09-03"]
    delta_link = page.odata_delta_link
    assert delta_link

    await user.events.post(appointment("delta added", day="2030-09-04"))
    page = await user.calendar_view.delta.with_url(delta_link).get()
    assert [e.subject for e in page.value] == ["delta added"]

    await control.expire_delta_tokens(tenant_id=connector.tenant_id, user=upn)
    with pytest.raises(ODataError) as failure:
        await user.calendar_view.delta.with_url(page.odata_delta_link).get()
    assert failure.value.response_status_code == 410
    assert failure.value.error.code == "SyncStateNotFound"


async def test_sdk_bodies_come_back_as_exchange_stores_them(connector):
    """Exchange rewrites bodies: HTML comes back as a whole document (user-post-events), text as HTML
    unless `Prefer: outlook.body-content-type="text"` asks for text (event-get)."""
    events = connector.graph.users.by_user_id("adele.vance@contoso.example").events
    html_event = await events.post(
        Event(
            subject="Bodies (html)",
            body=ItemBody(content_type=BodyType.Html, content="Does late morning work for you?"),
            start=at("2026-06-02T09:00:00"),
            end=at("2026-06-02T10:00:00"),
        )
    )
    assert html_event.body.content_type == BodyType.Html
    assert html_event.body.content.startswith('<html>\r\n<head>\r\n<meta http-equiv="Content-Type"')
    assert "<body>\r\nDoes late morning work for you?\r\n</body>\r\n</html>" in html_event.body.content
    assert html_event.body_preview == "Does late morning work for you?"

    text = "Bring the forms & <ID>.\nRoom 4"
    text_event = await events.post(
        Event(
            subject="Bodies (text)",
            body=ItemBody(content_type=BodyType.Text, content=text),
            start=at("2026-06-02T11:00:00"),
            end=at("2026-06-02T12:00:00"),
        )
    )
    assert text_event.body.content_type == BodyType.Html
    assert "Bring the forms &amp; &lt;ID&gt;.<br>\r\nRoom 4" in text_event.body.content
    assert text_event.body_preview == "Bring the forms & <ID>. Room 4"

    # PATCHing what Graph answered (a client writing back what it read) changes nothing more
    again = await events.by_event_id(html_event.id).patch(Event(body=html_event.body))
    assert again.body.content == html_event.body.content

    as_text = RequestConfiguration()
    as_text.headers.add("Prefer", 'outlook.body-content-type="text"')
    fetched = await events.by_event_id(text_event.id).get(request_configuration=as_text)
    assert (fetched.body.content_type, fetched.body.content) == (BodyType.Text, text)
    fetched = await events.by_event_id(html_event.id).get(request_configuration=as_text)
    assert fetched.body.content_type == BodyType.Text
    assert fetched.body.content == "Does late morning work for you?"
    for event_id in (html_event.id, text_event.id):
        await events.by_event_id(event_id).delete()


async def test_sdk_lists_only_series_masters_with_their_recurrence(connector):
    """`GET /users/{id}/events` holds single instances and series masters, never occurrences
    (user-list-events.md); `$filter=type eq 'seriesMaster'` keeps the masters, each with its recurrence and
    cancelled occurrences when `$select` names them."""
    user = connector.graph.users.by_user_id("megan.bowen@contoso.example")
    weekly = PatternedRecurrence(
        pattern=RecurrencePattern(
            type=RecurrencePatternType.Weekly, interval=1, days_of_week=[DayOfWeek.Friday]
        ),
        range=RecurrenceRange(
            type=RecurrenceRangeType.Numbered, start_date=dt.date(2026, 3, 27), number_of_occurrences=4
        ),
    )
    series = await user.events.post(appointment("SDK masters", day="2026-03-27", recurrence=weekly))
    single = await user.events.post(appointment("SDK single", day="2026-03-28"))
    view = await user.calendar_view.get(
        request_configuration=RequestConfiguration(
            query_parameters=CalendarViewRequestBuilder.CalendarViewRequestBuilderGetQueryParameters(
                start_date_time="2026-03-27T00:00:00Z", end_date_time="2026-04-30T00:00:00Z"
            )
        )
    )
    second = next(
        e for e in view.value if e.series_master_id == series.id and e.start.date_time[:10] == "2026-04-03"
    )
    await user.events.by_event_id(second.id).delete()

    listed = await user.events.get(
        request_configuration=RequestConfiguration(
            query_parameters=EventsRequestBuilder.EventsRequestBuilderGetQueryParameters(
                filter="type eq 'seriesMaster'",
                select=["id", "type", "recurrence", "cancelledOccurrences", "changeKey"],
                top=50,
            )
        )
    )
    ids = [e.id for e in listed.value]
    assert series.id in ids and single.id not in ids
    assert {e.type for e in listed.value} == {EventType.SeriesMaster}
    master = next(e for e in listed.value if e.id == series.id)
    assert master.recurrence.pattern.type == RecurrencePatternType.Weekly
    assert master.cancelled_occurrences == [f"OID.{series.id}.2026-04-03"]
