"""The citizen sets the first PIN of an account opened on their behalf, on their own phone, with
the one-time code the team member gave them (``/dat-ma-pin``); then signs in as usual."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from kiosk.citizens.models import Citizen
from kiosk.citizens.pin_setup import (
    PIN_SETUP_POLICY,
    PinSetupCodeExpired,
    WrongPinSetupCode,
    issue_pin_setup_code,
    set_first_pin,
)
from tests.community.support import app_session
from tests.community.test_accounts_on_behalf import linked_citizen, open_account
from tests.community.test_households import team_with_household

NEW_PIN = "468135"


def account_with_code(app: Flask) -> tuple[str, str, uuid.UUID]:
    """An account opened by a team member: its phone, the code shown, the person's id."""
    team_client = app.test_client()
    _member, _village, _household, person_id = team_with_household(app, team_client)
    code, form = open_account(team_client, person_id)
    return form["phone"], code, person_id


def set_pin(client: FlaskClient, phone: str, code: str, pin: str = NEW_PIN) -> TestResponse:
    return client.post(
        "/dat-ma-pin", data={"phone": phone, "code": code, "pin": pin, "pin_again": pin}
    )


def sign_in(client: FlaskClient, phone: str, pin: str = NEW_PIN) -> int:
    return client.post("/dang-nhap", data={"phone": phone, "pin": pin}).status_code


def test_the_citizen_sets_the_pin_with_the_code_and_then_signs_in(
    community_app: Flask,
) -> None:
    phone, code, person_id = account_with_code(community_app)
    phone_of_citizen = community_app.test_client()
    assert sign_in(phone_of_citizen, phone) == 422  # no PIN yet: nobody can sign in
    page = phone_of_citizen.get("/dat-ma-pin").get_data(as_text=True)
    assert "Mã đặt PIN (8 chữ số)" in page
    response = set_pin(phone_of_citizen, phone, f"{code[:4]} {code[4:]}")
    assert response.status_code == 302
    assert response.headers["Location"] == "/vi"  # signed in, at the wallet
    assert phone_of_citizen.get("/vi").status_code == 200
    citizen = linked_citizen(community_app, person_id)
    assert citizen.pin_hash is not None and citizen.pin_changed_at is not None
    assert citizen.pin_setup_code_hash is None and citizen.pin_setup_code_expires_at is None
    assert sign_in(community_app.test_client(), phone) == 302


def test_the_code_works_once(community_app: Flask) -> None:
    phone, code, _person = account_with_code(community_app)
    assert set_pin(community_app.test_client(), phone, code).status_code == 302
    again = set_pin(community_app.test_client(), phone, code, pin="735195")
    assert again.status_code == 422
    assert "không đúng" in again.get_data(as_text=True)
    assert sign_in(community_app.test_client(), phone, "735195") == 422
    assert sign_in(community_app.test_client(), phone) == 302


def test_an_expired_code_is_refused(community_app: Flask) -> None:
    phone, code, person_id = account_with_code(community_app)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=7, minutes=1)
    with (
        app_session(community_app) as session,
        community_app.test_request_context(),
        pytest.raises(PinSetupCodeExpired),
    ):
        set_first_pin(session, phone=phone, code=code, pin=NEW_PIN, pin_again=NEW_PIN, now=later)
    response = set_pin(community_app.test_client(), phone, code)
    assert response.status_code == 302  # still within its 7 days now
    assert linked_citizen(community_app, person_id).pin_hash is not None


def test_an_expired_code_is_refused_on_the_page(community_app: Flask) -> None:
    phone, _code, person_id = account_with_code(community_app)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=8)
    with app_session(community_app) as session, community_app.test_request_context():
        citizen = session.get(Citizen, linked_citizen(community_app, person_id).id)
        assert citizen is not None
        issued = issue_pin_setup_code(session, citizen, long_ago)
        session.commit()
    response = set_pin(community_app.test_client(), phone, issued.code)
    assert response.status_code == 422
    assert "Mã đặt PIN đã hết hạn" in response.get_data(as_text=True)
    assert linked_citizen(community_app, person_id).pin_hash is None


def test_a_wrong_code_and_an_unknown_phone_get_the_same_answer(community_app: Flask) -> None:
    phone, code, _person = account_with_code(community_app)
    wrong_code = "0" * 8 if code != "0" * 8 else "1" * 8
    answers = [
        set_pin(community_app.test_client(), phone, wrong_code),
        set_pin(community_app.test_client(), "0399999999", code),
    ]
    assert [answer.status_code for answer in answers] == [422, 422]
    messages = [answer.get_data(as_text=True).split("error-summary")[1][:300] for answer in answers]
    assert messages[0] == messages[1]
    with (
        app_session(community_app) as session,
        community_app.test_request_context(),
        pytest.raises(WrongPinSetupCode),
    ):
        set_first_pin(
            session,
            phone=phone,
            code=wrong_code,
            pin=NEW_PIN,
            pin_again=NEW_PIN,
            now=dt.datetime.now(dt.UTC),
        )


def test_wrong_codes_are_throttled_and_then_even_the_right_code_waits(
    community_app: Flask,
) -> None:
    phone, code, person_id = account_with_code(community_app)
    wrong_code = "0" * 8 if code != "0" * 8 else "1" * 8
    client = community_app.test_client()
    for _attempt in range(PIN_SETUP_POLICY.attempts_max - 1):
        assert set_pin(client, phone, wrong_code).status_code == 422
    last = set_pin(client, phone, wrong_code)
    assert last.status_code == 429 and "sai nhiều lần" in last.get_data(as_text=True)
    locked = set_pin(client, phone, code)
    assert locked.status_code == 429
    assert "sai nhiều lần" in locked.get_data(as_text=True)
    assert linked_citizen(community_app, person_id).pin_hash is None


def test_the_pin_rules_apply_and_a_refused_pin_keeps_the_code(community_app: Flask) -> None:
    phone, code, person_id = account_with_code(community_app)
    for weak in ("123456", "111111", "120462"):  # a run, one digit, the date of birth ddmmyy
        assert set_pin(community_app.test_client(), phone, code, pin=weak).status_code == 422
    mismatch = community_app.test_client().post(
        "/dat-ma-pin", data={"phone": phone, "code": code, "pin": NEW_PIN, "pin_again": "468136"}
    )
    assert mismatch.status_code == 422
    assert linked_citizen(community_app, person_id).pin_setup_code_hash is not None
    assert set_pin(community_app.test_client(), phone, code).status_code == 302


def test_the_sign_in_page_points_to_the_pin_setup(community_app: Flask) -> None:
    page = community_app.test_client().get("/dang-nhap").get_data(as_text=True)
    assert 'href="/dat-ma-pin"' in page
