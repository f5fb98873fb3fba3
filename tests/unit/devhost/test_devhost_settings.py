"""Local settings, host.json options and output binding values, as the local host reads them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import azure.functions as func
import pytest

from devhost.bindings import OutputError, decode_message, encode_message, queue_messages
from devhost.settings import ConfigError, HostConfig, LocalSettings, parse_timespan, resolve_expression

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def test_timespans() -> None:
    assert parse_timespan("00:00:30") == timedelta(seconds=30)
    assert parse_timespan("01:02:03.5") == timedelta(hours=1, minutes=2, seconds=3.5)
    assert parse_timespan("1.00:00:00") == timedelta(days=1)
    with pytest.raises(ConfigError):
        parse_timespan("30s")


def test_queue_options_have_the_documented_defaults() -> None:
    config = HostConfig.from_json({"version": "2.0"})
    queues = config.queues
    assert (queues.batch_size, queues.new_batch_threshold, queues.max_dequeue_count) == (16, 8, 5)
    assert queues.visibility_timeout == timedelta(0)
    assert queues.max_polling_interval == timedelta(minutes=1)
    assert queues.message_encoding == "base64"
    assert queues.max_concurrency == 24
    assert config.route_prefix == "api"


def test_host_json_values_are_read() -> None:
    config = HostConfig.from_json(
        {
            "version": "2.0",
            "functionTimeout": "00:10:00",
            "extensions": {
                "http": {"routePrefix": ""},
                "queues": {"batchSize": 4, "maxDequeueCount": 3, "maxPollingInterval": "00:00:00.010"},
            },
        }
    )
    assert config.route_prefix == ""
    assert config.function_timeout == timedelta(minutes=10)
    assert config.queues.new_batch_threshold == 2  # batchSize / 2
    assert config.queues.max_polling_interval == timedelta(milliseconds=100)  # the host's minimum


@pytest.mark.parametrize(
    "raw",
    [
        {"version": "1.0"},
        {"version": "2.0", "extensions": {"queues": {"batchSize": 33}}},
        {"version": "2.0", "extensions": {"queues": {"messageEncoding": "utf8"}}},
    ],
)
def test_bad_host_json_is_refused(raw: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        HostConfig.from_json(raw)


def test_settings_keys_are_generated_when_absent() -> None:
    settings = LocalSettings.from_mapping({"Values": {"A": "1"}})
    assert settings.generated_keys
    assert len(settings.function_key) >= 40 and len(settings.master_key) >= 40
    given = LocalSettings.from_mapping({"FunctionKeys": {"x": "k1", "default": "k2"}, "MasterKey": "m"})
    assert (given.function_key, given.master_key, given.generated_keys) == ("k2", "m", False)


def test_local_http_port_is_read() -> None:
    assert LocalSettings.from_mapping({"Host": {"LocalHttpPort": 7072}}).local_http_port == 7072
    assert LocalSettings.from_mapping({}).local_http_port is None


def test_values_go_to_the_environment_unless_already_set() -> None:
    environ = {"B": "from-env"}
    LocalSettings.from_mapping({"Values": {"A": "1", "B": "2"}}).apply_to_environ(environ)
    assert environ == {"A": "1", "B": "from-env", "AZURE_FUNCTIONS_ENVIRONMENT": "Development"}


def test_values_must_be_strings() -> None:
    with pytest.raises(ConfigError, match="N"):
        LocalSettings.from_mapping({"Values": {"N": 1}})


def test_binding_expressions_resolve_from_settings() -> None:
    assert resolve_expression("%Q%-x", {"Q": "jobs"}, what="q") == "jobs-x"
    with pytest.raises(ConfigError, match="MISSING"):
        resolve_expression("%MISSING%", {}, what="q")


def test_queue_output_values() -> None:
    assert queue_messages("a", "out") == [b"a"]
    assert queue_messages(b"b", "out") == [b"b"]
    assert queue_messages(["a", b"b"], "out") == [b"a", b"b"]
    assert queue_messages({"k": 1}, "out") == [b'{"k": 1}']
    assert queue_messages(func.QueueMessage(body=b"q"), "out") == [b"q"]
    assert queue_messages(None, "out") == []
    with pytest.raises(OutputError):
        queue_messages(42, "out")


def test_message_encoding_round_trip() -> None:
    assert encode_message(b'{"a": 1}', "base64") == "eyJhIjogMX0="
    assert decode_message("eyJhIjogMX0=", "base64") == b'{"a": 1}'
    assert decode_message("plain", "none") == b"plain"
    with pytest.raises(ValueError):
        decode_message('{"not": "base64"}', "base64")


@pytest.mark.parametrize("exporter", ["console", "http://127.0.0.1:4318"])
def test_make_run_passes_the_telemetry_exporter_to_the_app(
    exporter: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`TELEMETRY_EXPORTER=console make run` shows the app's traces without Azure: the stack writes the
    setting into the app's local settings; without it, the app configures no telemetry."""
    from devhost.stack import _write_settings

    storage = SimpleNamespace(connection_string="UseDevelopmentStorage=true")
    monkeypatch.setenv("TELEMETRY_EXPORTER", exporter)
    written = _write_settings(ROOT, tmp_path, storage, None, "http://127.0.0.1:7071")  # type: ignore[arg-type]
    assert json.loads(written.read_text(encoding="utf-8"))["Values"]["TELEMETRY_EXPORTER"] == exporter

    monkeypatch.delenv("TELEMETRY_EXPORTER")
    written = _write_settings(ROOT, tmp_path, storage, None, "http://127.0.0.1:7071")  # type: ignore[arg-type]
    assert "TELEMETRY_EXPORTER" not in json.loads(written.read_text(encoding="utf-8"))["Values"]
