"""Mail from a staff member's mailbox: the idempotent PUT, and the send job's exactly-once cases against a
fake mailbox that keeps Graph's contract for drafts (Drafts, Outbox, Sent Items, faults after the effect)."""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

import pytest

from shared.domain.mail import MailRecord, MailState, OutgoingMail
from shared.domain.tenants import TenantState
from shared.domain.users import StaffSwitches
from shared.service import limits
from shared.service.errors import Conflict, InvalidInput, StaleWrite
from shared.service.job_handlers import run_job
from shared.service.jobs import SendMail
from shared.service.mail_api import get_mail, put_mail
from shared.service.mail_bodies import parse_mail
from shared.service.mail_send import SEND_SETTLE
from shared.service.ports.mail import MailFolder
from shared.service.tenant_disconnect import begin_disconnect, finish_disconnect
from tests.fakes.services import FakeWorld, add_tenant, fake_world

pytestmark = pytest.mark.unit

TID = "contoso.example"
SECRET_SUBJECT = "Your quote 4471 (confidential)"


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.ACTIVE, matched=2)
    await switch(w, "s1", on=True)
    return w


async def switch(world: FakeWorld, staff_id: str, *, on: bool) -> None:
    current = await world.users.get(TID, staff_id)
    assert current is not None
    staff = replace(current.staff, switches=StaffSwitches(mail=on))
    await world.users.save(replace(current, staff=staff))


def body(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "from_staff_id": "s1",
        "to": [{"name": "Customer", "address": "customer@fabrikam.example"}],
        "subject": SECRET_SUBJECT,
        "body": {"content_type": "text", "content": "The quote is attached."},
    }
    return {**base, **changes}


def mail(message_id: str = "m-1", **changes: Any) -> OutgoingMail:
    return parse_mail(message_id, body(**changes))


async def run_jobs(world: FakeWorld, *, rounds: int = 20) -> list[SendMail]:
    """Run what is queued, waiting out each job's delay on the clock, until nothing is left."""
    ran: list[SendMail] = []
    for _ in range(rounds):
        queued = [j for j in world.jobs.take() if isinstance(j, SendMail)]
        if not queued:
            return ran
        for job in queued:
            world.clock.advance(seconds=job.delay_seconds)
            await run_job(world.services, job)
            ran.append(job)
    raise AssertionError("the jobs never settled")


async def row(world: FakeWorld, message_id: str = "m-1") -> MailRecord:
    return await get_mail(world.services, TID, message_id)


def changes(world: FakeWorld, kind: str) -> list[dict[str, Any]]:
    return [c.data for c in world.feed.entries.get(TID, []) if c.type == kind]


async def test_a_message_is_sent_once_from_the_staff_mailbox_and_only_ids_are_kept(world: FakeWorld) -> None:
    record, accepted = await put_mail(world.services, TID, mail())
    assert accepted and record.state is MailState.QUEUED and record.recipients == 1
    assert world.mail_content.blobs  # the content waits in the store

    await run_jobs(world)

    sent = await row(world)
    assert sent.state is MailState.SENT and sent.attempts == 1
    assert sent.internet_message_id and sent.sent_at == world.clock.now()
    assert world.outlook_mail.copies("m-1") == 1
    assert world.outlook_mail.delivered[0].mailbox == "g1"
    assert not world.mail_content.blobs  # gone once sent
    assert SECRET_SUBJECT not in repr(sent)
    assert changes(world, "mail.sent") == [
        {
            "message_id": "m-1",
            "staff_id": "s1",
            "internet_message_id": sent.internet_message_id,
            "sent_at": "2026-11-22T09:00:00Z",
            "attempts": 1,
        }
    ]
    assert world.outlook_mail.requests == 2  # the draft, the send


