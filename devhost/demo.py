"""Seed the demo organisation into the connector when `make run` starts (called by devhost.stack).

Creates the emulator's Contoso as a tenant of the connector (admin-consent mode), registers its
directory users as the host's staff, and prints the consent link: open it, click Accept, and the
connector connects the organisation and matches its staff, as a customer's admin would see it.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from devhost.stack import Stack

DEMO_STAFF = 24  # most of Contoso's users; the rest stay visible in the directory only


def seed(stack: Stack) -> None:
    emulator = stack.emulator
    if not emulator:
        stack.notes.append("demo organisation: the emulator is not running, nothing seeded")
        return
    tenant_id = str(emulator["tenant_id"])
    trust = ssl.create_default_context(cafile=str(emulator["ca_file"]))
    with httpx.Client(verify=trust, timeout=30) as control:
        users: list[dict[str, Any]] = control.get(f"{emulator['control']}/tenants/{tenant_id}/users").json()[
            "value"
        ]
    headers = {"x-functions-key": stack.function_key}
    with httpx.Client(base_url=stack.function_host, headers=headers, timeout=60) as api:
        existing = api.get(f"/api/v1/tenants/{tenant_id}")
        state = existing.json().get("state") if existing.status_code == 200 else None
        if existing.status_code == 404 or state == "disconnected":  # a disconnected tenant reconnects by POST
            created = api.post(
                "/api/v1/tenants",
                json={
                    "tenant_id": tenant_id,
                    "display_name": "Contoso (demo)",
                    "auth": {"mode": "admin_consent"},
                },
            )
            created.raise_for_status()
            consent_url = created.json()["consent_url"]
        else:
            consent_url = api.post(f"/api/v1/tenants/{tenant_id}/reauthorize").json().get("consent_url")
        for index, user in enumerate(users[:DEMO_STAFF]):
            upn = str(user.get("upn") or user.get("userPrincipalName") or "")
            if not upn:
                continue
            api.put(
                f"/api/v1/tenants/{tenant_id}/staff/staff-{index + 1:03d}",
                json={"upn": upn, "display_name": user.get("display_name") or user.get("displayName") or upn},
            )
        link = api.post(f"/api/v1/tenants/{tenant_id}/console-links", json={"ttl_minutes": 1440})
        console_url = link.json().get("url") if link.status_code == 201 else None
    stack.notes.append(f"demo tenant: Contoso ({tenant_id}), {min(len(users), DEMO_STAFF)} staff members")
    stack.notes.append(f"connect it (as Contoso's admin, click Accept): {consent_url}")
    if console_url:
        stack.notes.append(f"admin console (valid 24 hours): {console_url}")
