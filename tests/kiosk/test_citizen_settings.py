"""The citizen's account page: what it shows, changing the PIN, signing out everywhere, the
optional second factor (TOTP) and the step-up page; plus the site's navigation bar."""

from __future__ import annotations

import datetime as dt
import io
import re
import threading
from html import escape, unescape

import pyotp
import pytest
import zxingcpp
from flask import Flask, render_template_string
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select
from test_citizen_helpers import (
    COMMUNE_NAME,
    SESSION_COOKIE,
    Registered,
    db_session,
    find_citizen,
    post_form,
    registered_citizen,
    sign_in,
)
from werkzeug.test import TestResponse

from kiosk.auth import totp
from kiosk.auth.models import WebSession
from kiosk.auth.sessions import stepped_up_within
from kiosk.citizens import limits
from kiosk.citizens.models import Citizen
from kiosk.codes.photo import QR_ONLY

UNVERIFIED_WORDS = (
    "Chưa xác minh: nhận tiền được, chưa rút hoặc thanh toán được. "
    "Hãy mang CCCD đến bưu điện xã để xác minh."
)
NEW_PIN = "580247"
_SECRET = re.compile(r'<p class="secret">([A-Z2-7 ]+)</p>')


@pytest.fixture
def citizen(web_client: FlaskClient) -> Registered:
    """A registered citizen, signed in on ``web_client``."""
    return registered_citizen(web_client)


def _html(response: TestResponse) -> str:
    return unescape(response.get_data(as_text=True))


def _second_browser(app: Flask, citizen: Registered) -> FlaskClient:
    browser = app.test_client()
    assert sign_in(browser, citizen.phone, citizen.pin).status_code == 302
    return browser


def _copy_of(app: Flask, browser: FlaskClient) -> FlaskClient:
    cookie = browser.get_cookie(SESSION_COOKIE)
    assert cookie is not None
    copy = app.test_client()
    copy.set_cookie(SESSION_COOKIE, cookie.value)
    return copy


# --- The account page ---------------------------------------------------------------------------


def test_account_page_shows_who_and_where_in_plain_words(
    web_client: FlaskClient, citizen: Registered
) -> None:
    response = web_client.get("/tai-khoan")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = _html(response)
    assert "Hoàng Thị Mai" in html
    assert f"{citizen.phone[:4]} {citizen.phone[4:7]} {citizen.phone[7:]}" in html
    assert f"•••• •••• {citizen.citizen_id[-4:]}" in html
    assert citizen.citizen_id not in html
    assert COMMUNE_NAME in html
    assert "Thành phố Hà Nội" in html
    assert UNVERIFIED_WORDS in html
    assert "Xác thực hai bước:" in html
    assert "chưa bật" in html


def test_account_page_after_verification_states_the_limits(
    web_app: Flask, web_client: FlaskClient, citizen: Registered
) -> None:
    verified_at = dt.datetime(2026, 3, 4, 18, 30, tzinfo=dt.UTC)  # 5 March in Vietnam
    with web_app.test_request_context(), db_session(web_app) as session:
        record = session.get(Citizen, citizen.id)
        assert record is not None
        limits.verify_in_person(session, record, "agent:12", verified_at)
        session.commit()
    html = _html(web_client.get("/tai-khoan"))
    assert UNVERIFIED_WORDS not in html
    assert (
        "Đã xác minh ngày 05/03/2026: rút tiền và thanh toán được, "
        "mỗi lần tối đa 20.000.000\u00a0₫, "
        "mỗi ngày tối đa 50.000.000\u00a0₫, mỗi tháng tối đa 100.000.000\u00a0₫."
    ) in html


def test_account_pages_need_signing_in(web_app: Flask) -> None:
    anonymous = web_app.test_client()
    for path in (
        "/tai-khoan",
        "/tai-khoan/doi-ma-pin",
        "/tai-khoan/xac-thuc-hai-buoc",
        "/tai-khoan/xac-thuc-hai-buoc/ma-qr.png",
        "/xac-thuc-them",
    ):
        response = anonymous.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/dang-nhap?next="), path


