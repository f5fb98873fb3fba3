"""Ids: occurrence ids are stable and lead back to their master; iCalUIds differ per occurrence."""

from __future__ import annotations

from datetime import date

import pytest

from m365emulator.calendar import ids
from m365emulator.errors import GraphError

pytestmark = pytest.mark.unit


def test_occurrence_ids_are_stable_and_parse_back():
    master = ids.new_event_id()
    first = ids.occurrence_id(master, date(2026, 3, 30))
    assert first == ids.occurrence_id(master, date(2026, 3, 30))
    assert first != ids.occurrence_id(master, date(2026, 3, 31))
    assert ids.parse_id(first) == (master, date(2026, 3, 30))
    assert ids.parse_id(master) == (master, None)


def test_ical_uids_differ_per_occurrence_and_encode_the_date():
    master = ids.new_event_id()
    series_uid = ids.ical_uid_of(master)
    occurrence_uid = ids.ical_uid_of(ids.occurrence_id(master, date(2026, 3, 30)))
    assert series_uid.startswith("040000008200E00074C5B7101A82E00800000000")
    assert occurrence_uid.startswith("040000008200E00074C5B7101A82E00807EA031E")  # 2026-03-30
    assert occurrence_uid[40:] == series_uid[40:]


def test_ews_ids_translate_back():
    rest = ids.new_event_id()
    assert ids.rest_id_from_ews(ids.ews_id(rest)) == rest


@pytest.mark.parametrize("bad", ["", "nope", "AAMkA!!!", "AAMkA" + "A" * 10])
def test_malformed_ids_are_400(bad):
    with pytest.raises(GraphError) as failure:
        ids.parse_id(bad)
    assert failure.value.status == 400
