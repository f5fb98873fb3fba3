"""Bad input gets a Graph error (4xx), never a crash, and changes nothing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m365emulator.calendar.model import MailboxOwner
from m365emulator.calendar.store import CalendarStore
from m365emulator.clock import Clock
from m365emulator.errors import GraphError

pytestmark = pytest.mark.unit

OWNER = MailboxOwner("tid", "uid", "alice@contoso.com", None, "Alice", "UTC")
KEYS = [
    "subject",
    "body",
    "start",
    "end",
    "isAllDay",
    "recurrence",
    "categories",
    "showAs",
    "sensitivity",
    "importance",
    "attendees",
    "location",
    "locations",
    "reminderMinutesBeforeStart",
    "isOnlineMeeting",
    "singleValueExtendedProperties",
    "transactionId",
    "isReminderOn",
    "wibble",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 40),
    st.sampled_from(
        [
            "",
            "x",
            "2026-03-29T02:30:00",
            "2026-03-29",
            "9999-12-31T23:59:59",
            "Europe/Berlin",
            "weekly",
            "monday",
            "last",
            "numbered",
            "noEnd",
            "endDate",
            "html",
            "busy",
            "W. Europe Standard Time",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(
                [
                    "dateTime",
                    "timeZone",
                    "pattern",
                    "range",
                    "type",
                    "interval",
                    "daysOfWeek",
                    "startDate",
                    "endDate",
                    "numberOfOccurrences",
                    "index",
                    "month",
                    "dayOfMonth",
                    "content",
                    "contentType",
                    "emailAddress",
                    "address",
                    "displayName",
                    "id",
                    "value",
                ]
            ),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=12,
)
payloads = st.dictionaries(st.sampled_from(KEYS), values, max_size=8)
VALID = {
    "subject": "ok",
    "start": {"dateTime": "2026-03-23T09:00:00", "timeZone": "UTC"},
    "end": {"dateTime": "2026-03-23T10:00:00", "timeZone": "UTC"},
}


@settings(max_examples=300, deadline=None)
@given(payloads)
def test_create_and_patch_answer_graph_errors_only(payload):
    store = CalendarStore(OWNER, Clock(), lambda change: None)
    try:
        store.create({**VALID, **payload})
    except GraphError as error:
        assert 400 <= error.status < 500
        assert store.event_count() == 0
    existing = store.create(VALID)
    before = (existing.subject, existing.start, existing.change_key)
    try:
        store.update(existing.id, payload, None)
    except GraphError as error:
        assert 400 <= error.status < 500
        assert (existing.subject, existing.start, existing.change_key) == before
