"""HTTP edge helpers: JSON in and out, and the one mapping from service errors to responses."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any, Final

import azure.functions as func

from functions.heap import settle
from shared import telemetry
from shared.bootstrap import container
from shared.observability import bound, get_logger
from shared.service.errors import (
    Conflict,
    DependencyUnavailable,
    Gone,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    StaleWrite,
    TenantAccessError,
)

log = get_logger("http")
MAX_BODY_BYTES: Final = 1_000_000
JSON_TYPE: Final = "application/json"

Handler = Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]
Endpoint = Callable[[func.HttpRequest, func.Context], Awaitable[func.HttpResponse]]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":"), default=str),
        status_code=status,
        mimetype=JSON_TYPE,
        charset="utf-8",
        headers=headers,
    )


def error_response(status: int, code: str, message: str, field: str | None = None) -> func.HttpResponse:
    error: dict[str, str] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return json_response({"error": error}, status)


def read_json_object(
    req: func.HttpRequest, root: str = "", *, max_bytes: int = MAX_BODY_BYTES
) -> dict[str, Any]:
    """The request body as a JSON object, or InvalidInput naming `body` (or the member, by its path under
    `root`, whose text is no Unicode)."""
    raw = req.get_body() or b""
    if len(raw) > max_bytes:
        raise InvalidInput("body", f"larger than {max_bytes} bytes", status=413)
    if not raw.strip():
        raise InvalidInput("body", "a JSON object is required")
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInput("body", f"malformed JSON ({error})") from error
    except RecursionError:  # the parser recurses per level: thousands of nested arrays exhaust the stack
        raise InvalidInput("body", "nested too deeply") from None
    if not isinstance(value, dict):
        raise InvalidInput("body", "must be a JSON object")
    _require_unicode(value, root)
    return value


def _require_unicode(document: dict[str, Any], root: str) -> None:
    """JSON can escape half of a surrogate pair (`"\\ud800"`); a string holding one is no Unicode text, and
    neither Table Storage nor Graph can take it. The first such member, in document order, is named."""
    pending: list[tuple[str, Any]] = [(root, document)]
    while pending:  # iterative: the parser admits nesting deeper than a recursive walk could follow
        path, value = pending.pop()
        if isinstance(value, str):
            if not _is_unicode(value):
                raise InvalidInput(path or "body", "is not valid Unicode text (it holds a lone surrogate)")
        elif isinstance(value, dict):
            for name in value:
                if not _is_unicode(name):
                    raise InvalidInput(path or "body", "has a member name that is not valid Unicode text")
            pending += reversed(
                [(f"{path}.{name}" if path else name, member) for name, member in value.items()]
            )
        elif isinstance(value, list):
            pending += reversed([(f"{path}[{index}]", item) for index, item in enumerate(value)])


def _is_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_optional_json_object(req: func.HttpRequest) -> dict[str, Any]:
    """The body as a JSON object, or {} when there is none (actions whose fields are all optional)."""
    return read_json_object(req) if (req.get_body() or b"").strip() else {}


def read_settings_patch(req: func.HttpRequest) -> dict[str, Any]:
    """A settings PATCH: its members are named `settings.…` in errors, as in a tenant's create."""
    return read_json_object(req, root="settings")


def _unreachable(error: Exception) -> bool:
    """An Azure SDK request that got no answer (connection refused or dropped), as while storage restarts
    or fails over: transient, so a 503 the caller retries, never a bare 500. Imported only once something
    failed, so the cold start does not load azure-core."""
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    return isinstance(error, ServiceRequestError | ServiceResponseError)


def handles_errors(handler: Handler) -> Endpoint:
    """Translate service errors into 4xx/503 JSON; never let one become a bare 500. The worker passes
    `context`, whose invocation id is bound into every log line of the call."""

    async def wrapper(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        container()  # the worker's first call sets telemetry up before its span opens, not inside it
        with (
            bound(function=handler.__name__, invocation_id=context.invocation_id),
            telemetry.http_function(handler.__name__, telemetry.invocation_parent(context)),
        ):
            try:
                return await handler(req)
            except InvalidInput as error:
                return error_response(error.status, "invalid_input", error.reason, error.field)
            except NotFound as error:
                return error_response(404, "not_found", str(error), error.field)
            except Conflict as error:
                return error_response(409, "conflict", error.reason, error.field)
            except PreconditionFailed as error:
                return error_response(412, "precondition_failed", error.reason, error.field)
            except Gone as error:
                return error_response(410, "gone", error.reason, error.field)
            except TenantAccessError as error:  # consent revoked or app removed, before a job noticed it
                log.warning("Microsoft 365 refused the tenant: %s", error.reason)
                return error_response(
                    409,
                    "conflict",
                    f"Microsoft 365 refused access to this tenant ({error.reason}); reauthorize it",
                    "tenant_id",
                )
            except StaleWrite as error:  # a race the service did not settle itself: the caller may retry
                log.warning("concurrent change lost a race: %s", error)
                return error_response(409, "conflict", "the resource changed concurrently; retry")
            except DependencyUnavailable as error:
                log.warning("dependency unavailable: %s", error)
                return error_response(
                    503, "dependency_unavailable", f"{error.dependency} did not answer; retry later"
                )
            except Exception as error:
                if not _unreachable(error):
                    raise
                log.warning("an Azure service could not be reached: %s", error)
                return error_response(
                    503, "dependency_unavailable", "Azure Storage or Key Vault did not answer; retry later"
                )
            finally:
                settle(handler.__name__)  # once per function and worker: see functions/heap.py

    # Not functools.wraps: the worker reads the wrapper's own signature (req, context), not the handler's.
    functools.update_wrapper(
        wrapper, handler, assigned=("__module__", "__name__", "__qualname__", "__doc__"), updated=()
    )
    del wrapper.__wrapped__  # type: ignore[attr-defined]  # set by update_wrapper; signature() would follow it
    return wrapper
