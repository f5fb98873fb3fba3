"""Delivering the change feed to the host's webhook, against fakes: what the host received (and whether it
verifies), what went back on the queue, and what was dead-lettered."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest

from functions import views
from shared import settings
from shared.domain.signing import SIGNATURE_HEADER, delivery_signature_valid
from shared.domain.tenants import TenantState
from shared.service import jobs
from shared.service.change_json import change_json
from shared.service.context import Services
from shared.service.deliveries import (
    ATTEMPT_HEADER,
    DELIVERY_HEADER,
    deliver_changes,
    drop_dead_letter,
    list_dead_letters,
    redeliver_dead_letters,
)
from shared.service.delivery_policy import DeliveryPolicy
from shared.service.errors import DeliveryFailed, NotFound
from shared.service.job_handlers import run_message
from shared.service.jobs import Job
from shared.service.keys import HOST_WEBHOOK_SECRET
from shared.service.records import Change, DeadLetter
from tests.fakes.services import FakeWorld, add_tenant, fake_world
from tests.fakes.webhook import Delivery, FakeHostWebhook

pytestmark = pytest.mark.unit

TENANT = "contoso.example"
SECRET = "whsec-4d1c0e7e3f2a9b8c"
URL = "https://host.example/hooks/outlook"


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TENANT, TenantState.ACTIVE, directory_id="9188040d-6c67-4c5b-b112-36a304b66dad")
    w.secrets.values[HOST_WEBHOOK_SECRET] = SECRET
    return w


async def append(world: FakeWorld, count: int) -> list[Change]:
    now = world.clock.now()
    return await world.feed.append(
        TENANT,
        [
            Change(
                "event.deleted",
                TENANT,
                {
                    "event": {"id": f"AAMk{i}"},
                    "appointment_id": "Zahnarzt-ü",  # any text of the body: never logged
                    "reason": "deleted",
                },
                now,
                staff_id="s1",
            )
            for i in range(count)
        ],
    )


def body_of(delivery: Delivery) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(delivery.body)
    return data


def sequences(delivery: Delivery) -> list[int]:
    return [c["sequence"] for c in body_of(delivery)["changes"]]


async def run_queue(world: FakeWorld, policy: DeliveryPolicy, services: Services | None = None) -> list[Job]:
    """Run queued delivery jobs (and those they queue) to the end, honouring their delays; returns them."""
    ran: list[Job] = []
    while queued := world.jobs.take():
        for job in queued:
            world.clock.advance(seconds=job.delay_seconds)
            ran.append(job)
            await deliver_changes(services or world.services, job, policy)
    return ran


async def test_a_range_is_posted_signed_in_the_pull_feed_shape(world: FakeWorld) -> None:
    changes = await append(world, 3)
    await deliver_changes(world.services, jobs.deliver(TENANT, 1, 3))
    [delivery] = world.webhook.received
    assert delivery.url == URL
    assert delivery.headers["Content-Type"] == "application/json"
    assert delivery.headers[DELIVERY_HEADER] == f"{TENANT}:1-3"
    assert delivery.headers[ATTEMPT_HEADER] == "1"
    now = int(world.clock.now().timestamp())
    assert delivery_signature_valid(SECRET.encode(), delivery.headers[SIGNATURE_HEADER], delivery.body, now)
    assert body_of(delivery) == {"tenant_id": TENANT, "changes": [change_json(c) for c in changes]}
    assert b" " not in delivery.body  # compact
    assert views.change_json is change_json  # the pull feed serves the same shape
    assert world.jobs.queued == []
    assert world.dead_letters.rows == {}


async def test_a_tampered_or_stale_delivery_does_not_verify(world: FakeWorld) -> None:
    await append(world, 1)
    await deliver_changes(world.services, jobs.deliver(TENANT, 1, 1))
    [delivery] = world.webhook.received
    header, now = delivery.headers[SIGNATURE_HEADER], int(world.clock.now().timestamp())
    assert not delivery_signature_valid(SECRET.encode(), header, delivery.body + b" ", now)
    assert not delivery_signature_valid(b"another secret", header, delivery.body, now)
    assert not delivery_signature_valid(SECRET.encode(), header, delivery.body, now + 3600)


async def test_a_long_range_is_split_into_posts_in_order(world: FakeWorld) -> None:
    await append(world, 250)
    await deliver_changes(world.services, jobs.deliver(TENANT, 1, 250))
    assert [sequences(d) for d in world.webhook.received] == [
        list(range(1, 101)),
        list(range(101, 201)),
        list(range(201, 251)),
    ]
    assert [d.headers[DELIVERY_HEADER] for d in world.webhook.received] == [
        f"{TENANT}:1-100",
        f"{TENANT}:101-200",
        f"{TENANT}:201-250",
    ]


async def test_only_the_named_range_is_posted(world: FakeWorld) -> None:
    await append(world, 10)
    await deliver_changes(world.services, jobs.deliver(TENANT, 4, 6))
    assert [sequences(d) for d in world.webhook.received] == [[4, 5, 6]]


async def test_a_refused_post_is_queued_again_with_a_backoff(world: FakeWorld) -> None:
    await append(world, 2)
    world.webhook.failures.append(DeliveryFailed("HTTP 503"))
    await deliver_changes(world.services, jobs.deliver(TENANT, 1, 2), DeliveryPolicy(base_delay_seconds=30))
    assert world.webhook.received == []
    assert world.jobs.queued == [jobs.deliver(TENANT, 1, 2, attempt=1, delay_seconds=30)]
    assert world.dead_letters.rows == {}

    await run_queue(world, DeliveryPolicy(base_delay_seconds=30))
    [delivery] = world.webhook.received
    assert delivery.headers[ATTEMPT_HEADER] == "2"
    assert delivery.headers[DELIVERY_HEADER] == f"{TENANT}:1-2"  # the same id: the host can deduplicate
    now = int(world.clock.now().timestamp())
    assert delivery_signature_valid(SECRET.encode(), delivery.headers[SIGNATURE_HEADER], delivery.body, now)


async def test_after_the_last_attempt_the_range_is_dead_lettered(
    world: FakeWorld, caplog: pytest.LogCaptureFixture
) -> None:
    policy = DeliveryPolicy(max_attempts=6, base_delay_seconds=60, max_delay_seconds=600)
    await append(world, 3)
    world.webhook.failures.extend(DeliveryFailed("HTTP 500") for _ in range(6))
    await world.jobs.enqueue([jobs.deliver(TENANT, 1, 3)])
    with caplog.at_level(logging.INFO, logger="connector"):
        ran = await run_queue(world, policy)
    assert [j.attempt for j in ran] == [0, 1, 2, 3, 4, 5]
    assert [j.delay_seconds for j in ran] == [0, 60, 120, 240, 480, 600]  # doubled, capped
    assert world.webhook.received == []
    assert await list_dead_letters(world.services, TENANT) == [
        DeadLetter(TENANT, 1, 3, attempts=6, reason="HTTP 500", failed_at=world.clock.now())
    ]
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert TENANT in warning.getMessage()
    assert "1-3" in warning.getMessage()
    assert SECRET not in caplog.text
    assert "Zahnarzt" not in caplog.text  # never the body


async def test_a_failure_that_retrying_cannot_fix_is_dead_lettered_at_once(world: FakeWorld) -> None:
    await append(world, 1)
    world.webhook.failures.append(DeliveryFailed("unusable webhook URL", retryable=False))
    await deliver_changes(world.services, jobs.deliver(TENANT, 1, 1))
    assert world.jobs.queued == []
    [letter] = await list_dead_letters(world.services, TENANT)
    assert (letter.attempts, letter.reason) == (1, "unusable webhook URL")


@dataclass
class RefusesNthPost:
    """The host's endpoint refusing chosen posts (counted from 1) and taking the others."""

    endpoint: FakeHostWebhook
    refused: set[int]
    posts: int = 0

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.posts += 1
        if self.posts in self.refused:
            raise DeliveryFailed("timeout")
        return await self.endpoint.post(url, body, headers)