# --- Changing the PIN ---------------------------------------------------------------------------


def _change_pin(
    browser: FlaskClient, current: str, new: str, again: str | None = None
) -> TestResponse:
    return post_form(
        browser,
        "/tai-khoan/doi-ma-pin",
        {"current_pin": current, "pin": new, "pin_again": new if again is None else again},
    )


def test_changing_the_pin_ends_every_other_session(
    web_app: Flask, web_client: FlaskClient, citizen: Registered
) -> None:
    other_phone = _second_browser(web_app, citizen)
    stolen = _copy_of(web_app, web_client)
    before = find_citizen(web_app, citizen.phone)
    assert before is not None

    response = _change_pin(web_client, citizen.pin, NEW_PIN)
    assert response.status_code == 302
    assert response.headers["Location"] == "/tai-khoan"

    # This browser was signed in afresh; the old cookie, and the other phone, are out.
    page = web_client.get("/tai-khoan")
    assert page.status_code == 200
    assert "Đã đổi mã PIN." in _html(page)
    assert stolen.get("/tai-khoan").status_code == 302
    assert other_phone.get("/tai-khoan").status_code == 302

    record = find_citizen(web_app, citizen.phone)
    assert record is not None
    assert record.session_epoch == before.session_epoch + 1
    assert record.pin_changed_at is not None
    with db_session(web_app) as session:
        live = session.scalars(
            select(WebSession).where(
                WebSession.principal_kind == "citizen",
                WebSession.principal_id == citizen.id,
                WebSession.revoked_at.is_(None),
            )
        ).all()
    assert len(live) == 1

    assert sign_in(web_app.test_client(), citizen.phone, citizen.pin).status_code == 422
    assert sign_in(web_app.test_client(), citizen.phone, NEW_PIN).status_code == 302


# (current PIN typed, new PIN, new PIN again, field marked, message); None means "the right
# current PIN" for the first and "the current PIN" for the others.
REFUSED_CHANGES = {
    "wrong current": ("975310", NEW_PIN, NEW_PIN, "current_pin", "Mã PIN hiện tại không đúng."),
    "repeated digit": (None, "111111", "111111", "pin", "chữ số lặp lại"),
    "sequence": (None, "123456", "123456", "pin", "dãy số liên tiếp"),
    "birth date": (None, "050958", "050958", "pin", "ngày sinh"),
    "mismatch": (None, NEW_PIN, "580248", "pin_again", "không giống nhau"),
    "unchanged": (None, None, None, "pin", "phải khác mã PIN hiện tại"),
}


@pytest.mark.parametrize("case", REFUSED_CHANGES.values(), ids=REFUSED_CHANGES.keys())
def test_a_refused_pin_change_changes_nothing(
    web_app: Flask,
    web_client: FlaskClient,
    citizen: Registered,
    case: tuple[str | None, str | None, str | None, str, str],
) -> None:
    current, new, again, field, message = case
    before = find_citizen(web_app, citizen.phone)
    assert before is not None
    response = _change_pin(
        web_client, current or citizen.pin, new or citizen.pin, again or citizen.pin
    )
    assert response.status_code == 422
    html = _html(response)
    assert message in html
    assert f'<p class="field-error" id="{field}-error">' in html

    after = find_citizen(web_app, citizen.phone)
    assert after is not None
    assert (after.pin_hash, after.session_epoch) == (before.pin_hash, before.session_epoch)
    assert web_client.get("/tai-khoan").status_code == 200


