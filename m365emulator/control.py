"""`ControlClient`: the control surface (`/_emulator/...`) from Python, one method per route.

    async with ControlClient(ready["control"], ready["ca_file"]) as control:
        await control.add_fault(status=503, path="/events", count=1)

Every method returns the decoded JSON answer and raises `ControlFailed` on a non-2xx status.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import quote

import httpx


class ControlFailed(RuntimeError):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"control call failed with {status}: {body}")
        self.status = status
        self.body = body


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


class ControlClient:
    def __init__(self, base_url: str, ca_file: str, *, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url, verify=ssl.create_default_context(cafile=ca_file), timeout=timeout
        )

    async def __aenter__(self) -> ControlClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        response = await self._http.request(
            method, self.base_url + path, json=body, params=_drop_none(params) or None
        )
        data = response.json() if response.content else None
        if response.status_code >= 300:
            raise ControlFailed(response.status_code, data)
        return data

    # general -------------------------------------------------------------------------------------
    async def health(self) -> dict[str, Any]:
        return await self.call("GET", "/health")

    async def info(self) -> dict[str, Any]:
        return await self.call("GET", "/info")

    async def reset(self, *, data: bool = False, subscriptions: bool = True) -> dict[str, Any]:
        return await self.call("POST", "/reset", {"data": data, "subscriptions": subscriptions})

    async def settings(self) -> dict[str, Any]:
        return await self.call("GET", "/settings")

    async def set_settings(self, **changes: Any) -> dict[str, Any]:
        return await self.call("PUT", "/settings", changes)

    async def set_latency(self, latency_ms: float) -> dict[str, Any]:
        return await self.set_settings(latency_ms=latency_ms)

    async def set_throttle(
        self, *, concurrency: int | None = None, budget: int | None = None, window_s: float | None = None
    ) -> dict[str, Any]:
        changes = _drop_none(
            {"throttle_concurrency": concurrency, "throttle_budget": budget, "throttle_window_s": window_s}
        )
        return await self.set_settings(**changes)

    async def clock(self) -> str:
        return (await self.call("GET", "/clock"))["now"]

    async def advance_clock(
        self, *, days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0
    ) -> str:
        body = {"days": days, "hours": hours, "minutes": minutes, "seconds": seconds}
        return (await self.call("POST", "/clock/advance", body))["now"]

    async def stats(self) -> dict[str, Any]:
        return await self.call("GET", "/stats")

    async def sent_mail(
        self, *, tenant_id: str | None = None, user: str | None = None
    ) -> list[dict[str, Any]]:
        return (await self.call("GET", "/mail", tenant_id=tenant_id, user=user))["value"]

    async def mail_deliveries(
        self,
        *,
        mailbox: str | None = None,
        internet_message_id: str | None = None,
        recipient: str | None = None,
    ) -> list[dict[str, Any]]:
        """The copies delivered (one per recipient of each sent message), oldest first."""
        found = await self.call(
            "GET",
            "/mail/deliveries",
            mailbox=mailbox,
            internet_message_id=internet_message_id,
            recipient=recipient,
        )
        return found["value"]

    # directory -----------------------------------------------------------------------------------
    async def tenants(self) -> list[dict[str, Any]]:
        return (await self.call("GET", "/tenants"))["value"]

    async def create_tenant(
        self,
        display_name: str,
        domains: list[str] | None = None,
        *,
        tenant_id: str | None = None,
        consent_policy: str = "page",
    ) -> dict[str, Any]:
        body = _drop_none(
            {
                "display_name": display_name,
                "domains": domains or [],
                "id": tenant_id,
                "consent_policy": consent_policy,
            }
        )
        return await self.call("POST", "/tenants", body)

    async def set_consent_policy(self, tenant_id: str, policy: str) -> dict[str, Any]:
        return await self.call("PATCH", f"/tenants/{tenant_id}", {"consent_policy": policy})

    async def create_app(
        self,
        display_name: str,
        home_tenant_id: str,
        *,
        client_id: str | None = None,
        multi_tenant: bool = False,
        redirect_uris: list[str] | None = None,
        permissions: list[str] | None = None,
        secrets: list[dict[str, Any]] | None = None,
        consent: bool = False,
    ) -> dict[str, Any]:
        """`secrets`: [{"value"?, "end_date_time"? (ISO), "display_name"?}]; default one fresh secret.
        `consent`: grant the permissions in the home tenant right away (customer-owned apps)."""
        body = _drop_none(
            {
                "display_name": display_name,
                "home_tenant_id": home_tenant_id,
                "client_id": client_id,
                "multi_tenant": multi_tenant,
                "redirect_uris": redirect_uris or [],
                "permissions": permissions or [],
                "secrets": secrets,
                "consent": consent,
            }
        )
        return await self.call("POST", "/apps", body)

    async def get_app(self, client_id: str) -> dict[str, Any]:
        return await self.call("GET", f"/apps/{client_id}")

    async def set_redirect_uris(self, client_id: str, redirect_uris: list[str]) -> dict[str, Any]:
        """Replace the app registration's redirect URIs."""
        return await self.call("PATCH", f"/apps/{client_id}", {"redirect_uris": redirect_uris})

    async def add_secret(
        self, client_id: str, *, value: str | None = None, end_date_time: str | None = None
    ) -> dict[str, Any]:
        return await self.call(
            "POST", f"/apps/{client_id}/secrets", _drop_none({"value": value, "end_date_time": end_date_time})
        )

    async def remove_secret(self, client_id: str, key_id: str) -> dict[str, Any]:
        """The app's secret `key_id` deleted (Graph's removePassword): no new token with it."""
        return await self.call("DELETE", f"/apps/{client_id}/secrets/{key_id}")

    async def consent(
        self, tenant_id: str, client_id: str, permissions: list[str] | None = None
    ) -> dict[str, Any]:
        return await self.call(
            "POST",
            f"/tenants/{tenant_id}/consent",
            _drop_none({"client_id": client_id, "permissions": permissions}),
        )

    async def revoke_consent(self, tenant_id: str, client_id: str, *, mode: str = "grants") -> dict[str, Any]:
        """mode "grants": tokens keep coming, without roles; "service_principal": AADSTS700016."""
        return await self.call("POST", f"/tenants/{tenant_id}/revoke", {"client_id": client_id, "mode": mode})

    async def revoke_tokens(self, tenant_id: str, client_id: str) -> int:
        """A CAE revocation event: Graph challenges the app's cp1 tokens issued before now."""
        body = await self.call("POST", f"/tenants/{tenant_id}/tokens/revoke", {"client_id": client_id})
        return int(body["revoked_at"])

    async def service_principals(self, tenant_id: str) -> list[dict[str, Any]]:
        return (await self.call("GET", f"/tenants/{tenant_id}/service-principals"))["value"]

    async def users(self, tenant_id: str) -> list[dict[str, Any]]:
        return (await self.call("GET", f"/tenants/{tenant_id}/users"))["value"]

    async def create_user(self, tenant_id: str, upn: str, **fields: Any) -> dict[str, Any]:
        """fields: display_name, mail, proxy_addresses, mailbox_enabled, account_enabled, time_zone, id..."""
        return await self.call("POST", f"/tenants/{tenant_id}/users", {"upn": upn, **fields})

    async def get_user(self, tenant_id: str, user: str) -> dict[str, Any]:
        return await self.call("GET", f"/tenants/{tenant_id}/users/{quote(user)}")

    async def update_user(self, tenant_id: str, user: str, **changes: Any) -> dict[str, Any]:
        return await self.call("PATCH", f"/tenants/{tenant_id}/users/{quote(user)}", changes)

    async def set_working_hours(
        self, tenant_id: str, user: str, working_hours: dict[str, Any] | None
    ) -> dict[str, Any]:
        """A Graph `workingHours` (missing fields: the default week's), or None for the default."""
        path = f"/tenants/{tenant_id}/users/{quote(user)}/working-hours"
        if working_hours is None:
            return await self.call("DELETE", path)
        return await self.call("PUT", path, working_hours)

    async def disable_user(self, tenant_id: str, user: str) -> dict[str, Any]:
        return await self.call("POST", f"/tenants/{tenant_id}/users/{quote(user)}/disable")

    async def add_access_policy(
        self, tenant_id: str, client_id: str, *, user_ids: list[str] | None = None, global_: bool = False
    ) -> dict[str, Any]:
        body = {"client_id": client_id, "user_ids": user_ids or [], "global": global_}
        return await self.call("POST", f"/tenants/{tenant_id}/access-policies", body)

    async def access_policies(self, tenant_id: str) -> list[dict[str, Any]]:
        answer = await self.call("GET", f"/tenants/{tenant_id}/access-policies")
        return list(answer["value"])

    async def meetings(self, tenant_id: str) -> list[dict[str, Any]]:
        """The tenant's standalone Teams meetings (organiser object id, externalId, join URL, times)."""
        answer = await self.call("GET", f"/tenants/{tenant_id}/meetings")
        return list(answer["value"])

    async def delete_access_policy(self, tenant_id: str, policy_id: str) -> dict[str, Any]:
        return await self.call("DELETE", f"/tenants/{tenant_id}/access-policies/{policy_id}")

    # mailbox seeding -----------------------------------------------------------------------------
    async def seed_events(
        self, tenant_id: str, user: str, events: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """events: [{"event": <Graph event payload>, "ews_id"?: "..."}] or bare payloads."""
        specs = [e if "event" in e else {"event": e} for e in events]
        result = await self.call(
            "POST", f"/tenants/{tenant_id}/users/{quote(user)}/events", {"events": specs}
        )
        return result["value"]

    async def seed_tasks(
        self, tenant_id: str, user: str, tasks: list[dict[str, Any]], *, list_name: str = "Tasks"
    ) -> dict[str, Any]:
        return await self.call(
            "POST", f"/tenants/{tenant_id}/users/{quote(user)}/tasks", {"list": list_name, "tasks": tasks}
        )

    async def move_task(
        self, tenant_id: str, user: str, task_id: str, *, to: str, list_name: str = "Tasks"
    ) -> dict[str, Any]:
        """The user moves a task to another list in the To Do app (its id changes there)."""
        body = {"list": list_name, "task_id": task_id, "to": to}
        return await self.call("POST", f"/tenants/{tenant_id}/users/{quote(user)}/tasks/move", body)

    async def expire_delta_tokens(
        self, *, tenant_id: str | None = None, user: str | None = None
    ) -> dict[str, Any]:
        return await self.call("POST", "/delta/expire", _drop_none({"tenant_id": tenant_id, "user": user}))

    # key vault -----------------------------------------------------------------------------------
    async def grant_vault(self, tenant_id: str, client_id: str) -> dict[str, Any]:
        return await self.call("POST", "/keyvault/grants", {"tenant_id": tenant_id, "client_id": client_id})

    async def set_vault_secret(self, name: str, value: str) -> dict[str, Any]:
        return await self.call("POST", "/keyvault/secrets", {"name": name, "value": value})

    # faults --------------------------------------------------------------------------------------
    async def add_fault(self, **rule: Any) -> dict[str, Any]:
        """status, code, message, retry_after, delay_ms, method, path (regex), mailbox, count, rate,
        when ("before" | "after"), headers."""
        return await self.call("POST", "/faults", rule)

    async def faults(self) -> list[dict[str, Any]]:
        return (await self.call("GET", "/faults"))["value"]

    async def clear_faults(self) -> dict[str, Any]:
        return await self.call("DELETE", "/faults")

    async def remove_fault(self, rule_id: str) -> dict[str, Any]:
        return await self.call("DELETE", f"/faults/{rule_id}")

    # notifications and subscriptions -------------------------------------------------------------
    async def add_notification_rule(self, action: str, **rule: Any) -> dict[str, Any]:
        """action drop | duplicate | delay | reorder; count, delay_ms, subscription_id, change_type,
        kind ("change" | "lifecycle" | "any")."""
        return await self.call("POST", "/notification-rules", {"action": action, **rule})

    async def notification_rules(self) -> list[dict[str, Any]]:
        return (await self.call("GET", "/notification-rules"))["value"]

    async def clear_notification_rules(self) -> dict[str, Any]:
        return await self.call("DELETE", "/notification-rules")

    async def deliveries(self) -> list[dict[str, Any]]:
        return (await self.call("GET", "/notifications"))["value"]

    async def emit_change(
        self,
        tenant_id: str,
        user: str,
        change_type: str,
        item_id: str,
        *,
        kind: str = "events",
        etag: str | None = None,
        list_id: str | None = None,
    ) -> int:
        body = _drop_none(
            {
                "tenant_id": tenant_id,
                "user": user,
                "change_type": change_type,
                "id": item_id,
                "kind": kind,
                "etag": etag,
                "list_id": list_id,
            }
        )
        return (await self.call("POST", "/notifications/emit", body))["notified"]

    async def subscriptions(self) -> list[dict[str, Any]]:
        return (await self.call("GET", "/subscriptions"))["value"]

    async def remove_subscription(self, subscription_id: str, *, lifecycle: bool = True) -> dict[str, Any]:
        """Graph removes it; `lifecycle=False`: silently (no `subscriptionRemoved` reaches the app)."""
        return await self.call(
            "DELETE", f"/subscriptions/{subscription_id}", lifecycle=None if lifecycle else "false"
        )

    async def send_lifecycle(self, subscription_id: str, event: str) -> dict[str, Any]:
        return await self.call("POST", f"/subscriptions/{subscription_id}/lifecycle", {"event": event})
