"""Graph users through msgraph-sdk: list, get by id or UPN, $filter, $select, $top, paging."""

from __future__ import annotations

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

pytestmark = pytest.mark.contract


def users_query(**kwargs) -> RequestConfiguration:
    return RequestConfiguration(
        query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(**kwargs)
    )


async def test_list_pages_through_every_user_with_next_links(connector, control):
    # Every user of the tenant, as the directory holds it now (other modules add mailboxes of their own).
    directory = await control.users(connector.tenant_id)
    assert len(directory) >= 38  # the demo seed's
    page = await connector.graph.users.get(request_configuration=users_query(top=10))
    seen = [u.id for u in page.value]
    assert len(page.value) == 10
    while page.odata_next_link:
        page = await connector.graph.users.with_url(page.odata_next_link).get()
        seen.extend(u.id for u in page.value)
    assert len(seen) == len(set(seen)) == len(directory)
    assert set(seen) == {u["id"] for u in directory}


async def test_get_by_upn_is_case_insensitive_and_by_id(connector):
    by_upn = await connector.graph.users.by_user_id("ADELE.VANCE@contoso.example").get()
    assert by_upn.display_name == "Adele Vance"
    by_id = await connector.graph.users.by_user_id(by_upn.id).get()
    assert by_id.user_principal_name == "adele.vance@contoso.example"


async def test_unknown_user_is_request_resource_not_found(connector):
    with pytest.raises(ODataError) as err:
        await connector.graph.users.by_user_id("nobody@contoso.example").get()
    assert err.value.response_status_code == 404
    assert err.value.error.code == "Request_ResourceNotFound"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("mail eq 'bianca.rossi@contoso.example'", ["bianca.pisani@contoso.example"]),
        ("userPrincipalName eq 'Adele.Vance@contoso.example'", ["adele.vance@contoso.example"]),
        ("proxyAddresses/any(p:p eq 'smtp:ceo@contoso.example')", ["patti.fernandez@contoso.example"]),
        ("proxyAddresses/any(x:x eq 'SMTP:ebraun@contoso.example')", ["emily.braun@contoso.example"]),
        ("accountEnabled eq false", ["former.employee@contoso.example"]),
    ],
)
async def test_filter_on_mail_upn_proxy_addresses_and_account_state(connector, expression, expected):
    page = await connector.graph.users.get(request_configuration=users_query(filter=expression))
    assert [u.user_principal_name for u in page.value] == expected


async def test_select_returns_only_the_selected_properties(connector):
    response = await connector.http.get(
        "users",
        params={"$select": "id,userPrincipalName,accountEnabled", "$filter": "accountEnabled eq false"},
    )
    [user] = response.json()["value"]
    assert set(user) == {"id", "userPrincipalName", "accountEnabled"}
    assert user["accountEnabled"] is False


async def test_default_properties_leave_account_enabled_out(connector):
    response = await connector.http.get("users/adele.vance%40contoso.example")
    body = response.json()
    assert "accountEnabled" not in body
    assert body["mail"] == "adele.vance@contoso.example"
    config = RequestConfiguration(
        query_parameters=UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
            select=["id", "accountEnabled", "proxyAddresses"]
        )
    )
    user = await connector.graph.users.by_user_id("former.employee@contoso.example").get(
        request_configuration=config
    )
    assert user.account_enabled is False
    assert user.proxy_addresses == ["SMTP:former.employee@contoso.example"]


async def test_unknown_select_property_is_400(connector):
    response = await connector.http.get("users", params={"$select": "id,shoeSize"})
    assert response.status_code == 400


async def test_user_without_mailbox_is_listed_but_its_mailbox_is_not_enabled(connector):
    user = await connector.graph.users.by_user_id("it.admin@contoso.example").get()
    assert user.mail is None
    with pytest.raises(ODataError) as err:
        await connector.graph.users.by_user_id("it.admin@contoso.example").todo.lists.get()
    assert err.value.response_status_code == 404
    assert err.value.error.code == "MailboxNotEnabledForRESTAPI"


async def test_unknown_mailbox_is_error_invalid_user(connector):
    with pytest.raises(ODataError) as err:
        await connector.graph.users.by_user_id("ghost@contoso.example").todo.lists.get()
    assert err.value.error.code == "ErrorInvalidUser"


async def test_disabled_user_via_control_shows_in_graph(connector, control):
    user = await control.create_user(connector.tenant_id, "temp.worker@contoso.example", time_zone="UTC")
    await control.disable_user(connector.tenant_id, user["id"])
    response = await connector.http.get(
        "users",
        params={"$filter": "userPrincipalName eq 'temp.worker@contoso.example'", "$select": "accountEnabled"},
    )
    assert response.json()["value"] == [{"accountEnabled": False}]


async def test_mailbox_settings_give_the_time_zone(connector):
    response = await connector.http.get("users/lee.gu%40contoso.example/mailboxSettings")
    assert response.json()["timeZone"] == "Tokyo Standard Time"
