"""The tenant's directory through Graph: resolve tenants, list and find users, probe mailboxes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final
from urllib.parse import quote, urlsplit

import httpx
from azure.core.credentials_async import AsyncTokenCredential

from shared.adapters.graph.client import GraphClients, TenantGraph, TenantKey, tls_verify
from shared.adapters.graph.errors import (
    AccessDenied,
    AuthFailed,
    GraphError,
    GraphNotFound,
    Throttled,
    refusal_reason,
)
from shared.domain.tenants import Tenant
from shared.domain.users import DirectoryUser, MailboxAccess, StaffMember
from shared.service.errors import TenantAccessError

USER_FIELDS: Final = "id,userPrincipalName,mail,proxyAddresses,accountEnabled,displayName"
BATCH_LIMIT: Final = 20  # Graph's $batch maximum
CONCURRENT_BATCHES: Final = 4  # each batch item is its own mailbox; the directory takes a few at once
MAX_BATCH_ROUNDS: Final = 5
NO_MAILBOX_CODES: Final = {"mailboxnotenabledforrestapi", "errorinvaliduser", "mailboxnotsupportedforrestapi"}


def _user(raw: dict[str, Any]) -> DirectoryUser:
    return DirectoryUser(
        id=str(raw["id"]),
        user_principal_name=str(raw.get("userPrincipalName") or ""),
        mail=raw.get("mail"),
        proxy_addresses=tuple(raw.get("proxyAddresses") or ()),
        account_enabled=bool(raw.get("accountEnabled", True)),
        display_name=str(raw.get("displayName") or ""),
    )


def _odata_string(value: str) -> str:
    return value.replace("'", "''")


class GraphDirectory:
    """`DirectoryGateway` over Graph. Tenant-level refusals become `TenantAccessError`."""

    def __init__(
        self,
        clients: GraphClients,
        key_for: Callable[[Tenant], Awaitable[TenantKey]],
        *,
        authority_host: str,
        ca_bundle: str | None,
    ) -> None:
        self._clients = clients
        self._key_for = key_for
        self._authority_host = authority_host.rstrip("/")
        self._verify = tls_verify(ca_bundle)

    async def _graph(self, tenant: Tenant) -> TenantGraph:
        return await self._clients.for_tenant(await self._key_for(tenant))

    async def resolve_directory_id(self, tenant_id: str) -> str | None:
        """OpenID discovery answers for a tenant GUID or any verified domain; its token endpoint names the
        tenant's GUID."""
        url = f"{self._authority_host}/{quote(tenant_id)}/v2.0/.well-known/openid-configuration"
        async with httpx.AsyncClient(verify=self._verify, timeout=10.0) as http:
            response = await http.get(url)
        if response.status_code >= 400:
            return None
        token_endpoint = str(response.json().get("token_endpoint", ""))
        segments = [s for s in urlsplit(token_endpoint).path.split("/") if s]
        return segments[0].lower() if segments else None

    async def check_access(self, tenant: Tenant) -> None:
        graph = await self._graph(tenant)
        try:
            await graph.request_json("GET", "/users?$top=1&$select=id")
        except (AuthFailed, AccessDenied) as error:
            raise TenantAccessError(refusal_reason(error)) from error

    async def list_users(self, tenant: Tenant) -> list[DirectoryUser]:
        graph = await self._graph(tenant)
        users: list[DirectoryUser] = []
        url: str | None = f"/users?$select={USER_FIELDS}&$top=999"
        try:
            while url:
                page = await graph.request_json("GET", url)
                users += [_user(raw) for raw in page.get("value", [])]
                url = page.get("@odata.nextLink")
        except (AuthFailed, AccessDenied) as error:
            raise TenantAccessError(refusal_reason(error)) from error
        return users

    async def find_candidates(self, tenant: Tenant, staff: StaffMember) -> list[DirectoryUser]:
        """By UPN (a direct read), then mail, then SMTP proxy address (filters); stops at the first hit."""
        graph = await self._graph(tenant)
        found: dict[str, DirectoryUser] = {}
        try:
            if staff.upn:
                try:
                    raw = await graph.request_json("GET", f"/users/{quote(staff.upn)}?$select={USER_FIELDS}")
                    found[raw["id"]] = _user(raw)
                except GraphNotFound:
                    pass
            for address in {a.lower() for a in (staff.email, staff.upn) if a}:
                if found:
                    break
                escaped = _odata_string(address)
                for condition in (f"mail eq '{escaped}'", f"proxyAddresses/any(x:x eq 'smtp:{escaped}')"):
                    page = await graph.request_json(
                        "GET", f"/users?$filter={quote(condition)}&$select={USER_FIELDS}"
                    )
                    for raw in page.get("value", []):
                        found[raw["id"]] = _user(raw)
                    if found:
                        break
        except (AuthFailed, AccessDenied) as error:
            raise TenantAccessError(refusal_reason(error)) from error
        return list(found.values())

    async def mailbox_access(self, tenant: Tenant, user_ids: Sequence[str]) -> dict[str, MailboxAccess]:
        """Probe each mailbox with the cheapest calendar read, 20 per `$batch` (one mailbox alone: the read
        itself, since a `$batch` of one costs Graph a request more); throttled probes retried."""
        graph = await self._graph(tenant)
        results: dict[str, MailboxAccess] = {}
        pending = list(dict.fromkeys(user_ids))
        for _ in range(MAX_BATCH_ROUNDS):
            if not pending:
                break
            probe_round = _probe_alone if len(pending) == 1 else _probe_round
            pending, wait = await probe_round(graph, pending, results)
            if pending:
                await asyncio.sleep(min(wait or 1.0, 30.0))
        if pending:
            raise Throttled(429, "TooManyRequests", "mailbox probes stayed throttled", 30.0)
        return results