async def test_a_failure_mid_range_retries_only_what_was_not_taken(world: FakeWorld) -> None:
    await append(world, 250)
    policy = DeliveryPolicy(max_batch=100)
    services = replace(world.services, webhook=RefusesNthPost(world.webhook, refused={2}))
    await deliver_changes(services, jobs.deliver(TENANT, 1, 250), policy)
    assert world.jobs.queued == [
        jobs.deliver(TENANT, 101, 250, attempt=1, delay_seconds=policy.base_delay_seconds)
    ]
    await run_queue(world, policy, services)
    assert [d.headers[DELIVERY_HEADER] for d in world.webhook.received] == [
        f"{TENANT}:1-100",
        f"{TENANT}:101-200",
        f"{TENANT}:201-250",
    ]


async def test_no_secret_in_key_vault_is_a_dead_letter_at_once_not_a_retry_storm(world: FakeWorld) -> None:
    del world.secrets.values[HOST_WEBHOOK_SECRET]
    await append(world, 2)
    await deliver_changes(world.services, jobs.deliver(TENANT, 1, 2))
    assert world.webhook.received == []
    assert world.jobs.queued == []
    [letter] = await list_dead_letters(world.services, TENANT)
    assert (letter.first_sequence, letter.last_sequence, letter.attempts) == (1, 2, 1)
    assert HOST_WEBHOOK_SECRET in letter.reason
    assert "redeliver" in letter.reason
    assert HOST_WEBHOOK_SECRET not in world.secrets.values  # read, never created: the host must know it


