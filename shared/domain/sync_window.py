"""The window a user's calendar is read over, and the nights a user's calendar is read whole.

calendarView delta is bound to the window its first request named (graph-contract §4.1: the window is
encoded into the skip and delta tokens; moving it takes a new round). So a complete read asks for a little
more than the configured window (`WINDOW_MARGIN` beyond its far end) and the delta link it ends with is
followed while that read window still covers the configured one; the read starts over only when today's
far edge passes the margin (or the configured window grew). The near edge needs no read: what ends
before the configured start is aged out by the planner, whichever read it came from.

A full reconciliation (the whole window read and compared with the statuses) runs on each user's own
night, once every `every_days` nights, spread over the nights by a hash of the tenant and staff ids, so a
tenant's users are not all read whole on one night.
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta
from typing import Final

from shared.domain.tenants import TenantSettings

WINDOW_MARGIN: Final = timedelta(days=7)  # read beyond the configured far edge; start over once it passes
DEFAULT_RECONCILIATION_DAYS: Final = 7  # a user's calendar and To Do list are read whole once a week

Window = tuple[datetime, datetime]


def read_window(settings: TenantSettings, now: datetime) -> Window:
    """What a complete read asks Graph for: the configured window and `WINDOW_MARGIN` beyond it."""
    start, end = settings.window(now)
    return start, end + WINDOW_MARGIN


def covers(held: Window | None, wanted: Window) -> bool:
    """The window a held delta link reads still holds the configured one (no step is due)."""
    return held is not None and held[0] <= wanted[0] and wanted[1] <= held[1]


def reconciliation_night(tenant_id: str, staff_id: str, now: datetime, every_days: int) -> bool:
    """Whether tonight (the UTC day of `now`) is the user's full reconciliation: one night in
    `every_days`, the same one for a user every cycle, the users spread evenly over the nights."""
    if every_days <= 1:
        return True
    offset = zlib.crc32(f"{tenant_id}/{staff_id}".encode()) % every_days
    return now.date().toordinal() % every_days == offset
