"""The OpenAPI 3.1 document of every HTTP route the function app serves.

`OPERATIONS` is the single list; `tests/contract/test_function_index.py` checks it against the function
index, so a route cannot be added or changed without its documentation. Every component is generated
from a pydantic model: the request bodies from the models that validate them (`shared/service/bodies.py`:
tenant, settings, staff, reauthorize, resyncs, console link; `appointment_bodies.py`: the appointment), so
the document and the validation cannot drift, and the answers from the models that shape or describe them
(`functions/responses.py`, the changes of `shared/service/change_types.py`). Only the path and query
parameters are written here, with the validators' constants. `tests/unit/functions/test_limits.py` sends
a value just past each limit and expects a 400 naming it.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final, Literal

from shared.domain.teams import TeamsStatus
from shared.domain.users import SWITCH_NAMES, MatchStatus, SyncState
from shared.service import limits
from shared.service.notifications import MAX_VALIDATION_TOKEN
from shared.service.tenants import MAX_TENANT_PAGE, TENANT_PAGE
from shared.service.user_queries import MAX_PAGE_SIZE, SORT_KEYS

Json = dict[str, Any]
ROUTE_PREFIX: Final = "/api"
# The path parameters, as the validators take them (a longer or other value is a 400 naming it). The
# routes' `{tid}` is published as `{tenant_id}`, the name every error about the tenant gives it.
DOCUMENTED_NAMES: Final = {"tid": "tenant_id"}
PATH_PARAMETERS: Final[dict[str, Json]] = {
    "tenant_id": {
        "type": "string",
        "maxLength": limits.MAX_TENANT_ID,
        "pattern": limits.TENANT_ID_PATTERN,
        "description": "The tenant: its directory GUID or a verified domain, as it was created.",
    },
    "staff_id": {"type": "string", "maxLength": 128, "pattern": limits.STAFF_ID_RE.pattern},
    "first_sequence": {"type": "integer", "minimum": 1, "description": "The dead letter's first change."},
    "queue": {"enum": ["sync-jobs", "tenant-jobs", "host-deliveries", "outlook-writes"]},
    "poison_id": {"type": "string", "description": "The poison message's id in its queue."},
    "monitor_id": {
        "type": "string",
        "pattern": "^[0-9]{13}[0-9a-f]{6}$",
        "description": "A message of the monitor (its `monitor_id`).",
    },
    "appointment_id": {
        "type": "string",
        "maxLength": 128,
        "pattern": limits.APPOINTMENT_ID_RE.pattern,
    },
    "message_id": {"type": "string", "maxLength": 128, "pattern": limits.MESSAGE_ID_RE.pattern},
    "task_id": {"type": "string", "maxLength": 128, "pattern": limits.APPOINTMENT_ID_RE.pattern},
}
_USER_QUERY: Final[tuple[tuple[str, str, Json], ...]] = (
    ("state", "The users' sync state.", {"enum": [s.value for s in SyncState]}),
    ("match", "The users' match status.", {"enum": [m.value for m in MatchStatus]}),
    ("teams", "The users' Teams status.", {"enum": [t.value for t in TeamsStatus]}),
    (
        "switch",
        "The users whose switches are so: `<switch>:on` or `<switch>:off`, several comma-separated (every "
        f"one must hold), for example `calendar_to_outlook:off`. Switches: {', '.join(SWITCH_NAMES)}.",
        {
            "type": "string",
            "pattern": rf"^({'|'.join(SWITCH_NAMES)}):(on|off)(,({'|'.join(SWITCH_NAMES)}):(on|off))*$",
        },
    ),
    ("q", "Search in staff id, name, email and UPN.", {"type": "string"}),
    (
        "sort",
        "The order; a leading - descends.",
        {"enum": [*SORT_KEYS, *(f"-{key}" for key in SORT_KEYS)], "default": "display_name"},
    ),
    (
        "page_size",
        "Users per page.",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 50},
    ),
    ("cursor", "next_cursor of the previous page.", {"type": "string"}),
)


def ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


ERROR: Final = ref("Error")
_MESSAGE_QUERY: Final[tuple[tuple[str, str, Json], ...]] = (
    ("staff_id", "Only this staff member's messages.", {"type": "string", "maxLength": 256}),
    ("direction", "Only this direction.", {"enum": ["push", "pull", "delivery"]}),
    ("status", "Only this status.", {"enum": ["ok", "failed", "retrying", "held"]}),
    (
        "since",
        "The oldest time read (ISO 8601; without an offset, UTC). Default: a day ago.",
        {"type": "string", "format": "date-time"},
    ),
    (
        "cursor",
        "The `next_cursor` of the previous page.",
        {"type": "string", "pattern": "^[0-9]{13}[0-9a-f]{6}$"},
    ),
    ("limit", "Messages per page (default 100).", {"type": "integer", "minimum": 1, "maximum": 500}),
)


@dataclass(frozen=True)
class Operation:
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    route: str  # as declared on the function, without the /api prefix
    operation_id: str
    summary: str
    auth: Literal["anonymous", "function", "console", "console_api"]
    responses: dict[int, tuple[str, Json | None]]
    request: Json | None = None
    query: tuple[tuple[str, str, Json], ...] = ()
    tags: tuple[str, ...] = ()
    request_media: str = "application/json"
    response_media: dict[int, str] = field(default_factory=dict)
    body_required: bool = True  # False: the route also takes no body at all (every field optional)


_CONSOLE_ERRORS: Final[dict[int, tuple[str, Json | None]]] = {
    401: ("No, a forged or an expired console token.", ERROR),
    403: ("The token is for another tenant; nothing was read or changed.", ERROR),
    404: ("Unknown tenant.", ERROR),
}


# The two Graph webhooks share the handshake, the body shape and the errors.
def _graph_webhook_responses(accepted: str) -> dict[int, tuple[str, Json | None]]:
    return {
        200: ("The validation token, as text/plain.", {"type": "string"}),
        202: (accepted, None),
        400: ("Malformed body or validation token.", ERROR),
        413: ("Body too large.", ERROR),
    }


_GRAPH_WEBHOOK: Final[dict[str, Any]] = {
    "query": (
        (
            "validationToken",
            "Graph's handshake token.",
            {"type": "string", "minLength": 1, "maxLength": MAX_VALIDATION_TOKEN},
        ),
    ),
    "body_required": False,
    "request": {"type": "object", "properties": {"value": {"type": "array", "items": {"type": "object"}}}},
    "tags": ("graph",),
    "response_media": {200: "text/plain"},
}

_BASE_OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation(
        "GET",
        "health",
        "getHealth",
        "The connector's version and whether storage and Key Vault answer.",
        "anonymous",
        {200: ("Healthy.", ref("Health")), 503: ("A dependency does not answer.", ref("Health"))},
        tags=("meta",),
    ),
    Operation(
        "GET",
        "openapi.json",
        "getOpenApi",
        "This document.",
        "anonymous",
        {200: ("The OpenAPI 3.1 document.", {"type": "object"})},
        tags=("meta",),
    ),
    Operation(
        "GET",
        "consent/callback",
        "consentCallback",
        "Where Microsoft Entra ID sends the admin after admin consent; answers a page in plain words.",
        "anonymous",
        {
            200: ("Connected.", {"type": "string"}),
            400: ("Declined, failed, expired, replayed or forged; nothing changed.", {"type": "string"}),
        },
        query=(
            ("state", "The one-time state of the consent link.", {"type": "string"}),
            ("tenant", "The tenant that consented.", {"type": "string"}),
            ("admin_consent", "True on success.", {"type": "string"}),
            ("error", "Entra's error code on failure.", {"type": "string"}),
            ("error_description", "Entra's error text.", {"type": "string"}),
        ),
        tags=("consent",),
        response_media={200: "text/html", 400: "text/html"},
    ),
    Operation(
        "GET",
        "v1/tenants",
        "listTenants",
        "A page of the tenants in tenant id order, each with its state and progress.",
        "function",
        {
            200: ("A page of the tenants.", ref("TenantList")),
            400: ("Bad page_size or cursor; the body names it.", ERROR),
        },
        query=(
            (
                "page_size",
                "Tenants per page.",
                {"type": "integer", "minimum": 1, "maximum": MAX_TENANT_PAGE, "default": TENANT_PAGE},
            ),
            ("cursor", "next_cursor of the previous page.", {"type": "string"}),
        ),
        tags=("tenants",),
    ),
    Operation(
        "POST",
        "v1/tenants",
        "createTenant",
        "Create a tenant by admin consent (answers the consent URL) or with the customer's own app; for a "
        "disconnected tenant, connect it again (its feed numbering goes on).",
        "function",
        {
            201: ("Created, or a disconnected tenant connecting again.", ref("Tenant")),
            400: ("Bad input; the body names the field.", ERROR),
            409: (
                "The tenant exists and is not disconnected (or is still disconnecting: retry shortly), or "
                "another tenant key holds the same organisation (the message names it).",
                ERROR,
            ),
            422: ("Unknown tenant, or the customer's app could not sign in.", ERROR),
        },
        request=ref("TenantCreate"),
        tags=("tenants",),
    ),
    Operation(
        "GET",
        "v1/tenants/{tid}",
        "getTenant",
        "State, progress, settings, credential expiry and last error.",
        "function",
        {200: ("The tenant.", ref("Tenant")), 404: ("Unknown tenant.", ERROR)},
        tags=("tenants",),
    ),
    Operation(
        "DELETE",
        "v1/tenants/{tid}",
        "disconnectTenant",
        "Disconnect: delete every Graph subscription, stop every job, purge state and secrets. Idempotent.",
        "function",
        {202: ("Disconnecting.", ref("Tenant")), 404: ("Unknown tenant.", ERROR)},
        tags=("tenants",),
    ),
    Operation(
        "PATCH",
        "v1/tenants/{tid}/settings",
        "updateTenantSettings",
        "Change settings; absent fields keep their values.",
        "function",
        {200: ("The tenant.", ref("Tenant")), 400: ("Bad input.", ERROR), 404: ("Unknown tenant.", ERROR)},
        request=ref("Settings"),
        tags=("tenants",),
    ),
    Operation(
        "POST",
        "v1/tenants/{tid}/reauthorize",
        "reauthorizeTenant",
        "A new consent URL (admin consent), or a new secret for the customer's app (body).",
        "function",
        {
            200: ("The tenant, with consent_url for admin consent.", ref("Tenant")),
            400: ("Bad input.", ERROR),
            404: ("Unknown tenant.", ERROR),
            409: ("The tenant is disconnecting or disconnected (POST /v1/tenants reconnects it).", ERROR),
            422: ("The new secret does not sign in.", ERROR),
        },
        request=ref("Reauthorize"),
        body_required=False,
        tags=("tenants",),
    ),
    Operation(
        "PUT",
        "v1/tenants/{tid}/staff/{staff_id}",
        "putStaff",
        "Create or update a staff member; answers the match status (matched at once when connected).",
        "function",
        {200: ("The user.", ref("User")), 400: ("Bad input.", ERROR), 404: ("Unknown tenant.", ERROR)},
        request=ref("Staff"),
        tags=("users",),
    ),
    Operation(
        "DELETE",
        "v1/tenants/{tid}/staff/{staff_id}",
        "deleteStaff",
        "Remove a staff member.",
        "function",
        {204: ("Removed.", None), 404: ("Unknown tenant or staff member.", ERROR)},
        tags=("users",),
    ),
    Operation(
        "GET",
        "v1/tenants/{tid}/users",
        "listUsers",
        "Users with match and sync status; filter, search, sort and cursor paging.",
        "function",
        {
            200: ("A page of users.", ref("UserPage")),
            400: ("Bad query.", ERROR),
            404: ("Unknown tenant.", ERROR),
        },
        query=_USER_QUERY,
        tags=("users",),
    ),
    Operation(
        "POST",
        "v1/tenants/{tid}/rematch",
        "rematchTenant",
        "Match every staff member again (queued work).",
        "function",
        {
            202: ("Queued.", ref("Queued")),
            404: ("Unknown tenant.", ERROR),
            409: ("Not connected.", ERROR),
        },
        tags=("users",),
    ),
    Operation(
        "GET",
        "v1/tenants/{tid}/changes",
        "readChanges",
        "The pull feed of changes from Outlook and of sync outcomes, after a cursor. The feed keeps a "
        "change `retention_days` (the tenant's `feed_retention_days`, 30 by default); a disconnect "
        "deletes it but its numbering.",
        "function",
        {
            200: ("Changes and the cursor to pass next time.", ref("ChangePage")),
            400: ("Bad query.", ERROR),
            404: ("Unknown tenant.", ERROR),
            410: (
                "The changes right after `cursor` are no longer kept (older than the retention, or deleted "
                "by a disconnect): resync, then go on from the cursor the message names.",
                ERROR,
            ),
        },
        query=(
            (
                "cursor",
                "The cursor of the previous page (0 or absent: from the start).",
                {"type": "integer", "minimum": 0, "maximum": 10**15, "default": 0},
            ),
            (
                "limit",
                "Changes per page.",
                {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
            ),
        ),
        tags=("changes",),
    ),
    Operation(
        "POST",
        "v1/tenants/{tid}/users/{staff_id}/resync",
        "resyncUser",
        "Queue a full read of the user's calendar window, reconciled with what was synced. `force` applies "
        "deletions the mass-deletion guard held back.",
        "function",
        {
            202: ("Queued; the user as it is now.", ref("QueuedUser")),
            400: ("Bad input.", ERROR),
            404: ("Unknown tenant or staff member.", ERROR),
            409: ("Not connected, or the staff member is not matched.", ERROR),
        },
        request=ref("UserResync"),
        body_required=False,
        tags=("users",),
    ),
    Operation(
        "PUT",
        "v1/tenants/{tid}/appointments/{appointment_id}",
        "putAppointment",
        "Create or update an appointment in every involved staff calendar. The writes run on a queue; the "
        "answer comes at once with the new revision (ETag). `If-Match` (an ETag, or `*`) makes the update "
        "conditional. A replay of the current version changes nothing.",
        "function",
        {
            202: ("Stored and queued; the appointment and its per-staff state.", ref("Appointment")),
            400: ("Bad input (the field and the reason).", ERROR),
            404: ("Unknown tenant.", ERROR),
            409: ("The tenant is not connected.", ERROR),
            412: ("If-Match did not hold.", ERROR),
            413: ("Body too large.", ERROR),
            422: ("Unknown staff member, or a recurrence Outlook cannot hold.", ERROR),
        },
        request=ref("AppointmentInput"),
        tags=("appointments",),
    ),
    Operation(
        "GET",
        "v1/tenants/{tid}/appointments/{appointment_id}",
        "getAppointment",
        "The appointment as the host last sent it, and per staff member: state, Graph event id, iCalUId, "
        "Teams join URL, error.",
        "function",
        {
            200: ("The appointment.", ref("Appointment")),
            400: ("Bad appointment id.", ERROR),
            404: ("Unknown tenant or appointment.", ERROR),
        },
        tags=("appointments",),
    ),
    Operation(
        "DELETE",
        "v1/tenants/{tid}/appointments/{appointment_id}",
        "deleteAppointment",
        "Delete the appointment from every staff calendar (queued; idempotent).",
        "function",
        {
            202: ("Queued; the appointment while its copies are removed.", ref("Appointment")),
            400: ("Bad appointment id.", ERROR),
            404: ("Unknown tenant or appointment.", ERROR),
            412: ("If-Match did not hold.", ERROR),
        },
        tags=("appointments",),
    ),
    Operation(
        "PUT",
        "v1/tenants/{tid}/tasks/{task_id}",
        "putTask",
        "Create or update a task in the staff member's To Do list (their `todo_list_name`, else the "
        "tenant's; found by name, made when missing). A task given to another staff member moves. The write "
        "runs on a queue; the answer comes at once with the new revision (ETag). `If-Match` makes it "
        "conditional; a replay of the current version changes nothing. A staff member who is unmatched or "
        "has `tasks_to_outlook` off: accepted, then `failed` with the reason (GET, and `task.failed` on "
        "the feed); `task.synced` when To Do holds the revision.",
        "function",
        {
            202: ("Stored and queued; the task and where To Do holds it.", ref("Task")),
            400: ("Bad input (the field and the reason).", ERROR),
            404: ("Unknown tenant.", ERROR),
            409: ("The tenant is not connected.", ERROR),
            412: ("If-Match did not hold.", ERROR),
            413: ("Body too large.", ERROR),
            422: ("Unknown staff member, or a recurrence To Do cannot hold.", ERROR),
        },
        request=ref("TaskInput"),
        tags=("tasks",),
    ),
    Operation(
        "GET",
        "v1/tenants/{tid}/tasks/{task_id}",
        "getTask",
        "The task as the host last sent it; its state (pending, synced, partial, failed), the To Do task "
        "and list ids, the error; the revision as ETag.",
        "function",
        {
            200: ("The task.", ref("Task")),
            400: ("Bad task id.", ERROR),
            404: ("Unknown tenant or task.", ERROR),
        },
        tags=("tasks",),
    ),
    Operation(
        "DELETE",
        "v1/tenants/{tid}/tasks/{task_id}",
        "deleteTask",
        "Delete the task from the staff member's To Do list (queued; idempotent).",
        "function",
        {
            202: ("Queued; the task while it is removed.", ref("Task")),
            400: ("Bad task id.", ERROR),
            404: ("Unknown tenant or task.", ERROR),
            412: ("If-Match did not hold.", ERROR),
        },
        tags=("tasks",),
    ),
    Operation(
        "PUT",
        "v1/tenants/{tid}/mail/{message_id}",
        "putMail",
        "Send a message from the staff member's own mailbox (Mail.Send): it shows in their Sent Items and "
        "is sent exactly once, whatever fails. The send runs on a queue; the answer comes at once. The "
        "message id is the idempotency key: the same PUT again answers the message as it stands, other "
        "content under the same id is a 409. `mail.sent` or `mail.failed` follows on the feed.",
        "function",
        {
            200: ("The same PUT again; the message is sent or failed already.", ref("Mail")),
            202: ("Accepted (or the same PUT again); the message's state.", ref("Mail")),
            400: ("Bad input (the field and the reason).", ERROR),
            404: ("Unknown tenant.", ERROR),
            409: ("The tenant is not connected, or the id was used for other content.", ERROR),
            413: ("Body too large.", ERROR),
            422: ("Unknown or disabled staff member.", ERROR),
        },
        request=ref("MailInput"),
        tags=("mail",),
    ),
    Operation(
        "GET",
        "v1/tenants/{tid}/mail/{message_id}",
        "getMail",
        "Where the message stands: queued, sending, sent or failed; attempts, the sent time, the "
        "internetMessageId, and the reason when it failed.",
        "function",
        {
            200: ("The message's state.", ref("Mail")),
            400: ("Bad message id.", ERROR),
            404: ("Unknown tenant or message.", ERROR),
        },
        tags=("mail",),
    ),
    Operation(
        "GET",
        "v1/tenants/{tid}/staff/{staff_id}/busy",
        "getStaffBusy",
        "A staff member's busy times over [start, end): start, end (UTC; all-day events as dates) and "
        "show_as, never a subject or any other detail. Answered from the synced state when the staff "
        "member is synced and the span lies in the synced window, else through Graph's getSchedule "
        "(`source`, `as_of`); the host's own appointments count from the moment their PUT was accepted.",
        "function",
        {
            200: ("The busy times.", ref("StaffBusy")),
            400: ("Bad start or end (more than 62 days apart: getSchedule's longest window).", ERROR),
            404: ("Unknown tenant or staff member.", ERROR),
            409: (
                "The tenant is not connected, the staff member is disabled or not matched, or Graph answers "
                "an error for their mailbox (an address it cannot resolve).",
                ERROR,
            ),
            503: ("Graph's getSchedule did not answer for a staff member who is not synced; retry.", ERROR),
        },
        query=(
            (
                "start",
                "ISO 8601 date-time (without an offset: UTC). Required.",
                {"type": "string", "format": "date-time"},
            ),
            (
                "end",
                "ISO 8601 date-time after start, at most 62 days later. Required.",
                {"type": "string", "format": "date-time"},
            ),
        ),
        tags=("availability",),
    ),
    Operation(
        "POST",
        "v1/tenants/{tid}/availability",
        "findAvailability",
        "Bookable slots (or, with format periods, the merged free periods) at which every participant "
        "group has enough staff free, buffers included, within the periods (and working hours when "
        "asked). Each staff member is answered from the synced state or through Graph's getSchedule "
        "(`staff[].source`, `as_of`); the host's own appointments count from the moment their PUT was "
        "accepted. An unknown, disabled or unmatched staff member, or one Graph could not answer for, is "
        "an `error` in `staff` and is never counted free; in a one-person question an unknown staff "
        "member is a 404 naming staff_id.",
        "function",
        {
            200: (
                "The slots or periods, earliest first, and each staff member's source.",
                ref("Availability"),
            ),
            400: ("Bad question; the body names the member and the reason.", ERROR),
            404: ("Unknown tenant, or the one staff member of a one-person question.", ERROR),
            409: ("The tenant is not connected.", ERROR),
            413: ("Body too large.", ERROR),
        },
        request=ref("AvailabilityQuestion"),
        tags=("availability",),
    ),
    Operation(
        "POST",
        "v1/tenants/{tid}/resync",
        "resyncTenant",
        "Queue a full resync of every matched user, or only of those in error.",
        "function",
        {
            202: ("Queued; how many users.", ref("QueuedUsers")),
            400: ("Bad input.", ERROR),
            404: ("Unknown tenant.", ERROR),
            409: ("Not connected.", ERROR),
        },
        request=ref("TenantResync"),
        body_required=False,
        tags=("users",),
    ),
    Operation(
        "GET",
        "v1/tenants/{tid}/dead-letters",
        "listDeadLetters",
        "Ranges of the change feed the host's webhook never took after every retry (they stay in the feed).",
        "function",
        {
            200: (
                "Dead letters, oldest first.",
                ref("DeadLetterList"),
            ),
            404: ("Unknown tenant.", ERROR),
        },
        tags=("changes",),
    ),
    Operation(
        "POST",
        "v1/tenants/{tid}/dead-letters/redeliver",
        "redeliverDeadLetters",
        "Queue every dead letter for delivery again.",
        "function",
        {
            202: ("Queued; how many deliveries.", ref("QueuedDeliveries")),
            404: ("Unknown tenant.", ERROR),
        },
        tags=("changes",),
    ),
    Operation(
        "POST",
        "graph/notifications",
        "graphNotifications",
        "Microsoft Graph change notifications. With `validationToken`: the subscription handshake (the token "
        "echoed as text/plain). Otherwise each notification's clientState is checked and the user's catch-up "
        "is queued; 202 at once.",
        "anonymous",
        _graph_webhook_responses("Accepted (forged notifications are dropped and counted)."),
        **_GRAPH_WEBHOOK,
    ),
    Operation(
        "POST",
        "graph/lifecycle",
        "graphLifecycle",
        "Microsoft Graph lifecycle notifications: reauthorizationRequired renews the subscription, "
        "subscriptionRemoved recreates it and catches up, missed catches up.",
        "anonymous",
        _graph_webhook_responses("Accepted."),
        **_GRAPH_WEBHOOK,
    ),
    Operation(
        "POST",
        "v1/tenants/{tid}/console-links",
        "createConsoleLink",
        "A signed link to the admin console of this one tenant, valid for `ttl_minutes` (default 60).",
        "function",
        {
            201: ("The link.", ref("ConsoleLink")),
            400: ("Bad input; the body names the field.", ERROR),
            404: ("Unknown tenant.", ERROR),
        },
        request=ref("ConsoleLinkRequest"),
        body_required=False,
        tags=("console",),
    ),
    Operation(
        "GET",
        "console",
        "getConsole",
        "The admin console page of the token's tenant; a plain page saying what to do when the link is not "
        "valid or has expired.",
        "console",
        {
            200: ("The console.", {"type": "string"}),
            401: ("No, a forged or an expired token.", {"type": "string"}),
        },
        query=(("token", "The console link's token.", {"type": "string"}),),
        tags=("console",),
        response_media={200: "text/html", 401: "text/html"},
    ),
    Operation(
        "GET",
        "console/tenants/{tid}",
        "consoleGetTenant",
        "The console's view of its tenant: state, progress, settings, credential expiry, last error and "
        "the number of undelivered change batches.",
        "console_api",
        _CONSOLE_ERRORS | {200: ("The tenant.", ref("Tenant"))},
        tags=("console",),
    ),
    Operation(
        "DELETE",
        "console/tenants/{tid}",
        "consoleDisconnect",
        "Disconnect the tenant (as the host API's DELETE).",
        "console_api",
        _CONSOLE_ERRORS | {202: ("Disconnecting.", ref("Tenant"))},
        tags=("console",),
    ),
    Operation(
        "GET",
        "console/tenants/{tid}/users",
        "consoleListUsers",
        "Users with match and sync status (the host API's query parameters).",
        "console_api",
        _CONSOLE_ERRORS | {200: ("A page of users.", ref("UserPage")), 400: ("Bad query.", ERROR)},
        query=_USER_QUERY,
        tags=("console",),
    ),
    Operation(
        "POST",
        "console/tenants/{tid}/users/{staff_id}/resync",
        "consoleResyncUser",
        "Queue a full resync of one matched user.",
        "console_api",
        _CONSOLE_ERRORS
        | {202: ("Queued; the user as it is now.", ref("User")), 409: ("Not matched.", ERROR)},
        tags=("console",),
    ),
    Operation(
        "POST",
        "console/tenants/{tid}/resync",
        "consoleResyncTenant",
        "Queue a full resync of every matched user, or only of those in error.",
        "console_api",
        _CONSOLE_ERRORS
        | {
            202: ("Queued; how many users.", ref("QueuedUsers")),
            400: ("Bad input.", ERROR),
            409: ("Not connected.", ERROR),
        },
        request=ref("TenantResync"),
        body_required=False,
        tags=("console",),
    ),
    Operation(
        "POST",
        "console/tenants/{tid}/rematch",
        "consoleRematch",
        "Match every staff member again (queued work).",
        "console_api",
        _CONSOLE_ERRORS | {202: ("Queued.", ref("Queued")), 409: ("Not connected.", ERROR)},
        tags=("console",),
    ),
    Operation(
        "POST",
        "console/tenants/{tid}/reauthorize",
        "consoleReauthorize",
        "Admin consent: a new consent URL. The organisation's own app: a new client secret (checked by "
        "signing in before it is kept).",
        "console_api",
        _CONSOLE_ERRORS
        | {
            200: ("The tenant, with `consent_url` for admin consent.", ref("Tenant")),
            400: ("Bad input.", ERROR),
            409: ("Disconnected.", ERROR),
            422: ("The app could not sign in with the secret.", ERROR),
        },
        request=ref("Reauthorize"),
        body_required=False,
        tags=("console",),
    ),
    Operation(
        "PATCH",
        "console/tenants/{tid}/users/switches",
        "consoleSetSwitches",
        "Set some switches of many staff members at once (the console's select-all). The switches not "
        "named keep their value; each change takes effect at once, as on the staff PUT.",
        "console_api",
        _CONSOLE_ERRORS
        | {
            200: ("The staff members as they are now.", ref("SwitchesUpdated")),
            400: ("Bad input (the field is named).", ERROR),
            409: ("The tenant is disconnected.", ERROR),
        },
        request=ref("SwitchesUpdate"),
        tags=("console",),
    ),
    Operation(
        "PATCH",
        "console/tenants/{tid}/settings",
        "consoleUpdateSettings",
        "Change settings (as the host API).",
        "console_api",
        _CONSOLE_ERRORS | {200: ("The tenant.", ref("Tenant")), 400: ("Bad input.", ERROR)},
        request=ref("Settings"),
        tags=("console",),
    ),
)


def _monitor_operations(
    prefix: str, auth: Literal["function", "console_api"], tag: str
) -> tuple[Operation, ...]:
    """The monitor, a user's page and its actions, and hold/release: the host API's and the console's."""
    errors: dict[int, tuple[str, Json | None]] = (
        dict(_CONSOLE_ERRORS) if auth == "console_api" else {404: ("Unknown tenant.", ERROR)}
    )
    name = "console" if auth == "console_api" else ""

    def op_id(text: str) -> str:
        return f"{name}{text[0].upper()}{text[1:]}" if name else text

    return (
        Operation(
            "GET",
            f"{prefix}/messages",
            op_id("listMessages"),
            "The message monitor, newest first: every push (appointment, task or mail write to Outlook), "
            "pull (a notification's or a resync's sync run) and delivery (a post to the host's webhook) "
            "since `since`, kept the tenant's `monitor_retention_days`.",
            auth,
            errors
            | {
                200: ("A page of messages.", ref("MessagePage")),
                400: (
                    "An unknown filter value, a bad since or an invalid cursor (the parameter is named).",
                    ERROR,
                ),
            },
            query=_MESSAGE_QUERY,
            tags=(tag,),
        ),
        Operation(
            "GET",
            f"{prefix}/messages/{{monitor_id}}",
            op_id("getMessage"),
            "One message of the monitor, with its detail.",
            auth,
            errors | {200: ("The message.", ref("Message")), 404: ("Unknown tenant or message.", ERROR)},
            tags=(tag,),
        ),
        Operation(
            "POST",
            f"{prefix}/messages/{{monitor_id}}/retry",
            op_id("retryMessage"),
            "Do a failed message's work again: an appointment's or a task's write, the user's full resync, "
            "or the delivery of the changes (the whole range of its dead letter, which is removed).",
            auth,
            errors
            | {
                202: ("Queued.", ref("MessageRetried")),
                404: ("Unknown tenant or message.", ERROR),
                409: ("Not failed, or a mail (final: the host sends it again under a new id).", ERROR),
            },
            tags=(tag,),
        ),
        Operation(
            "GET",
            f"{prefix}/users/{{staff_id}}",
            op_id("getUser"),
            "A user's own page: the user, the Graph subscription and its expiry, whether a delta link is "
            "held and since when (never the link), and per direction the last message and the last error.",
            auth,
            errors | {200: ("The user's page.", ref("UserDetail")), 404: ("Unknown tenant or user.", ERROR)},
            tags=(tag,),
        ),
        Operation(
            "DELETE",
            f"{prefix}/users/{{staff_id}}/subscription",
            op_id("deleteUserSubscription"),
            "Delete the user's Graph subscription: Outlook's changes stop arriving until the next renewal "
            "round or a refresh (a full resync) makes a new one.",
            auth,
            errors
            | {
                200: ("The user as it is now.", ref("User")),
                404: ("Unknown tenant or user.", ERROR),
                409: ("A sync run of the user is under way; retry shortly.", ERROR),
            },
            tags=(tag,),
        ),
        Operation(
            "POST",
            f"{prefix}/users/{{staff_id}}/rematch",
            op_id("rematchUser"),
            "Match this staff member again as stored (as the staff PUT does); a new mailbox migrates.",
            auth,
            errors
            | {
                200: ("The user as it is now.", ref("User")),
                404: ("Unknown tenant or user.", ERROR),
                409: ("The tenant is not connected.", ERROR),
            },
            tags=(tag,),
        ),
        Operation(
            "GET",
            f"{prefix}/delivery",
            op_id("getDelivery"),
            "Whether delivery to the host's webhook is held, and the backlog the hold kept back.",
            auth,
            errors | {200: ("The delivery's state.", ref("DeliveryHoldState"))},
            tags=(tag,),
        ),
        Operation(
            "POST",
            f"{prefix}/delivery/hold",
            op_id("holdDelivery"),
            "Hold delivery to the host's webhook: changes keep going on the feed and the monitor, none is "
            "lost, and the release delivers them in order.",
            auth,
            errors
            | {
                200: ("Held.", ref("DeliveryHoldState")),
                409: ("The tenant is not connected, or there is no webhook.", ERROR),
            },
            tags=(tag,),
        ),
        Operation(
            "POST",
            f"{prefix}/delivery/release",
            op_id("releaseDelivery"),
            "Release the hold: what it kept back is delivered, in order, from the first change it held.",
            auth,
            errors | {202: ("Released; how many changes were queued.", ref("Released"))},
            tags=(tag,),
        ),
    )