@pytest.mark.parametrize("state", [TenantState.DISCONNECTING, TenantState.DISCONNECTED])
async def test_nothing_is_delivered_for_a_tenant_that_is_gone(world: FakeWorld, state: TenantState) -> None:
    await append(world, 2)
    tenant = world.tenants.rows[TENANT]
    await world.tenants.save(tenant.with_state(state, world.clock.now()))
    await deliver_changes(world.services, jobs.deliver(TENANT, 1, 2))
    assert world.webhook.received == []
    assert world.jobs.queued == []
    assert world.dead_letters.rows == {}


async def test_nothing_is_delivered_for_an_unknown_tenant(world: FakeWorld) -> None:
    await deliver_changes(world.services, jobs.deliver("fabrikam.example", 1, 2))
    assert (world.webhook.received, world.jobs.queued, world.dead_letters.rows) == ([], [], {})


async def test_a_consent_revoked_tenant_still_hears_about_it(world: FakeWorld) -> None:
    tenant = world.tenants.rows[TENANT]
    await world.tenants.save(tenant.with_state(TenantState.CONSENT_REVOKED, world.clock.now()))
    await world.feed.append(
        TENANT, [Change("tenant.consent_revoked", TENANT, {"reason": "consent withdrawn"}, world.clock.now())]
    )
    await deliver_changes(world.services, jobs.deliver(TENANT, 1, 1))
    assert [c["type"] for c in body_of(world.webhook.received[0])["changes"]] == ["tenant.consent_revoked"]


async def test_without_a_webhook_url_the_pull_feed_is_all(world: FakeWorld) -> None:
    await append(world, 2)
    services = replace(world.services, config=replace(world.services.config, host_webhook_url=None))
    await deliver_changes(services, jobs.deliver(TENANT, 1, 2))
    assert (world.webhook.received, world.jobs.queued, world.dead_letters.rows) == ([], [], {})


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"first": "1", "last": 2},
        {"first": 3, "last": 2},
        {"first": 0, "last": 2},
        {"first": True, "last": 2},
    ],
)
async def test_a_malformed_job_is_dropped(world: FakeWorld, payload: dict[str, Any]) -> None:
    await append(world, 3)
    message = json.dumps({"kind": "deliver", "tenant_id": TENANT, **payload})
    await run_message(world.services, jobs.DELIVERY_QUEUE, message)
    assert (world.webhook.received, world.jobs.queued, world.dead_letters.rows) == ([], [], {})


async def test_dead_letters_are_redelivered_afresh(world: FakeWorld) -> None:
    await append(world, 5)
    failed_at = world.clock.now() - timedelta(hours=1)
    await world.dead_letters.add(DeadLetter(TENANT, 1, 2, attempts=8, reason="HTTP 500", failed_at=failed_at))
    await world.dead_letters.add(
        DeadLetter(TENANT, 4, 5, attempts=1, reason="no secret", failed_at=failed_at)
    )

    assert await redeliver_dead_letters(world.services, TENANT) == 2
    assert world.jobs.queued == [jobs.deliver(TENANT, 1, 2), jobs.deliver(TENANT, 4, 5)]
    assert await list_dead_letters(world.services, TENANT) == []

    await run_queue(world, DeliveryPolicy())
    assert [sequences(d) for d in world.webhook.received] == [[1, 2], [4, 5]]
    assert await redeliver_dead_letters(world.services, TENANT) == 0


