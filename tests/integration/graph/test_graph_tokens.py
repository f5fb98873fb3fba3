"""A token Graph refuses is never sent again: the real SDKs (msgraph-sdk, kiota, azure-identity) against
the emulator's Entra and Graph. A 401 brings a new token and the request goes through; a claims challenge
(Continuous Access Evaluation) brings a token requested with its claims; a 401 that a new token meets
too is the tenant's authentication failing, reported as such on the tenant and the user, never as
throttling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from shared.domain.tenants import TenantState
from shared.domain.users import MatchStatus, StaffMember, SyncState, UserRecord
from shared.service import jobs
from shared.service.errors import TenantAccessError
from shared.service.sync import run_sync_job
from tests.fakes.services import add_tenant, fake_world
from tests.fixtures.emulator import EmulatorInfo
from tests.integration.graph.harness import EmulatorGraph, open_emulator_graph

pytestmark = pytest.mark.integration

WINDOW = (datetime(2030, 3, 1, tzinfo=UTC), datetime(2030, 4, 1, tzinfo=UTC))


@pytest.fixture
async def graph(emulator_reset: EmulatorInfo) -> AsyncIterator[EmulatorGraph]:
    async with open_emulator_graph(emulator_reset) as harness:
        yield harness


async def tokens_issued(graph: EmulatorGraph) -> int:
    return int((await graph.control.stats())["tokens_issued"])


async def test_a_token_graph_refused_is_renewed_and_the_request_succeeds(graph: EmulatorGraph):
    user = await graph.new_mailbox()
    await graph.calendar().read_delta(graph.tenant, user, None, WINDOW)  # a token is cached
    before = await tokens_issued(graph)
    # Graph's clock passes the token's expiry while azure-identity's (the machine's) does not: Graph
    # answers 401 InvalidAuthenticationToken and the credential's cache still holds the token.
    await graph.control.advance_clock(hours=2)

    read = await graph.calendar().read_delta(graph.tenant, user, None, WINDOW)

    assert read.items == []
    assert await tokens_issued(graph) == before + 1  # one new token, asked for once
    await graph.calendar().read_delta(graph.tenant, user, None, WINDOW)
    assert await tokens_issued(graph) == before + 1  # and kept: the new token is cached again


async def test_requests_refused_together_bring_one_new_token(graph: EmulatorGraph):
    users = [await graph.new_mailbox() for _ in range(4)]
    await graph.calendar().read_delta(graph.tenant, users[0], None, WINDOW)
    before = await tokens_issued(graph)
    await graph.control.advance_clock(hours=2)

    reads = await asyncio.gather(*(graph.calendar().read_delta(graph.tenant, u, None, WINDOW) for u in users))

    assert [r.items for r in reads] == [[], [], [], []]
    assert await tokens_issued(graph) == before + 1


async def test_a_claims_challenge_brings_a_token_requested_with_its_claims(graph: EmulatorGraph):
    user = await graph.new_mailbox()
    await graph.calendar().read_delta(graph.tenant, user, None, WINDOW)
    before = await tokens_issued(graph)
    await graph.control.advance_clock(minutes=1)  # the event comes after the token (seconds resolution)
    revoked_at = await graph.control.revoke_tokens(graph.tenant.directory_id, graph.client_id)

    read = await graph.calendar().read_delta(graph.tenant, user, None, WINDOW)

    assert read.items == []
    stats = await graph.control.stats()
    assert stats["tokens_issued"] == before + 1
    answered = [c["access_token"] for c in stats["token_claims"] if "nbf" in c.get("access_token", {})]
    assert answered and answered[-1]["nbf"] == {"essential": True, "value": str(revoked_at)}
    assert answered[-1]["xms_cc"] == {"values": ["CP1"]}  # still a CAE client


async def test_a_token_refused_even_when_new_is_an_authentication_failure_not_throttling(
    graph: EmulatorGraph,
):
    world = fake_world()
    world.clock.current = datetime.fromisoformat(await graph.control.clock())  # one clock with the emulator
    tenant = await add_tenant(
        world, graph.tenant.tenant_id, TenantState.ACTIVE, directory_id=graph.tenant.directory_id
    )
    user = await graph.new_mailbox()
    staff = StaffMember("s1", f"s1@{tenant.tenant_id}", None, "Staff One")
    await world.users.save(
        UserRecord(tenant.tenant_id, staff, MatchStatus.MATCHED, world.clock.now(), graph_user_id=user)
    )
    services = replace(world.services, calendar=graph.calendar(), subscriptions=graph.subscriptions())
    await run_sync_job(services, jobs.migrate_user(tenant.tenant_id, "s1"))
    migrated = await world.users.get(tenant.tenant_id, "s1")
    assert migrated is not None and migrated.sync_state is SyncState.SYNCED
    world.jobs.take()
    before = await tokens_issued(graph)
    await graph.control.add_fault(
        status=401,
        code="InvalidAuthenticationToken",
        message="Access token validation failure. Invalid audience.",
        mailbox=user,
    )

    await run_sync_job(services, jobs.sync_user(tenant.tenant_id, "s1"))

    assert await tokens_issued(graph) == before + 1  # the refusal was met with a new token first
    stopped = world.tenants.rows[tenant.tenant_id]
    assert stopped.state is TenantState.CONSENT_REVOKED
    assert stopped.last_error is not None and stopped.last_error.startswith("authentication failed")
    failed = await world.users.get(tenant.tenant_id, "s1")
    assert failed is not None and failed.sync_state is SyncState.ERROR
    assert failed.last_error is not None and "authentication failed" in failed.last_error
    assert "throttl" not in failed.last_error
    assert [j for j in world.jobs.take() if j.queue == jobs.SYNC_QUEUE] == []  # no retry storm
    changes = [c for c in world.feed.entries[tenant.tenant_id] if c.type == "tenant.consent_revoked"]
    assert len(changes) == 1 and str(changes[0].data["reason"]).startswith("authentication failed")


async def test_a_claims_challenge_met_again_is_not_retried_forever(graph: EmulatorGraph):
    """The challenge's answer is refused too (every request challenged): one token request, then the port's
    error, not a loop."""
    user = await graph.new_mailbox()
    await graph.calendar().read_delta(graph.tenant, user, None, WINDOW)
    before = await tokens_issued(graph)
    await graph.control.add_fault(
        status=401,
        code="InvalidAuthenticationToken",
        message="Continuous access evaluation resulted in claims challenge with result: InteractionRequired",
        mailbox=user,
        headers={
            "WWW-Authenticate": 'Bearer realm="", error="insufficient_claims", '
            'claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwidmFsdWUiOiIxIn19fQ=="'
        },
    )

    with pytest.raises(TenantAccessError) as raised:
        await graph.calendar().read_delta(graph.tenant, user, None, WINDOW)

    assert raised.value.reason.startswith("authentication failed")
    assert await tokens_issued(graph) == before + 1
