"""A real headless Chromium for page tests: Debian's /usr/bin/chromium driven by Playwright.

Playwright's own browser download (``playwright install``) is not used: ``make setup`` installs
Debian's ``chromium`` package and Playwright launches that binary through ``executable_path``.
Playwright gives every launch a fresh, empty profile (its own ``--user-data-dir``). The flags keep
Chromium off the network it would otherwise call at start (updates, sync, safe browsing): on a
closed machine those calls fail and slow every start.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",  # tests run as root in a container, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    """Chromium, started headless; closed at the end of the block."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"no browser: {CHROMIUM} is missing; run 'sudo make setup' (it installs Debian's "
            "chromium package)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=FLAGS
        )
        try:
            yield browser
        finally:
            browser.close()
