"""The dock's web page in a real headless Chromium against a running dock (issue 8, item 3).

Everything is real but the USB bus: the evidence store, a sim camera's firmware and offload
server, the DockAgent with its status model and audit log, the local API and the page served by
uvicorn on loopback (tests/dock/ui_rig.py builds it as ``bwc dock run`` does), and Debian's
Chromium driven by Playwright (tests/dock/browser.py). Waits are Playwright's own (``expect`` and
``wait_for_function`` with timeouts); nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.sync_api import Browser, Locator, Page, ViewportSize, expect

from custody.clip import segment_name
from device.firmware import CLIPS_ROOT
from dock.config import DockConfig
from hw.sim.usb import SimUsbBus
from tests.dock.browser import headless_chromium
from tests.dock.conftest import DockCfgFactory, FleetFactory, Server
from tests.dock.fleet import SEGMENT_SIZES, FleetCamera
from tests.dock.ui_rig import RunningDock, bus_with, camera_status, running_dock

pytestmark = pytest.mark.browser

CLIPS = 3
#: about 36 KB a clip, uploaded at 32 KiB/s: each clip's upload lasts about a second, so the
#: page's one-second poll sees transfers part done
SLOW = pytest.mark.parametrize("pace", [((12_000, 16_000, 8_000), 32 * 1024)], ids=["slow"])
WAIT_MS = 30_000
TABLET: ViewportSize = {"width": 768, "height": 1024}
BAY = "1-1"  #: the bay of USB bus 1, root port 1, where the tests dock the camera


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with headless_chromium() as chromium:
        yield chromium


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab the size of a tablet in portrait; a script error in the page fails the test."""
    context = browser.new_context(viewport=TABLET)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert errors == [], f"the page's script failed: {errors}"


Pace = tuple[tuple[int, ...], int]


@pytest.fixture
def pace() -> Pace:
    """Segment sizes of each clip, and the dock's upload cap (0: none); :data:`SLOW` slows it."""
    return SEGMENT_SIZES, 0


@pytest.fixture
def camera(make_fleet: FleetFactory, pace: Pace) -> FleetCamera:
    """One sim camera with a few clips, serving its offload API (not yet in a bay)."""
    (camera,) = make_fleet(1, clips=CLIPS, segment_sizes=pace[0])
    return camera


@pytest.fixture
def cfg(
    make_dock_cfg: DockCfgFactory, live_store: Server, camera: FleetCamera, pace: Pace
) -> DockConfig:
    return make_dock_cfg(live_store.url, [camera], upload_bytes_per_s=pace[1])


@pytest.fixture
def bus() -> SimUsbBus:
    """The dock's USB bus, every bay empty."""
    return bus_with([])


@pytest.fixture
def dock(cfg: DockConfig, dock_key: Ed25519PrivateKey, bus: SimUsbBus) -> Iterator[RunningDock]:
    with running_dock(cfg, dock_key, bus) as running:
        yield running


def card_of(page: Page, serial: str) -> Locator:
    """The bay card whose heading is the camera's serial."""
    return page.locator("li.bay").filter(has=page.get_by_role("heading", name=serial, exact=True))


def docked(page: Page, dock: RunningDock, bus: SimUsbBus, camera: FleetCamera) -> Locator:
    """Open the page, dock the camera, and return its card once the page shows it."""
    page.goto(dock.url + "/")
    bus.plug(camera.serial, port_path=(1,))
    card = card_of(page, camera.serial)
    expect(card).to_be_visible(timeout=WAIT_MS)
    return card


def sign_in(page: Page, token: str) -> None:
    """Answer the page's one question for the armorer token."""
    dialog = page.get_by_role("dialog", name="Armorer sign-in")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Armorer token").fill(token)
    dialog.get_by_role("button", name="Continue").click()
    expect(dialog).to_be_hidden()


