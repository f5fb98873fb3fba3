"""Graph failures as a small hierarchy, translated once from the SDK's exceptions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class GraphError(Exception):
    """Graph answered with an error status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class Throttled(GraphError):
    """429, 503 or 504: `retry_after` seconds (5 when Graph named none); `scope` is Graph's
    `x-ms-throttle-scope` when it said which limit was hit (`Tenant_Application/ReadWrite/{app}/{tenant}`)."""

    def __init__(
        self, status: int, code: str, message: str, retry_after: float, scope: str | None = None
    ) -> None:
        super().__init__(status, code, message)
        self.retry_after = retry_after
        self.scope = scope


class GraphNotFound(GraphError):
    """404: the user, event or subscription is not there."""


class GraphPreconditionFailed(GraphError):
    """412: an If-Match (a change key) did not hold."""


class AccessDenied(GraphError):
    """403 on one resource (an application access policy, a missing permission)."""


class AuthFailed(GraphError):
    """The tenant's token could not be had, or Graph rejected it (401)."""


TOKEN_REQUEST_FAILED = "token_request_failed"  # noqa: S105 - the code of a refused token request


def refusal_reason(error: GraphError) -> str:
    """Why the tenant refuses the app, in words for the tenant's `last_error` and the feed. A 401 from
    Graph has already met a new token (`client.py`): the tenant's authentication failed."""
    if isinstance(error, AuthFailed) and error.code == TOKEN_REQUEST_FAILED:
        return f"Entra refused the app's token request: {error.message}"
    if isinstance(error, AuthFailed):
        return (
            f"authentication failed: Microsoft Graph refused a newly issued token for this tenant "
            f"({error.status} {error.code}: {error.message}); an administrator must check the app "
            "in Entra (a disabled service principal, a Conditional Access policy for workload "
            "identities) and reauthorize"
        )
    return f"{error.code}: {error.message}"


class SyncStateLost(GraphError):
    """A delta token Graph no longer knows (410 SyncStateNotFound, resyncRequired)."""


SYNC_STATE_CODES = {"syncstatenotfound", "resyncrequired", "syncstateinvalid"}


def classify(status: int, code: str, message: str, headers: dict[str, Any] | None = None) -> GraphError:
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    lowered = code.lower()
    if status == 410 or lowered in SYNC_STATE_CODES:
        return SyncStateLost(status, code, message)
    if status in (429, 503, 504):
        retry_after = _retry_after(headers.get("retry-after"))
        scope = headers.get("x-ms-throttle-scope")
        return Throttled(status, code, message, retry_after, str(scope) if scope else None)
    if status == 401:
        return AuthFailed(status, code, message)
    if status == 403:
        return AccessDenied(status, code, message)
    if status == 404:
        return GraphNotFound(status, code, message)
    if status == 412:
        return GraphPreconditionFailed(status, code, message)
    return GraphError(status, code, message)


def from_answer(status: int, reason: str, body: bytes, headers: Mapping[str, str]) -> GraphError:
    """Graph's error answer (`{"error": {"code", "message"}}`); a body that is not (a gateway's HTML page):
    `unknown` and the status line."""
    code, message = "unknown", f"Graph answered {status} {reason}".strip()
    try:
        detail: Any = json.loads(body).get("error") if body else None
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, dict):
        code = str(detail.get("code") or code)
        message = str(detail.get("message") or message)
    return classify(status, code, message, dict(headers))


def _retry_after(value: Any) -> float:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return 5.0


def from_sdk(error: BaseException) -> GraphError:
    """Translate kiota's ODataError / APIError and azure-identity's auth errors."""
    from azure.core.exceptions import ClientAuthenticationError

    if isinstance(error, GraphError):
        return error
    if isinstance(error, ClientAuthenticationError):
        return AuthFailed(401, TOKEN_REQUEST_FAILED, _first_line(str(error.message or error)))
    status = int(getattr(error, "response_status_code", 0) or 0)
    detail = getattr(error, "error", None)
    code = str(getattr(detail, "code", "") or "unknown")
    message = str(getattr(detail, "message", "") or error)
    headers = getattr(error, "response_headers", None) or {}
    return classify(status, code, message, dict(headers))


def _first_line(text: str) -> str:
    return text.replace("\r", "").split("\n", 1)[0][:300]
