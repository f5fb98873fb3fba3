"""Output bindings (`func.Out`) and the storage clients the queue trigger and queue output share.

Queue output values follow the worker's `QueueMessageOutConverter`: a `str`, `bytes` or
`QueueMessage` is one message, an iterable of them is one message per item. A `dict` (or a dict
item) is sent as JSON here; the real worker has no such case, so the host logs a warning (a dict is
iterable: the real worker would try to send its keys). Messages are written only when the function
succeeds, encoded as `host.json` `messageEncoding` says (base64 by default, as
`TextBase64EncodePolicy` does), and the queue is created if it does not exist.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any, Final, Generic, TypeVar

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from devhost.settings import ConfigError

QUEUE_API_VERSION: Final = "2025-11-05"  # the newest Azurite 3.35 accepts
log = logging.getLogger("devhost.bindings")

T = TypeVar("T")


class Out(func.Out[T], Generic[T]):
    """The value holder passed for an output binding parameter."""

    def __init__(self) -> None:
        self._value: T | None = None
        self._is_set = False

    def set(self, val: T) -> None:
        self._value = val
        self._is_set = True

    def get(self) -> T:
        return self._value  # type: ignore[return-value]

    @property
    def is_set(self) -> bool:
        return self._is_set


class OutputError(Exception):
    """An output binding value cannot be converted (the invocation fails, as in the worker)."""


def _one_message(item: Any, binding: str) -> bytes:
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, bytes | bytearray):
        return bytes(item)
    if isinstance(item, func.QueueMessage):
        return item.get_body()
    if isinstance(item, Mapping):
        log.warning(
            "queue output %s: a dict was sent as JSON; the real Python worker does not accept a dict "
            "(pass json.dumps(value))",
            binding,
        )
        return json.dumps(item).encode("utf-8")
    raise OutputError(
        f"queue output {binding}: cannot send a {type(item).__name__} (use str, bytes or a list)"
    )


def queue_messages(value: Any, binding: str) -> list[bytes]:
    """The messages an output binding value stands for (None: no message)."""
    if value is None:
        return []
    if isinstance(value, str | bytes | bytearray | func.QueueMessage | Mapping):
        return [_one_message(value, binding)]
    if isinstance(value, Iterable):
        return [_one_message(item, binding) for item in value]
    raise OutputError(f"queue output {binding}: cannot send a {type(value).__name__}")


def encode_message(body: bytes, encoding: str) -> str:
    """What goes on the wire for a message body (host.json messageEncoding)."""
    if encoding == "base64":
        return base64.b64encode(body).decode("ascii")
    return body.decode("utf-8")


def decode_message(content: str, encoding: str) -> bytes:
    """The message body from the wire; raises ValueError when it is not valid base64."""
    if encoding == "base64":
        return base64.b64decode(content.encode("ascii"), validate=True)
    return content.encode("utf-8")


class StorageClients:
    """Async queue clients per connection setting, built once, on the host's event loop."""

    def __init__(self, settings: Mapping[str, str] | None = None) -> None:
        self._settings = settings
        self._services: dict[str, QueueServiceClient] = {}
        self._queues: dict[tuple[str, str], QueueClient] = {}
        self._created: set[tuple[str, str]] = set()
        self._lock = asyncio.Lock()

    def connection_string(self, connection: str) -> str:
        settings = os.environ if self._settings is None else self._settings
        value = settings.get(connection) or settings.get(f"AzureWebJobs{connection}")
        if value:
            return value
        if any(k.startswith(f"{connection}__") for k in settings):
            raise ConfigError(
                f"connection {connection!r} is identity-based ({connection}__...); the local host needs a "
                "connection string (UseDevelopmentStorage=true or Azurite's explicit one)"
            )
        raise ConfigError(f"connection {connection!r}: app setting {connection} is not set")

    def service(self, connection: str) -> QueueServiceClient:
        client = self._services.get(connection)
        if client is None:
            client = QueueServiceClient.from_connection_string(
                self.connection_string(connection),
                api_version=QUEUE_API_VERSION,
                use_env_settings=False,  # local Azurite only: no proxy or netrc lookup per request
            )
            self._services[connection] = client
        return client

    async def queue(self, connection: str, name: str) -> QueueClient:
        """A client for the queue (raw text: the host encodes and decodes), created if missing."""
        key = (connection, name)
        client = self._queues.get(key)
        if client is None:
            client = self.service(connection).get_queue_client(name)
            self._queues[key] = client
        if key not in self._created:
            async with self._lock:
                if key not in self._created:
                    with contextlib.suppress(ResourceExistsError):
                        await client.create_queue()
                    self._created.add(key)
        return client

    async def send(self, connection: str, queue: str, bodies: Iterable[bytes], encoding: str) -> None:
        client = await self.queue(connection, queue)
        for body in bodies:
            await client.send_message(encode_message(body, encoding))

    async def close(self) -> None:
        for queue in self._queues.values():
            await queue.close()
        for service in self._services.values():
            await service.close()
        self._queues.clear()
        self._services.clear()
