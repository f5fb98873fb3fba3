"""A warm worker's full collections skip what its imports built: frozen once per function."""

from __future__ import annotations

import gc
import time

import pytest

from functions import heap

pytestmark = pytest.mark.unit


def test_a_functions_first_call_freezes_the_heap_and_full_collections_skip_it() -> None:
    name = f"probe-{time.monotonic_ns()}"
    gc.unfreeze()
    try:
        assert heap.settle(name) is True
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # the test process's modules (pytest, the app): what a collection skipped
        # A frozen object still goes when its last reference does (another thread of the test process may
        # drop one meanwhile), so the count may fall a little; freezing again would raise it, and a
        # collection that thawed them would empty it.
        assert heap.settle(name) is False  # only once per function and process
        assert gc.get_freeze_count() <= frozen
        gc.collect()
        assert gc.get_freeze_count() > frozen * 0.9  # a full collection leaves the frozen objects alone
    finally:
        gc.unfreeze()
