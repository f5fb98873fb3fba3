"""Bad input through the local host, on Azurite: a 400 naming the field where Table Storage used to refuse
the row with a 500, and a JSON 404 for a path no function serves."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_tenants import create, new_organisation
from tests.fixtures.connector import Connector

pytestmark = pytest.mark.e2e


async def test_an_import_filter_table_storage_cannot_hold_is_a_400_naming_it(connector: Connector) -> None:
    org = await new_organisation(connector)
    assert create(connector, org).status_code == 201
    settings = f"/api/v1/tenants/{org['domain']}/settings"
    with connector.api() as api:
        before = api.get(f"/api/v1/tenants/{org['domain']}").json()["settings"]
        for categories in (["x" * 33_000], ["x" * 1_000] * 50, [f"{n:02}" + "x" * 98 for n in range(50)]):
            answer = api.patch(
                settings, json={"import_filter": {"mode": "categories", "categories": categories}}
            )
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"]["field"].startswith("settings.import_filter.categories")
        created = create(connector, org, settings={"import_filter": {"categories": ["x" * 33_000]}})
        assert created.status_code == 400
        largest = [f"{n:02}" + "\U0001f4c5" * 38 for n in range(50)]
        kept = api.patch(settings, json={"import_filter": {"mode": "categories", "categories": largest}})
        assert kept.status_code == 200, kept.text
        assert api.get(f"/api/v1/tenants/{org['domain']}").json()["settings"] == {
            **before,
            "import_filter": {"mode": "categories", "categories": largest},
        }


def test_a_path_no_function_serves_answers_json(connector: Connector) -> None:
    with connector.host.client() as client:
        missing = client.get("/api/v1/nothing-here")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/json")
        assert missing.json()["error"]["code"] == "not_found"
        wrong_method = client.patch("/api/v1/tenants")
        assert wrong_method.status_code == 405
        assert wrong_method.headers["allow"] == "GET, POST"


async def test_text_with_a_lone_surrogate_is_a_400_naming_the_field(connector: Connector) -> None:
    """JSON can escape half of a surrogate pair; such a string is no Unicode text, and Table Storage (and
    Graph) cannot take it."""
    org = await new_organisation(connector)
    body = {"tenant_id": org["domain"], "display_name": "Org \ud800", "auth": {"mode": "admin_consent"}}
    with connector.api() as api:
        answer = api.post(
            "/api/v1/tenants", content=json.dumps(body).encode(), headers={"content-type": "application/json"}
        )
        assert (answer.status_code, answer.json()["error"]["field"]) == (400, "display_name")
        assert api.get(f"/api/v1/tenants/{org['domain']}").status_code == 404