def test_guessing_the_current_pin_counts_towards_the_lock(
    web_app: Flask, web_client: FlaskClient, citizen: Registered
) -> None:
    for _attempt in range(4):
        assert _change_pin(web_client, "975310", NEW_PIN).status_code == 422
    # The fifth wrong PIN locks, and says so with it.
    fifth = _change_pin(web_client, "975310", NEW_PIN)
    assert fifth.status_code == 429 and "Tài khoản tạm khoá đến" in _html(fifth)
    locked = _change_pin(web_client, citizen.pin, NEW_PIN)
    assert locked.status_code == 429
    assert "Tài khoản tạm khoá đến" in _html(locked)
    # The same lock as signing in: a thief on an open session cannot try PINs there instead.
    assert sign_in(web_app.test_client(), citizen.phone, citizen.pin).status_code == 429


def test_signing_out_everywhere(
    web_app: Flask, web_client: FlaskClient, citizen: Registered
) -> None:
    other_phone = _second_browser(web_app, citizen)
    response = post_form(web_client, "/tai-khoan", {}, "/tai-khoan/dang-xuat-moi-noi")
    assert response.status_code == 302
    assert response.headers["Location"] == "/dang-nhap"
    assert "Đã đăng xuất trên mọi điện thoại." in _html(web_client.get("/dang-nhap"))
    assert web_client.get("/tai-khoan").status_code == 302
    assert other_phone.get("/tai-khoan").status_code == 302
    assert _second_browser(web_app, citizen).get("/tai-khoan").status_code == 200


def test_signing_out_everywhere_needs_the_csrf_token(
    web_client: FlaskClient, citizen: Registered
) -> None:
    assert web_client.post("/tai-khoan/dang-xuat-moi-noi").status_code == 400
    assert web_client.get("/tai-khoan").status_code == 200


# --- The second factor --------------------------------------------------------------------------


def _enrolment_secret(browser: FlaskClient) -> str:
    page = browser.get("/tai-khoan/xac-thuc-hai-buoc")
    assert page.status_code == 200
    found = _SECRET.search(page.get_data(as_text=True))
    assert found is not None
    grouped = found.group(1)
    assert re.fullmatch(r"([A-Z2-7]{4} ){7}[A-Z2-7]{4}", grouped)
    return grouped.replace(" ", "")


def _code(secret: str, steps_from_now: int = 0) -> str:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=totp.TOTP_STEP_S * steps_from_now)
    return pyotp.TOTP(secret).at(moment)


def _enable(browser: FlaskClient, steps_from_now: int = 0) -> str:
    secret = _enrolment_secret(browser)
    response = post_form(
        browser, "/tai-khoan/xac-thuc-hai-buoc", {"code": _code(secret, steps_from_now)}
    )
    assert response.status_code == 302, _html(response)
    return secret


def test_enrolment_shows_a_qr_code_and_the_secret_for_typing(
    web_app: Flask, web_client: FlaskClient, citizen: Registered
) -> None:
    secret = _enrolment_secret(web_client)
    assert _enrolment_secret(web_client) == secret  # the same secret until it is confirmed

    image = web_client.get("/tai-khoan/xac-thuc-hai-buoc/ma-qr.png")
    assert image.status_code == 200
    assert image.mimetype == "image/png"
    assert image.headers["Cache-Control"] == "no-store"
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(image.data)), formats=QR_ONLY)
    assert len(decoded) == 1
    uri = decoded[0].text
    assert uri.startswith("otpauth://totp/")
    assert f"secret={secret}" in uri
    assert citizen.phone in uri
    # On the phone that has the app, a link adds it without scanning the phone's own screen.
    page = web_client.get("/tai-khoan/xac-thuc-hai-buoc").get_data(as_text=True)
    assert f'<a href="{escape(uri)}">' in page

    # Not on yet, and nothing stored, until a code proves the app has the secret.
    record = find_citizen(web_app, citizen.phone)
    assert record is not None and record.totp_secret_ciphertext is None


