"""The admin console in a real browser (headless Chromium): what a customer's admin sees and clicks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, ConsoleMessage, Error, Page, Request, Route, expect

from tests.e2e.test_console import console_link, token_of
from tests.e2e.test_tenants import consent, create, new_organisation, wait_for
from tests.fixtures.connector import Connector

pytestmark = pytest.mark.browser
DASH = "\u2013"  # the page writes ranges with an en dash
RED = "rgb(207, 34, 46)"  # the page's --bad colour

PEOPLE = ["Adele Vance", "Ben Smith", "Cara Jones", "Diego Siciliani", "Emily Braun", "Grady Archie"]
PEOPLE += ["Henrietta Mueller", "Isaiah Langer", "Johanna Lorenz", "Lee Gu"]


async def demo_organisation(connector: Connector) -> dict[str, Any]:
    """A connected organisation: ten matched staff, one disabled in Entra, one nobody knows."""
    domain = f"demo{uuid.uuid4().hex[:8]}.example"
    async with connector.control() as control:
        tenant = await control.create_tenant(f"Demo {domain}", [domain], consent_policy="auto-accept")
        for name in PEOPLE:
            upn = f"{name.split()[0].lower()}@{domain}"
            await control.create_user(tenant["id"], upn, display_name=name, mail=upn)
        await control.create_user(
            tenant["id"], f"former@{domain}", display_name="Former", account_enabled=False
        )
    org = {"id": tenant["id"], "domain": domain}
    created = create(connector, org, display_name="Demo organisation")
    assert created.status_code == 201, created.text
    page = consent(connector, created.json()["consent_url"])
    assert page.status_code == 200 and "Connected" in page.text, page.text
    with connector.api() as api:
        staff = {f"s-{n.split()[0].lower()}": (f"{n.split()[0].lower()}@{domain}", n) for n in PEOPLE}
        staff["s-former"] = (f"former@{domain}", "Former")
        staff["s-zed"] = (f"zed@{domain}", "Zed Unknown")
        for staff_id, (upn, name) in staff.items():
            answer = api.put(
                f"/api/v1/tenants/{domain}/staff/{staff_id}", json={"upn": upn, "display_name": name}
            )
            assert answer.status_code == 200, answer.text
    return org


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    page = await context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    def on_error(error: Error) -> None:
        problems.append(str(error))

    page.on("console", on_console)  # a CSP violation is reported here too
    page.on("pageerror", on_error)
    yield page
    await context.close()
    # a refused link's 401 and a refused setting's 400 (shown on the page) are expected; any other error
    # (script, CSP) is not
    assert [p for p in problems if "status of 401" not in p and "status of 400" not in p] == []


async def test_the_console_shows_progress_and_users_and_resyncs(connector: Connector, page: Page) -> None:
    org = await demo_organisation(connector)
    link = console_link(connector, org["domain"])
    response = await page.goto(link["url"])
    assert response is not None and response.status == 200

    await expect(page.locator("#org-name")).to_have_text("Demo organisation")
    await expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", re.compile(r"^\d{1,3}$"))
    # every staff member counts: the ten matched, the one disabled in Entra and the one nobody knows
    await expect(page.locator("#percent")).to_contain_text(re.compile(r"\d+ % \(\d+ of 12 users\)"))
    await expect(page.locator("#match-counts")).to_contain_text("Matched: 10")
    await expect(page.locator("#match-counts")).to_contain_text("Unmatched: 1")
    await expect(page.locator("#state-badge")).not_to_be_empty()
    await expect(page.locator("#link-expiry")).to_contain_text("This link works until")

    rows = page.locator("#users tbody tr")
    await expect(rows).to_have_count(12)
    await expect(page.locator("#page-info")).to_have_text(f"Showing 1{DASH}12 of 12")

    await page.fill("#search", "adele")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text(f"adele@{org['domain']}")
    await expect(rows.first.locator("[data-col=match]")).to_have_text("Matched")
    async with page.expect_response(
        lambda r: r.url.endswith("/users/s-adele/resync") and r.request.method == "POST"
    ) as resynced:
        await rows.first.get_by_role("button", name="Resync").click()
    assert (await resynced.value).status == 202
    await expect(page.locator("#message")).to_have_text("Resync queued for 1 user.")
    await expect(rows.first.locator("[data-col=state]")).to_have_text(re.compile("Pending|Migrating|Synced"))

    await page.fill("#search", "")
    await page.select_option("#filter-match", "matched")
    await expect(rows).to_have_count(10)
    await page.check("#select-all")
    await expect(page.locator("#resync-selected")).to_have_text("Resync selected (10)")
    await page.click("#resync-selected")
    await expect(page.locator("#message")).to_have_text("Resync queued for 10 users.")
    await expect(page.locator("#resync-selected")).to_have_text("Resync selected (0)")

    await page.select_option("#filter-match", "")
    await page.select_option("#page-size", "10")
    await expect(rows).to_have_count(10)
    await expect(page.locator("#page-info")).to_have_text(f"Showing 1{DASH}10 of 12")
    await page.click("#next-page")
    await expect(rows).to_have_count(2)
    await expect(page.locator("#page-info")).to_have_text(f"Showing 11{DASH}12 of 12")
    await page.click("#prev-page")
    await expect(rows).to_have_count(10)

    await page.select_option("#filter-match", "unmatched")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Zed Unknown")
    await expect(rows.first.get_by_role("button", name="Resync")).to_be_disabled()


async def test_at_a_laptops_width_only_the_users_table_scrolls_sideways(
    connector: Connector, page: Page
) -> None:
    org = await demo_organisation(connector)
    await page.set_viewport_size({"width": 1280, "height": 900})
    await page.goto(console_link(connector, org["domain"])["url"])
    await expect(page.locator("#users tbody tr")).to_have_count(12)
    page_width = await page.evaluate("document.documentElement.scrollWidth")
    assert page_width <= 1280, f"the page is {page_width} px wide in a 1280 px window"
    for section in await page.locator("main > section:visible").all():
        box = await section.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1280
    # what the panel cannot show, its own scrollbar reaches: the last column is still there
    await expect(page.locator("#users thead th").last).to_be_attached()


async def test_waiting_for_consent_the_bar_is_empty_not_full(connector: Connector, page: Page) -> None:
    # It showed a full bar and "100 % (0 of 0 users)" beside the staff waiting to be matched.
    org = await new_organisation(connector)
    assert create(connector, org).status_code == 201
    with connector.api() as api:
        for name in ("adele", "ben", "cara"):
            answer = api.put(
                f"/api/v1/tenants/{org['domain']}/staff/s-{name}", json={"upn": f"{name}@{org['domain']}"}
            )
            assert answer.status_code == 200, answer.text
    await page.goto(console_link(connector, org["domain"])["url"])
    await expect(page.locator("#state-badge")).to_have_text("Waiting for admin consent")
    await expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "0")
    await expect(page.locator("#percent")).to_have_text("0 % (0 of 3 users)")
    await expect(page.locator("#match-counts")).to_contain_text("Pending: 3")


async def test_a_user_without_an_error_shows_a_neutral_dash_not_a_red_one(
    connector: Connector, page: Page
) -> None:
    org = await demo_organisation(connector)
    await page.goto(console_link(connector, org["domain"])["url"])
    rows = page.locator("#users tbody tr")
    await page.fill("#search", "adele")
    await expect(rows).to_have_count(1)
    no_error = rows.first.locator("[data-col=error]")
    await expect(no_error).to_have_text(DASH)
    await expect(no_error).not_to_have_css("color", RED)
    await page.fill("#search", "zed")
    await expect(rows).to_have_count(1)
    reason = rows.first.locator("[data-col=error]")  # why Zed is not matched: a problem, in red
    await expect(reason).to_contain_text("no directory user")
    await expect(reason).to_have_css("color", RED)


async def test_sorting_and_the_migration_finishing(connector: Connector, page: Page) -> None:
    org = await demo_organisation(connector)
    await page.goto(console_link(connector, org["domain"])["url"])
    names = page.locator("#users tbody [data-col=name]")
    await expect(names.first).to_have_text("Adele Vance")
    await page.get_by_role("button", name="Name", exact=True).click()
    await expect(names.first).to_have_text("Zed Unknown")
    await expect(page.locator("th[data-sort=display_name]")).to_have_attribute("aria-sort", "descending")
    # The page polls while the migration runs, and the bar ends at 100 %, not stuck at 99.
    await expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100", timeout=60_000)
    await expect(page.locator("#phase")).to_have_text("Done")


async def test_settings_and_a_confirmed_disconnect(connector: Connector, page: Page) -> None:
    org = await demo_organisation(connector)
    await page.goto(console_link(connector, org["domain"])["url"])
    await expect(page.locator("#window_days_back")).to_have_value("30")
    await page.fill("#window_days_back", "14")
    await page.check("#privacy_mode")
    await expect(page.locator("#tentative_blocks")).to_be_checked()
    await expect(page.locator("#working_elsewhere_blocks")).not_to_be_checked()
    await page.uncheck("#tentative_blocks")
    await page.check("#working_elsewhere_blocks")
    await page.select_option("#import_mode", "categories")
    await page.fill("#import_categories", "Booking, Client")
    await expect(page.locator("#feed_retention_days")).to_have_value("30")
    await page.fill("#feed_retention_days", "60")
    await page.click("#save-settings")
    await expect(page.locator("#message")).to_have_text("Settings saved.")
    with connector.api() as api:
        settings = api.get(f"/api/v1/tenants/{org['domain']}").json()["settings"]
    assert settings["window_days_back"] == 14 and settings["privacy_mode"] is True
    assert settings["feed_retention_days"] == 60
    assert (settings["tentative_blocks"], settings["working_elsewhere_blocks"]) == (False, True)
    assert settings["import_filter"] == {"mode": "categories", "categories": ["Booking", "Client"]}

    await page.click("#disconnect")
    await expect(page.locator("#confirm-disconnect")).to_be_visible()
    await page.click("#confirm-disconnect-no")
    await expect(page.locator("#confirm-disconnect")).to_be_hidden()
    with connector.api() as api:
        assert api.get(f"/api/v1/tenants/{org['domain']}").json()["state"] not in (
            "disconnecting",
            "disconnected",
        )
    await page.click("#disconnect")
    await page.click("#confirm-disconnect-yes")
    await expect(page.locator("#state-badge")).to_have_text(re.compile("Disconnecting|Disconnected"))
    await expect(page.locator("#resync-all")).to_be_disabled()


async def test_a_forged_link_shows_the_refusal_page(connector: Connector, page: Page) -> None:
    org = await demo_organisation(connector)
    token = token_of(console_link(connector, org["domain"])["url"])
    payload, signature = token.split(".")
    response = await page.goto(f"{connector.url}/api/console?token={payload}.{signature[::-1]}")
    assert response is not None and response.status == 401
    await expect(page.locator("h1")).to_have_text("This console link is not valid")
    await expect(page.locator("body")).to_contain_text("for a new console link")
    await expect(page.locator("#users")).to_have_count(0)


async def test_switches_for_a_selection_and_the_filter_that_finds_them(
    connector: Connector, page: Page
) -> None:
    org = await demo_organisation(connector)
    await page.goto(console_link(connector, org["domain"])["url"])
    rows = page.locator("#users tbody tr")
    await expect(rows).to_have_count(12)
    await expect(rows.first.locator("[data-col=to-outlook]")).to_have_text("on")
    await expect(rows.first.locator("[data-col=mail]")).to_have_text("off")
    await expect(page.locator("#switch-off")).to_be_disabled()

    await page.select_option("#filter-match", "matched")
    await expect(rows).to_have_count(10)
    await page.check("#select-all")
    await page.select_option("#switch-name", "calendar_to_outlook")
    async with page.expect_response(
        lambda r: r.url.endswith("/users/switches") and r.request.method == "PATCH"
    ) as switched:
        await page.click("#switch-off")
    assert (await switched.value).status == 200
    await expect(page.locator("#message")).to_have_text("Appointments to Outlook turned off for 10 users.")
    await expect(page.locator("#switch-off")).to_be_disabled()  # the selection is cleared
    await expect(page.locator("#users tbody [data-col=to-outlook]", has_text="off")).to_have_count(10)

    await page.select_option("#filter-match", "")
    await page.select_option("#filter-switch", "calendar_to_outlook:off")
    await expect(rows).to_have_count(10)
    await rows.first.locator("input[type=checkbox]").check()
    await page.click("#switch-on")
    await expect(page.locator("#message")).to_have_text("Appointments to Outlook turned on for 1 user.")
    await expect(rows).to_have_count(9)
    with connector.api() as api:
        listed = api.get(
            f"/api/v1/tenants/{org['domain']}/users", params={"switch": "calendar_to_outlook:on"}
        )
    assert listed.status_code == 200, listed.text
    on = {u["staff_id"] for u in listed.json()["value"]}
    assert on == {"s-adele", "s-former", "s-zed"}  # the one turned on again, and the two never changed


async def test_the_settings_the_console_could_not_change_before(connector: Connector, page: Page) -> None:
    org = await demo_organisation(connector)
    await page.goto(console_link(connector, org["domain"])["url"])
    await expect(page.locator("#todo_list_name")).to_have_value("Tasks from the host")  # the form is filled
    await expect(page.locator("#multi_staff_mode")).to_have_value("copies")
    await expect(page.locator("#teams_method")).to_have_value("event")
    await page.select_option("#multi_staff_mode", "meeting")
    await page.select_option("#conflict_policy", "outlook_wins")
    await page.select_option("#teams_method", "service_account")
    await page.fill("#teams_organizer", "not-an-address")
    await page.fill("#todo_list_name", "Bookings")
    await page.click("#save-settings")
    await expect(page.locator("#error")).to_contain_text("UPN or mailbox")  # refused as through the API
    await expect(page.locator("#teams_organizer")).to_have_class(re.compile("field-error"))
    await page.fill("#teams_organizer", f"adele@{org['domain']}")
    await page.click("#save-settings")
    await expect(page.locator("#message")).to_have_text("Settings saved.")
    with connector.api() as api:
        settings = api.get(f"/api/v1/tenants/{org['domain']}").json()["settings"]
    assert settings["multi_staff_mode"] == "meeting" and settings["conflict_policy"] == "outlook_wins"
    assert settings["teams_method"] == "service_account"
    assert settings["teams_organizer"] == f"adele@{org['domain']}"
    assert settings["todo_list_name"] == "Bookings" and settings["user_scope"] == "staff"


async def test_messages_a_failed_delivery_retried_hold_release_and_a_users_page(
    connector: Connector, page: Page
) -> None:
    receiver = connector.receiver
    receiver.fail_with = 503  # the organisation's first changes are refused until the retry
    try:
        org = await demo_organisation(connector)
        with connector.api() as api:

            def failed() -> bool:
                listed = api.get(
                    f"/api/v1/tenants/{org['domain']}/messages", params={"status": "failed"}
                ).json()
                return bool(listed["value"])

            wait_for(failed, timeout=90)
    finally:
        receiver.fail_with = None
    await page.goto(console_link(connector, org["domain"])["url"])

    rows = page.locator("#messages tbody tr[data-monitor-id]")
    await expect(rows.first).to_be_visible()
    # The pull filter's answer is slow (held here): meanwhile no row of the former, unfiltered listing is
    # left under the new filter, only a note that it loads.
    release = asyncio.Event()

    async def slow(route: Route) -> None:
        await release.wait()
        with contextlib.suppress(Error):  # the page may have cancelled it meanwhile
            await route.continue_()

    pull_listing = re.compile(r"/messages\?(?!.*status=).*direction=pull")
    await page.route(pull_listing, slow)
    await page.select_option("#msg-direction", "pull")
    await expect(page.locator("#messages tbody td.loading")).to_have_text("Loading…")
    assert await rows.count() == 0
    release.set()
    await expect(rows.first).to_have_attribute("data-direction", "pull", timeout=30_000)
    await expect(page.locator("#messages tbody tr[data-direction=push]")).to_have_count(0)
    await page.unroute(pull_listing, slow)
    await rows.first.click()
    await expect(page.locator("#message-dialog")).to_be_visible()
    await expect(page.locator("#message-detail")).to_contain_text('"read"')
    await expect(page.locator("#message-retry")).to_be_disabled()  # an ok message
    await page.click("#message-close")

    # A late answer of an earlier choice never overwrites a newer one's rows: the delivery filter's answer
    # is held until the failed status has been chosen and shown.
    held = asyncio.Event()

    async def late(route: Route) -> None:
        await held.wait()
        with contextlib.suppress(Error):
            await route.continue_()

    delivery_listing = re.compile(r"/messages\?(?!.*status=).*direction=delivery")
    settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def ended(request: Request) -> None:  # answered, or cancelled by the page
        if delivery_listing.search(request.url) and not settled.done():
            settled.set_result(None)

    page.on("requestfinished", ended)
    page.on("requestfailed", ended)
    await page.route(delivery_listing, late)
    await page.select_option("#msg-direction", "delivery")
    await page.select_option("#msg-status", "failed")
    await expect(rows.first).to_have_attribute("data-status", "failed", timeout=30_000)
    held.set()
    await asyncio.wait_for(settled, timeout=30)
    await page.evaluate("() => new Promise((done) => setTimeout(done, 50))")  # the page's handling of it
    await page.unroute(delivery_listing, late)
    await expect(page.locator("#messages tbody tr[data-status=ok]")).to_have_count(0)
    assert await rows.count() >= 1
    await expect(page.locator("#dead-letters tbody tr[data-first]").first).to_be_visible()
    await rows.first.click()
    await expect(page.locator("#message-detail")).to_contain_text('"status_code": 503')
    first = int(json.loads(await page.locator("#message-detail").inner_text())["first_sequence"])
    await page.click("#message-retry")
    await expect(page.locator("#message")).to_have_text("The changes are being delivered again.")
    wait_for(lambda: first in {c["sequence"] for c in receiver.changes(org["domain"])}, timeout=60)
    await page.select_option("#msg-status", "ok")
    await expect(page.locator("#messages tbody tr[data-status=ok]").first).to_be_visible()

    await expect(page.locator("#hold-badge")).to_have_text("Delivering")
    await page.click("#hold")
    await expect(page.locator("#hold-badge")).to_have_text("Held")
    await expect(page.locator("#hold-text")).to_contain_text("wait for the release")
    await page.click("#release")
    await expect(page.locator("#hold-badge")).to_have_text("Delivering")
    await expect(page.locator("#poison tbody")).to_contain_text("None.")

    await page.locator("#users tbody tr[data-staff-id=s-adele] button.open-user").click()
    await expect(page.locator("#user-dialog")).to_be_visible()
    await expect(page.locator("#user-subscription")).not_to_have_text("none", timeout=30_000)
    await expect(page.locator("#user-delta")).to_contain_text("held since")
    await expect(page.locator("#user-todo-list")).to_contain_text("(")  # the list's name (its id)
    await expect(page.locator("#user-task-subscription")).to_contain_text("expires")
    await page.click("#user-rematch")
    await expect(page.locator("#message")).to_have_text("The user was matched again.")
    await page.click("#user-messages")
    await expect(page.locator("#msg-staff")).to_have_value("s-adele")
