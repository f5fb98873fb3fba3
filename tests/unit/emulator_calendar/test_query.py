"""OData `$filter`/`$expand` subset of the calendar, on hand-made records."""

from __future__ import annotations

import pytest

from m365emulator.calendar.query import Record, compile_filter, ext_key, parse_expand, parse_orderby
from m365emulator.errors import GraphError

pytestmark = pytest.mark.unit

PROP = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name HostAppointmentId"


def record(**json):
    ext = {ext_key(PROP): (PROP, "Appt-1")}
    base = {
        "subject": "Fitting with Bob",
        "type": "singleInstance",
        "categories": ["Blue", "Host"],
        "start": {"dateTime": "2026-05-04T07:00:00.0000000", "timeZone": "UTC"},
        "isAllDay": False,
    }
    base.update(json)
    return Record(lambda: base, ext)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("subject eq 'fitting with bob'", True),
        ("subject ne 'Fitting with Bob'", False),
        ("contains(subject, 'BOB')", True),
        ("startswith(subject,'Fit') and not endswith(subject, 'Alice')", True),
        ("type eq 'seriesMaster' or type eq 'singleInstance'", True),
        ("start/dateTime ge '2026-05-04T07:00:00'", True),
        ("start/dateTime lt '2026-05-04T06:59:59Z'", False),
        ("start/dateTime gt 2026-05-01T00:00:00Z", True),
        ("categories/any(c: c eq 'host')", True),
        ("categories/all(c: c eq 'Host')", False),
        ("isAllDay eq false", True),
        (f"singleValueExtendedProperties/Any(ep: ep/id eq '{PROP}' and ep/value eq 'APPT-1')", True),
        (f"singleValueExtendedProperties/any(ep: ep/id eq '{PROP.lower()}' and ep/value eq 'Appt-1')", False),
        (
            "singleValueExtendedProperties/any(ep: ep/id eq "
            "'string {66F5A359-4659-4830-9070-00047EC6AC6E} name HostAppointmentId')",
            True,
        ),
        ("(subject eq 'x' or subject eq 'Fitting with Bob') and type eq 'singleInstance'", True),
    ],
)
def test_filter_expressions(expression, expected):
    assert compile_filter(expression)(record()) is expected


@pytest.mark.parametrize(
    "expression", ["subject eq", "subject eq 'x' and", "subject wibble 'x'", "((subject"]
)
def test_malformed_filters_are_400(expression):
    with pytest.raises(GraphError) as failure:
        compile_filter(expression)(record())
    assert failure.value.status == 400


def test_expand_picks_the_requested_extended_properties():
    ids, everything = parse_expand(
        f"singleValueExtendedProperties($filter=id eq '{PROP}' or id eq 'String 0x0037')"
    )
    assert ids == {ext_key(PROP), ext_key("String 0x0037")} and not everything
    assert parse_expand("singleValueExtendedProperties") == (frozenset(), True)
    assert parse_expand("attachments") == (None, False)


def test_orderby():
    assert parse_orderby("start/dateTime desc, subject") == [("start/dateTime", True), ("subject", False)]
    with pytest.raises(GraphError):
        parse_orderby("subject sideways")
