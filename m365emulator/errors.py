"""Errors the emulator answers with, in the real services' envelopes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class GraphError(Exception):
    """A Graph error: `{"error": {"code", "message", "innerError"}}` with an HTTP status.

    Raise it anywhere below a Graph route; the server renders it (with `innerError.request-id` and
    `date`) and adds `headers` (for example `Retry-After`).
    """

    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.status} {self.code}: {self.message}")

    def body(self, request_id: str, date: str) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {"request-id": request_id, "client-request-id": request_id, "date": date},
            }
        }


def not_found(item: str = "The specified object was not found in the store.") -> GraphError:
    return GraphError(404, "ErrorItemNotFound", item)


def invalid_request(message: str, code: str = "ErrorInvalidRequest") -> GraphError:
    return GraphError(400, code, message)