OPERATIONS: Final[tuple[Operation, ...]] = (
    *_BASE_OPERATIONS,
    *_monitor_operations("v1/tenants/{tid}", "function", "monitor"),
    *_monitor_operations("console/tenants/{tid}", "console_api", "console"),
    Operation(
        "GET",
        "console/tenants/{tid}/dead-letters",
        "consoleListDeadLetters",
        "Ranges of the change feed the host's webhook never took after every retry, with the reason.",
        "console_api",
        _CONSOLE_ERRORS | {200: ("Dead letters, oldest first.", ref("DeadLetterList"))},
        tags=("console",),
    ),
    Operation(
        "POST",
        "console/tenants/{tid}/dead-letters/redeliver",
        "consoleRedeliverDeadLetters",
        "Queue every dead letter for delivery again.",
        "console_api",
        _CONSOLE_ERRORS | {202: ("Queued; how many deliveries.", ref("QueuedDeliveries"))},
        tags=("console",),
    ),
    Operation(
        "DELETE",
        "console/tenants/{tid}/dead-letters/{first_sequence}",
        "consoleDropDeadLetter",
        "Forget a dead letter; its changes stay in the pull feed.",
        "console_api",
        _CONSOLE_ERRORS
        | {
            200: ("The dead letter dropped.", ref("DeadLetter")),
            400: ("Not a sequence number.", ERROR),
            404: ("Unknown tenant or dead letter.", ERROR),
        },
        tags=("console",),
    ),
    Operation(
        "GET",
        "console/tenants/{tid}/poison",
        "consoleListPoison",
        "The tenant's jobs on the poison queues (`<queue>-poison`, among the first 32 of each: Storage's "
        "peek): the kind, the reason, when and after how many tries, and the job's ids; and per queue how "
        "many messages it holds, so more waiting behind the first 32 are told.",
        "console_api",
        _CONSOLE_ERRORS | {200: ("The poison messages.", ref("PoisonList"))},
        tags=("console",),
    ),
    Operation(
        "POST",
        "console/tenants/{tid}/poison/{queue}/{poison_id}/redeliver",
        "consoleRedeliverPoison",
        "Put the job back on its queue (it runs again) and off the poison queue.",
        "console_api",
        _CONSOLE_ERRORS
        | {
            202: ("Redelivered.", ref("PoisonMessage")),
            400: ("Unknown queue.", ERROR),
            404: ("Unknown tenant, or no such poison message of the tenant.", ERROR),
        },
        tags=("console",),
    ),
    Operation(
        "DELETE",
        "console/tenants/{tid}/poison/{queue}/{poison_id}",
        "consoleDropPoison",
        "Drop the job from the poison queue.",
        "console_api",
        _CONSOLE_ERRORS
        | {
            200: ("Dropped.", ref("PoisonMessage")),
            400: ("Unknown queue.", ERROR),
            404: ("Unknown tenant, or no such poison message of the tenant.", ERROR),
        },
        tags=("console",),
    ),
)


