"""The document's bodies and answers are its generated components: no operation describes a JSON body or
answer inline, and every component is one a model generates (so the validation and the document, or an
answer and its description, cannot drift)."""

from __future__ import annotations

from typing import Any

import pytest

from functions.openapi import OPERATIONS, model_schemas, openapi_document

pytestmark = pytest.mark.unit

JSON = "application/json"


def test_every_component_is_generated_by_a_model() -> None:
    assert openapi_document()["components"]["schemas"] == model_schemas()


def _inline(schema: Any) -> bool:
    return isinstance(schema, dict) and "$ref" not in schema


def test_the_host_api_describes_no_json_body_or_answer_inline() -> None:
    inline = [
        f"{op.operation_id} {where}"
        for op in OPERATIONS
        if "graph" not in op.tags  # Graph's notifications: Microsoft's body, read for `value` alone
        for where, schema in [
            ("request", op.request if op.request_media == JSON else None),
            *[
                (str(status), answer)
                for status, (_, answer) in op.responses.items()
                if op.response_media.get(status, JSON) == JSON and op.operation_id != "getOpenApi"
            ],
        ]
        if _inline(schema)
    ]
    assert inline == []


def test_the_appointment_body_is_its_model() -> None:
    schemas = openapi_document()["components"]["schemas"]
    appointment = schemas["AppointmentInput"]
    assert appointment["required"] == ["subject", "start", "end", "staff_ids"]
    assert appointment["additionalProperties"] is False
    assert appointment["properties"]["staff_ids"]["maxItems"] == 20
    assert appointment["properties"]["show_as"]["type"] == ["string", "null"]  # null is absent
    recurrence = schemas["RecurrenceInput"]
    assert recurrence["required"] == ["rrule"] and recurrence["properties"]["rrule"]["maxLength"] == 1000


def test_a_task_change_is_documented_as_privacy_mode_shows_it() -> None:
    schemas = openapi_document()["components"]["schemas"]
    task = schemas["TaskData"]["properties"]["task"]
    assert {ref["$ref"].rsplit("/", 1)[-1] for ref in task["anyOf"]} == {"OutlookTaskJson", "PrivateTaskJson"}
    assert "privacy mode" in task["description"]
    assert set(schemas["PrivateTaskJson"]["properties"]) == {"id", "status", "due", "start", "completed_at"}
