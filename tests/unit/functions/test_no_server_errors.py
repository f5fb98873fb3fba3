"""No input makes the app answer 5xx: arbitrary JSON (and bytes that are not JSON), the documented bodies
with members replaced by arbitrary values, arbitrary path ids and query parameters, sent to every route of
the OpenAPI document through the functions themselves, over fakes. A 4xx is JSON that names its error."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.openapi import OPERATIONS, Operation
from tests.unit.functions.host_api import host_api
from tests.unit.functions.test_limits import BODIES, PATH_VALUES, resolve

pytestmark = pytest.mark.unit

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=16), children, max_size=5)
    ),
    max_leaves=16,
)


def member_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every member and item of a JSON value, by path."""
    found = [path] if path else []
    if isinstance(value, dict):
        for name, member in value.items():
            found += member_paths(member, (*path, name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += member_paths(item, (*path, index))
    return found


def replaced(base: Any, path: tuple[Any, ...], value: Any) -> Any:
    changed = copy.deepcopy(base)
    node = changed
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return changed


def bodies(op: Operation) -> st.SearchStrategy[bytes | None]:
    base = BODIES.get(op.operation_id, {})
    names = sorted(resolve(op.request or {}).get("properties", {})) or ["x"]
    documented_keys = st.dictionaries(st.sampled_from(names) | st.text(max_size=8), JSON_VALUES, max_size=6)
    strategies: list[st.SearchStrategy[Any]] = [JSON_VALUES, documented_keys]
    paths = member_paths(base)
    if paths:
        strategies.append(st.builds(replaced, st.just(base), st.sampled_from(paths), JSON_VALUES))
    as_json = st.one_of(strategies).map(lambda value: json.dumps(value).encode())
    return st.none() | st.binary(max_size=40) | as_json


def path_of(op: Operation) -> st.SearchStrategy[str]:
    names = re.findall(r"\{(\w+)\}", op.route)
    ids = st.text(st.characters(blacklist_characters="/", blacklist_categories=("Cs",)), max_size=300)
    values = st.fixed_dictionaries({name: st.sampled_from([PATH_VALUES[name]]) | ids for name in names})
    return values.map(lambda chosen: re.sub(r"\{(\w+)\}", lambda m: chosen[m[1]], op.route))


def queries(op: Operation) -> st.SearchStrategy[dict[str, str]]:
    names = [name for name, _, _ in op.query] or ["x"]
    return st.dictionaries(st.sampled_from(names), st.text(max_size=30) | st.integers().map(str), max_size=3)


# The health check reads real storage and Key Vault and takes no input.
FUZZED = [op for op in OPERATIONS if op.operation_id != "getHealth"]


@pytest.mark.parametrize("op", FUZZED, ids=lambda op: op.operation_id)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
async def test_no_request_makes_a_route_answer_5xx(op: Operation, data: st.DataObject) -> None:
    path, body, query = data.draw(path_of(op)), data.draw(bodies(op)), data.draw(queries(op))
    api = await host_api()
    answer = await api.call(op.method, path, raw=body or b"", query=query)
    assert answer.status < 500, answer.body
    if answer.status >= 400 and answer.mimetype == "application/json":
        assert answer.json()["error"]["message"]
