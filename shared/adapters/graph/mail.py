"""Mail from a staff member's mailbox through Graph (`MailGateway`), as Microsoft documents it:

- a draft: `POST /users/{id}/messages` with the connector's extended property (the host's message id),
  small attachments (`fileAttachment`, base64) in the same request, custom `internetMessageHeaders`;
- larger attachments: `POST /users/{id}/messages/{draft}/attachments/createUploadSession`, then the bytes
  PUT to the session's pre-authenticated `uploadUrl` in ranges (multiples of 320 KiB, under 4 MB each);
  https://learn.microsoft.com/en-us/graph/outlook-large-attachments;
- look-ups: `GET /users/{id}/mailFolders/{drafts|outbox|sentitems}/messages` with
  `$filter=singleValueExtendedProperties/any(ep: ep/id eq '…' and ep/value eq '…')`;
- the send: `POST /users/{id}/messages/{draft}/send`, once, without the SDK's retries (a retried send
  after a 503 is the duplicate this design exists to avoid).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import quote

from shared.adapters.graph.calendar import NO_MAILBOX, NO_USER, GraphPort, user_path
from shared.adapters.graph.client import TenantGraph
from shared.adapters.graph.errors import (
    AccessDenied,
    AuthFailed,
    GraphError,
    GraphNotFound,
    Throttled,
    refusal_reason,
)
from shared.domain.mail import MAIL_PROPERTY_ID, MailAttachment, MailContent, Recipient
from shared.domain.tenants import Tenant
from shared.service import limits
from shared.service.errors import (
    DraftMissing,
    MailAccessDenied,
    MailRejected,
    RateLimited,
    SendUncertain,
    TenantAccessError,
)
from shared.service.ports.mail import MailFolder, MailItem

UPLOAD_CHUNK: Final = 10 * 320 * 1024  # 3.2 MiB: a multiple of 320 KiB under 4 MB, as Graph asks
ITEM_FIELDS: Final = "id,internetMessageId"
_MAILBOX_GONE: Final = NO_USER | NO_MAILBOX


def _people(recipients: Sequence[Recipient]) -> list[dict[str, Any]]:
    return [{"emailAddress": {"name": r.name or r.address, "address": r.address}} for r in recipients]


def file_attachment(attachment: MailAttachment) -> dict[str, Any]:
    body: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": attachment.name,
        "contentType": attachment.content_type,
        "contentBytes": base64.b64encode(attachment.content).decode(),
        "isInline": attachment.is_inline,
    }
    if attachment.content_id:
        body["contentId"] = attachment.content_id
    return body


def draft_payload(message_id: str, content: MailContent, inline: Sequence[MailAttachment]) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "subject": content.subject,
        "body": {"contentType": content.body_type, "content": content.body},
        "toRecipients": _people(content.to),
        "ccRecipients": _people(content.cc),
        "bccRecipients": _people(content.bcc),
        "replyTo": _people(content.reply_to),
        "importance": content.importance,
        "singleValueExtendedProperties": [{"id": MAIL_PROPERTY_ID, "value": message_id}],
    }
    if content.headers:
        payload["internetMessageHeaders"] = [{"name": k, "value": v} for k, v in content.headers]
    if inline:
        payload["attachments"] = [file_attachment(a) for a in inline]
    return payload


def stamped(message_id: str) -> str:
    """The $filter finding the message the connector stamped with `message_id`."""
    value = message_id.replace("'", "''")
    return f"singleValueExtendedProperties/any(ep: ep/id eq '{MAIL_PROPERTY_ID}' and ep/value eq '{value}')"


class GraphMail(GraphPort):
    """`MailGateway` over Graph."""

    def _messages(self, graph_user_id: str, item_id: str | None = None) -> str:
        base = f"{user_path(graph_user_id)}/messages"
        return f"{base}/{quote(item_id, safe='')}" if item_id else base

    async def _request(
        self,
        tenant: Tenant,
        method: str,
        url: str,
        graph_user_id: str,
        *,
        body: Any = None,
        retries: int | None = None,
    ) -> Any:
        graph = await self._graph(tenant)
        try:
            if retries is None:
                return await graph.request_json(method, url, body)
            return await graph.request_json(method, url, body, retries=retries)
        except GraphNotFound as error:
            if "/messages/" in url and error.code.lower() not in _MAILBOX_GONE:
                raise DraftMissing(url) from error
            raise await self._translated(graph, error, graph_user_id) from error
        except AccessDenied as error:
            raise await self._mail_refused(graph, error) from error
        except GraphError as error:
            if 400 <= error.status < 500 and error.status not in (401, 429):
                raise MailRejected(
                    f"Graph refused the message ({error.status} {error.code}: {error.message})"
                ) from error
            raise await self._translated(graph, error, graph_user_id) from error

    async def _mail_refused(self, graph: TenantGraph, error: AccessDenied) -> Exception:
        """A 403 on messages: the tenant refusing the app altogether (the directory says so), or only the
        mail permissions (Mail.Send, Mail.ReadWrite) or an access policy for this mailbox."""
        translated = await self._access_denied(graph, error, "mailbox")
        if isinstance(translated, TenantAccessError):
            return translated
        return MailAccessDenied(f"{error.code}: {error.message}")

    async def find(
        self, tenant: Tenant, graph_user_id: str, message_id: str, folder: MailFolder
    ) -> MailItem | None:
        condition = quote(stamped(message_id), safe="")
        url = (
            f"{user_path(graph_user_id)}/mailFolders/{folder.value}/messages"
            f"?$filter={condition}&$select={ITEM_FIELDS}&$top=1"
        )
        page = await self._request(tenant, "GET", url, graph_user_id)
        for raw in (page or {}).get("value") or ():
            names: tuple[str, ...] = ()
            if folder is MailFolder.DRAFTS:
                listed = await self._request(
                    tenant,
                    "GET",
                    f"{self._messages(graph_user_id, raw['id'])}/attachments?$select=name",
                    graph_user_id,
                )
                names = tuple(str(a.get("name")) for a in (listed or {}).get("value") or ())
            return MailItem(str(raw["id"]), raw.get("internetMessageId"), names)
        return None

    async def create_draft(
        self,
        tenant: Tenant,
        graph_user_id: str,
        message_id: str,
        content: MailContent,
        inline: Sequence[MailAttachment],
    ) -> MailItem:
        raw = await self._request(
            tenant,
            "POST",
            self._messages(graph_user_id),
            graph_user_id,
            body=draft_payload(message_id, content, inline),
        )
        return MailItem(str(raw["id"]), raw.get("internetMessageId"), tuple(a.name for a in inline))

    async def add_attachment(
        self, tenant: Tenant, graph_user_id: str, draft_id: str, attachment: MailAttachment
    ) -> None:
        attachments = f"{self._messages(graph_user_id, draft_id)}/attachments"
        if attachment.size < limits.INLINE_ATTACHMENT_BYTES:
            await self._request(tenant, "POST", attachments, graph_user_id, body=file_attachment(attachment))
            return
        item: dict[str, Any] = {
            "attachmentType": "file",
            "name": attachment.name,
            "size": attachment.size,
            "contentType": attachment.content_type,
            "isInline": attachment.is_inline,
        }
        if attachment.content_id:
            item["contentId"] = attachment.content_id
        session = await self._request(
            tenant, "POST", f"{attachments}/createUploadSession", graph_user_id, body={"AttachmentItem": item}
        )
        await self._upload(await self._graph(tenant), str(session["uploadUrl"]), attachment.content)

    async def _upload(self, graph: TenantGraph, url: str, data: bytes) -> None:
        """PUT the bytes in ranges to the pre-authenticated URL (no Authorization header, as Graph asks)."""
        assert graph.http is not None
        total = len(data)
        for start in range(0, total, UPLOAD_CHUNK):
            chunk = data[start : start + UPLOAD_CHUNK]
            headers = {
                "Content-Length": str(len(chunk)),
                "Content-Range": f"bytes {start}-{start + len(chunk) - 1}/{total}",
            }
            async with graph.gate.hold(url):
                response = await graph.http.put(url, content=chunk, headers=headers)
            if response.status_code == 429:
                raise RateLimited(float(response.headers.get("Retry-After") or 5), "429 on an upload session")
            if response.status_code == 404:
                raise DraftMissing(url)
            if response.status_code >= 400:
                raise RateLimited(5, f"{response.status_code} on an upload session: {response.text[:200]}")

    async def send(self, tenant: Tenant, graph_user_id: str, draft_id: str) -> None:
        graph = await self._graph(tenant)
        url = f"{self._messages(graph_user_id, draft_id)}/send"
        try:
            await graph.request_json("POST", url, None, retries=0)
        except Throttled as error:
            if error.status == 429:
                raise RateLimited(error.retry_after, f"429 {error.code}: {error.message}") from error
            raise SendUncertain(f"{error.status} {error.code}: {error.message}") from error
        except GraphNotFound as error:
            if error.code.lower() in _MAILBOX_GONE:
                raise await self._translated(graph, error, graph_user_id) from error
            raise DraftMissing(draft_id) from error
        except AccessDenied as error:
            raise await self._mail_refused(graph, error) from error
        except AuthFailed as error:
            raise TenantAccessError(refusal_reason(error)) from error
        except GraphError as error:
            if error.status == 0 or error.status >= 500:  # a timeout, a broken connection, a 5xx
                raise SendUncertain(f"{error.status} {error.code}: {error.message}") from error
            if 400 <= error.status < 500:  # refused as it is (too many recipients): nothing was sent
                raise MailRejected(
                    f"Graph refused the send ({error.status} {error.code}: {error.message})"
                ) from error
            raise await self._translated(graph, error, graph_user_id) from error

    async def delete(self, tenant: Tenant, graph_user_id: str, item_id: str) -> None:
        try:
            await self._request(tenant, "DELETE", self._messages(graph_user_id, item_id), graph_user_id)
        except DraftMissing:
            return
