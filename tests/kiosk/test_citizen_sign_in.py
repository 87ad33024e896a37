"""Signing in with phone and PIN, the shared lockout, and every way a session ends: signing
out, the idle timeout, and a stolen cookie that is replayed afterwards."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from test_citizen_helpers import (
    SESSION_COOKIE,
    Registered,
    csrf_token,
    db_session,
    registered_citizen,
    sign_in,
    unique_phone,
)

from kiosk.auth.models import Throttle, WebSession
from kiosk.auth.sessions import CITIZEN_POLICY
from kiosk.auth.throttles import PIN_POLICY
from kiosk.citizens import credentials
from kiosk.formatting import local_time

WRONG_PIN = "975310"
WRONG_ANSWER = "Số điện thoại hoặc mã PIN không đúng."


@pytest.fixture
def citizen(web_app: Flask) -> Registered:
    """A registered citizen, signed out again (registered from another browser)."""
    browser = web_app.test_client()
    registered = registered_citizen(browser)
    browser.post("/dang-xuat", data={"csrf_token": csrf_token(browser, "/tai-khoan")})
    return registered


def _cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie(SESSION_COOKIE)
    assert cookie is not None
    return cookie.value


def _browser_with_cookie(app: Flask, value: str) -> FlaskClient:
    browser = app.test_client()
    browser.set_cookie(SESSION_COOKIE, value)
    return browser


def test_sign_in_with_phone_and_pin(web_client: FlaskClient, citizen: Registered) -> None:
    assert web_client.get("/tai-khoan").status_code == 302

    # Typed as people write it: the number is normalised before it is looked up.
    typed = f"+84 {citizen.phone[1:4]} {citizen.phone[4:7]} {citizen.phone[7:]}"
    response = sign_in(web_client, typed, citizen.pin)
    assert response.status_code == 302
    assert response.headers["Location"] == "/vi"
    assert response.headers["Cache-Control"] == "no-store"
    assert web_client.get("/tai-khoan").status_code == 200


def test_the_page_asked_for_comes_back_after_signing_in(
    web_client: FlaskClient, citizen: Registered
) -> None:
    asked = web_client.get("/tai-khoan/doi-ma-pin?x=1")
    assert asked.status_code == 302
    assert asked.headers["Location"] == "/dang-nhap?next=/tai-khoan/doi-ma-pin?x%3D1"

    page = web_client.get(asked.headers["Location"]).get_data(as_text=True)
    assert '<input type="hidden" name="next" value="/tai-khoan/doi-ma-pin?x=1">' in page

    response = sign_in(
        web_client, citizen.phone, citizen.pin, next_path="/tai-khoan/doi-ma-pin?x=1"
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/tai-khoan/doi-ma-pin?x=1"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/vi",
        "//evil.example/vi",
        "/\\evil.example",
        "javascript:alert(1)",
        "tai-khoan",
        "/tai-khoan\r\nSet-Cookie: x=1",
    ],
)
def test_next_must_be_a_path_on_this_site(
    web_client: FlaskClient, citizen: Registered, target: str
) -> None:
    page = web_client.get("/dang-nhap", query_string={"next": target}).get_data(as_text=True)
    # Above the footer, whose language switch carries this page's own path as its `next`.
    assert 'name="next"' not in page.split('<footer class="site-footer">')[0]
    response = sign_in(web_client, citizen.phone, citizen.pin, next_path=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/vi"


def test_signed_in_visitors_skip_the_sign_in_page(
    web_client: FlaskClient, citizen: Registered
) -> None:
    sign_in(web_client, citizen.phone, citizen.pin)
    response = web_client.get("/dang-nhap?next=/tai-khoan")
    assert response.status_code == 302
    assert response.headers["Location"] == "/tai-khoan"


@pytest.mark.parametrize("case", ["wrong pin", "unknown phone", "short pin"])
def test_a_failed_sign_in_never_says_which_part_was_wrong(
    web_client: FlaskClient, citizen: Registered, case: str
) -> None:
    phone, pin = {
        "wrong pin": (citizen.phone, WRONG_PIN),
        "unknown phone": (unique_phone(), citizen.pin),
        "short pin": (citizen.phone, "12"),
    }[case]
    response = sign_in(web_client, phone, pin)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert WRONG_ANSWER in html
    # Nothing was "sent" that could be fixed: the heading says what did not happen.
    assert "Chưa đăng nhập được:" in html
    assert "Chưa gửi được" not in html
    assert "chưa đăng ký" not in html
    assert f'value="{pin}"' not in html  # the PIN is not written back
    assert web_client.get("/tai-khoan").status_code == 302


def test_an_unknown_phone_costs_one_argon2_verification_like_a_known_one(
    web_app: Flask, citizen: Registered, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The timing promise without timing the test: both paths run exactly one verification.
    calls: list[str] = []
    real_pin_matches = credentials.pin_matches

    def counting_pin_matches(pin_hash: str, pin: str) -> bool:
        calls.append(pin_hash)
        return real_pin_matches(pin_hash, pin)

    monkeypatch.setattr(credentials, "pin_matches", counting_pin_matches)
    now = dt.datetime.now(dt.UTC)
    for phone in (citizen.phone, unique_phone()):
        with web_app.test_request_context(), db_session(web_app) as session:
            with pytest.raises(credentials.WrongCredentials):
                credentials.authenticate_citizen(session, phone, WRONG_PIN, now)
            session.commit()
    assert len(calls) == 2
    assert all(hash_.startswith("$argon2id$") for hash_ in calls)


def test_a_badly_typed_phone_is_explained_and_not_counted(
    web_app: Flask, web_client: FlaskClient
) -> None:
    response = sign_in(web_client, "0212", "246813")
    assert response.status_code == 422
    assert "đúng 10 chữ số" in response.get_data(as_text=True)
    with db_session(web_app) as session:
        assert session.scalar(select(Throttle).where(Throttle.key == "pin:0212")) is None


# --- Lockout ------------------------------------------------------------------------------------


def _locked_until(app: Flask, phone: str) -> dt.datetime:
    with db_session(app) as session:
        until = session.scalar(select(Throttle.locked_until).where(Throttle.key == f"pin:{phone}"))
    assert until is not None
    return until


def test_five_wrong_pins_lock_the_phone_even_for_the_right_pin(
    web_app: Flask, web_client: FlaskClient, citizen: Registered
) -> None:
    assert PIN_POLICY.attempts_max == 5
    for _attempt in range(4):
        assert sign_in(web_client, citizen.phone, WRONG_PIN).status_code == 422
    # The fifth wrong PIN locks the phone, and says so then.
    fifth = sign_in(web_client, citizen.phone, WRONG_PIN)
    assert fifth.status_code == 429
    until = _locked_until(web_app, citizen.phone)
    expected = f"Tài khoản tạm khoá đến {local_time(until, '%H:%M')}"
    assert expected in fifth.get_data(as_text=True)

    response = sign_in(web_client, citizen.phone, citizen.pin)
    assert response.status_code == 429
    assert expected in response.get_data(as_text=True)
    assert _locked_until(web_app, citizen.phone) == until
    assert web_client.get("/tai-khoan").status_code == 302


def test_a_wrong_pin_near_the_lock_says_how_many_tries_are_left(
    web_client: FlaskClient, citizen: Registered
) -> None:
    said = [sign_in(web_client, citizen.phone, WRONG_PIN).get_data(as_text=True) for _ in range(5)]
    assert all("Số điện thoại hoặc mã PIN không đúng." in page for page in said[:4])
    assert not any("lần thử" in page for page in said[:2])
    assert "Còn 2 lần thử; sai nữa thì số điện thoại này bị tạm khoá 15 phút." in said[2]
    assert "Còn 1 lần thử; sai nữa thì số điện thoại này bị tạm khoá 15 phút." in said[3]
    assert "Tài khoản tạm khoá đến" in said[4]  # as the last warning said
    # An unknown phone is told the same, so the warning does not tell which phones exist.
    unknown = unique_phone()
    pages = [sign_in(web_client, unknown, WRONG_PIN).get_data(as_text=True) for _ in range(3)]
    assert "Còn 2 lần thử" in pages[2]


def test_the_right_pin_gets_in_once_the_lock_has_ended(
    web_app: Flask, web_client: FlaskClient, citizen: Registered
) -> None:
    for _attempt in range(6):
        sign_in(web_client, citizen.phone, WRONG_PIN)
    # The time shown on the lock message has passed.
    with db_session(web_app) as session:
        session.execute(
            update(Throttle)
            .where(Throttle.key == f"pin:{citizen.phone}")
            .values(locked_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
        session.commit()
    assert sign_in(web_client, citizen.phone, citizen.pin).status_code == 302


def test_the_lock_is_shared_by_every_worker(
    web_app: Flask,
    make_app: Callable[..., Flask],
    database_url: str,
    citizen: Registered,
) -> None:
    # A second app on the same database stands for another gunicorn worker (or server).
    other_worker = make_app(DATABASE_URL=database_url)
    try:
        for _attempt in range(3):
            assert sign_in(web_app.test_client(), citizen.phone, WRONG_PIN).status_code == 422
        assert sign_in(other_worker.test_client(), citizen.phone, WRONG_PIN).status_code == 422
        # The fifth, on the other worker, locks the phone for both.
        assert sign_in(other_worker.test_client(), citizen.phone, WRONG_PIN).status_code == 429
        assert sign_in(web_app.test_client(), citizen.phone, citizen.pin).status_code == 429
        assert sign_in(other_worker.test_client(), citizen.phone, citizen.pin).status_code == 429
    finally:
        from kiosk import database

        database.dispose(other_worker)


def test_an_unknown_phone_locks_the_same_way(web_client: FlaskClient) -> None:
    # Otherwise the lock itself would tell which phones are registered.
    phone = unique_phone()
    statuses = [sign_in(web_client, phone, WRONG_PIN).status_code for _ in range(6)]
    assert statuses == [422] * 4 + [429] * 2


def test_a_right_pin_clears_the_count(web_client: FlaskClient, citizen: Registered) -> None:
    for _round in range(2):
        for _attempt in range(4):
            assert sign_in(web_client, citizen.phone, WRONG_PIN).status_code == 422
        assert sign_in(web_client, citizen.phone, citizen.pin).status_code == 302
        web_client.post("/dang-xuat", data={"csrf_token": csrf_token(web_client, "/tai-khoan")})


# --- Sessions end -------------------------------------------------------------------------------


def test_signing_out_ends_the_session_on_the_server(
    web_app: Flask, web_client: FlaskClient, citizen: Registered
) -> None:
    sign_in(web_client, citizen.phone, citizen.pin)
    stolen = _cookie(web_client)

    token = csrf_token(web_client, "/tai-khoan")
    response = web_client.post("/dang-xuat", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/dang-nhap"
    assert "Bạn đã đăng xuất." in web_client.get("/dang-nhap").get_data(as_text=True)
    assert web_client.get("/tai-khoan").status_code == 302

    # A copy of the cookie taken before signing out opens nothing afterwards.
    replayed = _browser_with_cookie(web_app, stolen).get("/tai-khoan")
    assert replayed.status_code == 302
    assert replayed.headers["Location"].startswith("/dang-nhap")


def test_signing_out_needs_the_csrf_token(web_client: FlaskClient, citizen: Registered) -> None:
    sign_in(web_client, citizen.phone, citizen.pin)
    response = web_client.post("/dang-xuat")
    assert response.status_code == 400
    assert web_client.get("/tai-khoan").status_code == 200


def _move_last_seen(app: Flask, citizen_id: int, seconds_ago: int) -> None:
    with db_session(app) as session:
        session.execute(
            update(WebSession)
            .where(
                WebSession.principal_kind == "citizen",
                WebSession.principal_id == citizen_id,
                WebSession.revoked_at.is_(None),
            )
            .values(last_seen_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds_ago))
        )
        session.commit()


def test_a_session_left_idle_ends(
    web_app: Flask, web_client: FlaskClient, citizen: Registered
) -> None:
    sign_in(web_client, citizen.phone, citizen.pin)
    idle_s = CITIZEN_POLICY.idle_s

    _move_last_seen(web_app, citizen.id, seconds_ago=idle_s - 60)
    assert web_client.get("/tai-khoan").status_code == 200  # and this touches it again

    _move_last_seen(web_app, citizen.id, seconds_ago=idle_s + 1)
    response = web_client.get("/tai-khoan")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/dang-nhap")
    with db_session(web_app) as session:
        sessions = session.scalars(
            select(WebSession).where(
                WebSession.principal_kind == "citizen", WebSession.principal_id == citizen.id
            )
        ).all()
    assert sessions and all(web_session.revoked_at is not None for web_session in sessions)


def test_signing_in_starts_a_new_session_each_time(
    web_app: Flask, web_client: FlaskClient, citizen: Registered
) -> None:
    sign_in(web_client, citizen.phone, citizen.pin)
    first = _cookie(web_client)
    # Signed in, the sign-in page sends the visitor on; the form is still there to post to.
    token = csrf_token(web_client, "/tai-khoan")
    again = web_client.post(
        "/dang-nhap", data={"phone": citizen.phone, "pin": citizen.pin, "csrf_token": token}
    )
    assert again.status_code == 302
    assert _cookie(web_client) != first
    # The session that was replaced is ended, not just forgotten by this browser.
    assert _browser_with_cookie(web_app, first).get("/tai-khoan").status_code == 302


def test_sign_in_page_needs_no_script_or_inline_style(web_client: FlaskClient) -> None:
    html = web_client.get("/dang-nhap").get_data(as_text=True)
    assert "<script" not in html
    assert " style=" not in html
    assert 'autocomplete="current-password"' in html
    assert 'inputmode="numeric"' in html
