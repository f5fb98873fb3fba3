"""The directory: tenants, app registrations, service principals, users, application access policies.

Pure in-memory model with O(1) lookups (by id, by UPN, by verified domain, and by any address a
user receives mail at: UPN, mail, SMTP proxy addresses, case-insensitive, per tenant). The HTTP
surfaces (Entra, Graph users, the control surface) all read and change this one object; changes
to a user's addresses go through `add_user`/`update_user` so the address index stays right.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from m365emulator.working_hours import WorkingHours, default_working_hours

ConsentPolicy = Literal["page", "auto-accept", "auto-decline"]
CONSENT_POLICIES: tuple[str, ...] = ("page", "auto-accept", "auto-decline")

#: The application permissions (app roles) of Microsoft Graph the emulator knows about.
GRAPH_PERMISSIONS: tuple[str, ...] = (
    "Calendars.ReadWrite",
    "User.Read.All",
    "Tasks.ReadWrite.All",
    "Mail.Send",
    "Mail.ReadWrite",
    "Mail.Read",
    "OnlineMeetings.ReadWrite.All",
)


def new_id() -> str:
    return str(uuid.uuid4())


def new_secret_value() -> str:
    """A client secret shaped like Entra's (40 characters, `~` at position 4 is their habit)."""
    raw = secrets.token_urlsafe(30)[:36]
    return f"{raw[:3]}8Q~{raw[3:]}"


@dataclass
class Tenant:
    id: str
    display_name: str
    domains: list[str]
    consent_policy: str = "page"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "display_name": self.display_name,
            "domains": list(self.domains),
            "consent_policy": self.consent_policy,
        }


@dataclass
class AppSecret:
    key_id: str
    value: str
    end_date_time: datetime | None
    display_name: str = ""

    def to_json(self, *, with_value: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key_id": self.key_id,
            "display_name": self.display_name,
            "end_date_time": self.end_date_time.isoformat() if self.end_date_time else None,
            "hint": self.value[:3],
        }
        if with_value:
            out["value"] = self.value
        return out


@dataclass
class App:
    """An app registration, living in its home tenant."""

    client_id: str
    display_name: str
    home_tenant_id: str
    multi_tenant: bool
    redirect_uris: list[str]
    permissions: list[str]
    secrets: list[AppSecret] = field(default_factory=list)

    def redirect_allowed(self, uri: str) -> bool:
        """Exact match, or a registered URI followed by extra path segments (Entra's rule)."""
        for registered in self.redirect_uris:
            if uri == registered:
                return True
            base = registered.rstrip("/")
            if uri.startswith(base + "/") and "?" not in uri and "#" not in uri:
                return True
        return False

    def to_json(self, *, with_secrets: bool = True) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "display_name": self.display_name,
            "home_tenant_id": self.home_tenant_id,
            "multi_tenant": self.multi_tenant,
            "redirect_uris": list(self.redirect_uris),
            "permissions": list(self.permissions),
            "secrets": [s.to_json(with_value=with_secrets) for s in self.secrets],
        }


@dataclass
class ServicePrincipal:
    """The app's instance in one tenant, with the app roles an admin granted there."""

    id: str
    client_id: str
    tenant_id: str
    grants: set[str]
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "client_id": self.client_id,
            "tenant_id": self.tenant_id,
            "grants": sorted(self.grants),
            "deleted": self.deleted,
        }


@dataclass
class User:
    id: str
    tenant_id: str
    upn: str
    display_name: str
    mail: str | None
    given_name: str | None = None
    surname: str | None = None
    job_title: str | None = None
    office_location: str | None = None
    proxy_addresses: list[str] = field(default_factory=list)
    mailbox_enabled: bool = True
    account_enabled: bool = True
    time_zone: str = "UTC"
    preferred_language: str | None = "en-US"
    mobile_phone: str | None = None
    business_phones: list[str] = field(default_factory=list)
    department: str | None = None
    working_hours_set: WorkingHours | None = None  # None: the default week in the mailbox's zone

    @property
    def working_hours(self) -> WorkingHours:
        return self.working_hours_set or default_working_hours(self.time_zone)

    def graph_json(self) -> dict[str, Any]:
        """Every property the emulator serves; `$select` and the default set pick from this."""
        return {
            "id": self.id,
            "businessPhones": list(self.business_phones),
            "displayName": self.display_name,
            "givenName": self.given_name,
            "surname": self.surname,
            "jobTitle": self.job_title,
            "mail": self.mail,
            "mobilePhone": self.mobile_phone,
            "officeLocation": self.office_location,
            "preferredLanguage": self.preferred_language,
            "userPrincipalName": self.upn,
            "accountEnabled": self.account_enabled,
            "proxyAddresses": list(self.proxy_addresses),
            "department": self.department,
            "mailboxSettings": {"timeZone": self.time_zone},
        }

    def control_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "upn": self.upn,
            "display_name": self.display_name,
            "mail": self.mail,
            "proxy_addresses": list(self.proxy_addresses),
            "mailbox_enabled": self.mailbox_enabled,
            "account_enabled": self.account_enabled,
            "time_zone": self.time_zone,
            "working_hours": self.working_hours.graph_json(),
        }