# What the connector sends the host (HOST_WEBHOOK_URL): batches of changes, signed, retried until a 2xx.
WEBHOOKS: Final[Json] = {
    "changes": {
        "post": {
            "operationId": "hostWebhook",
            "summary": "A batch of one tenant's changes, in feed order, POSTed to the host's webhook URL. "
            "The same batch (same X-Connector-Delivery) is retried with backoff until a 2xx; after the last "
            "attempt it is kept as a dead letter and the changes stay in the pull feed.",
            "parameters": [
                {
                    "name": "X-Connector-Signature",
                    "in": "header",
                    "required": True,
                    "description": '`t=<unix seconds>,v1=<hex HMAC-SHA256 over "<t>.<body>">` with the '
                    "host-webhook-secret; refuse a timestamp more than 300 s away.",
                    "schema": {"type": "string"},
                },
                {
                    "name": "X-Connector-Delivery",
                    "in": "header",
                    "required": True,
                    "description": "`{tenant}:{first}-{last}` sequence numbers: the same on every retry.",
                    "schema": {"type": "string"},
                },
                {
                    "name": "X-Connector-Delivery-Attempt",
                    "in": "header",
                    "required": True,
                    "description": "1 on the first try.",
                    "schema": {"type": "integer", "minimum": 1},
                },
            ],
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref("Delivery")}}},
            "responses": {
                "2XX": {"description": "Taken; the next batch follows."},
                "default": {"description": "Not taken: the batch is sent again later."},
            },
        }
    }
}