def test_enrolment_needs_a_right_code_and_stores_the_secret_encrypted(
    web_app: Flask, web_client: FlaskClient, citizen: Registered
) -> None:
    secret = _enrolment_secret(web_client)
    wrong = post_form(web_client, "/tai-khoan/xac-thuc-hai-buoc", {"code": "000000"})
    if wrong.status_code == 302:  # one chance in a million that 000000 is the code
        pytest.skip("000000 happened to be the current code")
    assert wrong.status_code == 422
    assert "Mã không đúng." in _html(wrong)
    record = find_citizen(web_app, citizen.phone)
    assert record is not None and record.totp_secret_ciphertext is None

    code = _code(secret)
    response = post_form(
        web_client, "/tai-khoan/xac-thuc-hai-buoc", {"code": code[:3] + " " + code[3:]}
    )
    assert response.status_code == 302
    assert "Đã bật xác thực hai bước." in _html(web_client.get("/tai-khoan"))

    record = find_citizen(web_app, citizen.phone)
    assert record is not None and record.totp_secret_ciphertext is not None
    assert secret.encode() not in record.totp_secret_ciphertext
    with web_app.app_context():
        assert totp.decrypt_secret(record.totp_secret_ciphertext) == secret
    assert record.totp_last_step is not None
    # The QR code is not served once the factor is on.
    assert web_client.get("/tai-khoan/xac-thuc-hai-buoc/ma-qr.png").status_code == 404


def test_a_code_is_accepted_once(
    web_app: Flask, web_client: FlaskClient, citizen: Registered
) -> None:
    secret = _enable(web_client)  # uses the current step's code
    already_used = _code(secret)
    next_code = _code(secret, 1)

    replay = post_form(web_client, "/xac-thuc-them", {"code": already_used})
    assert replay.status_code == 422
    assert "Mã này đã được dùng rồi." in _html(replay)

    accepted = post_form(
        web_client, "/xac-thuc-them?next=/tai-khoan", {"code": next_code, "next": "/tai-khoan"}
    )
    assert accepted.status_code == 302
    assert accepted.headers["Location"] == "/tai-khoan"

    again = post_form(web_client, "/xac-thuc-them", {"code": next_code})
    assert again.status_code == 422
    assert "Mã này đã được dùng rồi." in _html(again)
    older = post_form(web_client, "/xac-thuc-them", {"code": _code(secret, -1)})
    assert older.status_code == 422


