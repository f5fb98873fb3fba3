"""Standalone Teams meetings through msgraph-sdk (contract §7): PATCH keeps the join URL, the list filtered
by JoinWebUrl finds a meeting (and is refused like a create without a policy), DELETE ends it, a global
policy covers everyone, and the dial-in is in `audioConferencing`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.online_meeting import OnlineMeeting
from msgraph.generated.users.item.online_meetings.create_or_get.create_or_get_post_request_body import (
    CreateOrGetPostRequestBody,
)
from msgraph.generated.users.item.online_meetings.online_meetings_request_builder import (
    OnlineMeetingsRequestBuilder,
)

pytestmark = pytest.mark.contract

NO_POLICY = "No application access policy found for this app."


def by_join_url(
    url: str,
) -> RequestConfiguration[OnlineMeetingsRequestBuilder.OnlineMeetingsRequestBuilderGetQueryParameters]:
    query = OnlineMeetingsRequestBuilder.OnlineMeetingsRequestBuilderGetQueryParameters(
        filter=f"JoinWebUrl eq '{url}'"
    )
    return RequestConfiguration(query_parameters=query)


async def test_a_meeting_is_moved_found_by_its_join_url_and_deleted(connector, control):
    user = await connector.graph.users.by_user_id("lee.gu@contoso.example").get()
    policy = await control.add_access_policy(connector.tenant_id, connector.emulator.client_id, global_=True)
    meetings = connector.graph.users.by_user_id(user.id).online_meetings
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    made = await meetings.create_or_get.post(
        CreateOrGetPostRequestBody(
            external_id="appointment-teams-1",
            subject="Consult",
            start_date_time=start,
            end_date_time=start + timedelta(hours=1),
        )
    )
    assert made.audio_conferencing.conference_id and made.audio_conferencing.toll_number
    later = start + timedelta(days=1)
    moved = await meetings.by_online_meeting_id(made.id).patch(
        OnlineMeeting(start_date_time=later, end_date_time=later + timedelta(hours=1))
    )
    assert moved.join_web_url == made.join_web_url and moved.start_date_time == later
    found = await meetings.get(by_join_url(made.join_web_url))
    assert [m.id for m in found.value] == [made.id]
    assert (await meetings.get(by_join_url("https://teams.microsoft.com/l/meetup-join/none"))).value == []
    await meetings.by_online_meeting_id(made.id).delete()
    with pytest.raises(ODataError) as gone:
        await meetings.by_online_meeting_id(made.id).get()
    assert gone.value.response_status_code == 404
    await control.delete_access_policy(connector.tenant_id, policy["id"])


async def test_without_a_policy_the_filtered_list_is_refused_like_a_create(connector, control):
    user = await connector.graph.users.by_user_id("lee.gu@contoso.example").get()
    meetings = connector.graph.users.by_user_id(user.id).online_meetings
    before = await control.meetings(connector.tenant_id)
    with pytest.raises(ODataError) as refused:
        await meetings.get(by_join_url("https://teams.microsoft.com/l/meetup-join/none"))
    assert refused.value.response_status_code == 403 and refused.value.error.message == NO_POLICY
    assert await control.meetings(connector.tenant_id) == before  # the probe made nothing