def documented_path(route: str) -> str:
    """The route as the document names it: under the prefix, `{tid}` as `{tenant_id}`."""
    parts = route.split("/")
    for index, part in enumerate(parts):
        if part.startswith("{") and part[1:-1] in DOCUMENTED_NAMES:
            parts[index] = "{" + DOCUMENTED_NAMES[part[1:-1]] + "}"
    return f"{ROUTE_PREFIX}/{'/'.join(parts)}"


def _path_parameters(route: str) -> list[Json]:
    names = [part[1:-1] for part in documented_path(route).split("/") if part.startswith("{")]
    return [
        {"name": n, "in": "path", "required": True, "schema": PATH_PARAMETERS.get(n, {"type": "string"})}
        for n in names
    ]


# The generated components named as the API names them (the models' class names say they are bodies).
MODEL_NAMES: Final = {
    "ImportFilterBody": "ImportFilter",
    "LegacyIdBody": "LegacyId",
    "StaffSwitchesBody": "StaffSwitches",
}


def model_schemas() -> Json:
    """Every component: the request bodies (`shared/service/bodies.py`, the appointment's in
    `appointment_bodies.py`), with null allowed wherever a member may be absent, the answers
    (`functions/responses.py`) and the changes (`shared/service/change_types.py`). pydantic is imported
    here, when the document is first asked for."""
    from functions.responses import RESPONSE_MODELS
    from shared.service.appointment_bodies import AppointmentInput
    from shared.service.availability_bodies import AvailabilityQuestion
    from shared.service.bodies import REQUEST_MODELS
    from shared.service.change_types import CHANGE_MODELS
    from shared.service.mail_bodies import MailInput
    from shared.service.task_bodies import TaskInput

    requests = _generated((*REQUEST_MODELS, AppointmentInput, AvailabilityQuestion, MailInput, TaskInput))
    return {
        **_generated(CHANGE_MODELS),
        **_generated(RESPONSE_MODELS),
        **{name: _nulls_as_absent(schema) for name, schema in requests.items()},
    }


