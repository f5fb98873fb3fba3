"""A fake Entra directory with the gateway's contract: tenants by GUID or domain, users, mailboxes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.domain.tenants import Tenant
from shared.domain.users import DirectoryIndex, DirectoryUser, MailboxAccess, StaffMember
from shared.service.errors import TenantAccessError


@dataclass
class FakeOrganisation:
    directory_id: str
    domains: set[str] = field(default_factory=set)
    users: dict[str, DirectoryUser] = field(default_factory=dict)
    mailbox: dict[str, MailboxAccess] = field(default_factory=dict)
    consented: bool = False
    apps: dict[str, str] = field(default_factory=dict)  # customer app client id -> secret


class FakeDirectory:
    def __init__(self) -> None:
        self.organisations: dict[str, FakeOrganisation] = {}
        self.calls = 0

    def add(self, organisation: FakeOrganisation) -> FakeOrganisation:
        self.organisations[organisation.directory_id] = organisation
        return organisation

    def _org(self, tenant: Tenant) -> FakeOrganisation:
        org = self.organisations.get(tenant.directory_id)
        if org is None:
            raise TenantAccessError("unknown tenant")
        return org

    async def resolve_directory_id(self, tenant_id: str) -> str | None:
        for org in self.organisations.values():
            if tenant_id in (org.directory_id, *org.domains):
                return org.directory_id
        return None

    async def check_access(self, tenant: Tenant) -> None:
        org = self._org(tenant)
        if tenant.customer_app is None and not org.consented:
            raise TenantAccessError("the app has no permissions in this tenant")

    async def list_users(self, tenant: Tenant) -> list[DirectoryUser]:
        await self.check_access(tenant)
        self.calls += 1
        return list(self._org(tenant).users.values())

    async def find_candidates(self, tenant: Tenant, staff: StaffMember) -> list[DirectoryUser]:
        await self.check_access(tenant)
        self.calls += 1
        return DirectoryIndex(self._org(tenant).users.values()).candidates(staff)

    async def mailbox_access(self, tenant: Tenant, user_ids: Sequence[str]) -> dict[str, MailboxAccess]:
        await self.check_access(tenant)
        org = self._org(tenant)
        return {uid: org.mailbox.get(uid, MailboxAccess.OK) for uid in user_ids}


class FakeCustomerApps:
    def __init__(self, directory: FakeDirectory) -> None:
        self.directory = directory

    async def validate(self, directory_id: str, client_id: str, client_secret: str) -> None:
        org = self.directory.organisations.get(directory_id)
        if org is None or org.apps.get(client_id) != client_secret:
            raise TenantAccessError("AADSTS7000215: Invalid client secret provided.")
