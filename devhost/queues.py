"""Queue triggers against Azure Storage queues (Azurite), with `host.json` semantics.

Per queue-trigger function, one poller:
- creates the queue if missing; receives up to `batchSize` messages at a time, leased for
  `lease` (10 minutes, as the host's queue listener does) and keeps the lease renewed at half of it
  while the invocation runs, so a long job is not redelivered;
- fetches the next batch once in-flight work drops to `newBatchThreshold`, so at most
  `batchSize + newBatchThreshold` messages run at once;
- polls an idle queue with exponential backoff from 100 ms up to `maxPollingInterval`, and goes
  back to fast polling as soon as messages arrive;
- decodes the message as `messageEncoding` says (base64 by default: a message that is not base64
  fails without running the function, and ends in the poison queue like on Azure);
- passes a real `azure.functions.queue.QueueMessage` (id, body, dequeue_count, pop_receipt and
  times), or the body as `str`/`bytes` when the parameter is annotated so;
- deletes the message when the function succeeds; when it fails, makes it visible again after
  `visibilityTimeout`, or, once `dequeue_count >= maxDequeueCount`, copies its original content to
  `<queue>-poison` and deletes it. A message received with a dequeue count already above the
  maximum (a crashed host) goes to the poison queue without running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from azure.functions.queue import QueueMessage as FunctionsQueueMessage
from azure.storage.queue import QueueMessage as StorageQueueMessage
from azure.storage.queue.aio import QueueClient

from devhost.bindings import StorageClients, decode_message
from devhost.indexer import IndexedFunction, QueueTriggerSpec
from devhost.invoker import Invoker
from devhost.settings import MIN_POLLING_INTERVAL, QueueOptions

log = logging.getLogger("devhost.queues")
DEFAULT_LEASE: Final = timedelta(minutes=10)
POISON_SUFFIX: Final = "-poison"


def trigger_value(fn: IndexedFunction, message: FunctionsQueueMessage) -> Any:
    """What the trigger parameter receives: a QueueMessage, or the body for `str`/`bytes` annotations."""
    annotation = fn.trigger_annotation
    if annotation in (str, "str"):
        return message.get_body().decode("utf-8")
    if annotation in (bytes, "bytes"):
        return message.get_body()
    return message


def functions_message(message: StorageQueueMessage, body: bytes) -> FunctionsQueueMessage:
    return FunctionsQueueMessage(  # type: ignore[no-untyped-call]
        id=message.id,
        body=body,
        dequeue_count=message.dequeue_count,
        pop_receipt=message.pop_receipt,
        insertion_time=message.inserted_on,
        expiration_time=message.expires_on,
        time_next_visible=message.next_visible_on,
    )


def manual_message(text: str) -> FunctionsQueueMessage:
    """The message an on-demand (admin API) invocation receives."""
    now = datetime.now(UTC)
    return FunctionsQueueMessage(  # type: ignore[no-untyped-call]
        id=str(uuid.uuid4()),
        body=text.encode("utf-8"),
        dequeue_count=1,
        pop_receipt=None,
        insertion_time=now,
        expiration_time=now + timedelta(days=7),
        time_next_visible=now,
    )


class QueuePoller:
    """Runs one queue-trigger function against its queue."""

    def __init__(
        self,
        fn: IndexedFunction,
        invoker: Invoker,
        storage: StorageClients,
        options: QueueOptions,
        *,
        lease: timedelta = DEFAULT_LEASE,
    ) -> None:
        assert isinstance(fn.trigger, QueueTriggerSpec)
        self.fn = fn
        self.trigger: QueueTriggerSpec = fn.trigger
        self._invoker = invoker
        self._storage = storage
        self._options = options
        self._lease = max(lease, timedelta(seconds=2))
        self._active: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    @property
    def poison_queue(self) -> str:
        return self.trigger.queue_name + POISON_SUFFIX

    async def start(self) -> None:
        await self._storage.queue(self.trigger.connection, self.trigger.queue_name)
        self._loop_task = asyncio.create_task(self._loop(), name=f"queue:{self.fn.name}")

    async def stop_receiving(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None

    async def wait_idle(self, grace: float) -> None:
        """Wait up to `grace` seconds for in-flight messages, then cancel what still runs."""
        if self._active:
            await asyncio.wait(set(self._active), timeout=grace)
        for task in set(self._active):
            task.cancel()
        if self._active:
            await asyncio.wait(set(self._active), timeout=2)

    async def _loop(self) -> None:
        client = await self._storage.queue(self.trigger.connection, self.trigger.queue_name)
        idle = MIN_POLLING_INTERVAL.total_seconds()
        delay = idle
        maximum = self._options.max_polling_interval.total_seconds()
        while True:
            if len(self._active) > self._options.new_batch_threshold:
                await asyncio.wait(set(self._active), return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                messages = [
                    m
                    async for m in client.receive_messages(
                        messages_per_page=self._options.batch_size,
                        max_messages=self._options.batch_size,
                        visibility_timeout=int(self._lease.total_seconds()),
                    )
                ]
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # storage unavailable: log, back off, keep polling
                log.warning(
                    "queue receive failed",
                    extra={
                        "fields": {
                            "function": self.fn.name,
                            "queue": self.trigger.queue_name,
                            "error": f"{type(exc).__name__}: {exc}",
                        }
                    },
                )
                messages = []
            if messages:
                delay = idle
                for message in messages:
                    task = asyncio.create_task(self._process(client, message))
                    self._active.add(task)
                    task.add_done_callback(self._active.discard)
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, maximum)

    async def _renew(self, client: QueueClient, message: StorageQueueMessage, receipt: list[str]) -> None:
        """Keep the message invisible while the invocation runs (renew at half the lease)."""
        seconds = int(self._lease.total_seconds())
        while True:
            await asyncio.sleep(seconds / 2)
            try:
                updated = await client.update_message(
                    message.id, pop_receipt=receipt[0], visibility_timeout=seconds
                )
                receipt[0] = str(updated.pop_receipt)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "queue lease renewal failed",
                    extra={"fields": {"function": self.fn.name, "message_id": message.id, "error": str(exc)}},
                )

    async def _process(self, client: QueueClient, message: StorageQueueMessage) -> None:
        fields = {
            "queue": self.trigger.queue_name,
            "message_id": message.id,
            "dequeue_count": message.dequeue_count,
        }
        receipt = [str(message.pop_receipt)]
        max_dequeue = self._options.max_dequeue_count
        if message.dequeue_count is not None and message.dequeue_count > max_dequeue:
            await self._to_poison(client, message, receipt[0], fields)
            return
        renewal = asyncio.create_task(self._renew(client, message, receipt))
        succeeded = False
        try:
            try:
                body = decode_message(str(message.content), self._options.message_encoding)
            except ValueError as exc:
                log.error(
                    "queue message is not valid %s; the function was not run",
                    self._options.message_encoding,
                    extra={"fields": {"function": self.fn.name, **fields, "error": str(exc)}},
                )
            else:
                result = await self._invoker.invoke(
                    self.fn,
                    trigger_value(self.fn, functions_message(message, body)),
                    reason="message",
                    log_fields=fields,
                )
                succeeded = result.succeeded
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
        try:
            if succeeded:
                await client.delete_message(message.id, receipt[0])
            elif (message.dequeue_count or 0) >= max_dequeue:
                await self._to_poison(client, message, receipt[0], fields)
            else:
                await client.update_message(
                    message.id,
                    pop_receipt=receipt[0],
                    visibility_timeout=int(self._options.visibility_timeout.total_seconds()),
                )
        except Exception as exc:  # the lease may have been lost; the message comes back on its own
            log.warning(
                "queue message completion failed",
                extra={
                    "fields": {"function": self.fn.name, **fields, "error": f"{type(exc).__name__}: {exc}"}
                },
            )

    async def _to_poison(
        self, client: QueueClient, message: StorageQueueMessage, receipt: str, fields: dict[str, Any]
    ) -> None:
        poison = await self._storage.queue(self.trigger.connection, self.poison_queue)
        await poison.send_message(message.content)
        await client.delete_message(message.id, receipt)
        log.warning(
            "message moved to the poison queue",
            extra={"fields": {"function": self.fn.name, **fields, "poison_queue": self.poison_queue}},
        )
