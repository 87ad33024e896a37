"""End to end in headless Chromium: a citizen registers on a phone, an agent verifies them in
person and deposits their cash, the citizen makes a withdrawal code, and the agent reads it BY
CAMERA and pays out — every step of the journey through the real pages.

Two browsers, as in life: the citizen's phone (the `phone_page` fixture, 360 px wide) and the
agent's counter device. The counter's device is started twice: once for the identity check and
the cash-in, then again — keeping the agent's session — with a fake camera whose video is made
from a screenshot of the QR on the citizen's phone (Chromium reads its fake camera's file when
it starts). Only the post office, the agent (enrolled in TOTP) and the agent's open, funded
drawer are set up in the database, by the counter tests' `_prepare_counter`
(`tests.browser.test_counter_camera`), whose sign-in, camera options and payout check are
reused too.

Screenshots of each step go to test-artifacts/e2e/ (`python -m bench.proofs e2e` runs this test
and counts them).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from PIL import Image
from sqlalchemy import select

import ledger
from kiosk import database
from kiosk.citizens.models import Citizen, KycTier
from tests.browser.conftest import ARTIFACTS_DIR, CHROMIUM_ARGS, PHONE_VIEWPORT, screenshot
from tests.browser.fake_camera import FRAME_HEIGHT_PX, FRAME_MARGIN_PX, FRAME_WIDTH_PX, write_y4m
from tests.browser.test_counter_camera import (
    CAMERA_ARGS,
    CAMERA_DECODE_TIMEOUT_MS,
    DECODE_PATH,
    PAGE_TIMEOUT_MS,
    Code,
    _assert_paid_out,
    _prepare_counter,
    _sign_in,
)

E2E_DIR = "e2e"
PHONE = "0967246813"
CITIZEN_ID = "001162004321"
CITIZEN_NAME = "Đinh Thị Hoa"
PIN = "135792"
DEPOSIT_VND = 1_500_000
WITHDRAWAL_VND = 500_000
# Hà Nội, and a commune of it found by typing without diacritics, as on a phone keyboard.
PROVINCE_CODE = "01"
COMMUNE_QUERY = "van mieu"
COMMUNE_NAME = "Văn Miếu"
# The steps, in order: each leaves test-artifacts/e2e/<name>.png.
STEPS = (
    "01-citizen-register-details",
    "02-citizen-register-commune-pin",
    "03-citizen-wallet-unverified",
    "04-agent-finds-citizen",
    "05-agent-verifies-identity",
    "06-agent-cash-in-amount",
    "07-agent-cash-in-confirm",
    "08-agent-cash-in-receipt",
    "09-citizen-wallet-funded",
    "10-citizen-withdrawal-code",
    "11-agent-camera-scanning",
    "12-agent-code-verified",
    "13-agent-payout-confirm",
    "14-agent-payout-receipt",
    "15-citizen-wallet-after-payout",
)


def shot(page: Any, step: str) -> Path:
    assert step in STEPS, step
    (ARTIFACTS_DIR / E2E_DIR).mkdir(parents=True, exist_ok=True)
    return screenshot(page, f"{E2E_DIR}/{step}")


def _citizen(app: Flask) -> Citizen:
    with app.app_context(), database.database().sessions() as db:
        citizen = db.scalar(select(Citizen).where(Citizen.phone == PHONE))
        assert citizen is not None
        db.expunge(citizen)
        return citizen


def _posted(app: Flask, account_id: int) -> int:
    with app.app_context(), database.database().sessions() as db:
        return ledger.balance(db, account_id).posted


def _camera_video_of(qr_screenshot: bytes, path: Path) -> Path:
    """The fake camera's video: the QR as the citizen's screen showed it, on a white frame."""
    picture = Image.open(io.BytesIO(qr_screenshot)).convert("L")
    room = min(FRAME_WIDTH_PX, FRAME_HEIGHT_PX) - 2 * FRAME_MARGIN_PX
    scale = max(1, room // max(picture.size))
    picture = picture.resize(
        (picture.width * scale, picture.height * scale), Image.Resampling.NEAREST
    )
    frame = Image.new("L", (FRAME_WIDTH_PX, FRAME_HEIGHT_PX), 255)
    frame.paste(
        picture, ((FRAME_WIDTH_PX - picture.width) // 2, (FRAME_HEIGHT_PX - picture.height) // 2)
    )
    return write_y4m(frame, path)


@contextmanager
def _counter_with_camera(
    playwright_browser: Any, chromium_path: str, video: Path, signed_in: dict[str, Any]
) -> Iterator[Any]:
    """A phone-sized page in a second Chromium whose only camera plays ``video``, launched by
    the Playwright that runs the citizen's phone (one Playwright per thread), with the camera
    test's options, still signed in (``signed_in``: the storage state of the agent's first
    session — a TOTP code is accepted once, so signing in again within the same 30 s fails)."""
    args = [*CHROMIUM_ARGS, *CAMERA_ARGS, f"--use-file-for-fake-video-capture={video}"]
    browser = playwright_browser.browser_type.launch(executable_path=chromium_path, args=args)
    try:
        context = browser.new_context(
            viewport=PHONE_VIEWPORT,
            locale="vi-VN",
            is_mobile=True,
            has_touch=True,
            storage_state=signed_in,
        )
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        yield context.new_page()
    finally:
        browser.close()


def _citizen_registers(page: Any, live_url: str) -> None:
    page.goto(f"{live_url}/dang-ky")
    page.fill("#phone", PHONE)
    page.fill("#full_name", CITIZEN_NAME)
    page.fill("#citizen_id", CITIZEN_ID)
    page.fill("#birth_day", "21")
    page.fill("input[name=birth_month]", "9")
    page.fill("input[name=birth_year]", "1962")
    page.check("input[name=sex][value=female]")
    page.select_option("#province", PROVINCE_CODE)
    shot(page, "01-citizen-register-details")
    page.click("button[value=details]")

    page.fill("#commune_query", COMMUNE_QUERY)
    page.click("button[value=search]")
    options = page.locator("#commune option").all_text_contents()
    page.select_option("#commune", label=next(o for o in options if COMMUNE_NAME in o))
    page.fill("#pin", PIN)
    page.fill("#pin_again", PIN)
    page.check("#consent")
    shot(page, "02-citizen-register-commune-pin")
    page.click("button[value=register]")
    page.wait_for_url(f"{live_url}/vi")
    assert CITIZEN_NAME in page.inner_text("main")
    shot(page, "03-citizen-wallet-unverified")


def _agent_verifies_and_deposits(page: Any, live_url: str, agent_username: str) -> None:
    """At the counter: find the citizen by phone, check the ID card in person, count the cash."""
    _sign_in(page, live_url, agent_username)
    page.goto(f"{live_url}/quay/nap-tien")
    page.fill("#so_dien_thoai", PHONE)
    page.press("#so_dien_thoai", "Enter")
    page.wait_for_selector("#bon_so_cuoi")
    assert CITIZEN_NAME in page.inner_text(".citizen-name")
    assert "Chưa xác minh" in page.inner_text(".code-details")
    shot(page, "04-agent-finds-citizen")

    page.fill("#bon_so_cuoi", CITIZEN_ID[-4:])
    page.check("input[name=khop_khuon_mat]")
    shot(page, "05-agent-verifies-identity")
    page.click("form[action*='/xac-minh'] button[type=submit]")
    page.wait_for_selector("#so_tien")
    assert "Đã xác minh tại quầy" in page.inner_text(".code-details")

    page.fill("#so_tien", f"{DEPOSIT_VND:,}".replace(",", "."))
    shot(page, "06-agent-cash-in-amount")
    page.press("#so_tien", "Enter")
    page.wait_for_selector("button.button-pay")
    assert page.inner_text(".code-amount").strip() == "1.500.000\u00a0₫"
    shot(page, "07-agent-cash-in-confirm")
    page.click("button.button-pay")
    page.wait_for_selector(".receipt-title")
    assert page.inner_text(".receipt-amount").strip() == "1.500.000\u00a0₫"
    shot(page, "08-agent-cash-in-receipt")


def _citizen_makes_a_code(page: Any, live_url: str) -> tuple[uuid.UUID, bytes]:
    page.goto(f"{live_url}/vi")
    shot(page, "09-citizen-wallet-funded")
    page.click("text=Rút tiền")
    page.wait_for_url(f"{live_url}/rut-tien")
    page.click(f"button.amount-choice[value='{WITHDRAWAL_VND}']")
    page.wait_for_url(f"{live_url}/ma/**")
    assert "500.000\u00a0₫" in page.inner_text(".code-amount")
    image = page.locator("img.code-qr")
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")
    shot(page, "10-citizen-withdrawal-code")
    code_id = uuid.UUID(page.url.rstrip("/").rsplit("/", 1)[-1])
    return code_id, image.screenshot()


def _agent_scans_by_camera_and_pays(page: Any, live_url: str) -> None:
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    # Frames are answered "nothing read yet" until the running camera has been photographed.
    holding = {"on": True}

    def hold_frames(route: Any) -> None:
        if holding["on"]:
            route.fulfill(status=200, content_type="application/json", body='{"text": null}')
        else:
            route.continue_()

    page.route(f"**{DECODE_PATH}", hold_frames)
    page.goto(f"{live_url}/quay/")
    page.wait_for_selector(".scan-form .scan-field")
    page.click("button.camera-start")
    page.wait_for_function(
        """() => {
            const video = document.querySelector('.camera-view');
            return !video.hidden && video.readyState >= 2 && video.videoWidth > 0;
        }""",
        timeout=CAMERA_DECODE_TIMEOUT_MS,
    )
    shot(page, "11-agent-camera-scanning")
    holding["on"] = False
    page.wait_for_url(f"{live_url}/quay/quet", timeout=CAMERA_DECODE_TIMEOUT_MS)
    page.wait_for_selector(".code-amount")
    assert page.inner_text(".code-amount").strip() == "500.000\u00a0₫"
    assert CITIZEN_NAME in page.inner_text(".citizen-name")
    shot(page, "12-agent-code-verified")

    page.keyboard.type(CITIZEN_ID[-4:])
    page.keyboard.press("Enter")
    page.wait_for_selector("button.button-pay")
    shot(page, "13-agent-payout-confirm")
    page.keyboard.press("Enter")
    page.wait_for_selector(".receipt-title")
    assert page.inner_text(".receipt-title").strip() == "BIÊN LAI CHI TRẢ TIỀN MẶT"
    assert page.inner_text(".receipt-amount").strip() == "500.000\u00a0₫"
    shot(page, "14-agent-payout-receipt")
    assert not problems, problems


def test_register_verify_deposit_make_a_code_and_get_it_paid_by_camera(
    chromium_path: str, phone_page: Any, live_url: str, live_app: Flask, tmp_path: Path
) -> None:
    citizen_page = phone_page
    citizen_page.set_default_timeout(PAGE_TIMEOUT_MS)
    counter = _prepare_counter(live_app)

    _citizen_registers(citizen_page, live_url)
    registered = _citizen(live_app)
    assert registered.kyc_tier == KycTier.UNVERIFIED
    assert _posted(live_app, registered.wallet_account_id) == 0

    # The counter's device, first without a camera: identity check and cash-in.
    counter_context = citizen_page.context.browser.new_context(
        viewport=PHONE_VIEWPORT, locale="vi-VN", is_mobile=True, has_touch=True
    )
    counter_context.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        _agent_verifies_and_deposits(counter_context.new_page(), live_url, counter.agent_username)
        signed_in = counter_context.storage_state()
    finally:
        counter_context.close()
    verified = _citizen(live_app)
    assert verified.kyc_tier == KycTier.VERIFIED
    funded_vnd = _posted(live_app, verified.wallet_account_id)
    assert 0 < funded_vnd <= DEPOSIT_VND  # less any cash-in fee, taken from the wallet

    code_id, qr_png = _citizen_makes_a_code(citizen_page, live_url)
    video = _camera_video_of(qr_png, tmp_path / "citizen-screen.y4m")
    browser = citizen_page.context.browser
    with _counter_with_camera(browser, chromium_path, video, signed_in) as counter_page:
        _agent_scans_by_camera_and_pays(counter_page, live_url)
    _assert_paid_out(live_app, Code(code_id, ""), "camera")

    citizen_page.goto(f"{live_url}/vi")
    shot(citizen_page, "15-citizen-wallet-after-payout")
    assert _posted(live_app, verified.wallet_account_id) < funded_vnd
    for step in STEPS:
        assert (ARTIFACTS_DIR / E2E_DIR / f"{step}.png").is_file(), step
