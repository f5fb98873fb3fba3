"""A `Services` wired to fakes, with handles on each fake for assertions."""

from __future__ import annotations

from dataclasses import dataclass

from shared.service.context import ConnectorConfig, Services
from tests.fakes.directory import FakeCustomerApps, FakeDirectory
from tests.fakes.storage import (
    FakeClock,
    FakeConsentStates,
    FakeFeed,
    FakeJobs,
    FakeSecrets,
    FakeTenants,
    FakeUsers,
)

CONNECTOR_CLIENT_ID = "11111111-2222-3333-4444-555555555555"


@dataclass
class FakeWorld:
    tenants: FakeTenants
    users: FakeUsers
    consent_states: FakeConsentStates
    secrets: FakeSecrets
    feed: FakeFeed
    jobs: FakeJobs
    directory: FakeDirectory
    clock: FakeClock
    services: Services


def fake_world() -> FakeWorld:
    tenants, users, states = FakeTenants(), FakeUsers(), FakeConsentStates()
    secrets, feed, jobs = FakeSecrets(), FakeFeed(), FakeJobs()
    directory, clock = FakeDirectory(), FakeClock()
    services = Services(
        tenants=tenants,
        users=users,
        consent_states=states,
        secrets=secrets,
        feed=feed,
        jobs=jobs,
        directory=directory,
        customer_apps=FakeCustomerApps(directory),
        clock=clock,
        config=ConnectorConfig(CONNECTOR_CLIENT_ID, "https://login.example", "https://connector.example"),
    )
    return FakeWorld(tenants, users, states, secrets, feed, jobs, directory, clock, services)