def _probe_url(user_id: str) -> str:
    return f"/users/{user_id}/events?$top=1&$select=id"


async def _probe_alone(
    graph: TenantGraph, pending: list[str], results: dict[str, MailboxAccess]
) -> tuple[list[str], float]:
    """One mailbox's probe as a plain request; answers as `_probe_round` does."""
    [uid] = pending
    try:
        await graph.request_json("GET", _probe_url(uid))
    except AuthFailed as error:
        raise TenantAccessError(refusal_reason(error)) from error
    except Throttled as error:
        return [uid], error.retry_after
    except GraphError as error:
        if error.status >= 500:
            return [uid], 1.0
        results[uid] = _access_from(error.status, {"error": {"code": error.code}})
        return [], 0.0
    results[uid] = MailboxAccess.OK
    return [], 0.0


async def _probe_round(
    graph: TenantGraph, pending: list[str], results: dict[str, MailboxAccess]
) -> tuple[list[str], float]:
    """One round of probes, a few `$batch` requests at a time; answers what to retry and how long to wait."""
    retry: list[str] = []
    waits: list[float] = [0.0]
    gate = asyncio.Semaphore(CONCURRENT_BATCHES)

    async def probe(chunk: list[str]) -> None:
        requests = [{"id": str(i), "method": "GET", "url": _probe_url(uid)} for i, uid in enumerate(chunk)]
        try:
            async with gate:
                answer = await graph.request_json("POST", "/$batch", {"requests": requests})
        except AuthFailed as error:
            raise TenantAccessError(refusal_reason(error)) from error
        except Throttled as error:
            retry.extend(chunk)
            waits.append(error.retry_after)
            return
        for item in answer.get("responses", []):
            uid = chunk[int(item["id"])]
            status = int(item.get("status", 500))
            if status == 429 or status >= 500:
                retry.append(uid)
                waits.append(_item_retry_after(item))
            else:
                results[uid] = _access_from(status, item.get("body") or {})

    await asyncio.gather(*(probe(pending[s : s + BATCH_LIMIT]) for s in range(0, len(pending), BATCH_LIMIT)))
    return retry, max(waits)


def _item_retry_after(item: dict[str, Any]) -> float:
    headers = {k.lower(): v for k, v in (item.get("headers") or {}).items()}
    try:
        return float(headers.get("retry-after", 1))
    except (TypeError, ValueError):
        return 1.0


def _access_from(status: int, body: dict[str, Any]) -> MailboxAccess:
    if status < 400:
        return MailboxAccess.OK
    code = str((body.get("error") or {}).get("code", "")).lower()
    if status == 404 or code in NO_MAILBOX_CODES:
        return MailboxAccess.NO_MAILBOX
    if status in (401, 403):
        return MailboxAccess.FORBIDDEN
    raise GraphError(status, code or "unknown", "unexpected answer to a mailbox probe")


class GraphCustomerApps:
    """Validates a customer's own app registration: a token with it, then one directory read."""

    def __init__(
        self, clients: GraphClients, credential: Callable[[str, str, str], AsyncTokenCredential]
    ) -> None:
        self._clients = clients
        self._credential = credential

    async def validate(self, directory_id: str, client_id: str, client_secret: str) -> None:
        credential = self._credential(directory_id, client_id, client_secret)
        try:
            graph = self._clients.graph_with(credential)
            await graph.request_json("GET", "/users?$top=1&$select=id")
        except (AuthFailed, AccessDenied) as error:
            raise TenantAccessError(refusal_reason(error)) from error
        finally:
            await credential.close()
        await self._clients.forget(TenantKey(directory_id, client_id))  # a rotated secret: rebuild the client