def test_step_up_marks_the_session(
    web_app: Flask, web_client: FlaskClient, citizen: Registered
) -> None:
    secret = _enable(web_client, steps_from_now=-1)
    page = web_client.get("/xac-thuc-them?next=/tai-khoan")
    assert page.status_code == 200
    assert '<input type="hidden" name="next" value="/tai-khoan">' in page.get_data(as_text=True)

    response = post_form(
        web_client, "/xac-thuc-them?next=/tai-khoan", {"code": _code(secret), "next": "/tai-khoan"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/tai-khoan"
    with db_session(web_app) as session:
        web_session = session.scalars(
            select(WebSession).where(
                WebSession.principal_kind == "citizen",
                WebSession.principal_id == citizen.id,
                WebSession.revoked_at.is_(None),
            )
        ).one()
    assert web_session.step_up_at is not None
    assert stepped_up_within(web_session, 300, dt.datetime.now(dt.UTC))


def test_step_up_without_a_second_factor_says_how_to_get_one(
    web_client: FlaskClient, citizen: Registered
) -> None:
    page = web_client.get("/xac-thuc-them")
    assert page.status_code == 200
    assert "bạn cần bật xác thực hai bước trước" in _html(page)
    refused = post_form(web_client, "/tai-khoan", {"code": "123456"}, "/xac-thuc-them")
    assert refused.status_code == 409


def test_wrong_codes_lock_the_second_factor(web_client: FlaskClient, citizen: Registered) -> None:
    secret = _enable(web_client, steps_from_now=-1)
    valid = {_code(secret, steps) for steps in (-1, 0, 1)}
    wrong = next(code for code in ("111111", "222222", "333333", "444444") if code not in valid)
    for _attempt in range(4):
        assert post_form(web_client, "/xac-thuc-them", {"code": wrong}).status_code == 422
    fifth = post_form(web_client, "/xac-thuc-them", {"code": wrong})
    assert fifth.status_code == 429 and "tạm khoá đến" in _html(fifth)
    locked = post_form(web_client, "/xac-thuc-them", {"code": _code(secret)})
    assert locked.status_code == 429
    assert "tạm khoá đến" in _html(locked)


def test_turning_the_second_factor_off_needs_a_code(
    web_app: Flask, web_client: FlaskClient, citizen: Registered
) -> None:
    secret = _enable(web_client, steps_from_now=-1)
    page = _html(web_client.get("/tai-khoan/xac-thuc-hai-buoc"))
    assert "Đang bật." in page
    assert 'class="secret"' not in page

    refused = post_form(
        web_client, "/tai-khoan/xac-thuc-hai-buoc", {"code": ""}, "/tai-khoan/xac-thuc-hai-buoc/tat"
    )
    assert refused.status_code == 422
    response = post_form(
        web_client,
        "/tai-khoan/xac-thuc-hai-buoc",
        {"code": _code(secret)},
        "/tai-khoan/xac-thuc-hai-buoc/tat",
    )
    assert response.status_code == 302
    record = find_citizen(web_app, citizen.phone)
    assert record is not None
    assert (record.totp_secret_ciphertext, record.totp_last_step) == (None, None)


def test_two_racing_uses_of_one_code_cannot_both_pass(
    web_app: Flask, web_client: FlaskClient, citizen: Registered
) -> None:
    _enable(web_client, steps_from_now=-1)
    step = totp.step_at(dt.datetime.now(dt.UTC)) + 1
    barrier = threading.Barrier(2)
    results: list[bool] = []

    def claim() -> None:
        with db_session(web_app) as session:
            record = session.get(Citizen, citizen.id)
            assert record is not None
            session.commit()  # each holds what it read, as a request that checked first would
            barrier.wait()
            results.append(totp.claim_step(session, record, step))
            session.commit()

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, True]
    record = find_citizen(web_app, citizen.phone)
    assert record is not None and record.totp_last_step == step


# --- Layout -------------------------------------------------------------------------------------


def test_signed_in_pages_have_the_navigation_bar(
    web_app: Flask, web_client: FlaskClient, citizen: Registered
) -> None:
    html = web_client.get("/tai-khoan").get_data(as_text=True)
    assert '<a href="/tai-khoan" aria-current="page">Tài khoản</a>' in html
    for endpoint, label in (
        ("wallet.home", "Ví"),
        ("codes.new_withdrawal", "Rút tiền"),
        ("merchants.pay", "Thanh toán"),
    ):
        shown = f">{label}</a></li>" in html
        assert shown == (endpoint in web_app.view_functions), endpoint
    assert 'action="/dang-xuat"' in html
    assert ">Đăng xuất</button>" in html


def test_the_navigation_bar_marks_the_current_page(web_app: Flask) -> None:
    template = (
        '{% import "_macros/page.html" as page with context %}'
        '{{ page.nav_link("wallet.home", "Ví") }}{{ page.nav_link("kiosk.home", "Nhà") }}'
    )
    with web_app.test_request_context("/"):
        html = render_template_string(template)
    assert '<a href="/vi">Ví</a>' in html
    assert '<a href="/" aria-current="page">Nhà</a>' in html


def test_citizen_pages_need_no_script_or_inline_style(
    web_client: FlaskClient, citizen: Registered
) -> None:
    for path in (
        "/tai-khoan",
        "/tai-khoan/doi-ma-pin",
        "/tai-khoan/xac-thuc-hai-buoc",
        "/xac-thuc-them",
    ):
        html = web_client.get(path).get_data(as_text=True)
        assert "<script" not in html, path
        assert "<style" not in html, path
        assert " style=" not in html, path