async def test_the_same_put_again_answers_the_message_and_other_content_is_a_conflict(
    world: FakeWorld,
) -> None:
    first, _ = await put_mail(world.services, TID, mail())
    again, accepted = await put_mail(world.services, TID, mail())
    assert not accepted and again == first
    with pytest.raises(Conflict) as refused:
        await put_mail(world.services, TID, mail(subject="Another subject"))
    assert refused.value.field == "message_id"
    await run_jobs(world)
    assert world.outlook_mail.copies("m-1") == 1
    after, accepted = await put_mail(world.services, TID, mail())
    assert not accepted and after.state is MailState.SENT
    assert not [j for j in world.jobs.take() if isinstance(j, SendMail)]  # nothing queued for a sent one


async def test_an_unknown_or_disabled_sender_is_refused_naming_the_field(world: FakeWorld) -> None:
    with pytest.raises(InvalidInput) as unknown:
        await put_mail(world.services, TID, mail(from_staff_id="nobody"))
    assert unknown.value.field == "from_staff_id" and unknown.value.status == 422
    user = await world.users.get(TID, "s2")
    assert user is not None
    await world.users.save(replace(user, staff=replace(user.staff, enabled=False)))
    with pytest.raises(InvalidInput) as disabled:
        await put_mail(world.services, TID, mail(from_staff_id="s2"))
    assert disabled.value.field == "from_staff_id"
    assert not world.mail.rows and not world.mail_content.blobs


async def test_a_send_that_took_effect_then_answered_503_is_not_sent_again(world: FakeWorld) -> None:
    world.outlook_mail.fail("send", "lost")
    await put_mail(world.services, TID, mail())
    await run_jobs(world)
    sent = await row(world)
    assert sent.state is MailState.SENT and sent.attempts == 2
    assert world.outlook_mail.copies("m-1") == 1


async def test_a_send_that_failed_before_its_effect_goes_out_after_the_settling_time(
    world: FakeWorld,
) -> None:
    world.outlook_mail.fail("send", "refused")
    await put_mail(world.services, TID, mail())
    await run_jobs(world)
    sent = await row(world)
    assert sent.state is MailState.SENT
    assert world.outlook_mail.copies("m-1") == 1
    assert sent.sent_at is not None and sent.sent_at >= sent.created_at + SEND_SETTLE


async def test_a_message_exchange_is_still_moving_is_waited_for_not_sent_again(world: FakeWorld) -> None:
    world.outlook_mail.file_at_once = False
    world.outlook_mail.draft_ids_known = False
    world.outlook_mail.fail("send", "lost")
    await put_mail(world.services, TID, mail())
    job = world.jobs.take()[0]
    await run_job(world.services, job)  # the send took effect; the answer was a 503
    retry = world.jobs.take()
    assert (await row(world)).state is MailState.SENDING
    for later in retry:
        world.clock.advance(seconds=later.delay_seconds)
        await run_job(world.services, later)  # in Outbox: looked at again later
    assert (await row(world)).state is MailState.SENDING
    world.outlook_mail.file_sent()
    await run_jobs(world)
    sent = await row(world)
    assert sent.state is MailState.SENT and sent.internet_message_id
    assert world.outlook_mail.copies("m-1") == 1


async def test_a_worker_killed_after_the_send_before_recording_it_sends_nothing_twice(
    world: FakeWorld,
) -> None:
    await put_mail(world.services, TID, mail())
    rows = world.mail
    save = rows.save

    async def dies_recording_sent(record: MailRecord) -> MailRecord:
        if record.state is MailState.SENT:
            raise StaleWrite("the worker was killed")
        return await save(record)

    rows.save = dies_recording_sent  # type: ignore[method-assign]
    job = world.jobs.take()[0]
    with pytest.raises(StaleWrite):
        await run_job(world.services, job)
    rows.save = save  # type: ignore[method-assign]
    await run_job(world.services, job)  # the queue delivers the message again
    sent = await row(world)
    assert sent.state is MailState.SENT
    assert world.outlook_mail.copies("m-1") == 1
    assert len(changes(world, "mail.sent")) == 2  # at least once to the host


