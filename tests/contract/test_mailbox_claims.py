"""Mailbox claims (which worker sends Graph requests to a mailbox): each behaviour written once, run
against the in-memory fake and the Table Storage adapter on Azurite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from shared.adapters.graph.mailbox_gate import MailboxClaims
from shared.adapters.tables.mailbox_claims import TableMailboxClaims
from tests.fakes.mailbox_claims import FakeMailboxClaims
from tests.fixtures.azurite import fresh_storage

pytestmark = pytest.mark.contract

ANNA = "5b1e0c8e-9d43-4f0e-a7d1-0d6f2f3f1a01"
ODD = "anna.müller+cal/x@contoso.example"


@pytest.fixture(params=["fake", "azurite"])
async def claims(request: pytest.FixtureRequest) -> AsyncIterator[MailboxClaims]:
    if request.param == "fake":
        yield FakeMailboxClaims()
        return
    async with fresh_storage(request.getfixturevalue("azurite"), "claims") as storage:
        yield TableMailboxClaims(storage)


async def test_one_worker_holds_a_mailbox_until_it_lets_go(claims: MailboxClaims) -> None:
    assert await claims.claim(ANNA, "w1", 60) is None
    left = await claims.claim(ANNA, "w2", 60)
    assert left is not None and 55 < left <= 60
    assert await claims.claim(ODD, "w2", 60) is None  # another mailbox is free
    assert await claims.claim(ANNA, "w1", 60) is None  # renewing its own
    await claims.release(ANNA, "w1")
    assert await claims.claim(ANNA, "w2", 60) is None
    assert await claims.claim(ANNA, "w1", 60) is not None


async def test_a_lapsed_claim_is_taken_over_and_its_old_holder_lets_go_of_nothing(
    claims: MailboxClaims,
) -> None:
    assert await claims.claim(ANNA, "w1", 0.3) is None
    await asyncio.sleep(0.5)
    assert await claims.claim(ANNA, "w2", 60) is None
    await claims.release(ANNA, "w1")  # too late: w2's now
    assert await claims.claim(ANNA, "w3", 60) is not None


async def test_releasing_what_was_never_claimed_changes_nothing(claims: MailboxClaims) -> None:
    await claims.release(ANNA, "w1")
    assert await claims.claim(ANNA, "w2", 60) is None
    await claims.release(ANNA, "w1")
    assert await claims.claim(ANNA, "w1", 60) is not None


async def test_two_workers_claiming_at_once_get_one_claim(claims: MailboxClaims) -> None:
    answers = await asyncio.gather(*(claims.claim(ODD, f"w{n}", 60) for n in range(6)))
    assert sum(answer is None for answer in answers) == 1