@SLOW
def test_a_camera_docked_while_the_page_is_open_shows_its_progress_until_done(
    page: Page, dock: RunningDock, bus: SimUsbBus, camera: FleetCamera, tmp_path: Path
) -> None:
    page.goto(dock.url + "/")
    expect(page.get_by_text("No camera is docked.")).to_be_visible()

    bus.plug(camera.serial, port_path=(1,))  # the armorer docks the camera: no reload

    card = card_of(page, camera.serial)
    expect(card).to_be_visible(timeout=WAIT_MS)
    expect(card.locator(".officer")).to_have_text("officer-1", timeout=WAIT_MS)
    # a transfer part done, as the dock reports the bytes moved
    page.wait_for_function(
        """serial => {
            const card = [...document.querySelectorAll("li.bay")]
                .find(li => li.querySelector("h3").textContent === serial);
            const bar = card && card.querySelector(".transfer:not([hidden]) progress");
            return bar !== null && bar !== undefined && bar.value > 0 && bar.value < bar.max;
        }""",
        arg=camera.serial,
        timeout=WAIT_MS,
        polling=50,
    )
    expect(card.locator(".transfer-text")).to_contain_text("of")
    page.screenshot(path=tmp_path / "dock-page-offloading.png", full_page=True)

    expect(card.locator(".state-text")).to_have_text("Done", timeout=WAIT_MS)
    expect(card.locator(".clips")).to_have_text(f"0 pending, {CLIPS} done")
    expect(card.locator(".transfer")).to_be_hidden()
    expect(card.locator(".bay-id")).to_have_text(BAY)
    expect(page.locator("#announcer")).to_contain_text(f"{camera.serial} in bay {BAY}: done.")
    page.screenshot(path=tmp_path / "dock-page-done.png", full_page=True)
    assert camera.clips_on_card() == []  # the page said done: the camera is empty


def test_a_docked_camera_shows_the_firmware_and_profile_it_runs(
    page: Page, dock: RunningDock, bus: SimUsbBus, camera: FleetCamera, dock_key: Ed25519PrivateKey
) -> None:
    card = docked(page, dock, bus, camera)
    expect(card.locator(".state-text")).to_have_text("Done", timeout=WAIT_MS)
    running = camera_status(camera, dock_key)
    assert running["firmware_state"] == "healthy" and not running["profile_id"]
    expect(card.locator(".firmware")).to_have_text(running["firmware"])
    expect(card.locator(".profile")).to_have_text("none")
    expect(card.locator(".update")).to_be_hidden()


def _bay(serial: str, **fields: object) -> dict[str, object]:
    """A bay as ``GET /api/v1/bays`` reports it once the camera is done, with ``fields``."""
    return {
        "bay": "1-1", "serial": serial, "device_id": "cam-0001", "state": "done",
        "officer_id": "officer-1", "battery_percent": 90.0, "charging": True,
        "clips_pending": 0, "clips_done": 3, "transfer": None, "last_error": None,
        "firmware": "1.1.0", "firmware_state": "healthy", "target": "sim", "profile_id": "",
        "profile_version": 0, "update": None,
    } | fields  # fmt: skip


def test_the_cards_show_an_update_under_way_a_trial_and_a_failure(
    page: Page, dock: RunningDock, tmp_path: Path
) -> None:
    # The dock's answer is fixed here (the network edge of the page) so that all three show at
    # once; the updates themselves are the dock's end-to-end tests'.
    update = {"kind": "firmware", "version": "1.2.0", "bytes_done": 42, "bytes_total": 100}
    bays = [
        _bay("BWC1-000001", update=update | {"step": "sending", "error": None}),
        _bay("BWC1-000002", firmware="1.2.0", firmware_state="trial",
             profile_id="1a2b3c4d" + "0" * 56, profile_version=3),
        _bay("BWC1-000003", update=update | {"step": "failed", "error": "rolled back to 1.1.0"}),
    ]  # fmt: skip
    snapshot = {"dock": {"name": "d", "store": "s"}, "bays": bays, "quarantined": 0,
                "unfinished_elsewhere": 0}  # fmt: skip
    page.route("**/api/v1/bays", lambda route: route.fulfill(json=snapshot))
    page.goto(dock.url + "/")

    sending = card_of(page, "BWC1-000001")
    expect(sending.locator(".firmware")).to_have_text("1.1.0 → 1.2.0", timeout=WAIT_MS)
    expect(sending.locator(".update-text")).to_have_text(
        "Updating firmware 1.2.0: Sending · 42 B of 100 B (42%)"
    )
    expect(sending.locator(".update-bar")).to_have_attribute("value", "42")
    trial = card_of(page, "BWC1-000002")
    expect(trial.locator(".firmware")).to_have_text("1.2.0 (trial)")
    expect(trial.locator(".profile")).to_have_text("v3 1a2b3c4d")
    expect(trial.locator(".update")).to_be_hidden()
    failed = card_of(page, "BWC1-000003")
    expect(failed.locator(".firmware")).to_have_text("failed: rolled back to 1.1.0")
    expect(failed.locator(".update")).to_be_hidden()
    page.screenshot(path=tmp_path / "dock-page-updates.png", full_page=True)