async def test_a_draft_whose_answer_was_lost_is_found_and_reused(world: FakeWorld) -> None:
    world.outlook_mail.fail("create", "lost")
    await put_mail(world.services, TID, mail())
    await run_jobs(world)
    assert (await row(world)).state is MailState.SENT
    assert world.outlook_mail.copies("m-1") == 1
    assert not world.outlook_mail.folder("g1", MailFolder.DRAFTS)  # no second draft left behind


async def test_throttled_sending_waits_for_retry_after_and_still_goes_out(world: FakeWorld) -> None:
    world.outlook_mail.fail("send", "throttle", "throttle")
    await put_mail(world.services, TID, mail())
    ran = await run_jobs(world)
    assert [j.delay_seconds >= 7 for j in ran[1:]] == [True, True]  # Retry-After was 7 s
    sent = await row(world)
    assert sent.state is MailState.SENT and sent.error is None
    assert world.outlook_mail.copies("m-1") == 1


async def test_a_large_attachment_goes_through_an_upload_session(world: FakeWorld) -> None:
    big = bytes(range(256)) * (4 * 4096)  # 4 MiB
    small = b"tiny"
    attachments = [
        {"name": "plan.pdf", "content_type": "application/pdf",
         "content_base64": base64.b64encode(big).decode()},
        {"name": "logo.png", "content_type": "image/png", "content_base64": base64.b64encode(small).decode(),
         "content_id": "logo", "is_inline": True},
    ]  # fmt: skip
    await put_mail(world.services, TID, mail(attachments=attachments))
    await run_jobs(world)
    assert world.outlook_mail.uploads == 1
    (copy,) = world.outlook_mail.delivered
    assert sorted(copy.attachments) == [("logo.png", 4), ("plan.pdf", len(big))]


async def test_a_draft_left_half_attached_gets_only_what_it_lacks(world: FakeWorld) -> None:
    big = b"x" * (limits.INLINE_ATTACHMENT_BYTES + 1)
    encoded = base64.b64encode(big).decode()
    attachments = [{"name": n, "content_base64": encoded} for n in ("a.bin", "b.bin")]
    world.outlook_mail.fail("attach", "lost")  # the first upload took effect, its answer was lost
    await put_mail(world.services, TID, mail(attachments=attachments))
    await run_jobs(world)
    (copy,) = world.outlook_mail.delivered
    assert sorted(name for name, _ in copy.attachments) == ["a.bin", "b.bin"]


async def test_mail_switched_off_fails_with_what_to_do(world: FakeWorld) -> None:
    await put_mail(world.services, TID, mail(from_staff_id="s2"))
    await run_jobs(world)
    failed = await row(world)
    assert failed.state is MailState.FAILED and "switches.mail" in (failed.error or "")
    assert world.outlook_mail.requests == 0 and not world.mail_content.blobs
    assert changes(world, "mail.failed")[0]["reason"] == failed.error


async def test_a_consent_without_mail_send_fails_asking_to_reauthorize(world: FakeWorld) -> None:
    world.outlook_mail.fail("create", "denied")
    await put_mail(world.services, TID, mail())
    await run_jobs(world)
    failed = await row(world)
    assert failed.state is MailState.FAILED and "reauthorize" in (failed.error or "")
    assert world.outlook_mail.copies("m-1") == 0


async def test_a_sender_without_a_mailbox_fails_with_the_reason(world: FakeWorld) -> None:
    world.outlook_mail.missing_mailboxes.add("g1")
    await put_mail(world.services, TID, mail())
    await run_jobs(world)
    assert "mailbox" in ((await row(world)).error or "")


async def test_a_message_not_sent_within_the_deadline_fails_with_the_reason(world: FakeWorld) -> None:
    world.outlook_mail.fail("create", *["throttle"] * 200)
    await put_mail(world.services, TID, mail())
    world.clock.advance(hours=25)
    await run_jobs(world)
    failed = await row(world)
    assert failed.state is MailState.FAILED and "within 24 hours" in (failed.error or "")
    assert world.outlook_mail.copies("m-1") == 0


