"""The agent's counter on a phone-sized screen, in headless Chromium: a withdrawal code issued by
the citizen app is read at the counter and paid out, two ways.

* Through the camera: Chromium's fake camera plays a video of the code's QR (written here, see
  `tests.browser.fake_camera`); counter.js posts frames to the server, which decodes them, and
  submits what it read. This browser is launched by the test itself, since the fake camera's
  file is given on Chromium's command line.
* With the keyboard only, as a USB scanner types: the scan field has the focus at load, the
  token and Enter, the last 4 digits of the ID card and Enter, Enter on the pay button.

The agent signs in through the real pages (password, then a TOTP code made with pyotp). The
people, money and the drawer are set up directly in the database. Screenshots of each step are
saved in test-artifacts/.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
from flask import Flask
from sqlalchemy import select

import ledger
from agent_portal import staff
from agent_portal.audit import Action
from agent_portal.drawer import Count, cash_in_drawer, start_drawer
from agent_portal.models import AuditEvent, CounterOperation, OperationKind
from kiosk import database
from kiosk.auth.totp import encrypt_secret
from kiosk.citizens.limits import verify_in_person
from kiosk.citizens.models import Citizen
from kiosk.citizens.registration import CONSENT_GIVEN, Field, register_citizen
from kiosk.payments import codes
from kiosk.payments.models import CodeStatus, IssuedCode
from ledger import AccountKind, Post
from tests.browser.conftest import CHROMIUM_ARGS, PHONE_VIEWPORT, screenshot
from tests.browser.fake_camera import qr_video

COMMUNE_CODE = "00226"  # Phường Văn Miếu - Quốc Tử Giám (seeded by the migrations)
PROVINCE_CODE = "01"
AGENT_PASSWORD = "quay-thu-nghiem-2026"
TOTP_SECRET = pyotp.random_base32(length=32)
CITIZEN_ID = "001158012345"
CITIZEN_NAME = "Hoàng Thị Mai"
OPENING_FLOAT_VND = 20_000_000
DEPOSIT_VND = 1_500_000
WITHDRAWAL_VND = 500_000
CAMERA_ARGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
DECODE_PATH = "/quay/giai-ma-khung-hinh"
PAGE_TIMEOUT_MS = 10_000
# Frames are posted twice a second and each is decoded on the server; a few seconds is plenty.
CAMERA_DECODE_TIMEOUT_MS = 15_000


@dataclass(frozen=True)
class Counter:
    agent_username: str
    citizen_pk: int


@dataclass(frozen=True)
class Code:
    id: uuid.UUID
    token: str


def _prepare_counter(app: Flask) -> Counter:
    """A post office, an agent enrolled in TOTP with an open drawer holding cash, and a
    verified citizen with money in the wallet."""
    now = dt.datetime.now(dt.UTC)
    with app.app_context(), database.database().sessions() as db:
        post_office = staff.create_post_office(
            db,
            code="BD" + secrets.token_hex(3).upper(),
            name="Bưu điện văn hóa xã Văn Miếu",
            commune_code=COMMUNE_CODE,
            opens_minute=0,
            closes_minute=24 * 60,
            now=now,
        )
        agent = staff.create_agent(
            db,
            post_office=post_office,
            username=f"agent.{secrets.token_hex(3)}",
            full_name="Trần Thị Lan",
            password=AGENT_PASSWORD,
            created_by="admin",
            now=now,
        )
        agent.totp_secret_ciphertext = encrypt_secret(TOTP_SECRET)
        agent.totp_enrolled_at = now
        treasury = ledger.open_account(
            db, kind=AccountKind.SETTLEMENT, name="Kho bạc huyện", owner_ref=str(uuid.uuid4())
        )
        ledger.post_transfer(
            db,
            Post(
                f"browser:float:{uuid.uuid4()}",
                agent.drawer_account_id,
                treasury.id,
                OPENING_FLOAT_VND,
                "opening_float",
            ),
            now=now,
        )
        citizen = register_citizen(
            db,
            {
                Field.PHONE: "0912345678",
                Field.CITIZEN_ID: CITIZEN_ID,
                Field.FULL_NAME: CITIZEN_NAME,
                Field.BIRTH_DAY: "12",
                Field.BIRTH_MONTH: "4",
                Field.BIRTH_YEAR: "1958",
                Field.SEX: "female",
                Field.PROVINCE: PROVINCE_CODE,
                Field.COMMUNE: COMMUNE_CODE,
                Field.PIN: "468024",
                Field.PIN_AGAIN: "468024",
                Field.CONSENT: CONSENT_GIVEN,
            },
            registered_by="self",
            now=now,
        )
        verify_in_person(db, citizen, "agent:1", now)
        ledger.post_transfer(
            db,
            Post(
                f"browser:cash-in:{uuid.uuid4()}",
                agent.drawer_account_id,
                citizen.wallet_account_id,
                DEPOSIT_VND,
                "cash_in",
            ),
            now=now,
        )
        # The shift has begun: the drawer counted as the ledger says.
        start_drawer(db, agent, Count(cash_in_drawer(db, agent, now), None), now)
        counter = Counter(agent.username, citizen.id)
        db.commit()
    return counter


def _issue_withdrawal_code(app: Flask, citizen_pk: int, amount: int) -> Code:
    """What the citizen app does on "Rút tiền": reserve the money, sign a fresh token."""
    now = dt.datetime.now(dt.UTC)
    with app.app_context(), database.database().sessions() as db:
        citizen = db.get(Citizen, citizen_pk)
        assert citizen is not None
        shown = codes.create_withdrawal_code(db, citizen, amount, now)
        code = Code(shown.record.id, shown.token)
        db.commit()
    return code


def _sign_in(page: Any, live_url: str, username: str) -> None:
    page.goto(f"{live_url}/quay/dang-nhap")
    page.fill("#username", username)
    page.fill("#password", AGENT_PASSWORD)
    page.press("#password", "Enter")
    page.wait_for_url(f"{live_url}/quay/xac-thuc")
    page.fill("#code", pyotp.TOTP(TOTP_SECRET).now())
    page.press("#code", "Enter")
    page.wait_for_url(f"{live_url}/quay/")
    page.wait_for_selector(".scan-form .scan-field")


def _pay_from_verification_page(page: Any, prefix: str) -> None:
    """Verification → 4 digits, Enter → confirmation → Enter → receipt, with screenshots."""
    page.wait_for_selector(".code-amount")
    assert page.inner_text(".code-amount").strip() == "500.000\u00a0₫"
    assert CITIZEN_NAME in page.inner_text(".citizen-name")
    assert page.evaluate("document.activeElement.id") == "bon_so_cuoi"
    screenshot(page, f"{prefix}-2-verify")

    page.keyboard.type(CITIZEN_ID[-4:])
    page.keyboard.press("Enter")
    page.wait_for_selector("button.button-pay")
    assert page.evaluate("document.activeElement.classList.contains('button-pay')")
    screenshot(page, f"{prefix}-3-confirm")

    page.keyboard.press("Enter")
    page.wait_for_selector(".receipt-title")
    assert page.inner_text(".receipt-title").strip() == "BIÊN LAI CHI TRẢ TIỀN MẶT"
    assert page.inner_text(".receipt-amount").strip() == "500.000\u00a0₫"
    screenshot(page, f"{prefix}-4-receipt")


def _assert_paid_out(app: Flask, code: Code, via: str) -> None:
    with app.app_context(), database.database().sessions() as db:
        record = db.get(IssuedCode, code.id)
        assert record is not None
        assert record.status == CodeStatus.REDEEMED
        operation = db.scalar(select(CounterOperation).where(CounterOperation.code_id == code.id))
        assert operation is not None
        assert operation.kind == OperationKind.PAYOUT
        assert operation.amount == WITHDRAWAL_VND
        assert operation.cash_delta == -WITHDRAWAL_VND
        scans = db.scalars(
            select(AuditEvent.detail).where(
                AuditEvent.action == Action.SCANNED, AuditEvent.subject == f"code:{code.id}"
            )
        ).all()
        assert scans == [via]


@contextmanager
def _phone_with_camera(chromium_path: str, video: Path) -> Iterator[Any]:
    """A phone-sized page in a Chromium whose only camera plays ``video``."""
    from playwright.sync_api import sync_playwright

    args = [*CHROMIUM_ARGS, *CAMERA_ARGS, f"--use-file-for-fake-video-capture={video}"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=args)
        try:
            context = browser.new_context(
                viewport=PHONE_VIEWPORT, locale="vi-VN", is_mobile=True, has_touch=True
            )
            context.set_default_timeout(PAGE_TIMEOUT_MS)
            yield context.new_page()
        finally:
            browser.close()


def test_counter_reads_the_code_through_the_camera_and_pays(
    chromium_path: str, live_url: str, live_app: Flask, tmp_path: Path
) -> None:
    counter = _prepare_counter(live_app)
    # The counter refuses a token older than 90 s: issue it just before the camera starts.
    code = _issue_withdrawal_code(live_app, counter.citizen_pk, WITHDRAWAL_VND)
    video = qr_video(code.token, tmp_path / "citizen-phone.y4m")

    with _phone_with_camera(chromium_path, video) as page:
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on(
            "console",
            lambda message: (
                problems.append(f"console: {message.text}") if message.type == "error" else None
            ),
        )
        decode_statuses: list[int] = []
        page.on(
            "response",
            lambda response: (
                decode_statuses.append(response.status)
                if response.url.endswith(DECODE_PATH)
                else None
            ),
        )
        # Until the screenshot of the running camera is taken, frames are answered "nothing
        # read yet" without reaching the server; afterwards they go to the server's decoder.
        held = {"frames": 0, "to_server": 0, "holding": True}

        def hold_frames(route: Any) -> None:
            if held["holding"]:
                held["frames"] += 1
                route.fulfill(status=200, content_type="application/json", body='{"text": null}')
            else:
                held["to_server"] += 1
                route.continue_()

        page.route(f"**{DECODE_PATH}", hold_frames)

        _sign_in(page, live_url, counter.agent_username)
        camera = page.locator("section.camera")
        camera.wait_for(state="visible")
        has_detector = page.evaluate("'BarcodeDetector' in window")
        page.click("button.camera-start")
        page.wait_for_function(
            """() => {
                const video = document.querySelector('.camera-view');
                return !video.hidden && video.readyState >= 2 && video.videoWidth > 0;
            }""",
            timeout=CAMERA_DECODE_TIMEOUT_MS,
        )
        assert page.locator(".camera-view").evaluate("v => [v.videoWidth, v.videoHeight]") == [
            640,
            480,
        ]
        if not has_detector:
            # counter.js is posting frames (the route handler runs while Playwright waits).
            deadline = time.monotonic() + CAMERA_DECODE_TIMEOUT_MS / 1000
            while held["frames"] < 1 and time.monotonic() < deadline:
                page.wait_for_timeout(100)
            assert held["frames"] >= 1, "counter.js posted no camera frame"
        assert "Đưa mã QR vào khung hình" in page.inner_text(".camera-status")
        screenshot(page, "counter-camera-1-scan")

        held["holding"] = False
        page.wait_for_url(f"{live_url}/quay/quet", timeout=CAMERA_DECODE_TIMEOUT_MS)
        _pay_from_verification_page(page, "counter-camera")
        assert not problems, problems
        if not has_detector:
            # What the form submitted was read by the server's decoder from a real frame.
            assert held["to_server"] >= 1
            assert decode_statuses[-1] == 200, decode_statuses

    _assert_paid_out(live_app, code, "camera")


def test_scan_type_four_digits_enter_enter(phone_page: Any, live_url: str, live_app: Flask) -> None:
    """A USB scanner types the code into the focused field and presses Enter: the whole payout
    is the scan, 4 digits and Enter, and Enter."""
    page = phone_page
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    counter = _prepare_counter(live_app)
    _sign_in(page, live_url, counter.agent_username)
    code = _issue_withdrawal_code(live_app, counter.citizen_pk, WITHDRAWAL_VND)

    assert page.evaluate("document.activeElement.id") == "ma"
    screenshot(page, "counter-keyboard-1-scan")
    page.keyboard.type(code.token)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_url}/quay/quet")
    _pay_from_verification_page(page, "counter-keyboard")

    _assert_paid_out(live_app, code, "scanner")
