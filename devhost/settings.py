"""Local settings (`local.settings.json` shape) and `host.json`, read once at start-up.

- `LocalSettings`: the app settings (`Values`), the function keys and the master key. Missing keys are
  generated (and reported as generated, so the caller can print them).
- `HostConfig`: what the host reads from `host.json`: the HTTP route prefix, the queue options with
  the documented defaults, `functionTimeout`.
- `resolve_expression`: `%NAME%` binding expressions, resolved from app settings as the host does.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

DEFAULT_ROUTE_PREFIX: Final = "api"
DEFAULT_FUNCTION_TIMEOUT: Final = timedelta(minutes=30)  # Flex Consumption's default
DEFAULT_FUNCTION_KEY_NAME: Final = "default"
MAX_QUEUE_BATCH_SIZE: Final = 32
MIN_POLLING_INTERVAL: Final = timedelta(milliseconds=100)
LOCAL_ENVIRONMENT: Final = ("AZURE_FUNCTIONS_ENVIRONMENT", "Development")  # as Core Tools sets it

_TIMESPAN: Final = re.compile(r"^(?:(?P<days>\d+)\.)?(?P<h>\d{1,2}):(?P<m>\d{1,2}):(?P<s>\d{1,2}(?:\.\d+)?)$")
_EXPRESSION: Final = re.compile(r"%([^%]+)%")


class ConfigError(Exception):
    """The settings or host.json cannot be used; the message says what and where."""


def parse_timespan(text: str) -> timedelta:
    """A .NET TimeSpan as host.json writes it: `hh:mm:ss`, `d.hh:mm:ss`, fractions of seconds allowed."""
    match = _TIMESPAN.match(text.strip())
    if match is None:
        raise ConfigError(f"not a TimeSpan (expected hh:mm:ss): {text!r}")
    return timedelta(
        days=int(match["days"] or 0),
        hours=int(match["h"]),
        minutes=int(match["m"]),
        seconds=float(match["s"]),
    )


def generate_key() -> str:
    """A random key in the shape the host generates (URL-safe, 40+ characters)."""
    return secrets.token_urlsafe(40)


@dataclass(frozen=True)
class LocalSettings:
    """`local.settings.json`: app settings, function keys and the master key."""

    values: Mapping[str, str]
    function_keys: Mapping[str, str]
    master_key: str
    generated_keys: bool = False
    local_http_port: int | None = None  # `Host.LocalHttpPort`, the port Core Tools uses by default

    @property
    def function_key(self) -> str:
        """The key to hand out: the one named `default` if there is one, else the first."""
        if DEFAULT_FUNCTION_KEY_NAME in self.function_keys:
            return self.function_keys[DEFAULT_FUNCTION_KEY_NAME]
        return next(iter(self.function_keys.values()))

    @classmethod
    def load(cls, source: Path | str | Mapping[str, Any] | None) -> LocalSettings:
        """Read a `local.settings.json`-shaped file or dict; `None` means no settings at all."""
        if source is None:
            raw: Mapping[str, Any] = {}
        elif isinstance(source, Mapping):
            raw = source
        else:
            path = Path(source)
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError as exc:
                raise ConfigError(f"settings file not found: {path}") from exc
            except json.JSONDecodeError as exc:
                raise ConfigError(f"settings file is not valid JSON: {path}: {exc}") from exc
        return cls.from_mapping(raw)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> LocalSettings:
        if raw.get("IsEncrypted"):
            raise ConfigError("encrypted local settings are not supported; set IsEncrypted to false")
        values = raw.get("Values") or {}
        if not isinstance(values, Mapping):
            raise ConfigError("Values must be an object of strings")
        bad = sorted(name for name, value in values.items() if not isinstance(value, str))
        if bad:
            raise ConfigError(f"Values must be strings (as app settings are); not strings: {', '.join(bad)}")
        keys = raw.get("FunctionKeys") or {}
        if not isinstance(keys, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in keys.items()
        ):
            raise ConfigError("FunctionKeys must be an object of non-empty strings {name: key}")
        master = raw.get("MasterKey")
        if master is not None and (not isinstance(master, str) or not master):
            raise ConfigError("MasterKey must be a non-empty string")
        generated = False
        function_keys = dict(keys)
        if not function_keys:
            function_keys = {DEFAULT_FUNCTION_KEY_NAME: generate_key()}
            generated = True
        if master is None:
            master = generate_key()
            generated = True
        host = raw.get("Host") or {}
        port = host.get("LocalHttpPort") if isinstance(host, Mapping) else None
        if port is not None and not isinstance(port, int):
            raise ConfigError("Host.LocalHttpPort must be a number")
        return cls(
            values=dict(values),
            function_keys=function_keys,
            master_key=master,
            generated_keys=generated,
            local_http_port=port,
        )

    def apply_to_environ(self, environ: MutableMapping[str, str] | None = None) -> None:
        """Copy `Values` into the environment, as the host does, unless a variable is already set; and
        declare the local environment as Core Tools does (`AZURE_FUNCTIONS_ENVIRONMENT=Development`, where
        Azure defaults to `Production`): the app may honour local-only settings on that sign."""
        target = os.environ if environ is None else environ
        for name, value in self.values.items():
            target.setdefault(name, value)
        target.setdefault(*LOCAL_ENVIRONMENT)


def resolve_expression(text: str, settings: Mapping[str, str], *, what: str) -> str:
    """Resolve `%NAME%` from app settings; a missing setting is a start-up error, as in the host."""

    def _lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in settings:
            raise ConfigError(f"{what}: app setting {name!r} (from {text!r}) is not set")
        return settings[name]

    return _EXPRESSION.sub(_lookup, text)


@dataclass(frozen=True)
class QueueOptions:
    """`extensions.queues` with the documented defaults (newBatchThreshold: batchSize/2, one vCPU)."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    visibility_timeout: timedelta = timedelta(0)
    max_polling_interval: timedelta = timedelta(minutes=1)
    message_encoding: str = "base64"

    @property
    def max_concurrency(self) -> int:
        return self.batch_size + self.new_batch_threshold

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> QueueOptions:
        batch_size = int(raw.get("batchSize", 16))
        if not 1 <= batch_size <= MAX_QUEUE_BATCH_SIZE:
            raise ConfigError(f"host.json extensions.queues.batchSize must be 1..32, not {batch_size}")
        threshold = int(raw.get("newBatchThreshold", batch_size // 2))
        if threshold < 0:
            raise ConfigError("host.json extensions.queues.newBatchThreshold must not be negative")
        max_dequeue = int(raw.get("maxDequeueCount", 5))
        if max_dequeue < 1:
            raise ConfigError("host.json extensions.queues.maxDequeueCount must be at least 1")
        polling = parse_timespan(str(raw.get("maxPollingInterval", "00:01:00")))
        polling = max(polling, MIN_POLLING_INTERVAL)
        encoding = str(raw.get("messageEncoding", "base64")).lower()
        if encoding not in {"base64", "none"}:
            raise ConfigError(
                f"host.json extensions.queues.messageEncoding must be base64 or none: {encoding}"
            )
        return cls(
            batch_size=batch_size,
            new_batch_threshold=threshold,
            max_dequeue_count=max_dequeue,
            visibility_timeout=parse_timespan(str(raw.get("visibilityTimeout", "00:00:00"))),
            max_polling_interval=polling,
            message_encoding=encoding,
        )


@dataclass(frozen=True)
class HostConfig:
    """What the local host takes from `host.json`."""

    route_prefix: str = DEFAULT_ROUTE_PREFIX
    queues: QueueOptions = field(default_factory=QueueOptions)
    function_timeout: timedelta | None = DEFAULT_FUNCTION_TIMEOUT

    @classmethod
    def load(cls, app_root: Path) -> HostConfig:
        path = app_root / "host.json"
        if not path.is_file():
            raise ConfigError(f"host.json not found in the app root {app_root} (the host needs one)")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"host.json is not valid JSON: {exc}") from exc
        return cls.from_json(raw)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> HostConfig:
        if str(raw.get("version", "")) != "2.0":
            raise ConfigError('host.json must say "version": "2.0"')
        extensions = raw.get("extensions") or {}
        http = extensions.get("http") or {}
        prefix = str(http.get("routePrefix", DEFAULT_ROUTE_PREFIX)).strip("/")
        timeout_raw = raw.get("functionTimeout")
        timeout: timedelta | None = DEFAULT_FUNCTION_TIMEOUT
        if timeout_raw is None:
            timeout = DEFAULT_FUNCTION_TIMEOUT
        elif str(timeout_raw).strip() == "-1":
            timeout = None
        else:
            timeout = parse_timespan(str(timeout_raw))
        return cls(
            route_prefix=prefix,
            queues=QueueOptions.from_json(extensions.get("queues") or {}),
            function_timeout=timeout,
        )
