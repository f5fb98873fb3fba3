"""sendMail, onlineMeetings and translateExchangeIds through msgraph-sdk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.exchange_id_format import ExchangeIdFormat
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.online_meeting import OnlineMeeting
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.users.item.online_meetings.create_or_get.create_or_get_post_request_body import (
    CreateOrGetPostRequestBody,
)
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody
from msgraph.generated.users.item.translate_exchange_ids.translate_exchange_ids_post_request_body import (
    TranslateExchangeIdsPostRequestBody,
)

pytestmark = pytest.mark.contract

SENDER = "debra.berger@contoso.example"


def mail(subject: str) -> SendMailPostRequestBody:
    return SendMailPostRequestBody(
        message=Message(
            subject=subject,
            body=ItemBody(content_type=BodyType.Text, content="Your appointment is confirmed."),
            to_recipients=[Recipient(email_address=EmailAddress(address="customer@fabrikam.example"))],
        ),
        save_to_sent_items=False,
    )


async def test_send_mail_is_202_and_recorded(connector, control):
    await connector.graph.users.by_user_id(SENDER).send_mail.post(mail("Appointment confirmed"))
    [sent] = await control.sent_mail(user=SENDER)
    assert sent["message"]["subject"] == "Appointment confirmed"
    assert sent["recipients"] == ["customer@fabrikam.example"]
    assert sent["save_to_sent_items"] is False
    assert sent["client_id"] == connector.emulator.client_id
    assert (await control.stats())["sent_mail"] >= 1


async def test_send_mail_without_recipients_is_400_and_unknown_sender_404(connector):
    response = await connector.http.post(
        f"users/{SENDER}/sendMail", json={"message": {"subject": "x", "toRecipients": []}}
    )
    assert response.status_code == 400
    with pytest.raises(ODataError) as err:
        await connector.graph.users.by_user_id("ghost@contoso.example").send_mail.post(mail("x"))
    assert err.value.response_status_code == 404
    assert err.value.error.code == "ErrorInvalidUser"


async def test_send_mail_needs_mail_send(connector, control):
    await control.consent(connector.tenant_id, connector.emulator.client_id)
    await control.revoke_consent(connector.tenant_id, connector.emulator.client_id)
    await control.consent(connector.tenant_id, connector.emulator.client_id, ["Calendars.ReadWrite"])
    from tests.contract.emulator.conftest import raw_token

    emulator = connector.emulator
    token = await raw_token(emulator, emulator.tenant_id, emulator.client_id, emulator.client_secret)
    response = await connector.http.post(
        f"users/{SENDER}/sendMail",
        json={"message": {"toRecipients": [{"emailAddress": {"address": "a@b.example"}}]}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "ErrorAccessDenied"
    await control.consent(connector.tenant_id, connector.emulator.client_id)


def meeting() -> OnlineMeeting:
    start = datetime.now(UTC) + timedelta(days=1)
    return OnlineMeeting(
        start_date_time=start, end_date_time=start + timedelta(minutes=30), subject="Video visit"
    )


async def test_online_meeting_is_403_without_an_application_access_policy(connector):
    user = await connector.graph.users.by_user_id("lee.gu@contoso.example").get()
    with pytest.raises(ODataError) as err:
        await connector.graph.users.by_user_id(user.id).online_meetings.post(meeting())
    assert err.value.response_status_code == 403
    assert "No application access policy" in err.value.error.message


async def test_online_meeting_is_201_with_a_policy_for_the_user(connector, control):
    user = await connector.graph.users.by_user_id("lee.gu@contoso.example").get()
    policy = await control.add_access_policy(
        connector.tenant_id, connector.emulator.client_id, user_ids=[user.id]
    )
    created = await connector.graph.users.by_user_id(user.id).online_meetings.post(meeting())
    assert created.join_web_url.startswith("https://teams.microsoft.com/l/meetup-join/")
    assert created.subject == "Video visit"
    other = await connector.graph.users.by_user_id("yuki.tanaka@contoso.example").get()
    with pytest.raises(ODataError):
        await connector.graph.users.by_user_id(other.id).online_meetings.post(meeting())
    await control.delete_access_policy(connector.tenant_id, policy["id"])


async def test_translate_exchange_ids_maps_ews_ids_of_existing_items(connector, control):
    info = await control.info()
    assert info["calendar"], "the emulator started without its calendar part"
    ews = "AAMkADlegacyEwsIdForTranslation0001"
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0, tzinfo=None)
    [event] = await control.seed_events(
        connector.tenant_id,
        "joni.sherman@contoso.example",
        [
            {
                "event": {
                    "subject": "Legacy appointment",
                    "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
                    "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": "UTC"},
                },
                "ews_id": ews,
            }
        ],
    )
    body = TranslateExchangeIdsPostRequestBody(
        input_ids=[ews, "AAMkADunknown"],
        source_id_type=ExchangeIdFormat.EwsId,
        target_id_type=ExchangeIdFormat.RestId,
    )
    result = await connector.graph.users.by_user_id(
        "joni.sherman@contoso.example"
    ).translate_exchange_ids.post(body)
    by_source = {r.source_id: r for r in result.value}
    assert by_source[ews].target_id == event["id"]
    assert by_source["AAMkADunknown"].target_id is None


async def test_create_or_get_refuses_an_end_before_its_start(connector, control):
    """onlinemeeting-createorget: "An error is thrown if the endDateTime is provided without the
    startDateTime or if the endDateTime is earlier than the startDateTime"; nothing is created."""
    user = await connector.graph.users.by_user_id("lee.gu@contoso.example").get()
    policy = await control.add_access_policy(
        connector.tenant_id, connector.emulator.client_id, user_ids=[user.id]
    )
    meetings = connector.graph.users.by_user_id(user.id).online_meetings.create_or_get
    start = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    external = f"appointment-{start.timestamp():.0f}"
    for refused in (
        CreateOrGetPostRequestBody(
            external_id=external, start_date_time=start, end_date_time=start - timedelta(minutes=30)
        ),
        CreateOrGetPostRequestBody(external_id=external, end_date_time=start),
    ):
        with pytest.raises(ODataError) as err:
            await meetings.post(refused)
        assert err.value.response_status_code == 400
        assert "endDateTime" in err.value.error.message

    created = await meetings.post(
        CreateOrGetPostRequestBody(
            external_id=external, start_date_time=start, end_date_time=start + timedelta(minutes=30)
        )
    )
    assert created.start_date_time == start and created.end_date_time == start + timedelta(minutes=30)
    response = await connector.http.post(
        f"users/{user.id}/onlineMeetings/createOrGet",
        json={"externalId": external, "startDateTime": start.isoformat()},
    )
    assert response.status_code == 200  # the refused ones created nothing: this is the first meeting
    assert response.json()["id"] == created.id
    await control.delete_access_policy(connector.tenant_id, policy["id"])


