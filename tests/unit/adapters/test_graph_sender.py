"""The connector's own Graph requests (`GraphSender`) on an `httpx.MockTransport`: what the SDK's adapter and
middleware did for them and a request still needs. The bearer token only for Graph's host, a claims
challenge met once with a token asked for with its claims, any other 401 once with a new token, redirects
followed without the token leaving Graph's host, Graph's error JSON classified, a correlation id per try.
Against the emulator's Entra and Graph: tests/integration/graph/test_graph_tokens.py."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken

from shared.adapters.graph.errors import (
    AuthFailed,
    GraphError,
    GraphNotFound,
    GraphPreconditionFailed,
    Throttled,
)
from shared.adapters.graph.sender import BearerTokens, GraphSender, challenged_claims
from shared.adapters.identity import RenewableCredential

pytestmark = pytest.mark.unit

GRAPH = "https://graph.example/v1.0"
SCOPE = "https://graph.example/.default"
CLAIMS = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}'
CHALLENGE = (
    'Bearer realm="", authorization_uri="https://login.example/common/oauth2/authorize", '
    f'error="insufficient_claims", claims="{base64.b64encode(CLAIMS.encode()).decode()}"'
)


class Entra:
    """Issues numbered tokens and remembers what each token request asked for."""

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []

    def credential(self) -> Credential:
        return Credential(self)


class Credential:
    def __init__(self, entra: Entra) -> None:
        self._entra = entra
        self._cached: str | None = None

    async def get_token(self, *scopes: str, claims: str | None = None, **kwargs: Any) -> AccessToken:
        if self._cached is None or claims:
            self._entra.asked.append({"scopes": scopes, "claims": claims, **kwargs})
            self._cached = f"token-{len(self._entra.asked)}"
        return AccessToken(self._cached, 2**31)

    async def close(self) -> None:
        return None


class Graph:
    """Answers in turn; records each request's method, URL and headers."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return self.answers.pop(0)

    def tokens(self) -> list[str | None]:
        return [r.headers.get("Authorization") for r in self.seen]


def sender(graph: Graph, entra: Entra | None = None, *, renewable: bool = True) -> GraphSender:
    entra = entra or Entra()
    credential: Any = entra.credential()
    if renewable:

        async def make() -> Any:
            return entra.credential()

        credential = RenewableCredential(credential, make)
    http = httpx.AsyncClient(transport=httpx.MockTransport(graph))
    return GraphSender(http, BearerTokens(credential, SCOPE, "graph.example"))


def error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}}, headers=headers)


async def test_a_request_carries_its_token_headers_and_body_and_answers_the_raw_body() -> None:
    entra, graph = Entra(), Graph(httpx.Response(201, content=b'{"id":"AAMk1"}'))
    body = await sender(graph, entra).send(
        "POST", f"{GRAPH}/users/u1/events", {"Content-Type": "application/json"}, b'{"subject":"Intake"}'
    )
    assert body == b'{"id":"AAMk1"}'
    (request,) = graph.seen
    assert request.headers["Authorization"] == "Bearer token-1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.content == b'{"subject":"Intake"}'
    assert request.headers["User-Agent"].startswith("m365-calendar-connector")
    assert entra.asked == [{"scopes": (SCOPE,), "claims": None, "enable_cae": True, "tenant_id": None}]


async def test_an_answer_without_a_body_is_empty_bytes() -> None:
    assert (
        await sender(Graph(httpx.Response(204))).send("DELETE", f"{GRAPH}/subscriptions/s1", {}, None) == b""
    )


async def test_each_try_has_its_own_correlation_id() -> None:
    graph = Graph(httpx.Response(200, json={}), httpx.Response(200, json={}))
    graph_sender = sender(graph)
    for _ in range(2):
        await graph_sender.send("GET", f"{GRAPH}/users/u1/events", {}, None)
    ids = [r.headers["client-request-id"] for r in graph.seen]
    assert len(set(ids)) == 2 and all(len(i) == 36 for i in ids)


async def test_a_url_off_graphs_host_goes_without_the_token() -> None:
    entra, graph = Entra(), Graph(httpx.Response(200, json={}))
    await sender(graph, entra).send("GET", "https://elsewhere.example/v1.0/users/u1/events", {}, None)
    assert graph.tokens() == [None]
    assert entra.asked == []


async def test_a_redirect_is_followed_and_the_token_stays_on_graphs_host() -> None:
    graph = Graph(
        httpx.Response(302, headers={"Location": "https://files.example/blob/1"}),
        httpx.Response(200, content=b"bytes"),
    )
    assert await sender(graph).send("GET", f"{GRAPH}/users/u1/photo/$value", {}, None) == b"bytes"
    assert [str(r.url) for r in graph.seen] == [
        f"{GRAPH}/users/u1/photo/$value",
        "https://files.example/blob/1",
    ]
    assert graph.tokens() == ["Bearer token-1", None]