@dataclass
class AccessPolicy:
    """A Teams application access policy: lets `client_id` create online meetings for users."""

    id: str
    tenant_id: str
    client_id: str
    user_ids: set[str]
    global_: bool = False

    def covers(self, user_id: str) -> bool:
        return self.global_ or user_id in self.user_ids

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "user_ids": sorted(self.user_ids),
            "global": self.global_,
        }


class DirectoryError(ValueError):
    """A control-surface request that does not fit the directory (unknown tenant, duplicate UPN...)."""


class Directory:
    def __init__(self) -> None:
        self.tenants: dict[str, Tenant] = {}
        self._tenant_by_domain: dict[str, str] = {}
        self.apps: dict[str, App] = {}
        self._sps: dict[tuple[str, str], ServicePrincipal] = {}
        self._users: dict[str, User] = {}
        self._users_by_tenant: dict[str, dict[str, User]] = {}
        self._user_by_upn: dict[tuple[str, str], str] = {}
        self._user_by_address: dict[tuple[str, str], str] = {}  # (tenant, lower-case address) -> id
        self.policies: dict[str, AccessPolicy] = {}

    # tenants -----------------------------------------------------------------------------------
    def add_tenant(
        self,
        display_name: str,
        domains: list[str],
        *,
        tenant_id: str | None = None,
        consent_policy: str = "page",
    ) -> Tenant:
        if consent_policy not in CONSENT_POLICIES:
            raise DirectoryError(f"consent_policy must be one of {CONSENT_POLICIES}")
        tid = (tenant_id or new_id()).lower()
        if tid in self.tenants:
            raise DirectoryError(f"tenant {tid} exists")
        for d in domains:
            if d.lower() in self._tenant_by_domain:
                raise DirectoryError(f"domain {d} is verified in another tenant")
        tenant = Tenant(tid, display_name, [d.lower() for d in domains], consent_policy)
        self.tenants[tid] = tenant
        for d in tenant.domains:
            self._tenant_by_domain[d] = tid
        self._users_by_tenant[tid] = {}
        return tenant

    def tenant(self, ref: str) -> Tenant | None:
        """A tenant by GUID or verified domain (case-insensitive)."""
        key = ref.lower()
        found = self.tenants.get(key)
        if found:
            return found
        tid = self._tenant_by_domain.get(key)
        return self.tenants.get(tid) if tid else None

    # apps and service principals ---------------------------------------------------------------
    def add_app(
        self,
        display_name: str,
        home_tenant_id: str,
        *,
        client_id: str | None = None,
        multi_tenant: bool = False,
        redirect_uris: list[str] | None = None,
        permissions: list[str] | None = None,
    ) -> App:
        if home_tenant_id not in self.tenants:
            raise DirectoryError(f"unknown tenant {home_tenant_id}")
        cid = (client_id or new_id()).lower()
        if cid in self.apps:
            raise DirectoryError(f"app {cid} exists")
        app = App(
            cid,
            display_name,
            home_tenant_id,
            multi_tenant,
            list(redirect_uris or []),
            list(permissions or []),
        )
        self.apps[cid] = app
        # Registration creates the app's service principal in its home tenant (without grants).
        self._sps[(cid, home_tenant_id)] = ServicePrincipal(new_id(), cid, home_tenant_id, set())
        return app

    def add_secret(
        self, client_id: str, *, value: str | None = None, end: datetime | None = None, display_name: str = ""
    ) -> AppSecret:
        app = self.apps.get(client_id.lower())
        if app is None:
            raise DirectoryError(f"unknown app {client_id}")
        secret = AppSecret(new_id(), value or new_secret_value(), end, display_name)
        app.secrets.append(secret)
        return secret

    def remove_secret(self, client_id: str, key_id: str) -> None:
        """As Graph's `POST /applications/{id}/removePassword` (keyId): the secret signs nobody in from
        then on; tokens already issued with it stay valid until they expire (Entra does not revoke them)."""
        app = self.apps.get(client_id.lower())
        if app is None:
            raise DirectoryError(f"unknown app {client_id}")
        if not any(s.key_id == key_id for s in app.secrets):
            raise DirectoryError(f"app {client_id} has no secret {key_id}")
        app.secrets = [s for s in app.secrets if s.key_id != key_id]

    def service_principal(self, client_id: str, tenant_id: str) -> ServicePrincipal | None:
        return self._sps.get((client_id.lower(), tenant_id))

    def service_principals(self) -> list[ServicePrincipal]:
        return list(self._sps.values())

    def grant(self, client_id: str, tenant_id: str, permissions: list[str] | None = None) -> ServicePrincipal:
        """Admin consent: create (or revive) the service principal and grant the app's permissions."""
        app = self.apps.get(client_id.lower())
        if app is None:
            raise DirectoryError(f"unknown app {client_id}")
        if tenant_id not in self.tenants:
            raise DirectoryError(f"unknown tenant {tenant_id}")
        if not app.multi_tenant and tenant_id != app.home_tenant_id:
            raise DirectoryError("a single-tenant app can only be consented in its home tenant")
        sp = self._sps.get((app.client_id, tenant_id))
        if sp is None or sp.deleted:
            sp = ServicePrincipal(new_id(), app.client_id, tenant_id, set())
            self._sps[(app.client_id, tenant_id)] = sp
        sp.grants |= set(permissions if permissions is not None else app.permissions)
        return sp

    def revoke_grants(self, client_id: str, tenant_id: str) -> ServicePrincipal | None:
        sp = self._sps.get((client_id.lower(), tenant_id))
        if sp is not None:
            sp.grants.clear()
        return sp

    def delete_service_principal(self, client_id: str, tenant_id: str) -> None:
        sp = self._sps.get((client_id.lower(), tenant_id))
        if sp is None:
            sp = ServicePrincipal(new_id(), client_id.lower(), tenant_id, set())
            self._sps[(client_id.lower(), tenant_id)] = sp
        sp.grants.clear()
        sp.deleted = True

    # users -------------------------------------------------------------------------------------
    def add_user(self, tenant_id: str, upn: str, display_name: str, **kwargs: Any) -> User:
        tenant = self.tenant(tenant_id)
        if tenant is None:
            raise DirectoryError(f"unknown tenant {tenant_id}")
        if (tenant.id, upn.lower()) in self._user_by_upn:
            raise DirectoryError(f"user {upn} exists")
        uid = (kwargs.pop("user_id", None) or new_id()).lower()
        if uid in self._users:
            raise DirectoryError(f"user id {uid} exists")
        if "mail" not in kwargs:
            kwargs["mail"] = upn
        user = User(id=uid, tenant_id=tenant.id, upn=upn, display_name=display_name, **kwargs)
        self._users[uid] = user
        self._users_by_tenant[tenant.id][uid] = user
        self._user_by_upn[(tenant.id, upn.lower())] = uid
        self._index_addresses(user)
        return user

    def update_user(self, user: User, changes: dict[str, Any]) -> User:
        allowed = {
            "display_name",
            "mail",
            "proxy_addresses",
            "mailbox_enabled",
            "account_enabled",
            "time_zone",
            "given_name",
            "surname",
            "job_title",
            "office_location",
            "department",
            "upn",
        }
        unknown = set(changes) - allowed
        if unknown:
            raise DirectoryError(f"cannot change {sorted(unknown)}")
        if "upn" in changes and changes["upn"].lower() != user.upn.lower():
            key = (user.tenant_id, changes["upn"].lower())
            if key in self._user_by_upn:
                raise DirectoryError(f"user {changes['upn']} exists")
            del self._user_by_upn[(user.tenant_id, user.upn.lower())]
            self._user_by_upn[key] = user.id
        self._unindex_addresses(user)
        for name, value in changes.items():
            setattr(user, name, list(value) if name == "proxy_addresses" else value)
        self._index_addresses(user)
        return user

    @staticmethod
    def addresses_of(user: User) -> set[str]:
        """Every address mail to the user is delivered at: UPN, mail and SMTP proxy addresses."""
        out = {user.upn.lower()}
        if user.mail:
            out.add(user.mail.lower())
        for proxy in user.proxy_addresses:
            kind, sep, address = proxy.partition(":")
            if sep and kind.lower() == "smtp" and address:
                out.add(address.lower())
        return out

    def _index_addresses(self, user: User) -> None:
        for address in self.addresses_of(user):
            self._user_by_address.setdefault((user.tenant_id, address), user.id)

    def _unindex_addresses(self, user: User) -> None:
        for address in self.addresses_of(user):
            if self._user_by_address.get((user.tenant_id, address)) == user.id:
                del self._user_by_address[(user.tenant_id, address)]

    def user_by_address(self, tenant_id: str, address: str) -> User | None:
        """The tenant's user receiving mail at `address` (UPN, mail or SMTP proxy; any case), O(1)."""
        uid = self._user_by_address.get((tenant_id, address.strip().lower()))
        return self._users.get(uid) if uid else None

    def user(self, tenant_id: str, ref: str) -> User | None:
        """A user of the tenant by object id or UPN (case-insensitive)."""
        key = ref.lower()
        found = self._users_by_tenant.get(tenant_id, {}).get(key)
        if found:
            return found
        uid = self._user_by_upn.get((tenant_id, key))
        return self._users.get(uid) if uid else None

    def users(self, tenant_id: str) -> list[User]:
        return list(self._users_by_tenant.get(tenant_id, {}).values())

    def user_count(self) -> int:
        return len(self._users)

    # application access policies ---------------------------------------------------------------
    def add_policy(
        self, tenant_id: str, client_id: str, user_ids: list[str], *, global_: bool = False
    ) -> AccessPolicy:
        if tenant_id not in self.tenants:
            raise DirectoryError(f"unknown tenant {tenant_id}")
        policy = AccessPolicy(new_id(), tenant_id, client_id.lower(), set(user_ids), global_)
        self.policies[policy.id] = policy
        return policy

    def policy_allows(self, tenant_id: str, client_id: str, user_id: str) -> bool:
        return any(
            p.tenant_id == tenant_id and p.client_id == client_id and p.covers(user_id)
            for p in self.policies.values()
        )
