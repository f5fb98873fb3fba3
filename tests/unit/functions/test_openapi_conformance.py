"""schemathesis against the served OpenAPI document: for every operation, requests generated from the
document (valid ones and ones off it) are sent to the app's functions in-process, over fakes, and every
answer must be no 5xx, of a documented content type, and, where its status is documented, conform to
that status's schema. The examples are bounded so that the run stays well under a minute."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from functions.openapi import openapi_document
from tests.unit.functions.host_api import TENANT, host_api

pytestmark = pytest.mark.unit

SCHEMA = schemathesis.openapi.from_dict(openapi_document())
# The health check reads real storage and Key Vault and takes no input.
OPERATIONS = [
    operation
    for operation in (result.ok() for result in SCHEMA.get_all_operations())
    if operation.definition.raw.get("operationId") != "getHealth"
]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
KNOWN = {
    "tenant_id": TENANT,
    "staff_id": "s1",
    "appointment_id": "a-1",
    "message_id": "m-1",
    "task_id": "t-1",
}
# Examples per operation and mode draw; CONFORMANCE_EXAMPLES=400 for a deeper run by hand.
EXAMPLES = int(os.environ.get("CONFORMANCE_EXAMPLES", "25"))
CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance]


def _body(case: Any) -> bytes:
    if case.body is None or type(case.body).__name__ == "NotSet":
        return b""
    if isinstance(case.body, bytes):
        return case.body
    if isinstance(case.body, str) and case.media_type != "application/json":
        return case.body.encode()
    return json.dumps(case.body).encode()


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.definition.raw["operationId"])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
async def test_the_app_answers_as_its_document_says(operation: Any, data: st.DataObject) -> None:
    case = data.draw(operation.as_strategy(generation_mode=data.draw(st.sampled_from(MODES))))
    if case.path_parameters and data.draw(st.booleans()):  # the fakes' tenant, staff and appointment
        case.path_parameters = {name: KNOWN[name] for name in case.path_parameters}
    api = await host_api()
    path = case.formatted_path.removeprefix("/api/")
    query = {name: str(value) for name, value in (case.query or {}).items()}
    answer = await api.call(case.method, path, raw=_body(case), query=query)
    request = httpx.Request(case.method, f"http://localhost{case.formatted_path}", params=query)
    response = httpx.Response(
        answer.status,
        headers=answer.headers | {"content-type": answer.mimetype},
        content=answer.body,
        request=request,
    )
    response.elapsed = timedelta(0)  # answered in-process
    case.validate_response(response, checks=CHECKS)
