"""The service layer's exceptions, all of them: what the handlers raise to the edges (a `ServiceError`,
which each edge, HTTP or queue, translates), and what the ports raise to the handlers (each adapter
translates its technology's failures into these; the Graph adapter's own are in its `errors`)."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the service layer's exceptions."""


class InvalidInput(ServiceError):
    """Bad input: names the field and the reason (answered as 400/422, nothing changed)."""

    def __init__(self, field: str, reason: str, *, status: int = 400) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.status = status


class NotFound(ServiceError):
    """No `what` has the id `key`; `field` names the request field that gave it (answered as 404)."""

    def __init__(self, what: str, key: str, field: str) -> None:
        super().__init__(f"There is no {what} {key}.")
        self.what = what
        self.key = key
        self.field = field


class Conflict(ServiceError):
    """The request conflicts with the current state (duplicate create, wrong state)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class DependencyUnavailable(ServiceError):
    """Storage, Key Vault or Graph did not answer usably; transient from the caller's view."""

    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(f"{dependency}: {detail}")
        self.dependency = dependency
        self.detail = detail


class PreconditionFailed(ServiceError):
    """An `If-Match` did not hold: the resource changed since the caller read it (answered as 412)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class ConsoleAccessDenied(ServiceError):
    """The console token is missing, forged, expired (401) or for another tenant (403)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# --- What the ports raise (adapters translate their technology's failures into these) ---------------


class StaleWrite(Exception):
    """An optimistic-concurrency write lost the race: re-read and decide again."""


class AlreadyExists(Exception):
    """A create found the key taken."""


class DirectoryTaken(Exception):
    """A tenant claimed a directory (an Entra tenant) that another tenant key holds."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


class ChangeTooLarge(ValueError):
    """An append holding a change over `MAX_CHANGE_CHARS`; nothing of it was appended."""


class TenantAccessError(Exception):
    """Graph refused the tenant itself: consent revoked, app removed, credential invalid or expired."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MailboxUnavailable(Exception):
    """The mailbox refuses the app (no mailbox, an access policy, a deleted user): a person must act."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RateLimited(Exception):
    """Graph throttled (429) or was briefly unavailable (503/504) beyond the adapter's own retries."""

    def __init__(self, retry_after: float, reason: str) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.reason = reason


class DeltaTokenRejected(Exception):
    """Graph no longer knows the stored delta link (410 SyncStateNotFound): read the whole window."""


class SubscriptionGone(Exception):
    """The Graph subscription does not exist any more (expired, removed): create a new one."""


class DeliveryFailed(Exception):
    """The host's webhook did not take a delivery (a non-2xx answer, a timeout, a refused connection)."""

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class EventChanged(Exception):
    """An update's If-Match did not hold: the event changed in Outlook since the connector wrote it."""


class EventMissing(Exception):
    """The event (or occurrence) is not in the calendar any more."""


class EventRejected(Exception):
    """Graph refused the event itself (a 400 on its content): a person must look at the appointment."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SendUncertain(Exception):
    """A send call failed in a way that does not say whether the message left (a 5xx, a timeout, a broken
    connection after the request went out): never send that draft again before a look-up settles it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MailAccessDenied(Exception):
    """Graph refused the mailbox's messages (403): the consent lacks Mail.Send or Mail.ReadWrite, or an
    access policy leaves the mailbox out. A person must act (reauthorize)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DraftMissing(Exception):
    """The draft is not in the mailbox any more (sent meanwhile, or deleted by someone)."""


class MailRejected(Exception):
    """Graph refused the message as it is (a 400 or 413 on its content or recipients): retrying cannot
    help."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TeamsRefused(Exception):
    """Teams refuses the app for this organiser (no application access policy, no licence): a person must
    act. The calendars are not affected."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TodoListMissing(Exception):
    """The To Do list is not in the mailbox any more (deleted or never made): find or make it again."""


class TodoTaskMissing(Exception):
    """The To Do task is not in the list any more (deleted in Outlook, or moved to another list)."""


class TodoRefused(Exception):
    """Graph refused the task or the list as it is, or To Do refused the app for this mailbox (a 400 or
    a 403): retrying cannot help; a person must act. The calendar is not affected."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
