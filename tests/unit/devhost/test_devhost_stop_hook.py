"""The app's stop hook (`LOCAL_HOST_ON_STOP`): resolved when the host starts, so a typo stops the start."""

from __future__ import annotations

import json

import pytest

from devhost.host import _stop_hook
from devhost.settings import ConfigError

pytestmark = pytest.mark.unit


def test_no_setting_means_no_hook() -> None:
    assert _stop_hook("") is None
    assert _stop_hook("  ") is None


def test_module_and_function_name_the_hook() -> None:
    assert _stop_hook("json:dumps") is json.dumps


@pytest.mark.parametrize(
    "target", ["json", "json:", "json:nothing_here", "no_such_module_x:close", "json:decoder"]
)
def test_a_hook_that_cannot_be_loaded_stops_the_start(target: str) -> None:
    with pytest.raises(ConfigError, match="LOCAL_HOST_ON_STOP"):
        _stop_hook(target)
