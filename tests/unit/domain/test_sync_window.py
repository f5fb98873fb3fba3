"""The stepped read window, the nights of each user's full reconciliation, and the setting that says how
often."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from shared import settings
from shared.domain.sync_window import WINDOW_MARGIN, covers, read_window, reconciliation_night
from shared.domain.tenants import TenantSettings
from shared.service.context import ConnectorConfig

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)


def environ(**extra: str) -> dict[str, str]:
    env = {name: "x" for name in settings.REQUIRED}
    env["AzureWebJobsStorage"] = "UseDevelopmentStorage=true"
    return {**env, **extra}


def test_a_read_reaches_the_margin_past_the_configured_window_and_holds_it_until_the_edge_passes() -> None:
    configured = TenantSettings()
    start, end = read_window(configured, NOW)
    assert (start, end - WINDOW_MARGIN) == configured.window(NOW)
    held = (start, end)
    nights = [n for n in range(1, 20) if not covers(held, configured.window(NOW + timedelta(days=n)))]
    assert nights[0] == WINDOW_MARGIN.days + 1  # the first night the far edge is past what the link reads
    wider = TenantSettings(window_days_forward=365)
    assert not covers(held, wider.window(NOW))  # a window made larger starts over at once
    assert not covers(None, configured.window(NOW))


def test_each_user_is_read_whole_on_one_night_in_n_and_the_users_are_spread_over_the_nights() -> None:
    staff = [f"staff-{n}" for n in range(700)]
    per_night: Counter[int] = Counter()
    for staff_id in staff:
        nights = [
            n
            for n in range(14)
            if reconciliation_night("contoso.example", staff_id, NOW + timedelta(days=n), 7)
        ]
        assert len(nights) == 2 and nights[1] - nights[0] == 7
        per_night[nights[0]] += 1
    assert sorted(per_night) == list(range(7)) and all(60 <= n <= 140 for n in per_night.values())
    assert all(reconciliation_night("t", s, NOW, 1) for s in staff[:20])  # one in one: every night


def test_the_reconciliation_setting_is_read_and_defaults_to_weekly() -> None:
    assert settings.Settings.from_environ(environ()).reconciliation_days == 7
    assert settings.Settings.from_environ(environ(RECONCILIATION_DAYS=" 14 ")).reconciliation_days == 14
    assert ConnectorConfig("app", "https://login", "https://app").reconciliation_days == 7
    assert "RECONCILIATION_DAYS" in settings.OPTIONAL


@pytest.mark.parametrize("value", ["0", "29", "weekly", "7.5", "-1"])
def test_a_reconciliation_setting_out_of_range_stops_the_app_naming_it(value: str) -> None:
    with pytest.raises(settings.SettingsError, match=r"RECONCILIATION_DAYS: a whole number, 1 to 28"):
        settings.Settings.from_environ(environ(RECONCILIATION_DAYS=value))
