"""Graph clients per tenant, built once per worker and cached (credential, token cache, pool).

The connector's own requests (`TenantGraph.request_bytes` / `request_json`: every data-plane path) are
built by the connector and sent by `sender.GraphSender` on the worker's pool, their raw bodies parsed
into the connector's own models: the SDK's model deserialisation costs milliseconds per item, and its
request adapter and middleware more CPU than the sending (`sender.py`). msgraph-sdk's client
(`TenantGraph.sdk`, `adapter`) stays for the typed control-plane requests, with its middleware.

A 401 is answered with a new token, once per request: a claims challenge (Continuous Access
Evaluation) with a token asked for with its claims; any other 401 by telling the tenant's
`RenewableCredential` the token was refused (`GraphSender`, and `RenewingRequestAdapter` for the SDK's
requests). A 401 that survives that is a real refusal (`AuthFailed`), never retried again.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from kiota_abstractions.authentication import AuthenticationProvider
from kiota_abstractions.request_information import RequestInformation
from kiota_abstractions.request_option import RequestOption
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

from shared.adapters.graph.errors import Throttled, from_sdk
from shared.adapters.graph.mailbox_gate import MailboxClaims, MailboxGate
from shared.adapters.graph.pool import GraphTransport
from shared.adapters.graph.sender import MAX_REDIRECTS, BearerTokens, GraphSender, claims_challenge
from shared.adapters.graph.tenant_budget import CEILING, TenantBudget, tenant_wide
from shared.adapters.identity import RenewableCredential
from shared.service import work_priority
from shared.telemetry.graph import CountedTransport


def tls_verify(ca_bundle: str | None) -> ssl.SSLContext | bool:
    """httpx's `verify`: the system trust store, or a given CA (the local emulator's)."""
    return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True


ERROR_MAP: dict[str, Any] = {"4XX": ODataError, "5XX": ODataError}
MAX_SDK_RETRIES = 2  # tries again after 429/503/504 in process; queue redelivery is the outer budget
MAX_TENANT_PAUSES = 8  # tenant-wide 429s a request waits out in process (the budget pauses the tenant)
MAX_RETRY_DELAY = 120.0  # seconds; a longer Retry-After goes back to the queue (as kiota's handler does)


def retry_delay(failure: Throttled, attempt: int) -> float:
    """Seconds before trying again: Graph's Retry-After, else kiota's backoff (0.5 * 2^(n-1) + jitter)."""
    if failure.retry_after > 0:
        return float(failure.retry_after)
    return 0.5 * 2.0 ** (attempt - 1) + random.random()  # noqa: S311


class TokenRenewed(RequestOption):
    """Marks a request already sent again with a new token after a 401."""

    @staticmethod
    def get_key() -> str:
        return "connector.token_renewed"


class RenewingRequestAdapter(GraphRequestAdapter):
    """Graph's request adapter, sending a request refused with 401 once more with a new token.

    kiota retries a 401 only when it carries a claims challenge; Graph also answers 401
    `InvalidAuthenticationToken` without one (a token expired by its clock, or revoked for a client that
    did not declare CAE), and the credential would hand out the same cached token again."""

    def __init__(
        self, auth: AuthenticationProvider, client: httpx.AsyncClient, credential: RenewableCredential
    ) -> None:
        super().__init__(auth, client=client)
        self._credential = credential

    async def retry_cae_response_if_required(
        self, resp: httpx.Response, request_info: RequestInformation, claims: str
    ) -> httpx.Response:
        if (
            resp.status_code != 401
            or claims
            or claims_challenge(resp)
            or TokenRenewed.get_key() in request_info.request_options
        ):
            answer: httpx.Response = await super().retry_cae_response_if_required(resp, request_info, claims)
            return answer
        sent = next(iter(request_info.headers.get("Authorization")), "")
        await self._credential.refused(sent.partition(" ")[2])
        request_info.headers.remove("Authorization")
        request_info.add_request_options([TokenRenewed()])
        span = self.start_tracing_span(request_info, "retry_refused_token")
        try:
            again: httpx.Response = await self.get_http_response_message(request_info, span)
        finally:
            span.end()
        return again


@dataclass(frozen=True, slots=True)
class TenantKey:
    """Which app signs in to which directory, and with which Key Vault version of a customer app's
    secret (None: the connector app's, or a row from before versions): the cache key of the tenant's
    client, so a rotation recorded on the tenant row brings a new credential on every worker."""

    directory_id: str
    client_id: str
    secret_version: str | None = None

    def same_app(self, other: TenantKey) -> bool:
        return (self.directory_id, self.client_id) == (other.directory_id, other.client_id)


class TenantGraph:
    """Graph for one tenant: the SDK client for the control plane, raw JSON for the data plane."""

    def __init__(
        self,
        adapter: GraphRequestAdapter,
        sender: GraphSender,
        base_url: str,
        *,
        gate: MailboxGate | None = None,
        http: httpx.AsyncClient | None = None,
        budget: TenantBudget | None = None,
    ) -> None:
        self.adapter = adapter
        self.sdk = GraphServiceClient(request_adapter=adapter)
        self.sender = sender
        self.base_url = base_url
        self.gate = gate or MailboxGate()  # the worker's, shared by every tenant's client
        self.http = http  # the shared pool, for pre-authenticated URLs (upload sessions)
        self.budget = budget or TenantBudget()  # the tenant's in this worker

    def url(self, path: str) -> str:
        return path if path.startswith("https://") or path.startswith("http://") else f"{self.base_url}{path}"

    async def request_bytes(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        retries: int = MAX_SDK_RETRIES,
    ) -> bytes:
        """Send a request (`GraphSender`); answer the raw body (b"" when empty).
        `retries`: tries again after 429/503/504 (0 for a request that must go once), after Retry-After.
        The request waits for the tenant's budget (`TenantBudget`) and holds its mailbox (`MailboxGate`).

        Several values of one header (`Prefer`) go comma-folded in one string."""
        url = self.url(path)
        content = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        attempt = paused = 0
        while True:
            await self.budget.take(work_priority.current())
            sent = self._headers(headers, content is not None, attempt + paused)
            async with self.gate.hold(path, body):  # MailboxBusy, or the claims table's own errors
                try:
                    return await self.sender.send(method.upper(), url, sent, content)
                except Exception as error:  # Graph's answer, or the transport's failure (a timeout)
                    failure, cause = from_sdk(error), error
            if not isinstance(failure, Throttled):  # the mailbox's slot is free again from here on
                raise failure from (None if failure is cause else cause)
            whole_tenant = failure.status == 429 and tenant_wide(failure.scope)
            if failure.status == 429:
                self.budget.throttled(failure.retry_after, whole_tenant=whole_tenant)
            if (
                whole_tenant
                and retries
                and paused < MAX_TENANT_PAUSES
                and failure.retry_after <= MAX_RETRY_DELAY
            ):
                paused += 1  # the tenant's pacing, not this request's failure: the budget waits
                continue
            attempt += 1
            delay = retry_delay(failure, attempt)
            if attempt > retries or delay > MAX_RETRY_DELAY:
                raise failure from (None if failure is cause else cause)
            await asyncio.sleep(delay)

    @staticmethod
    def _headers(given: dict[str, str] | None, has_body: bool, attempt: int) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if has_body:
            headers["Content-Type"] = "application/json"
        headers.update(given or {})
        if attempt:
            headers["Retry-Attempt"] = str(attempt)
        return headers

    async def request_json(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        retries: int = MAX_SDK_RETRIES,
    ) -> Any:
        """Send a request (`request_bytes`); answer the parsed JSON body (or None)."""
        raw = await self.request_bytes(method, path, body, headers, retries=retries)
        if not raw:
            return None
        return json.loads(raw)


# The worker's one Graph pool (`pool.GraphPool`): connections at most (requests beyond wait in it for one),
# and kept idle. 64 leave room for a worker's 24 jobs at once (host.json: batchSize 16 + newBatchThreshold
# 8) with a few requests each. Every one is kept while idle (until httpx's 5 s keep-alive expiry): a burst
# after a quiet moment finds its connections open, no handshake. `python -m benchmarks.graph_pool`: 2.82 ms
# of CPU a request with httpcore's pool at (64, 16), which closed each connection going idle, 0.91 with
# `GraphPool` at (64, 64); httpcore's own at (64, 64) costs 6.88, its bookkeeping being quadratic.
POOL_CONNECTIONS: Final = 64
POOL_KEPT_IDLE: Final = 64


class GraphClients:
    """One shared HTTP pool; one authenticated adapter per (tenant, app), created on first use."""

    def __init__(
        self,
        base_url: str,
        scope: str,
        credential_for: Callable[[TenantKey], Awaitable[AsyncTokenCredential]],
        *,
        ca_bundle: str | None = None,
        claims: MailboxClaims | None = None,
        tenant_rate: float = CEILING,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._scope = scope
        self._credential_for = credential_for
        # Every request to Graph goes over this transport, so each try is counted (telemetry): the
        # connector's own (`GraphSender`, on `_raw`) and the SDK's, its middleware running above it.
        limits = httpx.Limits(max_connections=POOL_CONNECTIONS, max_keepalive_connections=POOL_KEPT_IDLE)
        transport = CountedTransport(GraphTransport(verify=tls_verify(ca_bundle), limits=limits))
        timeout = httpx.Timeout(30.0, connect=10.0)
        self._raw = httpx.AsyncClient(transport=transport, timeout=timeout, max_redirects=MAX_REDIRECTS)
        self._http = GraphClientFactory.create_with_default_middleware(
            client=httpx.AsyncClient(transport=transport, verify=tls_verify(ca_bundle), timeout=timeout)
        )
        self.gate = MailboxGate(claims=claims)  # with claims: one worker at a time per mailbox
        self._tenant_rate = tenant_rate
        self._budgets: dict[str, TenantBudget] = {}  # per directory, shared by its clients in this worker
        # Upload sessions' URLs are pre-authenticated and outside Graph's middleware: a plain client.
        self._uploads = httpx.AsyncClient(
            verify=tls_verify(ca_bundle), timeout=httpx.Timeout(120.0, connect=10.0)
        )
        self._tenants: dict[TenantKey, TenantGraph] = {}
        self._building: dict[TenantKey, asyncio.Lock] = {}  # held while a key's graph is built
        self._credentials: dict[TenantKey, AsyncTokenCredential] = {}
        self._retired: list[AsyncTokenCredential] = []  # credentials of rotated secrets, closed at the end

    async def for_tenant(self, key: TenantKey) -> TenantGraph:
        graph = self._tenants.get(key)
        if graph is not None:
            return graph
        # One build per key: a worker's first jobs for a tenant arrive together (24 at once, and a
        # migration's list run beside each), and each build reads the secret and asks for a token.
        async with self._building.setdefault(key, asyncio.Lock()):
            graph = self._tenants.get(key)
            if graph is not None:
                return graph
            credential = RenewableCredential(
                await self._credential_for(key), lambda: self._credential_for(key)
            )
            graph = self.graph_with(credential, self._budget(key.directory_id))
            self._credentials[key] = credential
            self._tenants[key] = graph
            for older in [k for k in self._tenants if k != key and k.same_app(key)]:
                # Another secret version of the same app: rotated. Its credential may be serving a request
                # right now, so it is closed with the others, not at once.
                self._tenants.pop(older, None)
                self._building.pop(older, None)
                retired = self._credentials.pop(older, None)
                if retired is not None:
                    self._retired.append(retired)
        return graph

    def _budget(self, directory_id: str) -> TenantBudget:
        budget = self._budgets.get(directory_id)
        if budget is None:
            budget = self._budgets[directory_id] = TenantBudget(self._tenant_rate)
        return budget

    def graph_with(self, credential: AsyncTokenCredential, budget: TenantBudget | None = None) -> TenantGraph:
        """An uncached client for a given credential (validating a customer's app before storing it). A
        `RenewableCredential` is told of refused tokens; any other credential meets a 401 only once."""
        host = urlsplit(self.base_url).hostname or "graph.microsoft.com"
        auth = AzureIdentityAuthenticationProvider(credential, scopes=[self._scope], allowed_hosts=[host])
        adapter = (
            RenewingRequestAdapter(auth, self._http, credential)
            if isinstance(credential, RenewableCredential)
            else GraphRequestAdapter(auth, client=self._http)
        )
        adapter.base_url = self.base_url
        sender = GraphSender(self._raw, BearerTokens(credential, self._scope, host))
        return TenantGraph(adapter, sender, self.base_url, gate=self.gate, http=self._uploads, budget=budget)

    async def forget(self, key: TenantKey) -> None:
        """Drop a tenant's cached clients and credentials for the app, whatever the secret's version (after
        a secret rotation or disconnect)."""
        for cached in [k for k in self._tenants if k.same_app(key)]:
            await self._drop(cached)

    async def _drop(self, key: TenantKey) -> None:
        self._tenants.pop(key, None)
        credential = self._credentials.pop(key, None)
        if credential is not None:
            await credential.close()

    def job(self) -> AbstractAsyncContextManager[None]:
        """One queue job's Graph requests (`MailboxGate.job`): its mailboxes' claims let go as it ends."""
        return self.gate.job()

    async def close(self) -> None:
        await self.gate.close()
        for credential in [*self._credentials.values(), *self._retired]:
            await credential.close()
        await self._http.aclose()  # the SDK's (its middleware's transport leaves the pool open)
        await self._raw.aclose()  # and the pool with it
        await self._uploads.aclose()
