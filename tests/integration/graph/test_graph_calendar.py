"""The Graph calendar adapters against the emulator: paging, batching, and every failure Graph can answer
translated into the ports' errors (fault injection, revoked consent, missing mailboxes)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.adapters.graph.errors import GraphError
from shared.domain.calendar import APPOINTMENT_PROPERTY_ID, OutlookEvent
from shared.service.errors import DeltaTokenRejected, MailboxUnavailable, RateLimited, TenantAccessError
from tests.fixtures.emulator import EmulatorInfo
from tests.integration.graph.harness import EmulatorGraph, open_emulator_graph

pytestmark = pytest.mark.integration

WINDOW = (datetime(2030, 3, 1, tzinfo=UTC), datetime(2030, 4, 1, tzinfo=UTC))
DELTA_PATH = r"/calendarView/delta"


@pytest.fixture
async def graph(emulator_reset: EmulatorInfo) -> AsyncIterator[EmulatorGraph]:
    async with open_emulator_graph(emulator_reset) as harness:
        yield harness


def meeting(subject: str, day: int, hour: int = 9, zone: str = "UTC", **extra: Any) -> dict[str, Any]:
    return {
        "subject": subject,
        "start": {"dateTime": f"2030-03-{day:02d}T{hour:02d}:00:00", "timeZone": zone},
        "end": {"dateTime": f"2030-03-{day:02d}T{hour + 1:02d}:00:00", "timeZone": zone},
        **extra,
    }


async def fired(graph: EmulatorGraph) -> int:
    """Fault answers the test's standing rules gave; each is scoped to the test's mailbox, so another
    host sharing the emulator cannot fire them (a rule spent to its count is dropped)."""
    return sum(int(rule["fired"]) for rule in await graph.control.faults())


# --- paging and batching ---------------------------------------------------------------------------


async def test_a_round_follows_every_page_to_the_delta_link_and_counts_its_requests(graph: EmulatorGraph):
    user = await graph.new_mailbox()
    ids = {(await graph.seed(user, meeting(f"Visit {day}", day)))["id"] for day in range(1, 11)}

    read = await graph.calendar(page_size=3).read_delta(graph.tenant, user, None, WINDOW)

    assert {i.id for i in read.items} == ids
    assert read.requests == 4  # 3 + 3 + 3 + 1
    again = await graph.calendar(page_size=3).read_delta(graph.tenant, user, read.delta_link, WINDOW)
    assert (again.items, again.requests) == ([], 1)


async def test_times_come_back_in_utc_and_all_day_events_as_their_dates(graph: EmulatorGraph):
    user = await graph.new_mailbox()
    pacific = await graph.seed(user, meeting("Call with Seattle", 10, 9, zone="Pacific Standard Time"))
    holiday = await graph.seed(
        user,
        {
            "subject": "Offsite",
            "isAllDay": True,
            "start": {"dateTime": "2030-03-12T00:00:00", "timeZone": "Tokyo Standard Time"},
            "end": {"dateTime": "2030-03-14T00:00:00", "timeZone": "Tokyo Standard Time"},
        },
    )

    read = await graph.calendar().read_delta(graph.tenant, user, None, WINDOW)

    found = {i.id: i for i in read.items if isinstance(i, OutlookEvent)}
    assert found[pacific["id"]].start == datetime(2030, 3, 10, 16, tzinfo=UTC)  # PDT (UTC-7) from 10 March
    assert found[pacific["id"]].original_time_zone == "Pacific Standard Time"
    assert (found[holiday["id"]].start.isoformat(), found[holiday["id"]].end.isoformat()) == (
        "2030-03-12",
        "2030-03-14",
    )


async def test_connector_events_follow_next_links(graph: EmulatorGraph):
    user = await graph.new_mailbox()
    tagged = {}
    for day in range(1, 6):
        payload = meeting(f"Booked {day}", day)
        payload["singleValueExtendedProperties"] = [{"id": APPOINTMENT_PROPERTY_ID, "value": f"appt-{day}"}]
        tagged[(await graph.seed(user, payload))["id"]] = f"appt-{day}"
    await graph.seed(user, meeting("Own", 7))

    assert await graph.calendar(page_size=2).connector_events(graph.tenant, user) == tagged


async def test_more_than_a_thousand_ews_ids_go_in_batches(graph: EmulatorGraph):
    user = await graph.new_mailbox()
    known = await graph.seed(user, meeting("Migrated", 3), ews_id="AAMkADlegacy-known")
    unknown = [f"AAMkADlegacy-{n}" for n in range(1500)]

    translated = await graph.calendar().translate_ews_ids(
        graph.tenant, user, [*unknown, "AAMkADlegacy-known"]
    )

    assert translated == {"AAMkADlegacy-known": known["id"]}


# --- throttling and outages ------------------------------------------------------------------------


async def test_one_429_is_retried_by_the_sdk_and_the_read_succeeds(graph: EmulatorGraph):
    user = await graph.new_mailbox()
    await graph.seed(user, meeting("Visit", 4))
    await graph.control.add_fault(status=429, retry_after=1, path=DELTA_PATH, mailbox=user, count=1)

    read = await graph.calendar().read_delta(graph.tenant, user, None, WINDOW)

    assert len(read.items) == 1
    assert await graph.control.faults() == []  # the single 429 was answered (a spent rule is dropped)


async def test_429_beyond_the_sdks_retries_is_rate_limited_with_graphs_retry_after(graph: EmulatorGraph):
    user = await graph.new_mailbox()
    await graph.control.add_fault(status=429, retry_after=1, path=DELTA_PATH, mailbox=user)

    with pytest.raises(RateLimited) as raised:
        await graph.calendar().read_delta(graph.tenant, user, None, WINDOW)

    assert raised.value.retry_after == 1
    assert "429" in raised.value.reason
    assert await fired(graph) == 3  # the first answer and the SDK's two retries, no more


async def test_a_retry_after_beyond_the_sdks_horizon_comes_back_at_once(graph: EmulatorGraph):
    user = await graph.new_mailbox()
    await graph.control.add_fault(status=429, retry_after=600, path=DELTA_PATH, mailbox=user)

    began = time.monotonic()
    with pytest.raises(RateLimited) as raised:
        await graph.calendar().read_delta(graph.tenant, user, None, WINDOW)

    assert raised.value.retry_after == 600
    assert time.monotonic() - began < 5
    assert await fired(graph) == 1


@pytest.mark.parametrize("status", [503, 504])
async def test_service_unavailable_after_retries_is_rate_limited(graph: EmulatorGraph, status: int):
    user = await graph.new_mailbox()
    await graph.control.add_fault(status=status, retry_after=1, path=DELTA_PATH, mailbox=user)

    with pytest.raises(RateLimited) as raised:
        await graph.calendar().read_delta(graph.tenant, user, None, WINDOW)

    assert raised.value.retry_after == 1
    assert str(status) in raised.value.reason


async def test_graph_refusing_the_token_once_is_answered_with_a_new_token_not_a_retry_later(
    graph: EmulatorGraph,
):
    user = await graph.new_mailbox()
    await graph.control.add_fault(
        status=401,
        code="InvalidAuthenticationToken",
        message="Access token has expired or is not yet valid.",
        path=DELTA_PATH,
        mailbox=user,
        count=1,
    )

    read = await graph.calendar().read_delta(graph.tenant, user, None, WINDOW)  # sent again, new token

    assert read.items == []
    assert (await graph.control.stats())["faults_injected"] == 1


async def test_an_internal_server_error_is_rate_limited_too(graph: EmulatorGraph):
    user = await graph.new_mailbox()
    await graph.control.add_fault(status=500, path=DELTA_PATH, mailbox=user, count=1)

    with pytest.raises(RateLimited) as raised:
        await graph.calendar().read_delta(graph.tenant, user, None, WINDOW)
    assert raised.value.retry_after > 0


async def test_throttling_on_a_later_page_fails_the_whole_round(graph: EmulatorGraph):
    user = await graph.new_mailbox()
    for day in range(1, 7):
        await graph.seed(user, meeting(f"Visit {day}", day))
    await graph.control.set_throttle(budget=2, window_s=600)  # the mailbox's third request is refused

    with pytest.raises(RateLimited) as raised:
        await graph.calendar(page_size=2).read_delta(graph.tenant, user, None, WINDOW)
    assert raised.value.retry_after > 180  # beyond the SDK's horizon: no retry, the job waits


# --- delta links -----------------------------------------------------------------------------------


async def test_410_sync_state_not_found_is_a_rejected_token(graph: EmulatorGraph):
    user = await graph.new_mailbox()
    first = await graph.calendar().read_delta(graph.tenant, user, None, WINDOW)
    await graph.control.add_fault(
        status=410, code="SyncStateNotFound", path=DELTA_PATH, mailbox=user, count=1
    )

    with pytest.raises(DeltaTokenRejected):
        await graph.calendar().read_delta(graph.tenant, user, first.delta_link, WINDOW)


async def test_a_link_of_another_mailbox_or_a_garbled_one_is_a_rejected_token(graph: EmulatorGraph):
    alice, bob = await graph.new_mailbox(), await graph.new_mailbox()
    alices = await graph.calendar().read_delta(graph.tenant, alice, None, WINDOW)
    bobs_url = alices.delta_link.replace(alice, bob)

    with pytest.raises(DeltaTokenRejected):
        await graph.calendar().read_delta(graph.tenant, bob, bobs_url, WINDOW)
    with pytest.raises(DeltaTokenRejected):
        garbled = alices.delta_link.split("$deltatoken=")[0] + "$deltatoken=not-a-token"
        await graph.calendar().read_delta(graph.tenant, alice, garbled, WINDOW)


# --- mailboxes and tenants -------------------------------------------------------------------------


async def test_a_user_without_a_mailbox_is_unavailable_with_a_reason_to_act_on(graph: EmulatorGraph):
    user = await graph.new_mailbox(mailbox_enabled=False)

    with pytest.raises(MailboxUnavailable) as raised:
        await graph.calendar().read_delta(graph.tenant, user, None, WINDOW)
    assert "MailboxNotEnabledForRESTAPI" in raised.value.reason
    assert "licence" in raised.value.reason

    with pytest.raises(MailboxUnavailable):
        await graph.subscriptions().create(graph.tenant, user, "state", datetime.now(UTC) + timedelta(days=1))


async def test_an_unknown_user_is_unavailable(graph: EmulatorGraph):
    with pytest.raises(MailboxUnavailable) as raised:
        await graph.calendar().connector_events(graph.tenant, "00000000-0000-4000-8000-00000000dead")
    assert "ErrorInvalidUser" in raised.value.reason


async def test_a_403_on_one_mailbox_with_a_readable_directory_is_that_mailbox_unavailable(
    graph: EmulatorGraph,
):
    user, colleague = await graph.new_mailbox(), await graph.new_mailbox()
    await graph.control.add_fault(
        status=403,
        code="ErrorAccessDenied",
        message="Access is denied. Check credentials and try again.",
        path=r"/users/",
        mailbox=user,
    )

    with pytest.raises(MailboxUnavailable) as raised:
        await graph.calendar().read_delta(graph.tenant, user, None, WINDOW)
    assert "access policy" in raised.value.reason

    read = await graph.calendar().read_delta(graph.tenant, colleague, None, WINDOW)  # others are fine
    assert read.items == []


async def test_revoked_consent_is_a_tenant_access_error_on_every_call(graph: EmulatorGraph):
    user = await graph.new_mailbox()
    await graph.revoke_consent()
    calendar, subscriptions = graph.calendar(), graph.subscriptions()

    with pytest.raises(TenantAccessError) as raised:
        await calendar.read_delta(graph.tenant, user, None, WINDOW)
    assert "consent" in raised.value.reason
    with pytest.raises(TenantAccessError):
        await calendar.connector_events(graph.tenant, user)
    with pytest.raises(TenantAccessError):
        await calendar.translate_ews_ids(graph.tenant, user, ["AAMkADx"])
    with pytest.raises(TenantAccessError):
        await subscriptions.create(graph.tenant, user, "state", datetime.now(UTC) + timedelta(days=1))


async def test_a_deleted_service_principal_is_a_tenant_access_error(graph: EmulatorGraph):
    user = await graph.new_mailbox()
    await graph.control.revoke_consent(graph.tenant.directory_id, graph.client_id, mode="service_principal")
    await graph.clients.forget(await graph.key_for(graph.tenant))

    with pytest.raises(TenantAccessError):
        await graph.calendar().read_delta(graph.tenant, user, None, WINDOW)


# --- subscriptions ---------------------------------------------------------------------------------


async def test_a_subscription_passes_the_webhook_handshake_and_uses_the_configured_urls(graph: EmulatorGraph):
    user = await graph.new_mailbox()

    created = await graph.subscriptions().create(
        graph.tenant, user, "s3cret", datetime.now(UTC) + timedelta(days=2)
    )

    [held] = [s for s in await graph.control.subscriptions() if s["id"] == created.id]
    assert held["notificationUrl"] == graph.webhook.notification_url
    assert held["lifecycleNotificationUrl"] == graph.webhook.lifecycle_url
    assert held["changeType"] == "created,updated,deleted"
    assert held["clientState"] == "s3cret"
    assert graph.webhook.validations >= 1


async def test_a_webhook_that_fails_the_handshake_is_a_clear_error(graph: EmulatorGraph):
    user = await graph.new_mailbox()
    broken = graph.subscriptions()
    broken._notification_url = graph.webhook.base + "/nowhere"  # 404: no handshake

    with pytest.raises(GraphError) as raised:
        await broken.create(graph.tenant, user, "state", datetime.now(UTC) + timedelta(days=2))
    assert raised.value.status == 400
    assert "validation" in raised.value.message.lower()


async def test_a_short_lifetime_is_raised_by_graph_and_the_answer_says_so(graph: EmulatorGraph):
    user = await graph.new_mailbox()
    asked = datetime.now(UTC) + timedelta(minutes=5)

    created = await graph.subscriptions().create(graph.tenant, user, "state", asked)

    assert created.expires_at >= asked + timedelta(minutes=39)  # at least 45 minutes from Graph's now


async def test_a_duplicate_subscription_left_by_a_dead_run_is_adopted_not_refused(graph: EmulatorGraph):
    """Regression: a run that died between Graph's create and the index write left a subscription; Graph
    answers 409 to the next create, which must adopt (renew) the existing one."""
    user = await graph.new_mailbox()
    expires = datetime.now(UTC) + timedelta(days=2)
    orphan = await graph.subscriptions().create(graph.tenant, user, "state", expires)

    adopted = await graph.subscriptions().create(graph.tenant, user, "state", expires + timedelta(hours=1))

    assert adopted.id == orphan.id
    assert adopted.adopted and not orphan.adopted  # its clientState's key version is not known
    mine = [s for s in await graph.control.subscriptions() if s["resource"].endswith(f"{user}/events")]
    assert len(mine) == 1