def _generated(models: tuple[type[Any], ...]) -> Json:
    import json

    from pydantic.json_schema import models_json_schema

    _, top = models_json_schema(
        [(model, "validation") for model in models], ref_template="#/components/schemas/{model}"
    )
    text = json.dumps(top["$defs"])
    for name, documented in MODEL_NAMES.items():
        text = text.replace(f'"#/components/schemas/{name}"', f'"#/components/schemas/{documented}"')
    schemas: Json = {MODEL_NAMES.get(name, name): schema for name, schema in json.loads(text).items()}
    for schema in schemas.values():
        _untitled(schema)
    return schemas


def _untitled(schema: Any) -> None:
    """Without pydantic's titles (the member names again; a member named `title` stays), and a component
    a model names by hand (`{"x-component": name}`) as its $ref."""
    if isinstance(schema, list):
        for item in schema:
            _untitled(item)
    elif isinstance(schema, dict):
        schema.pop("title", None)
        if "x-component" in schema:
            schema["$ref"] = f"#/components/schemas/{schema.pop('x-component')}"
        for key, value in schema.items():
            if key == "properties":
                for member in value.values():
                    _untitled(member)
            else:
                _untitled(value)


def _nulls_as_absent(schema: Json) -> Json:
    """The schema with null allowed wherever a member may be absent (object members not required)."""
    schema = copy.deepcopy(schema)
    _allow_nulls(schema)
    return schema


