"""To Do lists in memory: `TaskChangesGateway` with Graph's contract.

Delta links name a position in each list's change log; a read answers every task changed since
(`RemovedTask` for deleted and moved ones), a link from before `expire_tokens` raises DeltaTokenRejected,
and faults can be queued per user. Subscriptions live with the calendar fake's (`FakeMailboxes`), so the
`SubscriptionGateway` renews, lists and deletes them as Graph does."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import datetime

from shared.domain.outlook_tasks import OutlookTask, RemovalReason, RemovedTask, TaskItem
from shared.domain.tenants import Tenant
from shared.service.errors import DeltaTokenRejected, MailboxUnavailable, TenantAccessError
from shared.service.records import GraphSubscription, TaskDeltaRead
from tests.fakes.calendar import FakeMailboxes
from tests.fakes.todo import FakeList, FakeTodo

_ids = itertools.count(1)


@dataclass
class FakeTaskList:
    tasks: dict[str, OutlookTask] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)  # ids in change order (position = index + 1)
    moved: set[str] = field(default_factory=set)  # ids moved out (their removal says `moved`)
    generation: int = 0  # bumped by expire_tokens
    faults: list[Exception] = field(default_factory=list)


class FakeTaskLists:
    def __init__(self, mailboxes: FakeMailboxes, todo: FakeTodo) -> None:
        self.mailboxes = mailboxes
        self.todo = todo
        self.lists: dict[tuple[str, str], FakeTaskList] = {}
        self.requests = 0

    def task_list(self, graph_user_id: str, list_id: str) -> FakeTaskList:
        return self.lists.setdefault((graph_user_id, list_id), FakeTaskList())

    # --- what a user does in To Do -----------------------------------------------------------------

    def put(self, graph_user_id: str, list_id: str, task: OutlookTask) -> OutlookTask:
        found = self.task_list(graph_user_id, list_id)
        stored = replace(task, change_key=f'W/"tk{next(_ids)}"')
        found.tasks[task.id] = stored
        found.log.append(task.id)
        return stored

    def remove(self, graph_user_id: str, list_id: str, task_id: str, *, moved: bool = False) -> None:
        found = self.task_list(graph_user_id, list_id)
        found.tasks.pop(task_id, None)
        if moved:
            found.moved.add(task_id)
        found.log.append(task_id)

    def expire_tokens(self, graph_user_id: str, list_id: str) -> None:
        self.task_list(graph_user_id, list_id).generation += 1

    async def connector_list(self, graph_user_id: str, name: str) -> str:
        """The list of that name in the To Do fake (`FakeTodo`, whose lists the runs find or make), made
        there as the user might have made it before."""
        for found in self.todo.mailbox(graph_user_id).values():
            if found.name == name:
                return found.id
        made = FakeList(f"list-{next(_ids)}", name)
        self.todo.mailbox(graph_user_id)[made.id] = made
        return made.id

    # --- TaskChangesGateway ------------------------------------------------------------------------

    def _check(self, tenant: Tenant, graph_user_id: str, found: FakeTaskList) -> None:
        self.requests += 1
        if tenant.directory_id in self.mailboxes.revoked_tenants:
            raise TenantAccessError("Authorization_RequestDenied: consent was revoked")
        box = self.mailboxes.mailbox(graph_user_id)
        if box.unavailable:
            raise MailboxUnavailable(box.unavailable)
        if found.faults:
            raise found.faults.pop(0)

    async def read_tasks_delta(
        self,
        tenant: Tenant,
        graph_user_id: str,
        list_id: str,
        delta_link: str | None,
        zone: str | None = None,
    ) -> TaskDeltaRead:
        """Tasks are kept as the domain's (their dates already days): `zone` changes nothing here."""
        found = self.task_list(graph_user_id, list_id)
        self._check(tenant, graph_user_id, found)
        if delta_link is None:
            items: list[TaskItem] = list(found.tasks.values())
        else:
            user, listed, generation, position = delta_link.split("|")
            if (user, listed) != (graph_user_id, list_id) or int(generation) != found.generation:
                raise DeltaTokenRejected(delta_link)
            items = []
            for task_id in dict.fromkeys(found.log[int(position) :]):
                task = found.tasks.get(task_id)
                if task is not None:
                    items.append(task)
                else:
                    reason = RemovalReason.MOVED if task_id in found.moved else RemovalReason.DELETED
                    items.append(RemovedTask(task_id, reason))
        link = "|".join((graph_user_id, list_id, str(found.generation), str(len(found.log))))
        return TaskDeltaRead(items, link, requests=1)

    async def subscribe_tasks(
        self, tenant: Tenant, graph_user_id: str, list_id: str, client_state: str, expires_at: datetime
    ) -> GraphSubscription:
        self._check(tenant, graph_user_id, self.task_list(graph_user_id, list_id))
        resource = f"users/{graph_user_id}/todo/lists/{list_id}/tasks"
        for sid, (user, existing, state) in self.mailboxes.subscriptions.items():
            if existing.resource == resource and self.mailboxes._held(tenant, sid) is not None:
                # Graph refuses the duplicate (409); the adapter adopts and renews the existing one
                adopted = replace(existing, expires_at=expires_at)
                self.mailboxes.subscriptions[sid] = (user, adopted, state)
                return adopted
        subscription = GraphSubscription(f"sub-{next(_ids)}-tasks", expires_at, resource)
        self.mailboxes.subscriptions[subscription.id] = (graph_user_id, subscription, client_state)
        self.mailboxes.subscription_tenants[subscription.id] = tenant.directory_id
        return subscription

    def subscribed(self) -> set[tuple[str, str]]:
        """(user, list) of every task subscription Graph holds."""
        out = set()
        for user, subscription, _ in self.mailboxes.subscriptions.values():
            if "/todo/lists/" in subscription.resource:
                out.add((user, subscription.resource.split("/")[4]))
        return out
