"""The HTTP layer's error translation: every service error a handler lets through becomes a JSON 4xx/503
naming what it can, never a bare 500."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator

import azure.functions as func
import pytest
from azure.core.exceptions import ServiceRequestError, ServiceResponseError

from functions.http import handles_errors
from shared import bootstrap
from shared.service.errors import (
    Conflict,
    DependencyUnavailable,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    StaleWrite,
)
from tests.fakes.services import fake_world
from tests.unit.functions.host_api import _Container

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def worker_container() -> Iterator[None]:
    """The worker's container, as on any call after a worker's first (each call makes sure of it)."""
    bootstrap.use_container(_Container(fake_world()))  # type: ignore[arg-type]
    yield
    bootstrap.use_container(None)


class _Context:
    invocation_id = "test-invocation"


def _raising(error: Exception) -> Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]:
    async def handler(req: func.HttpRequest) -> func.HttpResponse:
        raise error

    return handler


@pytest.mark.parametrize(
    ("error", "status", "code", "field"),
    [
        (
            InvalidInput("settings.window_days_back", "must be 1 to 365"),
            400,
            "invalid_input",
            "settings.window_days_back",
        ),
        (NotFound("tenant", "fabrikam.example", "tenant_id"), 404, "not_found", "tenant_id"),
        (Conflict("tenant_id", "the tenant is disconnected"), 409, "conflict", "tenant_id"),
        (PreconditionFailed("If-Match", "the appointment changed"), 412, "precondition_failed", "If-Match"),
        (StaleWrite("contoso.example"), 409, "conflict", None),
        (DependencyUnavailable("key_vault", "timeout"), 503, "dependency_unavailable", None),
        # storage restarting: the SDK's request finds no service (azure-core's own exceptions, untranslated)
        (ServiceRequestError("Cannot connect to host 127.0.0.1:10002"), 503, "dependency_unavailable", None),
        (ServiceResponseError("Connection reset by peer"), 503, "dependency_unavailable", None),
    ],
)
async def test_a_service_error_becomes_a_json_answer(
    error: Exception, status: int, code: str, field: str | None
) -> None:
    endpoint = handles_errors(_raising(error))
    request = func.HttpRequest("PATCH", "http://localhost/api/v1/tenants/x/settings", body=b"{}")

    response = await endpoint(request, _Context())  # type: ignore[arg-type]

    assert response.status_code == status
    body = json.loads(response.get_body())["error"]
    assert body["code"] == code
    assert body.get("field") == field


async def test_any_other_error_still_propagates() -> None:
    endpoint = handles_errors(_raising(RuntimeError("a bug")))
    request = func.HttpRequest("GET", "http://localhost/api/v1/tenants", body=b"")
    with pytest.raises(RuntimeError):
        await endpoint(request, _Context())  # type: ignore[arg-type]