async def test_rest_immutable_entry_ids_are_the_ids_prefer_immutable_id_answers(connector, control):
    """outlook-immutable-id: an item's immutable id is its own string (it survives a move between
    folders), answered under `Prefer: IdType="ImmutableId"` and by translateExchangeIds with
    `restImmutableEntryId`; the REST id is another string; either one opens the item."""
    ews = "AAMkADlegacyEwsIdForImmutable0001"
    user = "joni.sherman@contoso.example"
    start = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0, tzinfo=None)
    [event] = await control.seed_events(
        connector.tenant_id,
        user,
        [
            {
                "event": {
                    "subject": "Legacy appointment (immutable)",
                    "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
                    "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": "UTC"},
                },
                "ews_id": ews,
            }
        ],
    )
    translate = connector.graph.users.by_user_id(user).translate_exchange_ids
    immutable = await translate.post(
        TranslateExchangeIdsPostRequestBody(
            input_ids=[ews],
            source_id_type=ExchangeIdFormat.EwsId,
            target_id_type=ExchangeIdFormat.RestImmutableEntryId,
        )
    )
    [answer] = immutable.value
    assert answer.target_id and answer.target_id != event["id"]
    from_rest = await translate.post(
        TranslateExchangeIdsPostRequestBody(
            input_ids=[event["id"]],
            source_id_type=ExchangeIdFormat.RestId,
            target_id_type=ExchangeIdFormat.RestImmutableEntryId,
        )
    )
    assert [r.target_id for r in from_rest.value] == [answer.target_id]

    preferred = await connector.http.get(
        f"users/{user}/events/{event['id']}", headers={"Prefer": 'IdType="ImmutableId"'}
    )
    assert preferred.json()["id"] == answer.target_id
    by_immutable = await connector.http.get(f"users/{user}/events/{answer.target_id}")
    assert by_immutable.status_code == 200 and by_immutable.json()["id"] == event["id"]
