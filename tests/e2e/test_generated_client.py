"""A host developer's view: a typed Python client generated with openapi-python-client from the document
the connector serves at /api/openapi.json drives a tenant (created with the customer's own app), a staff
member and an appointment through the local host, on the emulator."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from shared.service.change_types import Change, Delivery
from tests.e2e.test_sync import wait_for
from tests.e2e.test_tenants import new_organisation, own_app
from tests.fixtures.connector import Connector

pytestmark = pytest.mark.e2e

PACKAGE = "connector_client"
DAY = (datetime.now(UTC) + timedelta(days=7)).date().isoformat()


@pytest.fixture
def generated_client(connector: Connector, tmp_path: Path) -> Iterator[ModuleType]:
    """The client package generated into `tmp_path` from the served document, imported."""
    with connector.api() as api:
        served = api.get("/api/openapi.json")
    assert served.status_code == 200, served.text
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(served.json()))
    generator = Path(sys.executable).parent / "openapi-python-client"
    output = str(tmp_path / PACKAGE)
    done = subprocess.run(
        [str(generator), "generate", "--path", str(document), "--meta", "none", "--output-path", output],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _module(package: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{package.__name__}.{name}")


async def test_a_generated_client_drives_a_tenant_a_staff_member_and_an_appointment(
    connector: Connector, generated_client: ModuleType
) -> None:
    org = await new_organisation(connector)
    app = await own_app(connector, org, "customer-secret-for-the-client", "Customer's own app")
    models = _module(generated_client, "models")
    create_tenant = _module(generated_client, "api.tenants.create_tenant")
    put_staff = _module(generated_client, "api.users.put_staff")
    put_appointment = _module(generated_client, "api.appointments.put_appointment")
    get_appointment = _module(generated_client, "api.appointments.get_appointment")
    read_changes = _module(generated_client, "api.changes.read_changes")
    client = generated_client.AuthenticatedClient(
        base_url=connector.url,
        token=connector.host.function_key,
        prefix="",
        auth_header_name="x-functions-key",
        raise_on_unexpected_status=True,
    )
    with client:
        tenant = create_tenant.sync(
            client=client,
            body=models.TenantCreate(
                tenant_id=org["id"],
                display_name="Org through the client",
                auth=models.CustomerAppAuth(
                    client_id=uuid.UUID(app["client_id"]),
                    client_secret="customer-secret-for-the-client",
                    mode="customer_app",
                ),
                settings=models.Settings(window_days_forward=60),
            ),
        )
        assert isinstance(tenant, models.Tenant), tenant
        assert tenant.tenant_id == org["id"]
        assert tenant.settings.window_days_forward == 60

        user = put_staff.sync(
            org["id"],
            "s-adele",
            client=client,
            body=models.Staff(upn=f"adele@{org['domain']}", display_name="Adele"),
        )
        assert isinstance(user, models.User), user
        assert (user.staff_id, user.match) == ("s-adele", models.MatchStatus.MATCHED)

        written = put_appointment.sync(
            org["id"],
            "client-1",
            client=client,
            body=models.AppointmentInput(
                subject="Intake through the client",
                start=f"{DAY}T09:00:00",
                end=f"{DAY}T10:00:00",
                time_zone="Europe/Amsterdam",
                staff_ids=["s-adele"],
            ),
        )
        assert isinstance(written, models.Appointment), written
        assert written.revision == 1

        read = get_appointment.sync(org["id"], "client-1", client=client)
        assert isinstance(read, models.Appointment), read
        assert read.appointment.subject == "Intake through the client"
        assert read.appointment.staff_ids == ["s-adele"]
        assert read.revision == written.revision

        def synced() -> list[Any] | None:
            page = read_changes.sync(org["id"], client=client, limit=1000)
            assert isinstance(page, models.ChangePage), page
            return page.value if "appointment.synced" in [c.to_dict()["type"] for c in page.value] else None

        changes = wait_for(synced)
    # Every change of the feed and of the webhook's deliveries is one the document describes, data and all.
    for change in changes:
        Change.model_validate(change.to_dict())
    assert {"tenant.connected", "appointment.synced"} <= {change.to_dict()["type"] for change in changes}

    def delivered() -> list[dict[str, Any]] | None:  # the webhook follows the feed
        with connector.receiver.lock:
            bodies = [d.json() for d in connector.receiver.deliveries if d.json()["tenant_id"] == org["id"]]
        kinds = {change["type"] for body in bodies for change in body["changes"]}
        return bodies if "appointment.synced" in kinds else None

    for body in wait_for(delivered):
        Delivery.model_validate(body)
