"""Officials sign in to /quan-ly as agents do at the counter: a password (Argon2id, throttled in
the database), then a TOTP code (enrolled by QR at the first sign-in, each step accepted once),
then a server-side session of at most 15 idle minutes and 8 hours."""

from __future__ import annotations

import datetime as dt

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kiosk import database
from kiosk.auth import sessions, totp
from kiosk.auth.models import Throttle, WebSession
from kiosk.auth.staff import PASSWORD_POLICY, STAFF_POLICY
from kiosk.community.models import Official, OfficialRole
from kiosk.community.staff import OFFICIALS
from tests.community.support import (
    PASSWORD,
    SIGN_IN_PATH,
    TOTP_PATH,
    TOTP_SECRET,
    app_session,
    make_official,
    sign_in_official,
    sign_in_through_pages,
)
from tests.kiosk.conftest import AppFactory

HOME_PATH = "/quan-ly/"
ENROL_PATH = "/quan-ly/dang-ky-xac-thuc"
SIGN_OUT_PATH = "/quan-ly/dang-xuat"
CHANGE_PASSWORD_PATH = "/quan-ly/tai-khoan/mat-khau"
STAFF_PATH = "/quan-ly/nhan-su"


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def advance(self, seconds: int) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock()
    monkeypatch.setattr(sessions, "utc_now", lambda: moved.now)
    return moved


def post_password(client: FlaskClient, username: str, password: str = PASSWORD) -> int:
    response = client.post(SIGN_IN_PATH, data={"username": username, "password": password})
    return response.status_code


def free_code(app: Flask, official: Official, now: dt.datetime) -> str:
    """A code of `TOTP_SECRET` for a step this official has not used yet."""
    with app_session(app) as session:
        last_step = session.get(Official, official.id).totp_last_step  # type: ignore[union-attr]
    current = totp.step_at(now)
    step = current - 1 if last_step is None else max(current - 1, last_step + 1)
    assert step <= current + 1, "no free TOTP step left this instant"
    return pyotp.TOTP(TOTP_SECRET).generate_otp(step)


def test_anonymous_visitor_is_sent_to_sign_in_and_back(
    community_app: Flask, community_client: FlaskClient
) -> None:
    response = community_client.get(STAFF_PATH)
    assert response.status_code == 302
    assert response.headers["Location"] == f"{SIGN_IN_PATH}?next=/quan-ly/nhan-su"
    official = make_official(community_app, OfficialRole.COMMUNE_OFFICIAL)
    community_client.get(response.headers["Location"])
    response = community_client.post(
        f"{SIGN_IN_PATH}?next=/quan-ly/nhan-su",
        data={"username": official.username, "password": PASSWORD},
    )
    assert response.headers["Location"] == TOTP_PATH
    code = free_code(community_app, official, dt.datetime.now(dt.UTC))
    response = community_client.post(TOTP_PATH, data={"code": code})
    assert response.status_code == 302
    assert response.headers["Location"] == STAFF_PATH
    assert community_client.get(STAFF_PATH).status_code == 200


def test_password_then_code_signs_in_and_home_names_the_commune(
    community_app: Flask, community_client: FlaskClient
) -> None:
    official = make_official(community_app, OfficialRole.COMMUNE_OFFICIAL)
    assert sign_in_through_pages(community_app, community_client, official)
    page = community_client.get(HOME_PATH).get_data(as_text=True)
    assert official.full_name in page
    assert "Phường Văn Miếu - Quốc Tử Giám" in page
    assert "Cán bộ xã, phường" in page
    with app_session(community_app) as session:
        kinds = session.scalars(
            select(WebSession.principal_kind).where(WebSession.principal_id == official.id)
        ).all()
    assert "official" in kinds


def test_province_official_home_names_the_province(
    community_app: Flask, community_client: FlaskClient
) -> None:
    official = make_official(community_app, OfficialRole.PROVINCE_OFFICIAL)
    sign_in_official(community_app, community_client, official)
    page = community_client.get(HOME_PATH).get_data(as_text=True)
    assert "Thành phố Hà Nội" in page
    assert "không sửa được" in page


