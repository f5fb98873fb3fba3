import pytest
from tests.browser.test_console_page import demo_organisation
from tests.e2e.test_console import console_link
pytestmark = pytest.mark.browser

async def test_shot(connector, browser):
    org = await demo_organisation(connector)
    ctx = await browser.new_context(viewport={"width": 1300, "height": 1900})
    page = await ctx.new_page()
    await page.goto(console_link(connector, org["domain"])["url"])
    await page.wait_for_timeout(1500)
    await page.screenshot(path="/tmp/console1.png", full_page=True)
    await page.wait_for_timeout(8000)
    await page.click("#reauthorize")
    await page.wait_for_timeout(1000)
    await page.screenshot(path="/tmp/console2.png", full_page=True)
    await ctx.close()
