"""Graph's mail routes over the mail store (README "Mail"): drafts, reads with `$filter` on an
extended property, send, attachments, `sendMail` (contract §9), each with its documented permission."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from m365emulator.calendar.query import (
    Record,
    apply_select,
    compile_filter,
    ext_key,
    parse_expand,
    parse_select,
)
from m365emulator.directory import User
from m365emulator.errors import GraphError
from m365emulator.graph import emulator_of, json_body, mailbox_user, param, respond
from m365emulator.mail.model import (
    WELL_KNOWN,
    Attachment,
    MailStore,
    Message,
    folder_id,
    invalid_recipients,
    item_not_found,
    message_too_large,
)
from m365emulator.odata import decode_token, encode_token, graph_datetime

#: Application permissions per operation, from each page's permission table (README "Mail").
READ = ("Mail.ReadBasic.All", "Mail.ReadBasic", "Mail.Read", "Mail.ReadWrite")
WRITE = ("Mail.ReadWrite",)
SEND = ("Mail.Send",)

#: Properties a create or PATCH may set (message resource, writable ones the emulator keeps).
WRITABLE = {
    "subject",
    "body",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "importance",
    "internetMessageHeaders",
    "categories",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "flag",
    "from",
}
IMPORTANCE = {"low", "normal", "high"}


def store_of(request: web.Request) -> MailStore:
    return emulator_of(request).mail


# --- rendering --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class View:
    immutable_ids: bool
    select: frozenset[str] | None
    expand_ext: frozenset[str] | None
    ext_all: bool

    @classmethod
    def of(cls, request: web.Request) -> View:
        ids, everything = parse_expand(request.query.get("$expand"))
        return cls(
            request["prefer"].get("idtype", "").lower() == "immutableid",
            parse_select(request.query.get("$select")),
            ids,
            everything,
        )


def _address(user: User) -> dict[str, Any]:
    return {"emailAddress": {"name": user.display_name, "address": user.mail or user.upn}}


def render(message: Message, owner: User, view: View) -> dict[str, Any]:
    f = message.fields
    given = f.get("body")
    body: dict[str, Any] = given if isinstance(given, dict) else {"contentType": "text", "content": ""}
    content = str(body.get("content") or "")
    sent = graph_datetime(message.sent) if message.sent else None
    out: dict[str, Any] = {
        "@odata.etag": f'W/"{message.change_key}"',
        "id": message.immutable_id if view.immutable_ids else message.rest_id,
        "createdDateTime": graph_datetime(message.created),
        "lastModifiedDateTime": graph_datetime(message.modified),
        "changeKey": message.change_key,
        "categories": list(f.get("categories") or []),
        "receivedDateTime": sent or graph_datetime(message.created),
        "sentDateTime": sent,
        "hasAttachments": any(not a.is_inline for a in message.attachments),
        "internetMessageId": message.internet_message_id,
        "subject": f.get("subject") or "",
        "bodyPreview": content[:255],
        "importance": f.get("importance") or "normal",
        "parentFolderId": folder_id(message.mailbox, message.folder),
        "conversationId": message.conversation_id,
        "isDeliveryReceiptRequested": bool(f.get("isDeliveryReceiptRequested")),
        "isReadReceiptRequested": bool(f.get("isReadReceiptRequested")),
        "isRead": True,
        "isDraft": message.is_draft,
        "inferenceClassification": "focused",
        "body": {"contentType": str(body.get("contentType") or "text").lower(), "content": content},
        "sender": f.get("from") or _address(owner),
        "from": f.get("from") or _address(owner),
        "toRecipients": list(f.get("toRecipients") or []),
        "ccRecipients": list(f.get("ccRecipients") or []),
        "bccRecipients": list(f.get("bccRecipients") or []),
        "replyTo": list(f.get("replyTo") or []),
        "flag": f.get("flag") or {"flagStatus": "notFlagged"},
    }
    if view.select is not None and "internetmessageheaders" in view.select:
        out["internetMessageHeaders"] = list(f.get("internetMessageHeaders") or [])
    out = apply_select(out, view.select)
    if view.expand_ext is not None:
        out["singleValueExtendedProperties"] = [
            {"id": given, "value": value}
            for key, (given, value) in message.ext.items()
            if view.ext_all or key in view.expand_ext
        ]
    return out


# --- parsing ----------------------------------------------------------------------------------------


def _fields(body: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    out = dict(base or {})
    for key, value in body.items():
        if key in WRITABLE:
            out[key] = value
    importance = out.get("importance")
    if importance is not None and str(importance).lower() not in IMPORTANCE:
        raise GraphError(400, "ErrorInvalidRequest", f"Invalid value '{importance}' for importance.")
    for kind in ("toRecipients", "ccRecipients", "bccRecipients", "replyTo"):
        entries = out.get(kind)
        if entries is not None and not isinstance(entries, list):
            raise GraphError(400, "ErrorInvalidRequest", f"'{kind}' must be a collection of recipients.")
    return out


def _ext(body: dict[str, Any], base: dict[str, tuple[str, str]] | None = None) -> dict[str, tuple[str, str]]:
    out = dict(base or {})
    for prop in body.get("singleValueExtendedProperties") or []:
        if not isinstance(prop, dict) or not isinstance(prop.get("id"), str) or "value" not in prop:
            raise GraphError(400, "ErrorInvalidExtendedProperty", "The extended property is not valid.")
        out[ext_key(prop["id"])] = (prop["id"], str(prop["value"]))
    return out


def _attachment(raw: Any, limit: int, now: Any) -> Attachment:
    if not isinstance(raw, dict):
        raise GraphError(400, "ErrorInvalidRequest", "The attachment is not valid.")
    kind = str(raw.get("@odata.type") or "#microsoft.graph.fileAttachment").lstrip("#").lower()
    if kind != "microsoft.graph.fileattachment":
        raise GraphError(400, "ErrorInvalidRequest", f"Only file attachments are kept, not '{kind}'.")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise GraphError(400, "ErrorInvalidRequest", "The attachment needs a name.")
    try:
        content = base64.b64decode(str(raw.get("contentBytes") or ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise GraphError(400, "ErrorInvalidRequest", "contentBytes is not a valid base64 string.") from exc
    if len(content) >= limit:
        raise GraphError(
            413,
            "ErrorRequestEntityTooLarge",
            f"The attachment is {len(content)} bytes; one request adds an attachment under {limit} bytes. "
            "Attach larger files through an upload session.",
        )
    return Attachment(
        id="AAMkADAt" + uuid.uuid4().hex,
        name=name,
        content_type=str(raw.get("contentType") or "application/octet-stream"),
        content=content,
        is_inline=bool(raw.get("isInline")),
        content_id=raw.get("contentId") if isinstance(raw.get("contentId"), str) else None,
        modified=now,
    )


def add_attachment(store: MailStore, message: Message, attachment: Attachment) -> None:
    if message.size() + attachment.size > store.settings.mail_message_max_bytes:
        raise message_too_large(store.settings.mail_message_max_bytes)
    message.attachments.append(attachment)
    message.touch(store.clock.now())


def _folder(mailbox: str, ref: str) -> str:
    lowered = ref.lower()
    if lowered in WELL_KNOWN:
        return lowered
    for name in WELL_KNOWN:
        if folder_id(mailbox, name) == ref:
            return name
    raise item_not_found()


# --- handlers ---------------------------------------------------------------------------------------


async def create_draft(request: web.Request) -> web.Response:
    user = mailbox_user(request, request.match_info["user"], WRITE)
    body = await json_body(request)
    store = store_of(request)
    domain = (user.mail or user.upn).rpartition("@")[2] or "emulator.example"
    attachments = [
        _attachment(a, store.settings.mail_attachment_post_max_bytes, store.clock.now())
        for a in body.get("attachments") or []
    ]
    message = store.keep(store.new(user.id, "drafts", _fields(body), _ext(body), domain))
    for attachment in attachments:
        add_attachment(store, message, attachment)
    return respond(render(message, user, View.of(request)), 201)


async def get_message(request: web.Request) -> web.Response:
    user = mailbox_user(request, request.match_info["user"], READ)
    message = store_of(request).get(user.id, request.match_info["mid"])
    return respond(render(message, user, View.of(request)))


async def update_message(request: web.Request) -> web.Response:
    user = mailbox_user(request, request.match_info["user"], WRITE)
    store = store_of(request)
    message = store.get(user.id, request.match_info["mid"])
    body = await json_body(request)
    message.fields = _fields(body, message.fields)
    message.ext = _ext(body, message.ext)
    message.touch(store.clock.now())
    return respond(render(message, user, View.of(request)))


async def delete_message(request: web.Request) -> web.Response:
    user = mailbox_user(request, request.match_info["user"], WRITE)
    store = store_of(request)
    store.delete(store.get(user.id, request.match_info["mid"]))
    return web.Response(status=204)


async def list_messages(request: web.Request) -> web.Response:
    user = mailbox_user(request, request.match_info["user"], READ)
    store = store_of(request)
    folder = _folder(user.id, request.match_info["folder"]) if "folder" in request.match_info else None
    view = View.of(request)
    full = View(view.immutable_ids, None, None, False)
    matches = sorted(store.in_mailbox(user.id, folder), key=lambda m: m.sent or m.created, reverse=True)
    if request.query.get("$filter"):
        predicate = compile_filter(request.query["$filter"])
        matches = [
            m
            for m in matches
            if predicate(Record(lambda m=m: render(m, user, full), m.ext))  # type: ignore[misc]
        ]
    try:
        top = max(1, min(1000, int(request.query.get("$top") or 10)))
    except ValueError as exc:
        raise GraphError(400, "BadRequest", "Invalid value for $top.") from exc
    state = decode_token(request.query.get("$skiptoken", "")) if request.query.get("$skiptoken") else None
    skip = int(state.get("skip", 0)) if state else 0
    page = matches[skip : skip + top]
    out: dict[str, Any] = {"value": [render(m, user, view) for m in page]}
    if skip + top < len(matches):
        query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
        query["$skiptoken"] = encode_token({"skip": skip + top})
        out["@odata.nextLink"] = str(request.url.with_query(query))
    return respond(out)


def deliver(request: web.Request, user: User, message: Message, via: str) -> list[tuple[str, str]]:
    """Check the sending limits, then deliver: a copy recorded per recipient, and an item in the Inbox
    of each recipient who is a mailbox of the sender's tenant. Returns the recipients."""
    store = store_of(request)
    recipients = message.recipients()
    if not recipients:
        raise invalid_recipients()
    store.limits.check(user.id, len(recipients))
    now = store.clock.now()
    message.sent = now
    directory = emulator_of(request).directory
    from_line = message.fields.get("from") or _address(user)
    for address in dict.fromkeys(a for _, a in recipients):
        recipient = directory.user_by_address(user.tenant_id, address)
        if recipient is not None and recipient.mailbox_enabled:
            store.copy_to(message, from_line, recipient.id, "inbox")
    sender = user.mail or user.upn
    for kind, address in recipients:
        store.deliveries.append(
            {
                "id": str(uuid.uuid4()),
                "tenant_id": user.tenant_id,
                "mailbox": user.id,
                "sender": sender,
                "recipient": address,
                "recipient_type": {"toRecipients": "to", "ccRecipients": "cc", "bccRecipients": "bcc"}[kind],
                "to": [a for k, a in recipients if k == "toRecipients"],
                "cc": [a for k, a in recipients if k == "ccRecipients"],
                "subject": message.fields.get("subject") or "",
                "internet_message_id": message.internet_message_id,
                "extended_properties": {
                    given: value for given, value in (message.ext if message else {}).values()
                },
                "attachments": [
                    {"name": a.name, "size": a.size, "is_inline": a.is_inline, "content_id": a.content_id}
                    for a in message.attachments
                ],
                "sent_at": graph_datetime(now),
                "via": via,
                "client_id": request["claims"].client_id,
            }
        )
    return recipients


