"""The connector's own Graph requests, sent on the worker's pool without the SDK's request adapter and
middleware chain.

Every data-plane request (`TenantGraph.request_bytes`: delta pages, event and task writes, subscriptions,
batches) is a URL, a JSON body and a few headers the connector builds itself, and its answer is parsed
into the connector's own models. The SDK's adapter and its eight middleware handlers (retry, redirect,
URL replacement, parameter names, user agent, headers and body inspection, telemetry) did nothing for
those a request needs beyond what is here, and cost more CPU than sending it (`python -m
benchmarks.graph_sender` prints both). What they did and a request still needs is done here:

- the bearer token from the tenant's credential, asked for with CAE on (`enable_cae=True`, as kiota's
  `AzureIdentityAccessTokenProvider`), and only for Graph's own host (a URL elsewhere goes without it);
- a claims challenge (401 with `WWW-Authenticate: Bearer ... claims="<base64>"`, Continuous Access
  Evaluation) sent again once with a token asked for with the decoded claims, as kiota does;
- any other 401 sent again once with a new token, the refused one reported to a `RenewableCredential`
  (`refused`), which asks Entra for a new one;
- redirects followed (five at most, as kiota's handler), the token dropped when the host changes
  (httpx's own rule);
- `client-request-id` (a new id per request, Graph's correlation id for support) and a user agent;
- a failed answer's `{"error": {"code", "message"}}` classified (`errors.from_answer`), with its headers
  (Retry-After, the throttle scope).

The SDK client (`TenantGraph.sdk`) stays for the control plane's typed requests.
"""

from __future__ import annotations

import base64
import re
import uuid
from typing import Final
from urllib.parse import urlsplit

import httpx
from azure.core.credentials_async import AsyncTokenCredential

from shared.adapters.graph.errors import from_answer
from shared.adapters.identity import RenewableCredential

USER_AGENT: Final = f"m365-calendar-connector python-httpx/{httpx.__version__}"
MAX_REDIRECTS: Final = 5
_CLAIMS: Final = re.compile(r'claims="([^"]+)"')


def claims_challenge(response: httpx.Response) -> bool:
    """A `WWW-Authenticate: Bearer ... claims="..."` challenge (Continuous Access Evaluation)."""
    challenge = response.headers.get("WWW-Authenticate", "")
    return challenge.lower().startswith("bearer") and "claims=" in challenge


def challenged_claims(response: httpx.Response) -> str | None:
    """The claims of a `WWW-Authenticate: Bearer ... claims="..."` challenge, decoded; None without one."""
    if not claims_challenge(response):
        return None
    found = _CLAIMS.search(response.headers["WWW-Authenticate"])
    if found is None:
        return None
    try:
        return base64.b64decode(found.group(1)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None  # not a challenge a token request can carry: the 401 is a refusal


class BearerTokens:
    """The tenant's tokens for Graph's host: asked for per request (azure-identity keeps them cached)."""

    def __init__(self, credential: AsyncTokenCredential, scope: str, host: str) -> None:
        self._credential = credential
        self._scope = scope
        self._host = host.lower()

    def for_url(self, url: str) -> bool:
        return (urlsplit(url).hostname or "").lower() == self._host

    async def token(self, claims: str | None = None) -> str:
        """The token (azure-identity's refusal of the token request is raised as it is: `TenantGraph`
        translates it, as every failure, with `errors.from_sdk`)."""
        return (await self._credential.get_token(self._scope, claims=claims, enable_cae=True)).token

    async def refused(self, token: str) -> bool:
        """Graph refused `token`: a `RenewableCredential` asks Entra for a new one (True: worth sending
        again); any other credential meets a 401 only once (False)."""
        if not isinstance(self._credential, RenewableCredential):
            return False
        await self._credential.refused(token)
        return True


class GraphSender:
    """One tenant's raw Graph requests on the worker's shared HTTP client (no middleware on it)."""

    def __init__(self, http: httpx.AsyncClient, tokens: BearerTokens | None) -> None:
        self._http = http
        self._tokens = tokens  # None: requests go unauthenticated (a test's mock transport)

    async def send(self, method: str, url: str, headers: dict[str, str], content: bytes | None) -> bytes:
        """The answer's body (b"" when it has none), or the `GraphError` Graph's failure is."""
        response = await self._authorised(method, url, headers, content)
        if response.is_success or response.status_code == 304:
            return response.content
        raise from_answer(response.status_code, response.reason_phrase, response.content, response.headers)

    async def _authorised(
        self, method: str, url: str, headers: dict[str, str], content: bytes | None
    ) -> httpx.Response:
        tokens = self._tokens if self._tokens is not None and self._tokens.for_url(url) else None
        claims: str | None = None
        renewed = False
        while True:
            sent = dict(headers)
            sent["client-request-id"] = str(uuid.uuid4())
            sent["User-Agent"] = USER_AGENT
            token = await tokens.token(claims) if tokens is not None else ""
            if token:
                sent["Authorization"] = f"Bearer {token}"
            response = await self._http.request(
                method, url, headers=sent, content=content, follow_redirects=True
            )
            if response.status_code != 401 or tokens is None or claims is not None:
                return response  # a 401 after the challenge's claims is the answer (kiota's rule)
            challenge = challenged_claims(response)
            if challenge is not None:
                claims = challenge
                continue
            if renewed or not await tokens.refused(token):
                return response  # a new token refused too: the tenant's authentication failed
            renewed = True
