"""A `Services` wired to fakes, with handles on each fake for assertions."""

from __future__ import annotations

from dataclasses import dataclass, replace

from shared.domain.tenants import AuthMode, Tenant, TenantSettings, TenantState
from shared.domain.users import MatchStatus, StaffMember, UserRecord
from shared.service import jobs
from shared.service.context import ConnectorConfig, Services
from shared.service.delivery_requests import DeliveryRequests
from shared.service.job_handlers import run_job
from shared.service.jobs import Job
from shared.service.keys import KeyRing
from shared.service.recent import RecentRows
from tests.fakes.appointments import FakeAppointments
from tests.fakes.busy import FakeBusy
from tests.fakes.calendar import FakeCalendarWriter, FakeMailboxes, FakeSchedules
from tests.fakes.directory import FakeCustomerApps, FakeDirectory
from tests.fakes.mail import FakeMailContent, FakeMailRows, FakeOutlookMail
from tests.fakes.meetings import FakeMeetings
from tests.fakes.monitor import FakeMessages
from tests.fakes.poison import FakePoisonQueues
from tests.fakes.storage import (
    FakeClock,
    FakeConsentStates,
    FakeDeadLetters,
    FakeFeed,
    FakeItemStatuses,
    FakeJobs,
    FakeLeases,
    FakeSecrets,
    FakeSubscriptionIndex,
    FakeTenants,
    FakeUsers,
    PublishedFeed,
)
from tests.fakes.todo import FakeTasks, FakeTodo
from tests.fakes.webhook import FakeHostWebhook

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
    mailboxes: FakeMailboxes
    item_statuses: FakeItemStatuses
    leases: FakeLeases
    subscription_index: FakeSubscriptionIndex
    dead_letters: FakeDeadLetters
    webhook: FakeHostWebhook
    appointments: FakeAppointments
    writer: FakeCalendarWriter
    busy: FakeBusy
    mail: FakeMailRows
    mail_content: FakeMailContent
    outlook_mail: FakeOutlookMail
    schedules: FakeSchedules
    meetings: FakeMeetings
    todo: FakeTodo
    tasks: FakeTasks
    messages: FakeMessages
    poison: FakePoisonQueues


def fake_world() -> FakeWorld:
    tenants, users, states = FakeTenants(), FakeUsers(), FakeConsentStates()
    secrets, feed, jobs = FakeSecrets(), PublishedFeed(), FakeJobs()
    directory, clock = FakeDirectory(), FakeClock()
    mailboxes, statuses, leases = FakeMailboxes(), FakeItemStatuses(), FakeLeases()
    index, dead_letters, webhook = FakeSubscriptionIndex(), FakeDeadLetters(), FakeHostWebhook()
    appointments, writer = FakeAppointments(), FakeCalendarWriter(mailboxes)
    mail, mail_content, outlook_mail = FakeMailRows(), FakeMailContent(), FakeOutlookMail()
    busy, meetings, messages, poison = FakeBusy(), FakeMeetings(), FakeMessages(), FakePoisonQueues()
    schedules = FakeSchedules(mailboxes)
    todo, tasks = FakeTodo(mailboxes), FakeTasks()  # one To Do: the write side's and the read side's
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
        config=ConnectorConfig(
            CONNECTOR_CLIENT_ID,
            "https://login.example",
            "https://connector.example",
            host_webhook_url="https://host.example/hooks/outlook",
        ),
        calendar=mailboxes,
        subscriptions=mailboxes,
        item_statuses=statuses,
        leases=leases,
        subscription_index=index,
        dead_letters=dead_letters,
        webhook=webhook,
        keys=KeyRing(secrets),
        appointments=appointments,
        calendar_writer=writer,
        delivery_requests=DeliveryRequests(jobs),
        busy=busy,
        mail=mail,
        mail_content=mail_content,
        mail_gateway=outlook_mail,
        schedules=schedules,
        meetings=meetings,
        recent=RecentRows(seconds=0),  # nothing kept: a test's change is read at once
        task_changes=todo,
        todo=todo,
        tasks=tasks,
        messages=messages,
        poison=poison,
    )
    return FakeWorld(
        tenants,
        users,
        states,
        secrets,
        feed,
        jobs,
        directory,
        clock,
        services,
        mailboxes,
        statuses,
        leases,
        index,
        dead_letters,
        webhook,
        appointments,
        writer,
        busy,
        mail,
        mail_content,
        outlook_mail,
        schedules,
        meetings,
        todo,
        tasks,
        messages,
        poison,
    )


async def switch_on(world: FakeWorld, tenant_id: str, staff_id: str, *names: str) -> None:
    """The staff member's switches `names` turned on (as a staff PUT would)."""
    user = await world.users.get(tenant_id, staff_id)
    assert user is not None
    switches = user.staff.switches.changed(dict.fromkeys(names, True))
    await world.users.save(replace(user, staff=replace(user.staff, switches=switches)))


async def add_tenant(
    world: FakeWorld, tenant_id: str, state: TenantState, *, directory_id: str = "dir-1", matched: int = 0
) -> Tenant:
    """An admin-consented tenant in `state`, with `matched` staff members s1.. matched to Graph users g1..."""
    now = world.clock.now()
    tenant = await world.tenants.add(
        Tenant(tenant_id, directory_id, "Contoso", AuthMode.ADMIN_CONSENT, state, TenantSettings(), now, now)
    )
    for n in range(1, matched + 1):
        staff = StaffMember(f"s{n}", f"user{n}@contoso.example", None, f"User {n}")
        await world.users.save(UserRecord(tenant_id, staff, MatchStatus.MATCHED, now, graph_user_id=f"g{n}"))
    return tenant


async def run_queued(world: FakeWorld, services: Services | None = None) -> list[Job]:
    """Run every queued job but the host's deliveries (and what they queue) until the queues are quiet, with
    the world's services or these; answers the jobs run, in order."""
    ran: list[Job] = []
    for _ in range(50):
        batch = [j for j in world.jobs.take() if j.queue != jobs.DELIVERY_QUEUE]
        if not batch:
            return ran
        for job in batch:
            ran.append(job)
            await run_job(services or world.services, job)
    raise AssertionError("the queues never went quiet")
