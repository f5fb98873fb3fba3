"""Azurite stopped and started again on disk (as the chaos run does): the same ports, the tables' rows and
the queues' messages still there; in memory a restart is refused, since it would lose everything."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueClient

from devhost.azurite import Azurite, AzuriteError

pytestmark = pytest.mark.integration


def test_a_restart_on_disk_keeps_rows_messages_and_ports(tmp_path: Path) -> None:
    with Azurite(location=tmp_path / "azurite") as azurite:
        with TableServiceClient.from_connection_string(azurite.connection_string) as service:
            service.create_table("kept").create_entity({"PartitionKey": "p", "RowKey": "r", "Value": 7})
        with QueueClient.from_connection_string(azurite.connection_string, "kept") as queue:
            queue.create_queue()
            queue.send_message("still here")
        ports = azurite.ports

        azurite.restart(down_for=0.5)

        assert azurite.ports == ports and azurite.running
        with TableServiceClient.from_connection_string(azurite.connection_string) as service:
            assert service.get_table_client("kept").get_entity("p", "r")["Value"] == 7
        with QueueClient.from_connection_string(azurite.connection_string, "kept") as queue:
            assert [m.content for m in queue.peek_messages()] == ["still here"]


def test_a_restart_in_memory_is_refused() -> None:
    with Azurite() as azurite, pytest.raises(AzuriteError):
        azurite.restart()
