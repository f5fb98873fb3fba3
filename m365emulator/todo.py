"""Microsoft To Do (contract §8): task lists and tasks per mailbox, tasks delta, change fan-out."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from m365emulator.directory import User
from m365emulator.errors import GraphError
from m365emulator.graph import emulator_of, json_body, mailbox_user, respond
from m365emulator.odata import decode_token, encode_token, graph_datetime, page_size, parse_filter

if TYPE_CHECKING:
    from m365emulator.core import Emulator

ROLES = ("Tasks.ReadWrite.All", "Tasks.Read.All")
STATUSES = ("notStarted", "inProgress", "completed", "waitingOnOthers", "deferred")
IMPORTANCES = ("low", "normal", "high")
WRITABLE = {
    "title",
    "body",
    "importance",
    "status",
    "isReminderOn",
    "reminderDateTime",
    "dueDateTime",
    "startDateTime",
    "completedDateTime",
    "categories",
    "recurrence",
    "linkedResources",
}


def outlook_id() -> str:
    raw = b"\x00\x00\x00\x00" + uuid.uuid4().bytes + uuid.uuid4().bytes[:8]
    return "AAMkAG" + base64.urlsafe_b64encode(raw).decode()


def change_key() -> str:
    return base64.b64encode(uuid.uuid4().bytes).decode()


@dataclass
class TodoList:
    id: str
    display_name: str
    wellknown: str = "none"
    etag: str = field(default_factory=change_key)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (sequence, task id) of every change, for delta
    log: list[tuple[int, str]] = field(default_factory=list)

    def to_graph(self) -> dict[str, Any]:
        return {
            "@odata.etag": f'W/"{self.etag}"',
            "displayName": self.display_name,
            "isOwner": True,
            "isShared": False,
            "wellknownListName": self.wellknown,
            "id": self.id,
        }


class TodoMailbox:
    def __init__(self) -> None:
        self.lists: dict[str, TodoList] = {}
        self.seq = 0
        self.generation = 0
        default = TodoList(outlook_id(), "Tasks", "defaultList")
        self.lists[default.id] = default

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


class TodoService:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self._mailboxes: dict[str, TodoMailbox] = {}

    def reset(self) -> None:
        self._mailboxes.clear()

    def mailbox(self, user: User) -> TodoMailbox:
        box = self._mailboxes.get(user.id)
        if box is None:
            box = self._mailboxes[user.id] = TodoMailbox()
        return box

    def has_list(self, user: User, list_id: str) -> bool:
        return list_id in self.mailbox(user).lists

    def task_count(self) -> int:
        return sum(len(lst.tasks) for box in self._mailboxes.values() for lst in box.lists.values())

    def expire_delta_tokens(self, user: User | None = None) -> int:
        boxes = [self.mailbox(user)] if user else list(self._mailboxes.values())
        for box in boxes:
            box.generation += 1
        return len(boxes)

    def get_list(self, user: User, list_id: str) -> TodoList:
        found = self.mailbox(user).lists.get(list_id)
        if found is None:
            raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return found

    def list_by_name(self, user: User, name: str, *, create: bool = True) -> TodoList:
        box = self.mailbox(user)
        for lst in box.lists.values():
            if lst.display_name == name:
                return lst
        if not create:
            raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return self.create_list(user, {"displayName": name})

    def create_list(self, user: User, body: dict[str, Any]) -> TodoList:
        name = body.get("displayName")
        if not isinstance(name, str) or not name.strip():
            raise GraphError(400, "invalidRequest", "The displayName property is required.")
        lst = TodoList(outlook_id(), name)
        self.mailbox(user).lists[lst.id] = lst
        return lst

    def _validate(self, body: dict[str, Any]) -> None:
        unknown = {k for k in body if not k.startswith("@")} - WRITABLE
        if unknown:
            raise GraphError(
                400, "invalidRequest", f"Invalid request: unknown or read-only properties {sorted(unknown)}."
            )
        if "status" in body and body["status"] not in STATUSES:
            raise GraphError(400, "invalidRequest", f"Invalid value for status: '{body['status']}'.")
        if "importance" in body and body["importance"] not in IMPORTANCES:
            raise GraphError(400, "invalidRequest", f"Invalid value for importance: '{body['importance']}'.")

    def create_task(self, user: User, lst: TodoList, body: dict[str, Any]) -> dict[str, Any]:
        self._validate(body)
        now = graph_datetime(self.emu.clock.now())
        task: dict[str, Any] = {
            "@odata.etag": "",
            "importance": "normal",
            "isReminderOn": False,
            "status": "notStarted",
            "title": "",
            "createdDateTime": now,
            "lastModifiedDateTime": now,
            "hasAttachments": False,
            "categories": [],
            "id": outlook_id(),
            "body": {"content": "", "contentType": "text"},
        }
        task.update({k: v for k, v in body.items() if not k.startswith("@")})
        if task.get("status") == "completed" and "completedDateTime" not in body:
            task["completedDateTime"] = {"dateTime": now[:-1], "timeZone": "UTC"}
        task["bodyLastModifiedDateTime"] = now
        task["@odata.etag"] = f'W/"{change_key()}"'
        lst.tasks[task["id"]] = task
        self._changed(user, lst, task["id"], "created", task["@odata.etag"])
        return task

    def update_task(self, user: User, lst: TodoList, task_id: str, body: dict[str, Any]) -> dict[str, Any]:
        task = self.get_task(lst, task_id)
        self._validate(body)
        task.update({k: v for k, v in body.items() if not k.startswith("@")})
        now = graph_datetime(self.emu.clock.now())
        task["lastModifiedDateTime"] = now
        if "body" in body:
            task["bodyLastModifiedDateTime"] = now
        if body.get("status") == "completed" and "completedDateTime" not in body:
            task["completedDateTime"] = {"dateTime": now[:-1], "timeZone": "UTC"}
        task["@odata.etag"] = f'W/"{change_key()}"'
        self._changed(user, lst, task_id, "updated", task["@odata.etag"])
        return task

    def delete_task(self, user: User, lst: TodoList, task_id: str) -> None:
        self.get_task(lst, task_id)
        del lst.tasks[task_id]
        self._changed(user, lst, task_id, "deleted", None)

    def get_task(self, lst: TodoList, task_id: str) -> dict[str, Any]:
        task = lst.tasks.get(task_id)
        if task is None:
            raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return task

    def _changed(self, user: User, lst: TodoList, task_id: str, change: str, etag: str | None) -> None:
        lst.log.append((self.mailbox(user).next_seq(), task_id))
        self.emu.subscriptions.notify(
            user.tenant_id, user.id, "todo", change, task_id, etag=etag, list_id=lst.id
        )

    # delta ---------------------------------------------------------------------------------------
    def delta(
        self, user: User, lst: TodoList, query: dict[str, str], prefer: dict[str, str], link_base: str
    ) -> dict[str, Any]:
        box = self.mailbox(user)
        size = page_size(query, prefer, default=100, maximum=1000)
        delta = query.get("$deltatoken")
        state = _delta_state(box, lst, query.get("$skiptoken") or delta)
        if state is None:
            since, offset, upto = 0, 0, box.seq
        elif delta is not None:
            since, offset, upto = int(state["s"]), 0, box.seq
        else:
            since, offset, upto = int(state["s"]), int(state["o"]), int(state["u"])
        if since == 0:
            ids = list(lst.tasks)
        else:
            ordered: dict[str, None] = {}
            for seq, task_id in lst.log:
                if since < seq <= upto:
                    ordered.pop(task_id, None)
                    ordered[task_id] = None
            ids = list(ordered)
        page = ids[offset : offset + size]
        value: list[dict[str, Any]] = []
        for task_id in page:
            task = lst.tasks.get(task_id)
            value.append(dict(task) if task else {"id": task_id, "@removed": {"reason": "deleted"}})
        out: dict[str, Any] = {"@odata.context": f"{self.emu.graph_url}/$metadata#Collection(todoTask)"}
        if offset + size < len(ids):
            token = encode_token(
                {"l": lst.id, "g": box.generation, "s": since, "o": offset + size, "u": upto}
            )
            out["@odata.nextLink"] = f"{link_base}?$skiptoken={token}"
        else:
            token = encode_token({"l": lst.id, "g": box.generation, "s": upto})
            out["@odata.deltaLink"] = f"{link_base}?$deltatoken={token}"
        out["value"] = value
        return out


def _delta_state(box: TodoMailbox, lst: TodoList, raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    state = decode_token(raw)
    if state is None or state.get("l") != lst.id:
        raise GraphError(400, "BadRequest", "The delta or skip token is malformed.")
    if state.get("g") != box.generation:
        raise GraphError(
            410,
            "SyncStateNotFound",
            f"The sync state generation is not found; generation={state.get('g')};"
            f"[highest={box.generation}].",
        )
    return state


# routes ------------------------------------------------------------------------------------------


def _user(request: web.Request) -> User:
    return mailbox_user(request, request.match_info["user"], ROLES)


def _list(request: web.Request, user: User) -> TodoList:
    return emulator_of(request).todo.get_list(user, request.match_info["list_id"])


async def get_lists(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = _user(request)
    value = [lst.to_graph() for lst in emu.todo.mailbox(user).lists.values()]
    return respond(
        {"@odata.context": f"{emu.graph_url}/$metadata#users('{user.id}')/todo/lists", "value": value}
    )


async def lists_delta(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = _user(request)
    value = [lst.to_graph() for lst in emu.todo.mailbox(user).lists.values()]
    link = f"{emu.graph_url}/users/{user.id}/todo/lists/delta?$deltatoken={encode_token({'g': 0})}"
    return respond(
        {
            "@odata.context": f"{emu.graph_url}/$metadata#Collection(todoTaskList)",
            "@odata.deltaLink": link,
            "value": value,
        }
    )


async def post_list(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = _user(request)
    return respond(emu.todo.create_list(user, await json_body(request)).to_graph(), 201)


async def get_list(request: web.Request) -> web.Response:
    return respond(_list(request, _user(request)).to_graph())


async def patch_list(request: web.Request) -> web.Response:
    user = _user(request)
    lst = _list(request, user)
    body = await json_body(request)
    if "displayName" in body:
        if not isinstance(body["displayName"], str) or not body["displayName"].strip():
            raise GraphError(400, "invalidRequest", "The displayName property is required.")
        lst.display_name = body["displayName"]
        lst.etag = change_key()
    return respond(lst.to_graph())


async def delete_list(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = _user(request)
    lst = _list(request, user)
    if lst.wellknown == "defaultList":
        raise GraphError(400, "invalidRequest", "The default task list cannot be deleted.")
    for task_id in list(lst.tasks):
        emu.todo.delete_task(user, lst, task_id)
    del emu.todo.mailbox(user).lists[lst.id]
    return web.Response(status=204)


async def get_tasks(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = _user(request)
    lst = _list(request, user)
    tasks = list(lst.tasks.values())
    if request.query.get("$filter"):
        pred = parse_filter(request.query["$filter"], {"status", "title", "importance", "id", "isReminderOn"})
        tasks = [t for t in tasks if pred(t)]
    size = page_size(dict(request.query), request["prefer"], default=100, maximum=1000)
    skip = decode_token(request.query["$skiptoken"]) if request.query.get("$skiptoken") else None
    offset = int(skip.get("o", 0)) if skip else 0
    page = tasks[offset : offset + size]
    base = f"{emu.graph_url}/users/{user.id}/todo/lists/{lst.id}/tasks"
    out: dict[str, Any] = {"@odata.context": f"{emu.graph_url}/$metadata#users('{user.id}')/todo/lists/tasks"}
    if offset + size < len(tasks):
        out["@odata.nextLink"] = f"{base}?$top={size}&$skiptoken={encode_token({'o': offset + size})}"
    out["value"] = page
    return respond(out)


async def tasks_delta(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = _user(request)
    lst = _list(request, user)
    base = f"{emu.graph_url}/users/{user.id}/todo/lists/{lst.id}/tasks/delta"
    return respond(emu.todo.delta(user, lst, dict(request.query), request["prefer"], base))


async def post_task(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = _user(request)
    return respond(emu.todo.create_task(user, _list(request, user), await json_body(request)), 201)


async def get_task(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = _user(request)
    return respond(emu.todo.get_task(_list(request, user), request.match_info["task_id"]))


async def patch_task(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = _user(request)
    lst = _list(request, user)
    return respond(emu.todo.update_task(user, lst, request.match_info["task_id"], await json_body(request)))


async def delete_task(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = _user(request)
    emu.todo.delete_task(user, _list(request, user), request.match_info["task_id"])
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    base = "/v1.0/users/{user}/todo/lists"
    r = app.router
    r.add_get(base, get_lists)
    r.add_post(base, post_list)
    for delta in ("delta", "delta()", "microsoft.graph.delta()"):
        r.add_get(f"{base}/{delta}", lists_delta)
        r.add_get(f"{base}/{{list_id}}/tasks/{delta}", tasks_delta)
    r.add_get(base + "/{list_id}", get_list)
    r.add_patch(base + "/{list_id}", patch_list)
    r.add_delete(base + "/{list_id}", delete_list)
    r.add_get(base + "/{list_id}/tasks", get_tasks)
    r.add_post(base + "/{list_id}/tasks", post_task)
    r.add_get(base + "/{list_id}/tasks/{task_id}", get_task)
    r.add_patch(base + "/{list_id}/tasks/{task_id}", patch_task)
    r.add_delete(base + "/{list_id}/tasks/{task_id}", delete_task)
