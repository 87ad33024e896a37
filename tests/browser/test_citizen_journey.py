"""A citizen on a phone-sized screen, in headless Chromium: register, get verified and funded
(the agent portal's part, done here in the database), make a withdrawal code, see it.

Screenshots of every step are saved in test-artifacts/ for people to look at.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from typing import Any

import zxingcpp
from flask import Flask
from PIL import Image
from sqlalchemy import select

import ledger
from kiosk import database
from kiosk.citizens.limits import verify_in_person
from kiosk.citizens.models import Citizen
from kiosk.codes import tokens
from kiosk.codes.photo import QR_ONLY
from kiosk.keys import code_key_ring
from ledger import AccountKind
from tests.browser.conftest import screenshot

PHONE = "0978123456"
PIN = "468024"


def _verify_and_fund(app: Flask, phone: str, amount_vnd: int) -> int:
    """What an agent does at the counter: sees the ID card, counts the cash."""
    now = dt.datetime.now(dt.UTC)
    with app.app_context(), database.database().sessions() as db:
        citizen = db.scalar(select(Citizen).where(Citizen.phone == phone))
        assert citizen is not None
        verify_in_person(db, citizen, "agent:1", now)
        drawer = ledger.open_account(
            db, kind=AccountKind.FUNDING, name="counter", owner_ref=str(uuid.uuid4())
        )
        ledger.post_transfer(
            db,
            ledger.Post(
                f"browser:{uuid.uuid4()}",
                drawer.id,
                citizen.wallet_account_id,
                amount_vnd,
                "cash_in",
            ),
            now=now,
        )
        db.commit()
        return citizen.wallet_account_id


def test_register_make_a_withdrawal_code_and_show_it(
    phone_page: Any, live_url: str, live_app: Flask
) -> None:
    page = phone_page
    page.goto(f"{live_url}/dang-ky")
    assert page.locator("html").get_attribute("lang") == "vi"
    page.fill("#phone", PHONE)
    page.fill("#full_name", "Lò Thị Xuân")
    page.fill("#citizen_id", "011162000123")
    page.fill("#birth_day", "3")
    page.fill("input[name=birth_month]", "5")
    page.fill("input[name=birth_year]", "1962")
    page.check("input[name=sex][value=female]")
    page.select_option("#province", "11")
    screenshot(page, "01-register-step-1")
    page.click("button[value=details]")

    page.fill("#commune_query", "muong lay")
    page.click("button[value=search]")
    options = page.locator("#commune option").all_text_contents()
    assert any("Mường Lay" in option for option in options), options
    page.select_option("#commune", label=next(o for o in options if "Mường Lay" in o))
    page.fill("#pin", PIN)
    page.fill("#pin_again", PIN)
    page.check("#consent")
    screenshot(page, "02-register-step-2")
    page.click("button[value=register]")
    page.wait_for_url(f"{live_url}/vi")
    assert "Lò Thị Xuân" in page.inner_text("main")
    screenshot(page, "03-wallet-new-account")

    wallet = _verify_and_fund(live_app, PHONE, 1_200_000)
    page.reload()
    assert "1.200.000\u00a0₫" in page.inner_text("main")
    screenshot(page, "04-wallet-funded")

    page.click("text=Rút tiền")
    page.wait_for_url(f"{live_url}/rut-tien")
    page.click("button.amount-choice[value='500000']")
    page.wait_for_url(f"{live_url}/ma/**")
    assert "500.000\u00a0₫" in page.inner_text(".code-amount")
    fallback = page.inner_text(".fallback-digits").replace(" ", "")
    assert len(fallback) == 8 and fallback.isdigit()
    image = page.locator("img.code-qr")
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")
    screenshot(page, "05-withdrawal-code")

    # The QR on the screen is what the agent's scanner will read: decode the screenshot.
    shot = Image.open(io.BytesIO(image.screenshot()))
    decoded = zxingcpp.read_barcodes(shot, formats=QR_ONLY)
    assert len(decoded) == 1
    with live_app.app_context():
        claims = tokens.verify(decoded[0].text, code_key_ring(), dt.datetime.now(dt.UTC))
    assert (claims.account_id, claims.amount_vnd) == (wallet, 500_000)

    page.goto(f"{live_url}/vi")
    assert "700.000\u00a0₫" in page.inner_text("main")  # available after the reservation
    screenshot(page, "06-wallet-with-open-code")

    # Enter in the amount field makes a code of the amount typed, not of the first choice above
    # it (the choices are submit buttons too, and Enter presses a form's first one).
    page.goto(f"{live_url}/rut-tien")
    page.fill("#so_tien", "300.000")
    screenshot(page, "07-withdrawal-typed")
    page.press("#so_tien", "Enter")
    page.wait_for_url(f"{live_url}/ma/**")
    assert page.inner_text(".code-amount").strip() == "300.000\u00a0₫"
    page.goto(f"{live_url}/vi")
    assert "400.000\u00a0₫" in page.inner_text("main")

    # On a weak connection the code stays on screen. The page refreshes in the background and
    # swaps in the code signed afresh only once it has arrived; offline, it keeps the code it
    # has and says so. (Refreshing every 2 seconds here instead of 30.)
    live_app.config["CODE_REFRESH_S"] = 2
    page.go_back()
    page.wait_for_url(f"{live_url}/ma/**")
    code_url = page.url
    qr = page.locator("img.code-qr")
    first_src = qr.get_attribute("src")
    page.wait_for_function(
        "src => document.querySelector('img.code-qr').getAttribute('src') !== src",
        arg=first_src,
        timeout=10_000,
    )
    page.context.set_offline(True)
    page.locator(".code-offline").wait_for(state="visible", timeout=10_000)
    offline_src = qr.get_attribute("src")
    page.wait_for_timeout(3_000)  # a refresh or two fail meanwhile
    assert page.url == code_url
    assert qr.get_attribute("src") == offline_src
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")
    assert len(page.inner_text(".fallback-digits").replace(" ", "")) == 8
    screenshot(page, "08-withdrawal-code-offline")
    page.context.set_offline(False)
    page.locator(".code-offline").wait_for(state="hidden", timeout=10_000)
    assert qr.get_attribute("src") != offline_src
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")

    # Cancelled on another screen: the page shows the code's new state by itself.
    other = page.context.new_page()
    other.goto(code_url)
    other.click("form.cancel-form button[type=submit]")
    page.get_by_text("Mã đã huỷ. Tiền đã trả về ví của bạn.").wait_for(timeout=10_000)
    assert page.url == code_url
    assert page.locator("img.code-qr").count() == 0
    other.close()