def test_wrong_password_is_refused_without_saying_which_part(
    community_app: Flask, community_client: FlaskClient
) -> None:
    official = make_official(community_app, OfficialRole.TEAM_MEMBER)
    response = community_client.post(
        SIGN_IN_PATH, data={"username": official.username, "password": "sai mật khẩu rồi"}
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Tên đăng nhập hoặc mật khẩu không đúng." in html
    assert "Chưa đăng nhập được:" in html
    unknown = community_client.post(
        SIGN_IN_PATH, data={"username": "khong.co.ai", "password": PASSWORD}
    )
    assert unknown.status_code == 422
    assert community_client.get(HOME_PATH).status_code == 302


def test_password_alone_opens_nothing(community_app: Flask, community_client: FlaskClient) -> None:
    official = make_official(community_app, OfficialRole.COMMUNE_OFFICIAL)
    assert post_password(community_client, official.username) == 302
    assert community_client.get(HOME_PATH).status_code == 302


def test_an_agent_cannot_sign_in_here(community_app: Flask, community_client: FlaskClient) -> None:
    # The officials' table only: a name that exists among agents is unknown here.
    assert post_password(community_client, "demo.agent") == 422


def test_password_lockout_after_too_many_attempts_even_with_the_right_password(
    community_app: Flask, community_client: FlaskClient
) -> None:
    official = make_official(community_app, OfficialRole.COMMUNE_OFFICIAL)
    for _attempt in range(PASSWORD_POLICY.attempts_max - 1):
        assert post_password(community_client, official.username, "sai mật khẩu rồi") == 422
    # The last try, wrong too, locks the name and says so.
    assert post_password(community_client, official.username, "sai mật khẩu rồi") == 429
    response = community_client.post(
        SIGN_IN_PATH, data={"username": official.username, "password": PASSWORD}
    )
    assert response.status_code == 429
    assert "tạm khoá" in response.get_data(as_text=True)
    with app_session(community_app) as session:
        throttle = session.get(Throttle, f"official-password:{official.username}")
    assert throttle is not None and throttle.locked_until is not None


def test_wrong_code_is_refused_and_codes_lock_after_too_many(
    community_app: Flask, community_client: FlaskClient
) -> None:
    official = make_official(community_app, OfficialRole.TEAM_MEMBER)
    assert post_password(community_client, official.username) == 302
    statuses = [
        community_client.post(TOTP_PATH, data={"code": "000000"}).status_code for _ in range(6)
    ]
    # Four refusals, then the fifth wrong code locks the step, and the next is refused as locked.
    assert statuses == [422] * 4 + [429] * 2
    assert community_client.get(HOME_PATH).status_code == 302


def test_a_code_is_accepted_once(community_app: Flask, community_client: FlaskClient) -> None:
    official = make_official(community_app, OfficialRole.COMMUNE_OFFICIAL)
    code = free_code(community_app, official, dt.datetime.now(dt.UTC))
    assert post_password(community_client, official.username) == 302
    assert community_client.post(TOTP_PATH, data={"code": code}).status_code == 302
    other = community_app.test_client()
    assert post_password(other, official.username) == 302
    response = other.post(TOTP_PATH, data={"code": code})
    assert response.status_code == 422
    assert "đã được dùng" in response.get_data(as_text=True)


def test_first_sign_in_enrols_the_authenticator_by_qr(
    community_app: Flask, community_client: FlaskClient
) -> None:
    official = make_official(community_app, OfficialRole.TEAM_MEMBER, enrolled=False)
    response = community_client.post(
        SIGN_IN_PATH, data={"username": official.username, "password": PASSWORD}
    )
    assert response.headers["Location"] == ENROL_PATH
    page = community_client.get(ENROL_PATH).get_data(as_text=True)
    assert "/quan-ly/dang-ky-xac-thuc/qr.png" in page
    qr = community_client.get("/quan-ly/dang-ky-xac-thuc/qr.png")
    assert qr.status_code == 200 and qr.mimetype == "image/png"
    with app_session(community_app) as session:
        stored = session.get(Official, official.id)
        assert stored is not None and stored.totp_secret_ciphertext is not None
        secret = totp.decrypt_secret(stored.totp_secret_ciphertext)
    # Encrypted at rest: the secret is not in the stored bytes.
    assert secret.encode() not in stored.totp_secret_ciphertext
    code = pyotp.TOTP(secret).now()
    response = community_client.post(ENROL_PATH, data={"code": code})
    assert response.status_code == 302
    assert response.headers["Location"] == HOME_PATH
    assert community_client.get(HOME_PATH).status_code == 200
    with app_session(community_app) as session:
        assert session.get(Official, official.id).totp_enrolled_at is not None  # type: ignore[union-attr]


def test_session_ends_after_idle_time(
    community_app: Flask, community_client: FlaskClient, clock: Clock
) -> None:
    official = make_official(community_app, OfficialRole.COMMUNE_OFFICIAL)
    sign_in_official(community_app, community_client, official)
    assert community_client.get(HOME_PATH).status_code == 200
    clock.advance(STAFF_POLICY.idle_s + 1)
    assert community_client.get(HOME_PATH).status_code == 302


def test_session_ends_after_eight_hours_even_when_busy(
    community_app: Flask, community_client: FlaskClient, clock: Clock
) -> None:
    assert STAFF_POLICY.idle_s == 15 * 60 and STAFF_POLICY.absolute_s == 8 * 60 * 60
    official = make_official(community_app, OfficialRole.COMMUNE_OFFICIAL)
    sign_in_official(community_app, community_client, official)
    # A request every 10 minutes for 7 h 50: never idle, always let in.
    for _request in range(STAFF_POLICY.absolute_s // 600 - 1):
        clock.advance(600)
        assert community_client.get(HOME_PATH).status_code == 200
    clock.advance(20 * 60)
    assert community_client.get(HOME_PATH).status_code == 302


def test_sign_out_ends_the_session(community_app: Flask, community_client: FlaskClient) -> None:
    official = make_official(community_app, OfficialRole.COMMUNE_OFFICIAL)
    sign_in_official(community_app, community_client, official)
    response = community_client.post(SIGN_OUT_PATH)
    assert response.headers["Location"] == SIGN_IN_PATH
    assert community_client.get(HOME_PATH).status_code == 302
    with app_session(community_app) as session:
        live = session.scalars(
            select(WebSession).where(
                WebSession.principal_kind == "official",
                WebSession.principal_id == official.id,
                WebSession.revoked_at.is_(None),
            )
        ).all()
    assert live == []


def test_change_password_signs_out_everywhere_and_the_new_one_works(
    community_app: Flask, community_client: FlaskClient
) -> None:
    official = make_official(community_app, OfficialRole.TEAM_MEMBER)
    sign_in_official(community_app, community_client, official)
    elsewhere = community_app.test_client()
    sign_in_official(community_app, elsewhere, official)
    new_password = "sông Hồng chảy về biển"
    response = community_client.post(
        CHANGE_PASSWORD_PATH,
        data={
            "current_password": PASSWORD,
            "password": new_password,
            "password_again": new_password,
        },
    )
    assert response.status_code == 302
    assert elsewhere.get(HOME_PATH).status_code == 302
    assert community_client.get(HOME_PATH).status_code == 302
    assert post_password(community_client, official.username, PASSWORD) == 422
    assert post_password(community_client, official.username, new_password) == 302


def test_change_password_refuses_a_wrong_current_password(
    community_app: Flask, community_client: FlaskClient
) -> None:
    official = make_official(community_app, OfficialRole.TEAM_MEMBER)
    sign_in_official(community_app, community_client, official)
    response = community_client.post(
        CHANGE_PASSWORD_PATH,
        data={
            "current_password": "không phải mật khẩu",
            "password": "sông Hồng chảy về biển",
            "password_again": "sông Hồng chảy về biển",
        },
    )
    assert response.status_code == 422
    assert "Mật khẩu hiện tại không đúng." in response.get_data(as_text=True)


def test_deactivated_official_is_signed_out_and_cannot_sign_in(
    community_app: Flask, community_client: FlaskClient
) -> None:
    official = make_official(community_app, OfficialRole.TEAM_MEMBER)
    sign_in_official(community_app, community_client, official)
    with app_session(community_app) as session:
        stored = session.get(Official, official.id)
        assert stored is not None
        OFFICIALS.set_active(session, stored, False, dt.datetime.now(dt.UTC))
        session.commit()
    assert community_client.get(HOME_PATH).status_code == 302
    assert post_password(community_client, official.username) == 422


def test_sign_in_pages_carry_csrf_tokens(make_app: AppFactory, database_url: str) -> None:
    app = make_app(DATABASE_URL=database_url)
    client = app.test_client()
    assert 'name="csrf_token"' in client.get(SIGN_IN_PATH).get_data(as_text=True)
    assert client.post(SIGN_IN_PATH, data={"username": "x", "password": "y"}).status_code == 400
    database.dispose(app)
