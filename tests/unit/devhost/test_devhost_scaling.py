"""Which functions the local host runs in which process (`--scale`), as Flex Consumption scales them."""

from __future__ import annotations

import pytest

from devhost.indexer import HttpTriggerSpec, IndexedFunction, QueueTriggerSpec, TimerTriggerSpec
from devhost.routing import RouteTemplate
from devhost.scaling import worker_groups
from devhost.settings import ConfigError

pytestmark = pytest.mark.unit


def function(name: str, trigger: HttpTriggerSpec | QueueTriggerSpec | TimerTriggerSpec) -> IndexedFunction:
    return IndexedFunction(name, trigger, (), lambda: None, False, False, None, "", None)


FUNCTIONS = [
    function("webhook", HttpTriggerSpec("req", RouteTemplate("graph/notifications"), None, "anonymous")),
    function("sync_job", QueueTriggerSpec("msg", "sync-jobs", "AzureWebJobsStorage")),
    function("api", HttpTriggerSpec("req", RouteTemplate("v1/tenants"), None, "function")),
    function("nightly", TimerTriggerSpec("timer", "0 0 2 * * *", False, True)),
]


def test_per_function_gives_every_queue_and_timer_function_a_worker_and_keeps_http_together() -> None:
    assert worker_groups(FUNCTIONS, "per-function") == [["sync_job"], ["nightly"]]


def test_grouped_puts_every_non_http_function_in_one_worker() -> None:
    assert worker_groups(FUNCTIONS, "grouped") == [["sync_job", "nightly"]]


def test_single_and_an_http_only_app_need_no_worker() -> None:
    assert worker_groups(FUNCTIONS, "single") == []
    assert worker_groups([FUNCTIONS[0], FUNCTIONS[2]], "per-function") == []


def test_an_unknown_scale_is_refused() -> None:
    with pytest.raises(ConfigError, match="--scale"):
        worker_groups(FUNCTIONS, "per-instance")


def test_instances_multiply_the_queue_functions_only() -> None:
    assert worker_groups(FUNCTIONS, "per-function", instances=3) == [
        ["sync_job"],
        ["sync_job"],
        ["sync_job"],
        ["nightly"],  # a schedule runs once, however many instances
    ]
    assert worker_groups(FUNCTIONS, "grouped", instances=3) == [["sync_job", "nightly"]]


def test_fewer_than_one_instance_is_refused() -> None:
    with pytest.raises(ConfigError, match="--instances"):
        worker_groups(FUNCTIONS, "per-function", instances=0)
