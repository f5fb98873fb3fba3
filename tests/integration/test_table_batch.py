"""Entity-group transactions written by the connector (shared/adapters/tables/transactions.py) against
Azurite, read back through azure-data-tables: types round-trip as the SDK writes them, ETags are the rows'
own, and a failing operation changes nothing and is named by status, code and index."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from azure.data.tables.aio import TableClient, TableServiceClient

from shared.adapters.tables.transactions import (
    MAX_OPERATIONS,
    Delete,
    Insert,
    Replace,
    TransactionFailed,
    Upsert,
    entity_json,
    submit,
)

pytestmark = pytest.mark.integration

AWKWARD_KEYS = ["plain", "it's", "Müller Termin", "a%b", "+=!", "x" * 200]


@pytest.fixture
async def table(azurite: Any) -> AsyncIterator[TableClient]:
    async with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        name = f"batch{uuid.uuid4().hex[:12]}"
        await service.create_table(name)
        async with service.get_table_client(name) as client:
            yield client
        await service.delete_table(name)


async def rows(table: TableClient) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["PartitionKey"], e["RowKey"]): dict(e) async for e in table.list_entities()}


async def test_every_property_type_reads_back_as_the_sdk_wrote_it(table: TableClient):
    moment = datetime(2026, 11, 22, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=13)))
    entity = {
        "PartitionKey": "p",
        "RowKey": "r",
        "Text": "nur ein Termin: Müller \u2014 \U0001f4c5",
        "Empty": "",
        "Flag": False,
        "Small": -(2**31),
        "Large": 2**31 - 1,
        "Ratio": 0.25,
        "At": moment,
        "Missing": None,
    }
    via_sdk = {**entity, "RowKey": "sdk"}
    await submit(table, [Insert(entity)])
    await table.create_entity({k: v for k, v in via_sdk.items() if v is not None})

    ours, theirs = await table.get_entity("p", "r"), await table.get_entity("p", "sdk")

    assert {k: v for k, v in ours.items() if k != "RowKey"} == {
        k: v for k, v in theirs.items() if k != "RowKey"
    }
    assert ours["At"] == moment and ours["At"].tzinfo is not None
    assert "Missing" not in ours


async def test_awkward_keys_are_written_replaced_and_deleted(table: TableClient):
    await submit(table, [Insert({"PartitionKey": "p", "RowKey": key, "V": 1}) for key in AWKWARD_KEYS])
    etags = {key: (await table.get_entity("p", key)).metadata["etag"] for key in AWKWARD_KEYS}

    await submit(
        table, [Replace({"PartitionKey": "p", "RowKey": key, "V": 2}, etags[key]) for key in AWKWARD_KEYS]
    )
    assert {k[1]: e["V"] for k, e in (await rows(table)).items()} == dict.fromkeys(AWKWARD_KEYS, 2)

    await submit(table, [Delete("p", key) for key in AWKWARD_KEYS])
    assert await rows(table) == {}


async def test_the_answer_is_each_written_rows_etag_in_order(table: TableClient):
    await submit(table, [Insert({"PartitionKey": "p", "RowKey": "gone"})])

    etags = await submit(
        table,
        [
            Insert({"PartitionKey": "p", "RowKey": "a"}),
            Delete("p", "gone"),
            Upsert({"PartitionKey": "p", "RowKey": "b", "V": 1}),
        ],
    )

    assert etags[0] == (await table.get_entity("p", "a")).metadata["etag"]
    assert etags[1] is None
    assert etags[2] == (await table.get_entity("p", "b")).metadata["etag"]


async def test_a_replace_with_the_answered_etag_succeeds_and_a_stale_one_changes_nothing(table: TableClient):
    (first,) = await submit(table, [Insert({"PartitionKey": "p", "RowKey": "head", "Last": 1})])
    assert first is not None
    (second,) = await submit(table, [Replace({"PartitionKey": "p", "RowKey": "head", "Last": 2}, first)])
    assert second is not None and second != first

    with pytest.raises(TransactionFailed) as failed:
        await submit(
            table,
            [
                Replace({"PartitionKey": "p", "RowKey": "head", "Last": 3}, first),
                Insert({"PartitionKey": "p", "RowKey": "row-3"}),
            ],
        )

    assert (failed.value.status, failed.value.code, failed.value.index) == (
        412,
        "UpdateConditionNotSatisfied",
        0,
    )
    assert {k[1]: e.get("Last") for k, e in (await rows(table)).items()} == {"head": 2}


@pytest.mark.parametrize(
    ("operations", "status", "index"),
    [
        (
            [Insert({"PartitionKey": "p", "RowKey": "new"}), Insert({"PartitionKey": "p", "RowKey": "old"})],
            409,
            1,
        ),
        ([Insert({"PartitionKey": "p", "RowKey": "new"}), Delete("p", "never")], 404, 1),
        (
            [Replace({"PartitionKey": "p", "RowKey": "never"}, "W/\"datetime'2026-01-01T00%3A00%3A00Z'\"")],
            404,
            0,
        ),
    ],
    ids=["insert-existing", "delete-missing", "replace-missing"],
)
async def test_a_failing_operation_fails_the_whole_transaction(
    table: TableClient, operations: list[Any], status: int, index: int
):
    await submit(table, [Insert({"PartitionKey": "p", "RowKey": "old", "V": 1})])

    with pytest.raises(TransactionFailed) as failed:
        await submit(table, operations)

    assert (failed.value.status, failed.value.index) == (status, index)
    assert list(await rows(table)) == [("p", "old")]


async def test_a_full_transaction_of_the_services_limit_is_written(table: TableClient):
    await submit(
        table, [Upsert({"PartitionKey": "p", "RowKey": f"{i:03d}", "V": i}) for i in range(MAX_OPERATIONS)]
    )

    assert len(await rows(table)) == MAX_OPERATIONS


@pytest.mark.parametrize(
    "operations",
    [
        [Insert({"PartitionKey": "p", "RowKey": str(i)}) for i in range(MAX_OPERATIONS + 1)],
        [Insert({"PartitionKey": "p", "RowKey": "a"}), Insert({"PartitionKey": "q", "RowKey": "b"})],
        [Insert({"PartitionKey": "p", "RowKey": "a"}), Delete("p", "a")],
    ],
    ids=["too-many", "two-partitions", "one-row-twice"],
)
async def test_what_the_service_refuses_is_refused_before_sending(table: TableClient, operations: list[Any]):
    with pytest.raises(ValueError, match="transaction"):
        await submit(table, operations)
    assert await rows(table) == {}


async def test_nothing_to_do_sends_nothing(table: TableClient):
    assert await submit(table, []) == []


@pytest.mark.parametrize(
    ("value", "reason"),
    [(datetime(2026, 1, 1), "naive"), (b"bytes", "bytes"), (2**31, "Int32")],
)
def test_values_that_cannot_be_stored_faithfully_are_refused(value: Any, reason: str):
    with pytest.raises(TypeError, match=reason):
        entity_json({"PartitionKey": "p", "RowKey": "r", "V": value})


def test_a_value_read_back_is_written_as_the_service_gave_it():
    assert entity_json({"At": datetime(2026, 1, 1, tzinfo=UTC)})["At"] == "2026-01-01T00:00:00.000000Z"