def test_an_action_without_a_token_shows_the_apis_error(
    page: Page, dock: RunningDock, bus: SimUsbBus, camera: FleetCamera, tmp_path: Path
) -> None:
    card = docked(page, dock, bus, camera)
    refused = requests.post(dock.url + "/api/v1/retry", json={"serial": None}, timeout=10)
    assert refused.status_code == 401

    card.get_by_role("button", name="Retry now").click()
    sign_in(page, "")

    expect(card.get_by_role("status")).to_have_text(refused.json()["error"])
    page.screenshot(path=tmp_path / "dock-page-refused.png", full_page=True)


def test_assigning_an_officer_sends_the_armorer_token_and_reaches_the_camera(
    page: Page,
    dock: RunningDock,
    bus: SimUsbBus,
    camera: FleetCamera,
    dock_key: Ed25519PrivateKey,
) -> None:
    card = docked(page, dock, bus, camera)
    expect(card.locator(".state-text")).to_have_text("Done", timeout=WAIT_MS)

    card.get_by_label("Assign to officer").fill("officer-9001")
    card.get_by_role("button", name="Assign").click()
    sign_in(page, dock.token)

    expect(card.get_by_role("status")).to_have_text("Assigned to officer-9001.")
    expect(card.locator(".officer")).to_have_text("officer-9001", timeout=WAIT_MS)
    assert camera_status(camera, dock_key)["officer_id"] == "officer-9001"


def test_the_token_is_asked_once_and_kept_for_the_tab(
    page: Page, dock: RunningDock, bus: SimUsbBus, camera: FleetCamera
) -> None:
    card = docked(page, dock, bus, camera)
    card.get_by_role("button", name="Retry now").click()
    sign_in(page, dock.token)
    expect(card.get_by_role("status")).to_have_text("Waiting clips are trying again.")

    page.get_by_role("button", name="Retry all waiting clips").click()  # no question this time

    expect(page.locator("#global-result")).to_have_text("Waiting clips are trying again.")
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('bwc.dock.armorerToken')") == dock.token
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_a_quarantined_clip_needs_attention_and_is_released_from_the_page_to_done(
    page: Page, dock: RunningDock, bus: SimUsbBus, camera: FleetCamera
) -> None:
    clip_id = sorted(camera.manifests)[0]
    segment = camera.camera.storage.root / CLIPS_ROOT / clip_id / segment_name(1)
    original = segment.read_bytes()
    segment.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # a bad card

    card = docked(page, dock, bus, camera)

    expect(card.locator(".state-text")).to_have_text("Needs attention", timeout=WAIT_MS)
    expect(card.locator(".last-error")).to_contain_text("sha256")
    quarantined = page.get_by_role("region", name="Quarantined clips").get_by_role("listitem")
    expect(quarantined).to_have_count(1, timeout=WAIT_MS)
    expect(quarantined).to_contain_text(clip_id)
    segment.write_bytes(original)  # the armorer has the card checked and put right
    quarantined.get_by_label("Reason for release").fill("card checked and repaired")
    quarantined.get_by_role("button", name="Release").click()
    sign_in(page, dock.token)

    expect(card.locator(".state-text")).to_have_text("Done", timeout=WAIT_MS)
    expect(card.locator(".clips")).to_have_text(f"0 pending, {CLIPS} done")
    expect(page.get_by_role("region", name="Quarantined clips")).to_be_hidden(timeout=WAIT_MS)
