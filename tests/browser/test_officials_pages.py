"""The officials' area on a phone: a commune official signs in (password, then the TOTP code) and
opens the pages with tables of records; none is wider than the 360 px screen.

Over the demo data, which has three officials in the commune, a funded programme and a paid
cycle: wide enough to have pushed the staff list to 429 px and the cycle to 481 px before their
tables stacked.
"""

from __future__ import annotations

from typing import Any

import pyotp
from flask import Flask
from sqlalchemy import select

from kiosk import demo
from kiosk.welfare.models import PayCycle
from tests.agent_portal.conftest import app_session
from tests.browser.conftest import PHONE_VIEWPORT, screenshot

# Smaller than this, a name in a list is easy to miss with a thumb (WCAG 2.5.8 asks 24 px of
# any target; the ranking is a list of such names, one under the other).
TAP_TARGET_PX_MIN = 32


def _sign_in(page: Any, live_url: str, username: str = "demo.commune") -> None:
    page.goto(f"{live_url}/quan-ly/dang-nhap")
    page.fill("#username", username)
    page.fill("#password", demo.DEMO_STAFF_PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.fill("input[autocomplete=one-time-code]", pyotp.TOTP(demo.DEMO_TOTP_SECRET).now())
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(f"{live_url}/quan-ly/")


def test_the_pages_with_tables_fit_a_phone(live_app: Flask, live_url: str, phone_page: Any) -> None:
    with live_app.test_request_context(), app_session(live_app) as session:
        demo.load(session)
        session.commit()
        cycle = session.scalars(select(PayCycle)).first()
        assert cycle is not None
        cycle_path, programme_path = (
            f"/quan-ly/tro-cap/dot/{cycle.id}",
            f"/quan-ly/tro-cap/chuong-trinh/{cycle.programme_id}",
        )
    page = phone_page
    _sign_in(page, live_url)
    widths = {}
    for name, path in [
        ("staff", "/quan-ly/nhan-su"),
        ("programmes", "/quan-ly/tro-cap/"),
        ("programme", programme_path),
        ("cycle", cycle_path),
    ]:
        page.goto(f"{live_url}{path}")
        assert page.locator("table.stack").count() > 0, path
        screenshot(page, f"officials-{name}")
        widths[path] = page.evaluate("document.documentElement.scrollWidth")
    assert widths == dict.fromkeys(widths, PHONE_VIEWPORT["width"])
    # Stacked, each figure keeps its label: the cycle's first payee reads "Số tiền: 500.000 ₫".
    label = page.evaluate(
        "getComputedStyle(document.querySelector('table.beneficiaries td.amount'), '::before')"
        ".content"
    )
    assert label == '"Số tiền: "'


def test_the_province_ranking_and_an_error_page_on_a_phone(
    live_app: Flask, live_url: str, phone_page: Any
) -> None:
    """A province official's ranking: each commune's name is a link a thumb can hit. A page
    missing from the area keeps the area's header and leads back to its home."""
    with live_app.test_request_context(), app_session(live_app) as session:
        demo.load(session)
        session.commit()
    page = phone_page
    _sign_in(page, live_url, "demo.province")
    page.goto(f"{live_url}/quan-ly/chi-so/")
    names = page.locator("table.ranking tbody th a")
    assert names.count() > 10
    heights = page.evaluate(
        "Array.from(document.querySelectorAll('table.ranking tbody th a'))"
        ".map(a => a.getBoundingClientRect().height)"
    )
    assert min(heights) >= TAP_TARGET_PX_MIN, heights
    # The indicator's definition opens in place; its link to every definition is a target too.
    page.locator("details.definition summary").first.click()
    link = page.locator("details.definition p a").first
    box = link.bounding_box()
    assert box is not None and box["height"] >= TAP_TARGET_PX_MIN, box
    screenshot(page, "officials-ranking")

    response = page.goto(f"{live_url}/quan-ly/khong-co-trang-nay")
    assert response is not None and response.status == 404
    screenshot(page, "officials-not-found")
    assert page.locator("header a.site-name").inner_text() == "Quản lý ATM mềm"
    page.get_by_role("link", name="Về trang chủ").click()
    page.wait_for_url(f"{live_url}/quan-ly/")
