"""A tenant's settings changed by the host API or the console (a patch: absent fields keep their values)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

from shared.domain.tenants import Tenant
from shared.service.commands import parse_settings
from shared.service.context import UsesClock
from shared.service.errors import Conflict
from shared.service.tenants import TenantPorts, save_tenant_change


class SettingsPorts(TenantPorts, UsesClock, Protocol): ...


async def update_settings(services: SettingsPorts, tenant_id: str, patch: Mapping[str, Any]) -> Tenant:
    """Apply a settings patch (absent fields keep their values), to the fresh row if a worker saved it
    meanwhile."""

    def patched(tenant: Tenant) -> Tenant:
        if tenant.state.gone:
            raise Conflict("tenant_id", f"the tenant is {tenant.state.value}")
        settings = parse_settings(patch, tenant.settings, prefix="settings")
        return replace(tenant, settings=settings, updated_at=services.clock.now())

    tenant, _ = await save_tenant_change(services, tenant_id, patched)
    return tenant