async def send_draft(request: web.Request) -> web.Response:
    user = mailbox_user(request, request.match_info["user"], SEND)
    store = store_of(request)
    message = store.get(user.id, request.match_info["mid"])
    if not message.is_draft:
        # Sending an item that is not a draft: Exchange answers it as not found [I:rlrghb/olkcli#118].
        raise item_not_found()
    deliver(request, user, message, "send")
    store.move(message, "sentitems")
    return web.Response(status=202)


async def add_attachment_route(request: web.Request) -> web.Response:
    user = mailbox_user(request, request.match_info["user"], WRITE)
    store = store_of(request)
    message = store.get(user.id, request.match_info["mid"])
    attachment = _attachment(
        await json_body(request), store.settings.mail_attachment_post_max_bytes, store.clock.now()
    )
    add_attachment(store, message, attachment)
    out = attachment.to_json()
    out["lastModifiedDateTime"] = graph_datetime(attachment.modified)
    return respond(out, 201)


async def list_attachments(request: web.Request) -> web.Response:
    user = mailbox_user(request, request.match_info["user"], READ)
    message = store_of(request).get(user.id, request.match_info["mid"])
    select = parse_select(request.query.get("$select"))
    value = []
    for a in message.attachments:
        item = a.to_json(with_content=select is None or "contentbytes" in select)
        item["lastModifiedDateTime"] = graph_datetime(a.modified)
        # A derived type keeps its @odata.type under $select.
        value.append({"@odata.type": item["@odata.type"], **apply_select(item, select)})
    return respond({"value": value})


