"""The one way to retry: a change re-applied on a fresh read after a lost race, and the queue backoff."""

from __future__ import annotations

import pytest

from shared.service.deliveries import DeliveryPolicy
from shared.service.errors import StaleWrite
from shared.service.retries import THROTTLED, StillContended, starting_from, update_optimistically

pytestmark = pytest.mark.unit


class Row:
    """A stored counter whose save loses the race `losses` times (another worker saves first)."""

    def __init__(self, losses: int) -> None:
        self.value = 0
        self.losses = losses
        self.reads = 0

    async def read(self) -> int:
        self.reads += 1
        return self.value

    async def save(self, value: int) -> int:
        if self.losses:
            self.losses -= 1
            self.value += 10  # the other worker's change
            raise StaleWrite("row")
        self.value = value
        return value


async def test_a_lost_race_applies_the_change_again_to_a_fresh_read() -> None:
    row = Row(losses=2)
    done = await update_optimistically(row.read, lambda v: v + 1, row.save, attempts=3)
    assert (done.read, done.saved, row.value) == (20, 21, 21)  # both other changes kept


async def test_nothing_to_save_answers_what_was_read() -> None:
    row = Row(losses=0)
    done = await update_optimistically(row.read, lambda v: None, row.save, attempts=3)
    assert (done.read, done.saved, done.latest, row.value) == (0, None, 0, 0)


async def test_every_attempt_lost_raises_the_callers_error_or_still_contended() -> None:
    with pytest.raises(StillContended):
        await update_optimistically(Row(5).read, lambda v: v + 1, Row(5).save, attempts=3)
    row = Row(losses=5)
    with pytest.raises(LookupError):
        await update_optimistically(row.read, lambda v: v + 1, row.save, attempts=3, contended=LookupError())
    assert row.value == 30  # three tries, no write of ours


async def test_a_row_in_hand_is_used_first_and_read_only_after_a_lost_race() -> None:
    row = Row(losses=1)
    done = await update_optimistically(starting_from(5, row.read), lambda v: v + 1, row.save, attempts=2)
    assert (row.reads, done.saved) == (1, 11)


def test_throttled_jobs_wait_retry_after_plus_a_doubling_wait_for_six_retries() -> None:
    assert [THROTTLED.delay_after(n, 3.2) for n in range(1, 7)] == [6, 8, 12, 20, 36, 68]
    assert THROTTLED.delay_after(6, 10_000) == 900
    assert not THROTTLED.exhausted(6) and THROTTLED.exhausted(7)


def test_deliveries_use_the_same_policy_with_their_own_numbers() -> None:
    policy = DeliveryPolicy(max_attempts=3, base_delay_seconds=30, max_delay_seconds=3600)
    assert [policy.delay_after(n) for n in (1, 2)] == [30, 60]
    assert policy.exhausted(3) and not policy.exhausted(2)
