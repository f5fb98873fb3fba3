"""The appointment GET through the function app, as a host reads it."""

from __future__ import annotations

import pytest

from tests.unit.functions.host_api import TENANT, host_api

pytestmark = pytest.mark.unit


async def test_issue_14_appointment_updated_at_says_z_like_the_rest_of_the_api() -> None:
    api = await host_api()
    body = {
        "subject": "Visit",
        "start": "2027-03-01T09:00:00Z",
        "end": "2027-03-01T10:00:00Z",
        "staff_ids": ["s1"],
    }
    path = f"v1/tenants/{TENANT}/appointments/a-1"
    put = await api.call("PUT", path, body)
    assert put.status == 202

    got = await api.call("GET", path)

    assert got.status == 200
    updated_at = got.json()["updated_at"]
    assert updated_at.endswith("Z") and "+00:00" not in updated_at
    tenant = await api.call("GET", f"v1/tenants/{TENANT}")
    assert tenant.json()["updated_at"].endswith("Z")  # as the tenant's
