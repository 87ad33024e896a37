"""Agents signing in: password then TOTP (enrolment the first time), the lockout, one use per
code, the session's idle and absolute ends, every way sessions end at once, and the
``softatm agents …`` commands that create and retire agents.

Time is a clock the test moves: `kiosk.auth.sessions.utc_now` is replaced, and the codes are
computed with pyotp for the clock's moment. The agents come from this folder's conftest: already
enrolled with its `TOTP_SECRET`, or not yet (``newcomer``), to enrol through the pages.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import threading

import pyotp
import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from agent_portal import auth_views
from agent_portal.audit import Action
from agent_portal.cli import agents_group
from agent_portal.models import Agent, AuditEvent, PostOffice
from agent_portal.staff import AGENT_POLICY, PASSWORD_POLICY
from kiosk import database
from kiosk.auth import sessions
from kiosk.auth.models import Throttle, WebSession
from kiosk.auth.throttles import TOTP_POLICY
from kiosk.formatting import local_time
from tests.agent_portal.conftest import (
    COMMUNE_CODE,
    PASSWORD,
    TOTP_SECRET,
    app_session,
    csrf_token,
    make_agent,
    unique_username,
)

NEW_PASSWORD = "trăng rằm sáng tỏ"
WRONG_PASSWORD = "không phải mật khẩu"
WRONG_ANSWER = "Tên đăng nhập hoặc mật khẩu không đúng."
USED_CODE = "Mã này đã được dùng, hãy chờ mã mới"
WRONG_CODE = "Mã không đúng."
SIGN_IN = "/quay/dang-nhap"
TOTP = "/quay/xac-thuc"
ENROL = "/quay/dang-ky-xac-thuc"
ENROL_QR = "/quay/dang-ky-xac-thuc/qr.png"
SIGN_OUT = "/quay/dang-xuat"
CHANGE_PASSWORD = "/quay/tai-khoan/mat-khau"
STEP_S = 30
_SECRET = re.compile(r'<p class="secret">([A-Z2-7 ]+)</p>')


# --- Time, people and pages ---------------------------------------------------------------------


class Clock:
    """The app's time: 5 s into a TOTP step, so that a test's requests stay inside it."""

    def __init__(self) -> None:
        start = int(dt.datetime.now(dt.UTC).timestamp()) // STEP_S * STEP_S + 5
        self.now = dt.datetime.fromtimestamp(start, dt.UTC)

    def advance(self, seconds: float) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock()
    monkeypatch.setattr(sessions, "utc_now", lambda: moved.now)
    return moved


def unique_code() -> str:
    return "T" + secrets.token_hex(4).upper()


@pytest.fixture
def newcomer(web_app: Flask, post_office: PostOffice) -> Agent:
    """An agent who has never signed in: no authenticator yet."""
    return make_agent(web_app, post_office, enrolled=False)


def post_password(
    client: FlaskClient, username: str, password: str, next_path: str = ""
) -> TestResponse:
    data = {"username": username, "password": password, "csrf_token": csrf_token(client, SIGN_IN)}
    if next_path:
        data["next"] = next_path
    return client.post(SIGN_IN, data=data)


def post_code(client: FlaskClient, path: str, code: str) -> TestResponse:
    return client.post(path, data={"code": code, "csrf_token": csrf_token(client, path)})


def code_at(secret: str, moment: dt.datetime) -> str:
    return pyotp.TOTP(secret).at(moment)


def home_path(app: Flask) -> str:
    with app.test_request_context():
        return url_for("counter.home")


def enrol(client: FlaskClient, clock: Clock, username: str, password: str = PASSWORD) -> str:
    """First sign-in through the pages: password, the enrolment page, a code. The secret."""
    response = post_password(client, username, password)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == ENROL
    page = client.get(ENROL).get_data(as_text=True)
    found = _SECRET.search(page)
    assert found is not None
    secret = found.group(1).replace(" ", "")
    response = post_code(client, ENROL, code_at(secret, clock.now))
    assert response.status_code == 302, response.get_data(as_text=True)
    return secret


def sign_in(
    client: FlaskClient, clock: Clock, username: str, secret: str, password: str = PASSWORD
) -> TestResponse:
    """Password and a code of the next TOTP step (each step is accepted once per agent)."""
    response = post_password(client, username, password)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == TOTP
    clock.advance(STEP_S)
    return post_code(client, TOTP, code_at(secret, clock.now))


def signed_in(client: FlaskClient) -> bool:
    response = client.get(CHANGE_PASSWORD)
    assert response.status_code in (200, 302)
    return response.status_code == 200


def audit_actions(app: Flask, username: str) -> list[tuple[str, str]]:
    with app_session(app) as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.subject == username).order_by(AuditEvent.id)
        ).all()
        return [(event.actor, event.action) for event in events]


# --- Enrolment and signing in -------------------------------------------------------------------


def test_first_sign_in_enrols_the_authenticator_then_signs_in(
    web_app: Flask, web_client: FlaskClient, clock: Clock, newcomer: Agent
) -> None:
    agent = newcomer
    assert not signed_in(web_client)
    response = post_password(web_client, agent.username, PASSWORD)
    assert response.status_code == 302
    assert response.headers["Location"] == ENROL
    assert not signed_in(web_client)  # the password alone opens nothing

    page = web_client.get(ENROL)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    found = _SECRET.search(html)
    assert found is not None
    shown = found.group(1)
    assert re.fullmatch(r"([A-Z2-7]{4} ){7}[A-Z2-7]{4}", shown)
    assert "autofocus" in html
    # Reloading shows the same secret: a QR code already scanned stays good.
    again = _SECRET.search(web_client.get(ENROL).get_data(as_text=True))
    assert again is not None and again.group(1) == shown
    secret = shown.replace(" ", "")

    qr = web_client.get(ENROL_QR)
    assert qr.status_code == 200
    assert qr.mimetype == "image/png"
    assert qr.headers["Cache-Control"] == "no-store"
    assert qr.data.startswith(b"\x89PNG")
    # On the phone that has the app, a link adds it without scanning the phone's own screen.
    link = re.search(r'<a href="(otpauth://totp/[^"]+)">', html)
    assert link is not None
    assert f"secret={secret}" in link.group(1) and agent.username in link.group(1)
    # Only the agent who typed the password is shown the QR code.
    assert web_app.test_client().get(ENROL_QR).status_code == 404

    wrong = post_code(web_client, ENROL, "000000")
    assert wrong.status_code == 422
    assert WRONG_CODE in wrong.get_data(as_text=True)
    assert not signed_in(web_client)

    response = post_code(web_client, ENROL, code_at(secret, clock.now))
    assert response.status_code == 302
    assert response.headers["Location"] == home_path(web_app)
    assert signed_in(web_client)
    assert web_client.get(ENROL_QR).status_code == 404
    with app_session(web_app) as session:
        stored = session.get(Agent, agent.id)
        assert stored is not None and stored.totp_enrolled_at == clock.now
    actor = f"agent:{agent.id}"
    assert (actor, Action.TOTP_ENROLLED) in audit_actions(web_app, agent.username)
    assert audit_actions(web_app, agent.username)[-1] == (actor, Action.SIGNED_IN)

    # Signed out, the next sign-in asks for a code, not a new enrolment.
    token = csrf_token(web_client, CHANGE_PASSWORD)
    response = web_client.post(SIGN_OUT, data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == SIGN_IN
    assert "Bạn đã đăng xuất." in web_client.get(SIGN_IN).get_data(as_text=True)
    assert not signed_in(web_client)
    assert audit_actions(web_app, agent.username)[-1] == (actor, Action.SIGNED_OUT)
    response = sign_in(web_client, clock, agent.username, secret)
    assert response.status_code == 302
    assert response.headers["Location"] == home_path(web_app)
    assert signed_in(web_client)


def test_the_page_asked_for_comes_back_after_both_steps(
    web_client: FlaskClient, clock: Clock, agent: Agent
) -> None:
    wanted = f"{CHANGE_PASSWORD}?x=1"
    asked = web_client.get(wanted)
    assert asked.status_code == 302
    assert asked.headers["Location"] == f"{SIGN_IN}?next={CHANGE_PASSWORD}?x%3D1"
    page = web_client.get(asked.headers["Location"]).get_data(as_text=True)
    assert f'<input type="hidden" name="next" value="{wanted}">' in page

    post_password(web_client, agent.username, PASSWORD, next_path=wanted)
    clock.advance(STEP_S)
    response = post_code(web_client, TOTP, code_at(TOTP_SECRET, clock.now))
    assert response.status_code == 302
    assert response.headers["Location"] == wanted


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil"])
def test_next_must_be_a_path_on_this_site(
    web_client: FlaskClient, clock: Clock, agent: Agent, target: str
) -> None:
    post_password(web_client, agent.username, PASSWORD, next_path=target)
    clock.advance(STEP_S)
    response = post_code(web_client, TOTP, code_at(TOTP_SECRET, clock.now))
    assert response.status_code == 302
    assert response.headers["Location"] == home_path(web_client.application)


@pytest.mark.parametrize("case", ["wrong password", "unknown username", "empty"])
def test_a_failed_sign_in_never_says_which_part_was_wrong(
    web_app: Flask, web_client: FlaskClient, clock: Clock, agent: Agent, case: str
) -> None:
    username, password = {
        "wrong password": (agent.username, WRONG_PASSWORD),
        "unknown username": (unique_username(), PASSWORD),
        "empty": (agent.username, ""),
    }[case]
    response = post_password(web_client, username, password)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert WRONG_ANSWER in html
    assert f'value="{username}"' in html  # the name is kept, the password is not
    assert password == "" or password not in html
    assert web_client.get(TOTP).headers["Location"] == SIGN_IN
    assert audit_actions(web_app, username) == [("anonymous", Action.SIGN_IN_REFUSED)]


def test_five_wrong_passwords_lock_the_name_even_for_the_right_one(
    web_app: Flask, web_client: FlaskClient, clock: Clock, agent: Agent
) -> None:
    assert PASSWORD_POLICY.attempts_max == 5
    for _attempt in range(4):
        assert post_password(web_client, agent.username, WRONG_PASSWORD).status_code == 422
    # The fifth wrong password locks the name, and the agent reads so then.
    assert post_password(web_client, agent.username, WRONG_PASSWORD).status_code == 429
    response = post_password(web_client, agent.username, PASSWORD)
    assert response.status_code == 429
    with app_session(web_app) as session:
        until = session.scalar(
            select(Throttle.locked_until).where(Throttle.key == f"agent-password:{agent.username}")
        )
    assert until is not None
    assert f"đến {local_time(until, '%H:%M')}" in response.get_data(as_text=True)
    assert web_client.get(TOTP).headers["Location"] == SIGN_IN

    # Once the lock has run out, the right password gets in again.
    clock.advance(PASSWORD_POLICY.lock_s + 1)
    assert sign_in(web_client, clock, agent.username, TOTP_SECRET).status_code == 302


def test_five_wrong_codes_lock_the_code_step(
    web_client: FlaskClient, clock: Clock, agent: Agent
) -> None:
    assert TOTP_POLICY.attempts_max == 5
    post_password(web_client, agent.username, PASSWORD)
    for _attempt in range(4):
        assert post_code(web_client, TOTP, "000000").status_code == 422
    fifth = post_code(web_client, TOTP, "000000")
    assert fifth.status_code == 429
    assert "Tài khoản tạm khoá đến" in fifth.get_data(as_text=True)
    response = post_code(web_client, TOTP, code_at(TOTP_SECRET, clock.now))
    assert response.status_code == 429
    assert "Tài khoản tạm khoá đến" in response.get_data(as_text=True)
    assert not signed_in(web_client)


# --- One use per code ---------------------------------------------------------------------------


def test_a_code_is_accepted_once(
    web_app: Flask, web_client: FlaskClient, clock: Clock, agent: Agent
) -> None:
    assert sign_in(web_client, clock, agent.username, TOTP_SECRET).status_code == 302
    used = code_at(TOTP_SECRET, clock.now)

    # Read over the shoulder and replayed on another computer with the password: refused.
    other = web_app.test_client()
    post_password(other, agent.username, PASSWORD)
    response = post_code(other, TOTP, used)
    assert response.status_code == 422
    assert USED_CODE in response.get_data(as_text=True)
    assert not signed_in(other)
    assert audit_actions(web_app, agent.username)[-1] == (
        f"agent:{agent.id}",
        Action.SIGN_IN_REFUSED,
    )
    # The next step's code works.
    clock.advance(STEP_S)
    assert post_code(other, TOTP, code_at(TOTP_SECRET, clock.now)).status_code == 302


def test_the_code_of_a_step_already_passed_is_refused_too(
    web_client: FlaskClient, clock: Clock, agent: Agent
) -> None:
    clock.advance(10 * STEP_S)
    post_password(web_client, agent.username, PASSWORD)
    assert post_code(web_client, TOTP, code_at(TOTP_SECRET, clock.now)).status_code == 302
    # The previous step is inside the window but older than the one accepted.
    other = web_client.application.test_client()
    post_password(other, agent.username, PASSWORD)
    earlier = code_at(TOTP_SECRET, clock.now - dt.timedelta(seconds=STEP_S))
    assert post_code(other, TOTP, earlier).status_code == 422


@pytest.mark.parametrize("case", [(2, 422), (1, 302), (0, 302), (-1, 302), (-2, 422)])
def test_the_window_is_one_step_either_way(
    web_client: FlaskClient, clock: Clock, agent: Agent, case: tuple[int, int]
) -> None:
    steps_ago, status = case  # a code of that many steps ago, and the answer
    clock.advance(10 * STEP_S)
    post_password(web_client, agent.username, PASSWORD)
    code = code_at(TOTP_SECRET, clock.now - dt.timedelta(seconds=steps_ago * STEP_S))
    response = post_code(web_client, TOTP, code)
    assert response.status_code == status
    if status == 422:
        assert WRONG_CODE in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "web_backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_two_requests_racing_with_one_code_let_exactly_one_in(
    web_app: Flask, clock: Clock, agent: Agent
) -> None:
    clock.advance(STEP_S)
    code = code_at(TOTP_SECRET, clock.now)
    browsers = [web_app.test_client() for _ in range(2)]
    tokens = []
    for browser in browsers:
        assert post_password(browser, agent.username, PASSWORD).status_code == 302
        tokens.append(csrf_token(browser, TOTP))
    start = threading.Barrier(len(browsers))
    statuses: list[int] = []

    def submit(browser: FlaskClient, token: str) -> None:
        start.wait()
        response = browser.post(TOTP, data={"code": code, "csrf_token": token})
        statuses.append(response.status_code)

    threads = [
        threading.Thread(target=submit, args=(browser, token))
        for browser, token in zip(browsers, tokens, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [302, 422]
    assert sum(signed_in(browser) for browser in browsers) == 1


# --- Between the steps, and the session's lifetime ----------------------------------------------


def test_the_password_step_lasts_five_minutes(
    web_client: FlaskClient, clock: Clock, agent: Agent
) -> None:
    post_password(web_client, agent.username, PASSWORD)
    token = csrf_token(web_client, TOTP)
    clock.advance(5 * 60 + 1)
    response = web_client.post(
        TOTP, data={"code": code_at(TOTP_SECRET, clock.now), "csrf_token": token}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == SIGN_IN
    assert "hết hạn" in web_client.get(SIGN_IN).get_data(as_text=True)
    assert web_client.get(TOTP).headers["Location"] == SIGN_IN
    assert not signed_in(web_client)


def test_a_session_left_idle_for_fifteen_minutes_ends(
    web_client: FlaskClient, clock: Clock, agent: Agent
) -> None:
    assert AGENT_POLICY.idle_s == 15 * 60
    sign_in(web_client, clock, agent.username, TOTP_SECRET)
    clock.advance(15 * 60 - 1)
    assert signed_in(web_client)  # and this touches it again
    clock.advance(15 * 60 - 1)
    assert signed_in(web_client)
    clock.advance(15 * 60)
    response = web_client.get(CHANGE_PASSWORD)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(SIGN_IN)
    clock.advance(1)
    assert not signed_in(web_client)  # an ended session does not come back


def test_a_session_ends_after_eight_hours_however_busy(
    web_client: FlaskClient, clock: Clock, agent: Agent
) -> None:
    assert AGENT_POLICY.absolute_s == 8 * 60 * 60
    sign_in(web_client, clock, agent.username, TOTP_SECRET)
    started = clock.now
    while clock.advance(10 * 60) < started + dt.timedelta(hours=8):
        assert signed_in(web_client), clock.now - started
    assert not signed_in(web_client)


def test_signing_out_needs_the_csrf_token(
    web_client: FlaskClient, clock: Clock, agent: Agent
) -> None:
    sign_in(web_client, clock, agent.username, TOTP_SECRET)
    assert web_client.post(SIGN_OUT).status_code == 400
    assert web_client.post(SIGN_OUT, data={"csrf_token": "forged"}).status_code == 400
    assert signed_in(web_client)


def test_signing_out_ends_the_session_on_the_server(
    web_app: Flask, web_client: FlaskClient, clock: Clock, agent: Agent
) -> None:
    sign_in(web_client, clock, agent.username, TOTP_SECRET)
    cookie = web_client.get_cookie("softatm_session")
    assert cookie is not None
    web_client.post(SIGN_OUT, data={"csrf_token": csrf_token(web_client, CHANGE_PASSWORD)})
    replayed = web_app.test_client()
    replayed.set_cookie("softatm_session", cookie.value)
    assert not signed_in(replayed)


# --- Every session ends at once -----------------------------------------------------------------


def _two_browsers_signed_in(
    app: Flask, clock: Clock, username: str, secret: str
) -> list[FlaskClient]:
    browsers = [app.test_client() for _ in range(2)]
    for browser in browsers:
        assert sign_in(browser, clock, username, secret).status_code == 302
    return browsers


def test_changing_the_password_ends_every_session(
    web_app: Flask, clock: Clock, agent: Agent
) -> None:
    here, elsewhere = _two_browsers_signed_in(web_app, clock, agent.username, TOTP_SECRET)
    page = here.get(CHANGE_PASSWORD).get_data(as_text=True)
    assert 'id="current_password" name="current_password" type="password" autofocus' in page
    token = csrf_token(here, CHANGE_PASSWORD)

    def change(current: str, new: str, again: str) -> TestResponse:
        form = {
            "current_password": current,
            "password": new,
            "password_again": again,
            "csrf_token": token,
        }
        return here.post(CHANGE_PASSWORD, data=form)

    assert change(WRONG_PASSWORD, NEW_PASSWORD, NEW_PASSWORD).status_code == 422
    assert change(PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x").status_code == 422
    assert change(PASSWORD, "short", "short").status_code == 422
    assert change(PASSWORD, PASSWORD, PASSWORD).status_code == 422
    assert signed_in(here) and signed_in(elsewhere)

    response = change(PASSWORD, NEW_PASSWORD, NEW_PASSWORD)
    assert response.status_code == 302
    assert response.headers["Location"] == SIGN_IN
    assert "Đã đổi mật khẩu" in here.get(SIGN_IN).get_data(as_text=True)
    assert not signed_in(here)
    assert not signed_in(elsewhere)
    assert (f"agent:{agent.id}", Action.PASSWORD_CHANGED) in audit_actions(web_app, agent.username)
    assert post_password(here, agent.username, PASSWORD).status_code == 422
    assert sign_in(here, clock, agent.username, TOTP_SECRET, NEW_PASSWORD).status_code == 302


def test_a_password_step_taken_before_a_change_is_worthless_after_it(
    web_app: Flask, clock: Clock, agent: Agent
) -> None:
    # Someone typed the old password, but the agent changed it before they had a code.
    intruder = web_app.test_client()
    post_password(intruder, agent.username, PASSWORD)
    token = csrf_token(intruder, TOTP)
    owner = web_app.test_client()
    sign_in(owner, clock, agent.username, TOTP_SECRET)
    owner.post(
        CHANGE_PASSWORD,
        data={
            "current_password": PASSWORD,
            "password": NEW_PASSWORD,
            "password_again": NEW_PASSWORD,
            "csrf_token": csrf_token(owner, CHANGE_PASSWORD),
        },
    )
    clock.advance(STEP_S)
    response = intruder.post(
        TOTP, data={"code": code_at(TOTP_SECRET, clock.now), "csrf_token": token}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == SIGN_IN
    assert not signed_in(intruder)


def run_cli(app: Flask, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(agents_group, list(args), input=stdin)
    return result.exit_code, result.output


def test_resetting_totp_ends_every_session_and_asks_for_a_new_enrolment(
    web_app: Flask, clock: Clock, agent: Agent
) -> None:
    browsers = _two_browsers_signed_in(web_app, clock, agent.username, TOTP_SECRET)
    code, output = run_cli(web_app, "reset-totp", agent.username)
    assert code == 0, output
    assert not any(signed_in(browser) for browser in browsers)
    assert audit_actions(web_app, agent.username)[-1] == ("admin", Action.TOTP_RESET)

    clock.advance(STEP_S)
    new_secret = enrol(browsers[0], clock, agent.username)
    assert new_secret != TOTP_SECRET
    assert signed_in(browsers[0])


def test_deactivation_ends_every_session_and_refuses_the_password(
    web_app: Flask, clock: Clock, agent: Agent
) -> None:
    browsers = _two_browsers_signed_in(web_app, clock, agent.username, TOTP_SECRET)
    # A third browser between the password and the code.
    pending = web_app.test_client()
    post_password(pending, agent.username, PASSWORD)
    token = csrf_token(pending, TOTP)
    code, output = run_cli(web_app, "deactivate", agent.username)
    assert code == 0, output
    assert not any(signed_in(browser) for browser in browsers)
    assert audit_actions(web_app, agent.username)[-1] == ("admin", Action.AGENT_DEACTIVATED)
    clock.advance(STEP_S)
    response = pending.post(
        TOTP, data={"code": code_at(TOTP_SECRET, clock.now), "csrf_token": token}
    )
    assert response.headers["Location"] == SIGN_IN
    assert not signed_in(pending)
    response = post_password(browsers[0], agent.username, PASSWORD)
    assert response.status_code == 422
    assert WRONG_ANSWER in response.get_data(as_text=True)
    assert run_cli(web_app, "deactivate", agent.username)[0] == 1


# --- Step-up for other views --------------------------------------------------------------------


def test_step_up_takes_a_fresh_code_once(
    web_app: Flask, web_client: FlaskClient, clock: Clock, agent: Agent
) -> None:
    sign_in(web_client, clock, agent.username, TOTP_SECRET)
    clock.advance(STEP_S)
    fresh = code_at(TOTP_SECRET, clock.now)
    with web_app.test_request_context():
        db = database.get_session()
        web_session = db.scalars(
            select(WebSession).where(
                WebSession.principal_kind == "agent",
                WebSession.principal_id == agent.id,
                WebSession.revoked_at.is_(None),
            )
        ).one()
        stored = db.get(Agent, agent.id)
        assert stored is not None
        # One call per request in the views: each is committed here as a request would be.
        outcomes = []
        for code in ("000000", fresh, fresh):
            outcomes.append(auth_views.step_up(stored, web_session, code, clock.now))
            db.commit()
        assert outcomes == [False, True, False]  # wrong, fresh, then used
        assert sessions.stepped_up_within(web_session, 60, clock.now)


# --- The command line ---------------------------------------------------------------------------


def test_agents_commands(web_app: Flask, clock: Clock) -> None:
    office = unique_code()
    username = unique_username()
    supervisor = unique_username()

    code, output = run_cli(
        web_app,
        "create-post-office",
        "--code",
        office.lower(),
        "--name",
        "Điểm BĐVHX Văn Miếu",
        "--commune",
        COMMUNE_CODE,
        "--opens",
        "06:30",
        "--closes",
        "18:00",
    )
    assert code == 0, output
    assert office in output
    with app_session(web_app) as session:
        post_office = session.scalar(select(PostOffice).where(PostOffice.code == office))
        assert post_office is not None
        assert (post_office.opens_minute, post_office.closes_minute) == (390, 1080)
    assert audit_actions(web_app, office) == [("admin", Action.POST_OFFICE_CREATED)]

    refusals = {
        "duplicate code": ["--code", office, "--name", "X", "--commune", COMMUNE_CODE],
        "unknown commune": ["--code", unique_code(), "--name", "X", "--commune", "99999"],
        "bad code": ["--code", "x!", "--name", "X", "--commune", COMMUNE_CODE],
        "closes first": [
            *["--code", unique_code(), "--name", "X", "--commune", COMMUNE_CODE],
            *["--opens", "17:00", "--closes", "07:00"],
        ],
    }
    for case, arguments in refusals.items():
        code, output = run_cli(web_app, "create-post-office", *arguments)
        assert code == 1, (case, output)
        assert "Error:" in output, case
    code, output = run_cli(web_app, "create-post-office", *refusals["bad code"], "--opens", "7h")
    assert code == 2 and "HH:MM" in output

    # The password from standard input, and typed twice at the prompt.
    agent_arguments = ["create", "--post-office", office, "--username", username]
    code, output = run_cli(
        web_app,
        *agent_arguments,
        "--name",
        "Nguyễn Thị Lan",
        "--password-stdin",
        stdin=f"{PASSWORD}\n",
    )
    assert code == 0, output
    code, output = run_cli(
        web_app,
        *["create", "--post-office", office, "--username", supervisor],
        *["--name", "Trần Văn Hùng", "--role", "supervisor"],
        stdin=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert code == 0, output
    assert "Password" in output and PASSWORD not in output
    assert audit_actions(web_app, username) == [("admin", Action.AGENT_CREATED)]

    code, output = run_cli(
        web_app, *agent_arguments, "--name", "Lê Thị Lan", "--password-stdin", stdin=PASSWORD
    )
    assert code == 1 and "Tên đăng nhập này đã có người dùng." in output
    code, output = run_cli(
        web_app,
        *["create", "--post-office", unique_code(), "--username", unique_username()],
        *["--name", "Lê Văn Nam", "--password-stdin"],
        stdin=f"{PASSWORD}\n",
    )
    assert code == 1 and "No post office" in output
    code, output = run_cli(
        web_app,
        *["create", "--post-office", office, "--username", unique_username()],
        *["--name", "Lê Văn Nam", "--password-stdin"],
        stdin="short\n",
    )
    assert code == 1 and "Mật khẩu dài từ 10 đến 128 ký tự." in output

    code, output = run_cli(web_app, "list", "--post-office", office)
    assert code == 0, output
    listed = {line.split()[0]: line.split() for line in output.splitlines()}
    assert listed == {
        username: [username, "agent", office, "active", "no-totp", "Nguyễn", "Thị", "Lan"],
        supervisor: [supervisor, "supervisor", office, "active", "no-totp", "Trần", "Văn", "Hùng"],
    }

    assert run_cli(web_app, "deactivate", username)[0] == 0
    output = run_cli(web_app, "list", "--post-office", office)[1]
    states = {line.split()[0]: line.split()[3] for line in output.splitlines()}
    assert states == {username: "inactive", supervisor: "active"}
    assert run_cli(web_app, "reset-totp", supervisor)[0] == 0
    assert run_cli(web_app, "deactivate", unique_username())[0] == 1
    assert run_cli(web_app, "reset-totp", unique_username())[0] == 1
    assert run_cli(web_app, "list", "--post-office", unique_code())[0] == 1

    # The supervisor made here signs in through the pages.
    browser = web_app.test_client()
    enrol(browser, clock, supervisor)
    assert signed_in(browser)