def _allow_nulls(schema: Json) -> None:
    for alternative in schema.get("oneOf", []) + schema.get("anyOf", []):
        _allow_nulls(alternative)
    if isinstance(schema.get("items"), dict):
        _allow_nulls(schema["items"])
    required = set(schema.get("required", ()))
    properties = schema.get("properties", {})
    for name, member in list(properties.items()):
        _allow_nulls(member)
        if name in required:
            continue
        kinds = member.get("type")
        if isinstance(kinds, str):
            member["type"] = [kinds, "null"]
        elif isinstance(kinds, list):  # a schema shared by two members is met twice
            member["type"] = kinds if "null" in kinds else [*kinds, "null"]
        elif "enum" in member:
            member["enum"] = member["enum"] if None in member["enum"] else [*member["enum"], None]
        elif {"type": "null"} in member.get("anyOf", []):  # a model's optional member says it already
            continue
        else:
            properties[name] = {"anyOf": [member, {"type": "null"}]}


def _route_pattern(route: str) -> re.Pattern[str]:
    parts = ["[^/]+" if part.startswith("{") else re.escape(part) for part in route.split("/")]
    return re.compile("/".join(parts), re.IGNORECASE)


def allowed_methods(route_path: str) -> list[str]:
    """The methods a documented route takes at this path (after the /api prefix); [] when none matches."""
    path = route_path.strip("/")
    return sorted({op.method for op in OPERATIONS if _route_pattern(op.route).fullmatch(path)})


