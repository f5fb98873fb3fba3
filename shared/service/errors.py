"""The service layer's exceptions; each edge (HTTP, queue) translates them."""

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