async def test_a_dropped_dead_letter_is_gone_its_changes_stay_in_the_feed(world: FakeWorld) -> None:
    await append(world, 5)
    failed_at = world.clock.now() - timedelta(hours=1)
    await world.dead_letters.add(DeadLetter(TENANT, 1, 2, attempts=8, reason="HTTP 500", failed_at=failed_at))
    await world.dead_letters.add(DeadLetter(TENANT, 4, 5, attempts=8, reason="HTTP 500", failed_at=failed_at))

    dropped = await drop_dead_letter(world.services, TENANT, 1)

    assert (dropped.first_sequence, dropped.last_sequence) == (1, 2)
    assert [(d.first_sequence, d.last_sequence) for d in await list_dead_letters(world.services, TENANT)] == [
        (4, 5)
    ]
    assert [c.sequence for c in await world.feed.read(TENANT, 0, 10)] == [1, 2, 3, 4, 5]
    assert world.jobs.queued == []  # nothing is delivered
    with pytest.raises(NotFound) as refused:
        await drop_dead_letter(world.services, TENANT, 1)
    assert refused.value.field == "first_sequence"


async def test_a_redelivery_that_fails_at_once_leaves_a_new_dead_letter(world: FakeWorld) -> None:
    del world.secrets.values[HOST_WEBHOOK_SECRET]
    await append(world, 2)
    await deliver_changes(world.services, jobs.deliver(TENANT, 1, 2))
    assert await redeliver_dead_letters(world.services, TENANT) == 1
    await run_queue(world, DeliveryPolicy())
    assert [(d.first_sequence, d.last_sequence) for d in await list_dead_letters(world.services, TENANT)] == [
        (1, 2)
    ]


async def test_dead_letters_stay_when_the_queue_refuses_the_redelivery(world: FakeWorld) -> None:
    letter = DeadLetter(TENANT, 1, 2, attempts=8, reason="HTTP 500", failed_at=world.clock.now())
    await world.dead_letters.add(letter)

    class DownQueue:
        async def enqueue(self, jobs: object) -> None:
            raise ConnectionError("queue unavailable")

    services = replace(world.services, jobs=DownQueue())
    with pytest.raises(ConnectionError):
        await redeliver_dead_letters(services, TENANT)
    assert await list_dead_letters(world.services, TENANT) == [letter]


async def test_without_a_webhook_url_dead_letters_are_kept(world: FakeWorld) -> None:
    letter = DeadLetter(TENANT, 1, 2, attempts=8, reason="HTTP 500", failed_at=world.clock.now())
    await world.dead_letters.add(letter)
    services = replace(world.services, config=replace(world.services.config, host_webhook_url=None))
    assert await redeliver_dead_letters(services, TENANT) == 0
    assert await list_dead_letters(world.services, TENANT) == [letter]
    assert world.jobs.queued == []


def test_backoff_doubles_from_the_base_and_is_capped() -> None:
    policy = DeliveryPolicy(base_delay_seconds=30, max_delay_seconds=3600)
    assert [policy.delay_after(n) for n in range(1, 10)] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert policy.delay_after(10_000) == 3600


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_batch": 0},
        {"base_delay_seconds": -1},
        {"base_delay_seconds": 60, "max_delay_seconds": 30},
    ],
)
def test_a_policy_that_cannot_work_is_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        DeliveryPolicy(**kwargs)


def minimal_environ(**extra: str) -> dict[str, str]:
    env = {name: "x" for name in settings.REQUIRED}
    env["AzureWebJobsStorage"] = "UseDevelopmentStorage=true"
    return {**env, **extra}


def test_settings_default_to_the_policy_defaults() -> None:
    parsed = settings.Settings.from_environ(minimal_environ())
    assert parsed.host_webhook_max_attempts == DeliveryPolicy().max_attempts
    assert parsed.host_webhook_retry_seconds == DeliveryPolicy().base_delay_seconds


def test_settings_read_the_retry_budget() -> None:
    parsed = settings.Settings.from_environ(
        minimal_environ(HOST_WEBHOOK_MAX_ATTEMPTS="3", HOST_WEBHOOK_RETRY_SECONDS=" 5 ")
    )
    assert (parsed.host_webhook_max_attempts, parsed.host_webhook_retry_seconds) == (3, 5)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HOST_WEBHOOK_MAX_ATTEMPTS", "0"),
        ("HOST_WEBHOOK_MAX_ATTEMPTS", "many"),
        ("HOST_WEBHOOK_RETRY_SECONDS", "-1"),
    ],
)
def test_an_unusable_retry_setting_is_named(name: str, value: str) -> None:
    with pytest.raises(settings.SettingsError, match=name):
        settings.Settings.from_environ(minimal_environ(**{name: value}))
