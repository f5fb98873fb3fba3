"""JSON batching over raw HTTP (msgraph-core's BatchRequestContent needs the `deprecated` package,
which the project does not install): limits, dependsOn and 424, inner 429 inside a 200."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.contract

ADELE = "adele.vance@contoso.example"


async def default_list(connector) -> str:
    response = await connector.http.get(f"users/{ADELE}/todo/lists")
    return response.json()["value"][0]["id"]


async def test_batch_runs_each_request_and_answers_200(connector):
    list_id = await default_list(connector)
    body = {
        "requests": [
            {"id": "1", "method": "GET", "url": f"/users/{ADELE}?$select=id,displayName"},
            {
                "id": "2",
                "method": "POST",
                "url": f"/users/{ADELE}/todo/lists/{list_id}/tasks",
                "headers": {"Content-Type": "application/json"},
                "body": {"title": "from a batch"},
            },
            {"id": "3", "method": "GET", "url": "/users/nobody@contoso.example"},
        ]
    }
    response = await connector.http.post("$batch", json=body)
    assert response.status_code == 200
    answers = {r["id"]: r for r in response.json()["responses"]}
    assert answers["1"]["status"] == 200
    assert answers["1"]["body"]["displayName"] == "Adele Vance"
    assert answers["2"]["status"] == 201
    assert answers["2"]["body"]["title"] == "from a batch"
    assert answers["3"]["status"] == 404
    assert answers["3"]["body"]["error"]["code"] == "Request_ResourceNotFound"


async def test_dependents_of_a_failed_request_get_424(connector):
    list_id = await default_list(connector)
    body = {
        "requests": [
            {"id": "a", "method": "GET", "url": f"/users/{ADELE}/todo/lists/nope/tasks"},
            {"id": "b", "dependsOn": ["a"], "method": "GET", "url": f"/users/{ADELE}"},
            {"id": "c", "dependsOn": ["b"], "method": "GET", "url": f"/users/{ADELE}/todo/lists/{list_id}"},
            {"id": "d", "method": "GET", "url": f"/users/{ADELE}/todo/lists/{list_id}"},
        ]
    }
    answers = {
        r["id"]: r["status"] for r in (await connector.http.post("$batch", json=body)).json()["responses"]
    }
    assert answers == {"a": 404, "b": 424, "c": 424, "d": 200}


async def test_dependencies_run_in_order(connector):
    list_id = await default_list(connector)
    create = {
        "id": "1",
        "method": "POST",
        "url": f"/users/{ADELE}/todo/lists/{list_id}/tasks",
        "headers": {"Content-Type": "application/json"},
        "body": {"title": "ordered"},
    }
    read = {
        "id": "2",
        "dependsOn": ["1"],
        "method": "GET",
        "url": f"/users/{ADELE}/todo/lists/{list_id}/tasks",
    }
    answers = {
        r["id"]: r
        for r in (await connector.http.post("$batch", json={"requests": [create, read]})).json()["responses"]
    }
    assert "ordered" in [t["title"] for t in answers["2"]["body"]["value"]]


async def test_throttled_items_come_back_as_429_inside_a_200(connector, control):
    await control.set_throttle(budget=2)
    body = {
        "requests": [{"id": str(i), "method": "GET", "url": f"/users/{ADELE}/todo/lists"} for i in range(4)]
    }
    response = await connector.http.post("$batch", json=body)
    assert response.status_code == 200
    statuses = sorted(r["status"] for r in response.json()["responses"])
    assert statuses == [200, 200, 429, 429]
    throttled = next(r for r in response.json()["responses"] if r["status"] == 429)
    assert throttled["headers"]["Retry-After"].isdigit()


@pytest.mark.parametrize(
    "requests",
    [
        [{"id": str(i), "method": "GET", "url": "/users"} for i in range(21)],
        [{"id": "1", "method": "GET", "url": "/users"}, {"id": "1", "method": "GET", "url": "/users"}],
        [{"id": "1", "method": "POST", "url": "/users/x/sendMail", "body": {"message": {}}}],
        [
            {"id": "1", "dependsOn": ["2"], "method": "GET", "url": "/users"},
            {"id": "2", "dependsOn": ["1"], "method": "GET", "url": "/users"},
        ],
        [],
    ],
    ids=["over-20", "duplicate-id", "body-without-content-type", "cycle", "empty"],
)
async def test_malformed_batches_are_400(connector, requests):
    response = await connector.http.post("$batch", json={"requests": requests})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"