def _operation_json(op: Operation) -> Json:
    body: Json = {"operationId": op.operation_id, "summary": op.summary, "tags": list(op.tags)}
    parameters = _path_parameters(op.route) + [
        {"name": name, "in": "query", "required": False, "description": text, "schema": schema}
        for name, text, schema in op.query
    ]
    if parameters:
        body["parameters"] = parameters
    if op.request is not None:
        request = op.request if "$ref" in op.request else _nulls_as_absent(op.request)
        body["requestBody"] = {
            "required": op.body_required,
            "content": {op.request_media: {"schema": request}},
        }
    responses: Json = {}
    for status, (text, schema) in sorted(op.responses.items()):
        response: Json = {"description": text}
        if schema is not None:
            media = op.response_media.get(status, "application/json")
            response["content"] = {media: {"schema": schema}}
        responses[str(status)] = response
    body["responses"] = responses
    if op.auth == "function":
        body["security"] = [{"functionKey": []}, {"functionKeyQuery": []}]
    elif op.auth == "console":
        body["security"] = [{"consoleToken": []}]
    elif op.auth == "console_api":
        body["security"] = [{"consoleBearer": []}]
    else:
        body["security"] = []
    return body


@cache
def openapi_document() -> Json:
    paths: Json = {}
    for op in OPERATIONS:
        paths.setdefault(documented_path(op.route), {})[op.method.lower()] = _operation_json(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Microsoft 365 calendar connector",
            "version": "1",
            "description": (
                "The host API of the connector: tenants, staff, appointments, tasks, mail, availability and "
                "the change feed. Host API routes take a function key (`x-functions-key` header or `code` "
                "query parameter). Bad input is answered with a 4xx whose JSON body names the field, and "
                "changes nothing. The field is named by its path in the request body "
                "(`settings.import_filter.categories[3]`, `customers[0].email`; a settings PATCH names "
                "its members `settings.…` too), a path or query parameter by its name (`tenant_id`, "
                "`page_size`), "
                "and a missing or malformed body as `body`. In a request body, `null` is the same as "
                "leaving the member out: its default, or on a PATCH its current value; a required member "
                "that is null is missing. A path no route serves is answered with a JSON 404 (405 with "
                "`Allow` when the path takes other methods)."
            ),
        },
        "paths": paths,
        "webhooks": WEBHOOKS,
        "components": {
            "schemas": {
                **model_schemas(),
            },
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
                "consoleToken": {"type": "apiKey", "in": "query", "name": "token"},
                "consoleBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The token of a console link (the `token` query parameter of its URL).",
                },
            },
        },
    }


def documented_routes() -> set[tuple[str, str]]:
    """(METHOD, route) pairs, for the index contract test."""
    return {(op.method, op.route) for op in OPERATIONS}
