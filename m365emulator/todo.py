"""Microsoft To Do (contract §8): task lists and tasks per mailbox, tasks delta, change fan-out.

As Microsoft documents it (api-reference/v1.0, microsoftgraph/microsoft-graph-docs-contrib):
- `linkedResources` (resources/linkedresource.md: `applicationName`, `displayName`, `externalId`, `webUrl`,
  a server-made `id`) are made inline on the task's POST (todotasklist-post-tasks.md: "creates a todoTask
  in the specified task list, and includes a linkedResource"; the 201 answer carries them) or one by one
  (todotask-post-linkedresources.md, where `applicationName` and `displayName` are required); read with
  `$expand=linkedResources` or `GET .../linkedResources` (todotask-list-linkedresources.md). A task's list
  can be filtered on them (`$filter=linkedResources/any(r: r/externalId eq '…')`); they are not writable
  through the task's PATCH (a navigation property).
- `checklistItems` (resources/checklistitem.md: `displayName`, `isChecked`, `checkedDateTime`,
  `createdDateTime`, `id`): `GET|POST .../checklistItems`, `PATCH|DELETE .../checklistItems/{id}`,
  `$expand=checklistItems`; and inline on the task's POST, as linkedResources are. Microsoft's samples
  show only linkedResources made inline: that checklistItems are too is this emulator's reading of the
  same contained navigation property, to be checked against a real tenant.
- `dueDateTime`, `startDateTime`, `reminderDateTime`, `completedDateTime` (dateTimeTimeZone) are kept as
  the instant they name and answered in UTC (todotask-update.md: a PATCH in "Eastern Standard Time" is
  answered `{"dateTime": "…T04:00:00.0000000", "timeZone": "UTC"}`); a zone Exchange does not know is a
  400 like an event's.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from m365emulator.calendar.timezones import localize, parse_in_zone, resolve_zone
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
}
CREATE_ONLY = {"linkedResources", "checklistItems"}  # navigation properties: inline on the POST only
EXPANDABLE = ("linkedResources", "checklistItems")
DATE_TIMES = ("dueDateTime", "startDateTime", "reminderDateTime", "completedDateTime")
MAX_TITLE = 255  # To Do's title field; Exchange refuses a longer subject on a task item
LINK_FIELDS = ("applicationName", "displayName", "externalId", "webUrl")
CHECKLIST_FIELDS = ("displayName", "isChecked", "checkedDateTime")


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
    #: ids of tasks moved to another list: their delta entry is `@removed` with reason `changed`
    moved_out: set[str] = field(default_factory=set)

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

    def _validate(self, body: dict[str, Any], *, create: bool) -> None:
        allowed = WRITABLE | CREATE_ONLY if create else WRITABLE
        unknown = {k for k in body if not k.startswith("@")} - allowed
        if unknown:
            raise GraphError(
                400, "invalidRequest", f"Invalid request: unknown or read-only properties {sorted(unknown)}."
            )
        if "status" in body and body["status"] not in STATUSES:
            raise GraphError(400, "invalidRequest", f"Invalid value for status: '{body['status']}'.")
        if "importance" in body and body["importance"] not in IMPORTANCES:
            raise GraphError(400, "invalidRequest", f"Invalid value for importance: '{body['importance']}'.")
        title = body.get("title")
        if title is not None and (not isinstance(title, str) or len(title) > MAX_TITLE):
            raise GraphError(400, "invalidRequest", f"The title must be a string of at most {MAX_TITLE}.")
        for name in ("linkedResources", "checklistItems"):
            if name in body and not (
                isinstance(body[name], list) and all(isinstance(x, dict) for x in body[name])
            ):
                raise GraphError(400, "invalidRequest", f"Invalid value for {name}: a collection of objects.")

    def _normalised(self, body: dict[str, Any]) -> dict[str, Any]:
        """The body's own members, its dateTimeTimeZone values as the UTC instants Exchange keeps."""
        out = {k: v for k, v in body.items() if not k.startswith("@") and k not in CREATE_ONLY}
        for name in DATE_TIMES:
            if out.get(name) is not None:
                out[name] = _utc_value(out[name], name)
        return out

    def _children(self, body: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        now = graph_datetime(self.emu.clock.now())
        return {
            "linkedResources": [_link(raw) for raw in body.get("linkedResources") or ()],
            "checklistItems": [_checklist_item(raw, now) for raw in body.get("checklistItems") or ()],
        }

    def create_task(self, user: User, lst: TodoList, body: dict[str, Any]) -> dict[str, Any]:
        self._validate(body, create=True)
        children = self._children(body)
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
        task.update(self._normalised(body))
        task.update(children)
        if task.get("status") == "completed" and "completedDateTime" not in body:
            task["completedDateTime"] = {"dateTime": now[:-1], "timeZone": "UTC"}
        task["bodyLastModifiedDateTime"] = now
        task["@odata.etag"] = f'W/"{change_key()}"'
        lst.tasks[task["id"]] = task
        self._changed(user, lst, task["id"], "created", task["@odata.etag"])
        return task

    def update_task(self, user: User, lst: TodoList, task_id: str, body: dict[str, Any]) -> dict[str, Any]:
        task = self.get_task(lst, task_id)
        self._validate(body, create=False)
        task.update(self._normalised(body))
        now = graph_datetime(self.emu.clock.now())
        task["lastModifiedDateTime"] = now
        if "body" in body:
            task["bodyLastModifiedDateTime"] = now
        if body.get("status") == "completed" and "completedDateTime" not in body:
            task["completedDateTime"] = {"dateTime": now[:-1], "timeZone": "UTC"}
        elif "status" in body and body["status"] != "completed" and "completedDateTime" not in body:
            task.pop("completedDateTime", None)  # reopened
        self.touch(user, lst, task)
        return task

    def touch(self, user: User, lst: TodoList, task: dict[str, Any]) -> None:
        """A new version of the task (a new etag, a delta entry, a notification)."""
        task["lastModifiedDateTime"] = graph_datetime(self.emu.clock.now())
        task["@odata.etag"] = f'W/"{change_key()}"'
        self._changed(user, lst, task["id"], "updated", task["@odata.etag"])

    def add_child(
        self, user: User, lst: TodoList, task_id: str, kind: str, raw: dict[str, Any]
    ) -> dict[str, Any]:
        task = self.get_task(lst, task_id)
        if kind == "linkedResources":
            for name in ("applicationName", "displayName"):
                if not isinstance(raw.get(name), str) or not raw[name]:
                    raise GraphError(400, "invalidRequest", f"The {name} property is required.")
            child = _link(raw)
        else:
            if not isinstance(raw.get("displayName"), str) or not raw["displayName"]:
                raise GraphError(400, "invalidRequest", "The displayName property is required.")
            child = _checklist_item(raw, graph_datetime(self.emu.clock.now()))
        task.setdefault(kind, []).append(child)
        self.touch(user, lst, task)
        return child

    def child(self, lst: TodoList, task_id: str, kind: str, child_id: str) -> dict[str, Any]:
        for child in self.get_task(lst, task_id).get(kind) or ():
            if child["id"] == child_id:
                return dict(child)
        raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")

    def update_child(
        self, user: User, lst: TodoList, task_id: str, kind: str, *, child_id: str, raw: dict[str, Any]
    ) -> dict[str, Any]:
        task = self.get_task(lst, task_id)
        fields = LINK_FIELDS if kind == "linkedResources" else CHECKLIST_FIELDS
        for child in task.get(kind) or ():
            if child["id"] == child_id:
                child.update({k: v for k, v in raw.items() if k in fields})
                if kind == "checklistItems" and "isChecked" in raw and "checkedDateTime" not in raw:
                    now = graph_datetime(self.emu.clock.now())
                    child["checkedDateTime"] = now if raw["isChecked"] else None
                self.touch(user, lst, task)
                return dict(child)
        raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")

    def delete_child(self, user: User, lst: TodoList, task_id: str, kind: str, child_id: str) -> None:
        task = self.get_task(lst, task_id)
        kept = [c for c in task.get(kind) or () if c["id"] != child_id]
        if len(kept) == len(task.get(kind) or ()):
            raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        task[kind] = kept
        self.touch(user, lst, task)

    def delete_task(self, user: User, lst: TodoList, task_id: str) -> None:
        self.get_task(lst, task_id)
        del lst.tasks[task_id]
        self._changed(user, lst, task_id, "deleted", None)

    def move_task(self, user: User, lst: TodoList, task_id: str, target: TodoList) -> dict[str, Any]:
        """The user moves a task to another of their lists in the To Do app (Graph has no move API). The
        task gets a new id there (resources/todotask.md: `id` "changes when the item is moved from one list
        to another"); the old list's delta reports the old id `@removed` with OData's reason `changed`
        (removed from the collection by a data change, not destroyed: OData v4.01 JSON format §15.3,
        [UNDOC] for To Do itself), the new list's reports a new task."""
        task = self.get_task(lst, task_id)
        if target.id == lst.id:
            raise GraphError(400, "invalidRequest", "The task is already in that list.")
        del lst.tasks[task_id]
        lst.moved_out.add(task_id)
        self._changed(user, lst, task_id, "deleted", None)
        moved = dict(task, id=outlook_id())
        moved["lastModifiedDateTime"] = graph_datetime(self.emu.clock.now())
        moved["@odata.etag"] = f'W/"{change_key()}"'
        target.tasks[moved["id"]] = moved
        self._changed(user, target, moved["id"], "created", moved["@odata.etag"])
        return moved

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
        # Query options are given on the first request only and travel in the tokens (todotask-delta.md:
        # "Microsoft Graph automatically encodes any specified parameters into the token portion").
        expand = expanded(query) if state is None else frozenset(state.get("x") or ())
        if (
            state is not None
            and state.get("p")
            and not (query.get("$top") or prefer.get("odata.maxpagesize"))
        ):
            size = int(state["p"])  # a round's page size holds for its next links
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
            value.append(render(task, expand) if task else _removed(lst, task_id))
        out: dict[str, Any] = {"@odata.context": f"{self.emu.graph_url}/$metadata#Collection(todoTask)"}
        if offset + size < len(ids):
            token = encode_token(
                {
                    "l": lst.id,
                    "g": box.generation,
                    "s": since,
                    "o": offset + size,
                    "u": upto,
                    "x": sorted(expand),
                    "p": size,
                }
            )
            out["@odata.nextLink"] = f"{link_base}?$skiptoken={token}"
        else:
            token = encode_token({"l": lst.id, "g": box.generation, "s": upto, "x": sorted(expand)})
            out["@odata.deltaLink"] = f"{link_base}?$deltatoken={token}"
        out["value"] = value
        return out


def _removed(lst: TodoList, task_id: str) -> dict[str, Any]:
    reason = "changed" if task_id in lst.moved_out else "deleted"
    return {"id": task_id, "@removed": {"reason": reason}}


def _utc_value(raw: object, name: str) -> dict[str, str]:
    """A dateTimeTimeZone as Exchange keeps it: the instant it names, in UTC."""
    if not isinstance(raw, dict):
        raise GraphError(400, "invalidRequest", f"Invalid value for {name}: a dateTimeTimeZone object.")
    zone = resolve_zone(raw.get("timeZone"))
    instant = localize(parse_in_zone(raw.get("dateTime"), zone, name), zone)
    return {"dateTime": instant.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0", "timeZone": "UTC"}


def _link(raw: dict[str, Any]) -> dict[str, Any]:
    link: dict[str, Any] = {"id": str(uuid.uuid4())}
    link.update({k: raw[k] for k in LINK_FIELDS if raw.get(k) is not None})
    return link


def _checklist_item(raw: dict[str, Any], now: str) -> dict[str, Any]:
    checked = bool(raw.get("isChecked"))
    return {
        "displayName": str(raw.get("displayName") or ""),
        "createdDateTime": now,
        "checkedDateTime": raw.get("checkedDateTime") or (now if checked else None),
        "isChecked": checked,
        "id": str(uuid.uuid4()),
    }


def render(task: dict[str, Any], expand: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The task as Graph answers it: its navigation properties only when expanded."""
    out = {k: v for k, v in task.items() if k not in EXPANDABLE}
    for name in EXPANDABLE:
        if name in expand:
            out[name] = [dict(c) for c in task.get(name) or ()]
    return out


def expanded(query: Any) -> frozenset[str]:
    """`$expand=linkedResources,checklistItems` (case-insensitive); anything else is a 400."""
    raw = query.get("$expand") or ""
    names = {n.lower(): n for n in EXPANDABLE}
    out: set[str] = set()
    for part in filter(None, (p.strip() for p in raw.split(","))):
        if part.lower() not in names:
            raise GraphError(
                400, "BadRequest", f"Could not find a property named '{part}' on type 'todoTask'."
            )
        out.add(names[part.lower()])
    return frozenset(out)


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
    expand = expanded(request.query)
    tasks = list(lst.tasks.values())
    if request.query.get("$filter"):
        pred = parse_filter(
            request.query["$filter"],
            {"status", "title", "importance", "id", "isReminderOn", "linkedResources"},
        )
        tasks = [t for t in tasks if pred(t)]
    size = page_size(dict(request.query), request["prefer"], default=100, maximum=1000)
    skip = decode_token(request.query["$skiptoken"]) if request.query.get("$skiptoken") else None
    offset = int(skip.get("o", 0)) if skip else 0
    page = tasks[offset : offset + size]
    base = f"{emu.graph_url}/users/{user.id}/todo/lists/{lst.id}/tasks"
    out: dict[str, Any] = {"@odata.context": f"{emu.graph_url}/$metadata#users('{user.id}')/todo/lists/tasks"}
    if offset + size < len(tasks):
        out["@odata.nextLink"] = f"{base}?$top={size}&$skiptoken={encode_token({'o': offset + size})}"
    out["value"] = [render(t, expand) for t in page]
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
    body = await json_body(request)
    task = emu.todo.create_task(user, _list(request, user), body)
    # The 201 answers what was made inline (todotasklist-post-tasks.md's sample).
    return respond(render(task, frozenset(n for n in EXPANDABLE if n in body)), 201)


async def get_task(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = _user(request)
    task = emu.todo.get_task(_list(request, user), request.match_info["task_id"])
    return respond(render(task, expanded(request.query)))


async def patch_task(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = _user(request)
    lst = _list(request, user)
    task = emu.todo.update_task(user, lst, request.match_info["task_id"], await json_body(request))
    return respond(render(task))


async def get_children(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = _user(request)
    kind = request.match_info["kind"]
    task = emu.todo.get_task(_list(request, user), request.match_info["task_id"])
    return respond({"value": [dict(c) for c in task.get(kind) or ()]})


async def post_child(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = _user(request)
    lst = _list(request, user)
    kind = request.match_info["kind"]
    child = emu.todo.add_child(user, lst, request.match_info["task_id"], kind, await json_body(request))
    return respond(child, 201)


async def get_child(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = _user(request)
    info = request.match_info
    return respond(emu.todo.child(_list(request, user), info["task_id"], info["kind"], info["child_id"]))


async def patch_child(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = _user(request)
    info = request.match_info
    body = await json_body(request)
    lst = _list(request, user)
    return respond(
        emu.todo.update_child(user, lst, info["task_id"], info["kind"], child_id=info["child_id"], raw=body)
    )


async def delete_child(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    user = _user(request)
    info = request.match_info
    emu.todo.delete_child(user, _list(request, user), info["task_id"], info["kind"], info["child_id"])
    return web.Response(status=204)


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
    children = base + "/{list_id}/tasks/{task_id}/{kind:linkedResources|checklistItems}"
    r.add_get(children, get_children)
    r.add_post(children, post_child)
    r.add_get(children + "/{child_id}", get_child)
    r.add_patch(children + "/{child_id}", patch_child)
    r.add_delete(children + "/{child_id}", delete_child)
