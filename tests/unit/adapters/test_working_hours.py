"""mailboxSettings' working hours as Graph (and the emulator) answer them."""

from __future__ import annotations

from datetime import time

import pytest

from shared.adapters.graph.calendar import working_hours_of
from shared.service.records import WorkingHours

pytestmark = pytest.mark.unit


def test_graphs_shape_with_seven_fractional_digits_is_read() -> None:
    answer = {
        "timeZone": "UTC",
        "workingHours": {
            "daysOfWeek": ["monday", "Tuesday", "wednesday"],
            "startTime": "08:00:00.0000000",
            "endTime": "17:30:00.0000000",
            "timeZone": {"name": "Pacific Standard Time"},
        },
    }
    assert working_hours_of(answer) == WorkingHours(
        ("monday", "tuesday", "wednesday"), time(8), time(17, 30), "Pacific Standard Time"
    )


def test_without_a_zone_of_their_own_the_mailboxs_zone_applies() -> None:
    answer = {
        "timeZone": "W. Europe Standard Time",
        "workingHours": {"daysOfWeek": [], "startTime": "09:00:00", "endTime": "17:00:00"},
    }
    hours = working_hours_of(answer)
    assert hours is not None and hours.zone == "W. Europe Standard Time" and hours.days == ()


@pytest.mark.parametrize(
    "answer",
    [
        {"timeZone": "UTC"},  # no workingHours (an older emulator, a mailbox without them)
        {"workingHours": None},
        {"workingHours": {"daysOfWeek": ["monday"], "startTime": "soon", "endTime": "17:00:00"}},
        {"workingHours": {"daysOfWeek": ["monday"]}},
    ],
)
def test_absent_or_unreadable_working_hours_are_none(answer: dict[str, object]) -> None:
    assert working_hours_of(answer) is None