async def test_a_claims_challenge_is_answered_once_with_a_token_asked_for_with_its_claims() -> None:
    entra = Entra()
    graph = Graph(
        error(401, "InvalidAuthenticationToken", "claims challenge", **{"WWW-Authenticate": CHALLENGE}),
        httpx.Response(200, json={"value": []}),
    )
    assert json.loads(await sender(graph, entra).send("GET", f"{GRAPH}/users/u1/events", {}, None)) == {
        "value": []
    }
    assert [a["claims"] for a in entra.asked] == [None, CLAIMS]
    assert all(a["enable_cae"] for a in entra.asked)
    assert graph.tokens() == ["Bearer token-1", "Bearer token-2"]


async def test_a_claims_challenge_met_again_is_the_answer_not_a_loop() -> None:
    entra = Entra()
    challenged = error(
        401, "InvalidAuthenticationToken", "claims challenge", **{"WWW-Authenticate": CHALLENGE}
    )
    graph = Graph(challenged, challenged)
    with pytest.raises(AuthFailed):
        await sender(graph, entra).send("GET", f"{GRAPH}/users/u1/events", {}, None)
    assert len(graph.seen) == 2
    assert [a["claims"] for a in entra.asked] == [None, CLAIMS]


async def test_a_refused_token_is_renewed_once_and_the_request_goes_through() -> None:
    entra = Entra()
    graph = Graph(
        error(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired."),
        httpx.Response(200, json={}),
    )
    assert await sender(graph, entra).send("GET", f"{GRAPH}/users/u1/events", {}, None) == b"{}"
    assert graph.tokens() == ["Bearer token-1", "Bearer token-2"]  # the refused one never again


async def test_a_new_token_refused_too_is_an_authentication_failure() -> None:
    refused = error(401, "InvalidAuthenticationToken", "Access token validation failure.")
    graph = Graph(refused, refused)
    with pytest.raises(AuthFailed) as failed:
        await sender(graph).send("GET", f"{GRAPH}/users/u1/events", {}, None)
    assert failed.value.code == "InvalidAuthenticationToken"
    assert len(graph.seen) == 2


async def test_a_credential_that_cannot_renew_meets_a_401_once() -> None:
    graph = Graph(error(401, "InvalidAuthenticationToken", "expired"), httpx.Response(200, json={}))
    with pytest.raises(AuthFailed):
        await sender(graph, renewable=False).send("GET", f"{GRAPH}/users/u1/events", {}, None)
    assert graph.tokens() == ["Bearer token-1"]  # not sent again with the token it would hand out again


@pytest.mark.parametrize(
    ("answer", "kind", "code"),
    [
        (
            error(404, "ErrorItemNotFound", "The specified object was not found."),
            GraphNotFound,
            "ErrorItemNotFound",
        ),
        (
            error(412, "ErrorIrresolvableConflict", "The change key passed"),
            GraphPreconditionFailed,
            "ErrorIrresolvableConflict",
        ),
        (httpx.Response(502, text="<html><body>Bad Gateway</body></html>"), GraphError, "unknown"),
        (httpx.Response(500, json=["not", "an", "error"]), GraphError, "unknown"),
    ],
)
async def test_a_failed_answer_is_classified_from_graphs_error_json(
    answer: httpx.Response, kind: type[GraphError], code: str
) -> None:
    with pytest.raises(kind) as failed:
        await sender(Graph(answer)).send("GET", f"{GRAPH}/users/u1/events/e1", {}, None)
    assert type(failed.value) is kind
    assert failed.value.status == answer.status_code and failed.value.code == code
    assert failed.value.message  # Graph's message, or the status line when the body is not Graph's


async def test_a_throttled_answer_carries_its_retry_after_and_scope() -> None:
    answer = error(
        429, "TooManyRequests", "Please retry", **{"Retry-After": "7", "x-ms-throttle-scope": "Tenant/x"}
    )
    with pytest.raises(Throttled) as failed:
        await sender(Graph(answer)).send("GET", f"{GRAPH}/users/u1/events", {}, None)
    assert (failed.value.retry_after, failed.value.scope) == (7.0, "Tenant/x")


def test_only_a_bearer_challenge_with_readable_claims_is_a_claims_challenge() -> None:
    def challenge(value: str) -> httpx.Response:
        return httpx.Response(401, headers={"WWW-Authenticate": value})

    assert challenged_claims(challenge(CHALLENGE)) == CLAIMS
    assert challenged_claims(challenge('Bearer realm="", error="invalid_token"')) is None
    assert challenged_claims(challenge('Basic claims="e30="')) is None
    assert challenged_claims(challenge('Bearer claims="%%%not base64"')) is None
    assert challenged_claims(httpx.Response(401)) is None