async def test_a_message_failing_after_its_draft_was_made_leaves_no_draft(world: FakeWorld) -> None:
    world.outlook_mail.fail("send", *["refused"] * 50)  # every send fails before its effect
    await put_mail(world.services, TID, mail())
    world.jobs.take()
    await run_job(world.services, SendMail(TID, "m-1"))  # the draft is made, its send refused
    assert world.outlook_mail.folder("g1", MailFolder.DRAFTS)
    world.clock.advance(hours=25)
    await run_jobs(world)
    failed = await row(world)
    assert failed.state is MailState.FAILED and "within 24 hours" in (failed.error or "")
    assert not world.outlook_mail.folder("g1", MailFolder.DRAFTS)
    assert world.outlook_mail.copies("m-1") == 0


async def test_not_saved_to_sent_items_removes_the_sent_copy(world: FakeWorld) -> None:
    await put_mail(world.services, TID, mail(save_to_sent_items=False))
    await run_jobs(world)
    sent = await row(world)
    assert sent.state is MailState.SENT and sent.sent_copy_removed
    assert world.outlook_mail.copies("m-1") == 1
    assert not world.outlook_mail.folder("g1", MailFolder.SENT_ITEMS)


async def test_disconnect_stops_queued_mail_and_the_purge_removes_it(world: FakeWorld) -> None:
    await put_mail(world.services, TID, mail())
    await put_mail(world.services, TID, mail("m-2"))
    queued = world.jobs.take()
    await begin_disconnect(world.services, TID)
    for job in queued:
        await run_job(world.services, job)
    assert (await row(world)).state is MailState.FAILED
    assert "disconnected" in ((await row(world)).error or "")
    assert not world.mail_content.blobs and world.outlook_mail.copies("m-1") == 0
    await finish_disconnect(world.services, TID)
    assert not world.mail.rows


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"attachments": [{"name": "a", "content_base64": "not base64!"}]}, "attachments[0].content_base64"),
        ({"to": [], "cc": []}, "to"),
        ({"to": [{"address": f"c{n}@fabrikam.example"} for n in range(501)]}, "to"),
        ({"to": [{"address": "not-an-address"}]}, "to[0].address"),
        ({"headers": {"Reply-By": "soon"}}, "headers"),
        ({"body": {"content_type": "rtf", "content": "x"}}, "body.content_type"),
        ({"body": {"content": "x" * (limits.MAX_MAIL_BODY + 1)}}, "body.content"),
        ({"surprise": 1}, "surprise"),
        ({"from_staff_id": "a/b"}, "from_staff_id"),
    ],
)
def test_bad_input_is_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_mail("m-1", body(**changes))
    assert refused.value.field == field


def test_attachments_over_the_send_size_are_refused() -> None:
    chunk = base64.b64encode(b"x" * (limits.MAX_ATTACHMENTS_BYTES // 2 + 1)).decode()
    with pytest.raises(InvalidInput) as refused:
        parse_mail("m-1", body(attachments=[{"name": "a", "content_base64": chunk}] * 2))
    assert refused.value.field == "attachments" and "35" not in refused.value.field


def test_the_fingerprint_covers_the_content_and_not_its_encoding() -> None:
    a = mail()
    assert a.fingerprint() == mail().fingerprint()
    assert a.fingerprint() != mail(cc=[{"address": "boss@contoso.example"}]).fingerprint()
    assert a.fingerprint() != mail(save_to_sent_items=False).fingerprint()


def test_the_staff_body_carries_the_mail_switch_off_unless_turned_on() -> None:
    from shared.service.commands import parse_staff

    assert parse_staff("s9", {"upn": "s9@contoso.example"}).switches == StaffSwitches(mail=False)
    on = parse_staff("s9", {"upn": "s9@contoso.example", "switches": {"mail": True}})
    assert on.switches == StaffSwitches(mail=True)
    with pytest.raises(InvalidInput) as refused:
        parse_staff("s9", {"upn": "s9@contoso.example", "switches": {"mail": "yes"}})
    assert refused.value.field == "switches.mail"
