"""Fixture `browser`: headless Chromium driven by Playwright, one per session.

The Chromium is Debian's (`apt-get install chromium`, which `make install` does), never one that
`playwright install` downloads: there is no CDN here. `CHROMIUM` overrides the path.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail(
            "Debian's chromium is needed for the browser tests: make install (apt-get install chromium)"
        )
    return path


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield instance
        finally:
            await instance.close()
