"""Invoking a user function the way the Python worker does.

- Arguments by binding name: the trigger value, an `Out` per output binding parameter, and
  `context` when the function declares it.
- `async def` functions run on the host's one long-lived event loop, shared by every invocation
  (the worker does the same, and apps cache async SDK clients bound to that loop); plain functions
  run in a thread pool sized by `PYTHON_THREADPOOL_THREAD_COUNT` (default: Python's
  `ThreadPoolExecutor` default, min(32, CPUs + 4), which is what the worker uses on Python 3.9+).
- `functionTimeout` applies: an async invocation is cancelled; a sync one is reported failed and
  left to finish in its thread (Python cannot stop a thread; the real host would recycle the worker).
- Output bindings are written only when the function succeeds.
- Every invocation gets an id and one structured log line (function, id, trigger, outcome, duration);
  log records emitted by the function itself carry the invocation id too.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

import azure.functions as func
from azure.functions import _abc as functions_abc

from devhost.bindings import Out, OutputError, StorageClients, queue_messages
from devhost.indexer import CONTEXT_PARAMETER, RETURN_BINDING, IndexedFunction

log = logging.getLogger("devhost.invoker")
THREAD_COUNT_SETTING: Final = "PYTHON_THREADPOOL_THREAD_COUNT"

current_invocation: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "devhost_invocation_id", default=None
)


class _TraceContext(functions_abc.TraceContext):
    def __init__(self) -> None:
        self._parent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(functions_abc.RetryContext):
    def __init__(self, retry_count: int, max_retry_count: int) -> None:
        self._count = retry_count
        self._max = max_retry_count

    @property
    def retry_count(self) -> int:
        return self._count

    @property
    def max_retry_count(self) -> int:
        return self._max

    @property
    def exception(self) -> Any:
        return None


class InvocationContext(func.Context):
    """What the worker passes as `context`."""

    def __init__(
        self, invocation_id: str, fn: IndexedFunction, retry_count: int = 0, max_retry: int = 0
    ) -> None:
        self._invocation_id = invocation_id
        self._function_name = fn.name
        self._function_directory = fn.function_directory
        self._trace = _TraceContext()
        self._retry = _RetryContext(retry_count, max_retry)
        self._local = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> functions_abc.TraceContext:
        return self._trace

    @property
    def retry_context(self) -> functions_abc.RetryContext:
        return self._retry


@dataclass
class InvocationResult:
    invocation_id: str
    function: str
    succeeded: bool
    duration_ms: float
    http_response: Any = None  # the value of the HTTP output binding, if the function has one
    error: BaseException | None = None
    outputs: dict[str, Any] = field(default_factory=dict)


class InvocationTimeout(Exception):
    """The invocation ran longer than `functionTimeout`."""


def thread_count(settings: Mapping[str, str]) -> int | None:
    raw = settings.get(THREAD_COUNT_SETTING)
    if not raw:
        return None
    count = int(raw)
    if not 1 <= count <= 32:
        raise ValueError(f"{THREAD_COUNT_SETTING} must be between 1 and 32, not {raw}")
    return count


class Invoker:
    """Runs invocations; one per host, used from the host's event loop only."""

    def __init__(
        self,
        storage: StorageClients,
        *,
        function_timeout: timedelta | None,
        message_encoding: str,
        threads: int | None = None,
    ) -> None:
        self._storage = storage
        self._timeout = None if function_timeout is None else function_timeout.total_seconds()
        self._encoding = message_encoding
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="devhost-fn")
        self._in_flight: set[asyncio.Task[InvocationResult]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def invoke(
        self,
        fn: IndexedFunction,
        trigger_value: Any,
        *,
        reason: str,
        retry_count: int = 0,
        max_retry_count: int = 0,
        log_fields: Mapping[str, Any] | None = None,
    ) -> InvocationResult:
        """Run one invocation to its end (tracked, so `drain()` can wait for it)."""
        task = asyncio.ensure_future(
            self._invoke(
                fn,
                trigger_value,
                reason=reason,
                retry_count=retry_count,
                max_retry_count=max_retry_count,
                log_fields=log_fields or {},
            )
        )
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return await task

    async def _invoke(
        self,
        fn: IndexedFunction,
        trigger_value: Any,
        *,
        reason: str,
        retry_count: int,
        max_retry_count: int,
        log_fields: Mapping[str, Any],
    ) -> InvocationResult:
        invocation_id = str(uuid.uuid4())
        outs: dict[str, Out[Any]] = {o.name: Out() for o in fn.out_parameters}
        kwargs: dict[str, Any] = {fn.trigger.arg_name: trigger_value, **outs}
        if fn.wants_context:
            kwargs[CONTEXT_PARAMETER] = InvocationContext(invocation_id, fn, retry_count, max_retry_count)
        token = current_invocation.set(invocation_id)
        started = time.perf_counter()
        result = InvocationResult(invocation_id, fn.name, succeeded=False, duration_ms=0.0)
        try:
            log.info(
                "invocation started",
                extra={
                    "fields": {
                        "function": fn.name,
                        "invocation_id": invocation_id,
                        "trigger": fn.trigger.kind,
                        "reason": reason,
                        **log_fields,
                    }
                },
            )
            value = await self._call(fn, kwargs)
            result.outputs = {name: out.get() for name, out in outs.items() if out.is_set}
            await self._write_outputs(fn, value, result)
            result.succeeded = True
        except asyncio.CancelledError:
            result.error = asyncio.CancelledError("the host stopped during the invocation")
            raise
        except Exception as exc:  # the function's failure is the invocation's outcome
            result.error = exc
        finally:
            current_invocation.reset(token)
            result.duration_ms = round((time.perf_counter() - started) * 1000, 1)
            fields: dict[str, Any] = {
                "function": fn.name,
                "invocation_id": invocation_id,
                "trigger": fn.trigger.kind,
                "reason": reason,
                **log_fields,
                "outcome": "succeeded" if result.succeeded else "failed",
                "duration_ms": result.duration_ms,
            }
            if result.error is not None:
                fields["error"] = f"{type(result.error).__name__}: {result.error}"
                log.error("invocation failed", extra={"fields": fields}, exc_info=result.error)
            else:
                log.info("invocation finished", extra={"fields": fields})
        return result

    async def _call(self, fn: IndexedFunction, kwargs: dict[str, Any]) -> Any:
        if fn.is_async:
            try:
                return await asyncio.wait_for(fn.user_function(**kwargs), self._timeout)
            except TimeoutError as exc:
                raise InvocationTimeout(f"timeout value of {self._timeout} s exceeded by function") from exc
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        future = loop.run_in_executor(self._pool, functools.partial(context.run, fn.user_function, **kwargs))
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._timeout)
        except TimeoutError as exc:
            raise InvocationTimeout(
                f"timeout value of {self._timeout} s exceeded by function (its thread keeps running)"
            ) from exc

    async def _write_outputs(self, fn: IndexedFunction, value: Any, result: InvocationResult) -> None:
        returned = fn.return_binding
        if returned is None and value is not None:
            raise OutputError(f"function {fn.name} without a $return binding returned a non-None value")
        pending: list[tuple[str, str, list[bytes]]] = []
        for spec in fn.outputs:
            bound = value if spec.name == RETURN_BINDING else result.outputs.get(spec.name)
            if spec.kind == "http":
                result.http_response = bound
            elif bound is not None:
                pending.append((spec.connection, spec.queue_name, queue_messages(bound, spec.name)))
        for connection, queue, bodies in pending:
            await self._storage.send(connection, queue, bodies, self._encoding)

    async def drain(self, grace: float) -> bool:
        """Wait for in-flight invocations; cancel async ones still running after `grace` seconds."""
        if not self._in_flight:
            return True
        _, pending = await asyncio.wait(set(self._in_flight), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2)
        return not pending

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