async def send_mail(request: web.Request) -> web.Response:
    """`sendMail` (contract §9): 202 and nothing on the wire; recorded in the outbox and delivered."""
    emu = emulator_of(request)
    user = mailbox_user(request, request.match_info["user"], SEND)
    if request.content_type == "text/plain":
        raw = await request.read()
        try:
            mime = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise GraphError(
                400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content."
            ) from exc
        record: dict[str, Any] = {"mime": mime.decode("utf-8", "replace"), "message": None, "recipients": []}
        save = True
    else:
        body = await json_body(request)
        given = param(body, "message")
        if not isinstance(given, dict):
            raise GraphError(400, "ErrorInvalidParameter", "The value of the parameter 'Message' is empty.")
        save = str(param(body, "saveToSentItems", True)).lower() != "false"
        store = emu.mail
        fields = _fields(given)
        attachments = [
            _attachment(a, store.settings.mail_attachment_post_max_bytes, store.clock.now())
            for a in given.get("attachments") or []
        ]
        domain = (user.mail or user.upn).rpartition("@")[2] or "emulator.example"
        message = store.new(user.id, "sentitems", fields, _ext(given), domain)
        message.attachments.extend(attachments)
        recipients = deliver(request, user, message, "sendMail")
        if save:
            store.keep(message)
        record = {"mime": None, "message": given, "recipients": [a for _, a in recipients]}
    record.update(
        {
            "id": str(uuid.uuid4()),
            "tenant_id": user.tenant_id,
            "user_id": user.id,
            "from": user.mail or user.upn,
            "save_to_sent_items": save,
            "sent_at": graph_datetime(emu.clock.now()),
            "request_id": request.get("request_id"),
            "client_id": request["claims"].client_id,
        }
    )
    emu.outbox.append(record)
    return web.Response(status=202)


def add_routes(app: web.Application) -> None:
    base = "/v1.0/users/{user}"
    app.router.add_post(base + "/sendMail", send_mail)
    app.router.add_post(base + "/microsoft.graph.sendMail", send_mail)
    app.router.add_post(base + "/messages", create_draft)
    app.router.add_get(base + "/messages", list_messages)
    app.router.add_get(base + "/mailFolders/{folder}/messages", list_messages)
    for prefix in (base + "/messages/{mid}", base + "/mailFolders/{folder}/messages/{mid}"):
        app.router.add_get(prefix, get_message)
        app.router.add_patch(prefix, update_message)
        app.router.add_delete(prefix, delete_message)
        app.router.add_post(prefix + "/send", send_draft)
        app.router.add_post(prefix + "/microsoft.graph.send", send_draft)
        app.router.add_post(prefix + "/attachments", add_attachment_route)
        app.router.add_get(prefix + "/attachments", list_attachments)
