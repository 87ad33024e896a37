"""The `agent_auth` blueprint: how an agent gets to the counter and leaves it.

Signing in takes two steps. The password first (throttled per login name): it proves nothing
alone, so it only leaves a short-lived note in the signed cookie, "agent 7 typed the right
password at 10:02", valid for five minutes and only while the agent's session epoch is unchanged.
Then a 6-digit TOTP code; on the agent's very first sign-in, enrolment in an authenticator app
takes its place. Only after the code does a server-side session exist (`kiosk.auth.sessions`).

Each TOTP step is accepted at most once per agent (`kiosk.auth.totp.claim_step`), so a code
read over the shoulder is worthless once used, even by a request racing the first one.
`step_up` lends the same check to other views, before a large payout for instance.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from agent_portal import audit
from agent_portal.access import agent_required, current_agent, load_agent
from agent_portal.audit import Action
from agent_portal.models import Agent
from agent_portal.staff import (
    AGENT_POLICY,
    PASSWORD_LENGTH_MIN_CHARS,
    PRINCIPAL_KIND,
    StaffRefused,
    WrongPassword,
    authenticate_agent,
    check_new_password,
    normalise_username,
    set_password,
)
from kiosk import metrics
from kiosk.auth import sessions, totp
from kiosk.auth.models import WebSession
from kiosk.auth.throttles import TOTP_POLICY, Locked, clear, count_attempt
from kiosk.database import get_session
from kiosk.formatting import local_time
from kiosk.security import local_path, mark_no_store

blueprint = Blueprint("agent_auth", __name__, url_prefix="/quay")

HOME_ENDPOINT = "counter.home"
SIGN_IN_ENDPOINT = "agent_auth.sign_in"
# The Flask session (a signed cookie) holds who typed the right password, until the code.
PENDING_FIELD = "agent_pending"
PENDING_TTL_S = 5 * 60
# How the portal is named in the authenticator app, apart from the citizens' "ATM mềm".
TOTP_ISSUER = "Quầy ATM mềm"
# Refused sign-ins are not anybody's yet: the login name typed is the entry's subject.
ANONYMOUS_ACTOR = "anonymous"
SUBJECT_LENGTH_MAX_CHARS = 80

Page = str | tuple[str, int]

__all__ = ["WrongCode", "blueprint", "step_up", "verify_code"]


class WrongCode(Exception):
    """The code is not the app's current one, or its step was used already; ``message`` says
    which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- The code check, shared with other views ---------------------------------------------------


def totp_throttle_key(agent_id: int) -> str:
    return f"agent-totp:{agent_id}"


def verify_code(db: Session, agent: Agent, raw_code: str, now: dt.datetime) -> None:
    """Accept ``raw_code`` for the agent's secret (enrolled or being enrolled) once, or raise
    `WrongCode` or `kiosk.auth.throttles.Locked`.

    The attempt is counted before the code is looked at. On SQLite that ends the request's
    transaction, so call this before the request writes anything.
    """
    key = totp_throttle_key(agent.id)
    count_attempt(db, key, TOTP_POLICY, now)
    ciphertext = agent.totp_secret_ciphertext
    if ciphertext is None:
        raise WrongCode(_wrong_code_message())
    step = totp.matching_step(totp.decrypt_secret(ciphertext), raw_code, now)
    if step is None:
        raise WrongCode(_wrong_code_message())
    if not totp.claim_step(db, agent, step):
        raise WrongCode(_("Mã này đã được dùng, hãy chờ mã mới (khoảng 30 giây)."))
    clear(db, key)
    db.flush()


def step_up(agent: Agent, web_session: WebSession, raw_code: str, now: dt.datetime) -> bool:
    """True when ``raw_code`` is a fresh code of the signed-in agent: the session is then marked
    stepped up (see `kiosk.auth.sessions.stepped_up_within`). False for a wrong or used code.

    Raises `kiosk.auth.throttles.Locked` after too many wrong codes; call it before the request
    writes anything (see `verify_code`).
    """
    try:
        verify_code(get_session(), agent, raw_code, now)
    except WrongCode:
        metrics.login_failed(metrics.LoginFailure.TOTP)
        return False
    sessions.mark_stepped_up(web_session, now)
    return True


def _wrong_code_message() -> str:
    message: str = _(
        "Mã không đúng. Hãy nhập 6 chữ số đang hiện trên ứng dụng xác thực "
        "và kiểm tra giờ trên điện thoại."
    )
    return message


def _locked_message(locked: Locked) -> str:
    message: str = _(
        "Tài khoản tạm khoá đến %(time)s vì nhập sai nhiều lần. Vui lòng thử lại sau.",
        time=local_time(locked.until, "%H:%M"),
    )
    return message


# --- Between the password and the code ---------------------------------------------------------


def _remember_pending(agent: Agent, target: str | None, now: dt.datetime) -> None:
    session[PENDING_FIELD] = {
        "id": agent.id,
        "epoch": agent.session_epoch,
        "at": int(now.timestamp()),
        "next": target or "",
    }


def _pending_agent(db: Session, now: dt.datetime) -> Agent | None:
    """The agent who typed the right password on this browser less than five minutes ago, still
    active and with the same session epoch; None otherwise (and the note is dropped)."""
    pending: Any = session.get(PENDING_FIELD)
    if not isinstance(pending, dict):
        return None
    agent = None
    try:
        agent_id, epoch, at = int(pending["id"]), int(pending["epoch"]), int(pending["at"])
    except (KeyError, TypeError, ValueError):
        agent_id, epoch, at = 0, -1, 0
    if 0 <= now.timestamp() - at <= PENDING_TTL_S:
        agent = db.get(Agent, agent_id)
    if agent is None or not agent.active or agent.session_epoch != epoch:
        session.pop(PENDING_FIELD, None)
        return None
    return agent


def _pending_target() -> str | None:
    pending: Any = session.get(PENDING_FIELD)
    return local_path(pending.get("next")) if isinstance(pending, dict) else None


def _back_to_sign_in(had_note: bool) -> BaseResponse:
    """No note, or one that has run out: start again from the password."""
    if had_note:
        flash(_("Bước đăng nhập đã hết hạn (quá 5 phút). Hãy nhập lại mật khẩu."))
    return redirect(url_for(SIGN_IN_ENDPOINT))


def _finish_sign_in(db: Session, agent: Agent, now: dt.datetime) -> BaseResponse:
    target = _pending_target()
    # sign_in clears the cookie (the note included) before it starts the session.
    sessions.sign_in(
        db,
        principal_kind=PRINCIPAL_KIND,
        principal_id=agent.id,
        epoch=agent.session_epoch,
        policy=AGENT_POLICY,
        now=now,
    )
    audit.record_on_agent(db, agent, actor=agent.principal, action=Action.SIGNED_IN, now=now)
    return redirect(target or url_for(HOME_ENDPOINT))


def _refuse_code(agent: Agent, now: dt.datetime, detail: str) -> None:
    audit.record_refusal(
        actor=agent.principal,
        action=Action.SIGN_IN_REFUSED,
        now=now,
        post_office_id=agent.post_office_id,
        subject=agent.username,
        detail=detail,
    )


# --- Password -----------------------------------------------------------------------------------


@blueprint.route("/dang-nhap", methods=["GET", "POST"])
def sign_in() -> Page | BaseResponse:
    mark_no_store()
    target = local_path(request.values.get("next"))
    if request.method == "GET":
        if load_agent() is not None:
            return redirect(target or url_for(HOME_ENDPOINT))
        return _sign_in_page({}, target, {})
    form = request.form.to_dict()
    username = normalise_username(form.get("username", ""))
    db = get_session()
    now = sessions.utc_now()
    try:
        agent = authenticate_agent(db, username, form.get("password", ""), now)
    except Locked as locked:
        _refuse_password(db, username, now, "locked")
        return _sign_in_page(form, target, {"form": _locked_message(locked)}, 429)
    except WrongPassword as wrong:
        metrics.login_failed(metrics.LoginFailure.AGENT_PASSWORD)
        _refuse_password(db, username, now, "wrong password")
        return _sign_in_page(form, target, {"form": wrong.message}, 422)
    # Whoever was signed in on this browser before is signed out, not just forgotten.
    sessions.sign_out(db, now)
    _remember_pending(agent, target, now)
    if agent.totp_enrolled_at is None:
        return redirect(url_for("agent_auth.enrol"))
    return redirect(url_for("agent_auth.totp"))


def _refuse_password(db: Session, username: str, now: dt.datetime, detail: str) -> None:
    # The point whose agent was named sees the attempt; the page still never says which part
    # was wrong.
    post_office_id = db.scalar(select(Agent.post_office_id).where(Agent.username == username))
    audit.record_refusal(
        actor=ANONYMOUS_ACTOR,
        action=Action.SIGN_IN_REFUSED,
        now=now,
        post_office_id=post_office_id,
        subject=username[:SUBJECT_LENGTH_MAX_CHARS] or None,
        detail=detail,
    )


def _sign_in_page(
    form: Mapping[str, str], target: str | None, errors: Mapping[str, str], status: int = 200
) -> Page:
    # The password is never written back into the page.
    shown = {"username": form.get("username", "")}
    page = render_template("agent/auth/sign_in.html", form=shown, next=target, errors=errors)
    return page, status


# --- Code ---------------------------------------------------------------------------------------


@blueprint.route("/xac-thuc", methods=["GET", "POST"], endpoint="totp")
def totp_code() -> Page | BaseResponse:
    mark_no_store()
    db = get_session()
    now = sessions.utc_now()
    had_note = PENDING_FIELD in session
    agent = _pending_agent(db, now)
    if agent is None:
        return _back_to_sign_in(had_note)
    if agent.totp_enrolled_at is None:
        return redirect(url_for("agent_auth.enrol"))
    if request.method == "GET":
        return _totp_page({})
    try:
        verify_code(db, agent, request.form.get("code", ""), now)
    except Locked as locked:
        _refuse_code(agent, now, "totp locked")
        return _totp_page({"form": _locked_message(locked)}, 429)
    except WrongCode as wrong:
        metrics.login_failed(metrics.LoginFailure.TOTP)
        _refuse_code(agent, now, "wrong totp code")
        return _totp_page({"code": wrong.message}, 422)
    return _finish_sign_in(db, agent, now)


def _totp_page(errors: Mapping[str, str], status: int = 200) -> Page:
    return render_template("agent/auth/totp.html", errors=errors), status


# --- Enrolment ----------------------------------------------------------------------------------


@blueprint.route("/dang-ky-xac-thuc", methods=["GET", "POST"])
def enrol() -> Page | BaseResponse:
    mark_no_store()
    db = get_session()
    now = sessions.utc_now()
    had_note = PENDING_FIELD in session
    agent = _pending_agent(db, now)
    if agent is None:
        return _back_to_sign_in(had_note)
    if agent.totp_enrolled_at is not None:
        return redirect(url_for("agent_auth.totp"))
    if request.method == "GET":
        # The secret waits in the agent's row until a code confirms it; reloading the page (or
        # signing in again before confirming) shows the same one, so a scanned QR stays good.
        if agent.totp_secret_ciphertext is None:
            agent.totp_secret_ciphertext = totp.encrypt_secret(totp.new_secret())
            db.flush()
        return _enrol_page(agent, {})
    if agent.totp_secret_ciphertext is None:
        return redirect(url_for("agent_auth.enrol"))
    try:
        verify_code(db, agent, request.form.get("code", ""), now)
    except Locked as locked:
        _refuse_code(agent, now, "totp enrolment locked")
        return _enrol_page(agent, {"form": _locked_message(locked)}, 429)
    except WrongCode as wrong:
        metrics.login_failed(metrics.LoginFailure.TOTP)
        _refuse_code(agent, now, "wrong totp enrolment code")
        return _enrol_page(agent, {"code": wrong.message}, 422)
    agent.totp_enrolled_at = now
    audit.record_on_agent(db, agent, actor=agent.principal, action=Action.TOTP_ENROLLED, now=now)
    response = _finish_sign_in(db, agent, now)
    # After the session starts: starting it clears the cookie, flashed messages included.
    flash(_("Đã cài xác thực hai bước. Lần sau, hãy nhập mã 6 số trên ứng dụng."))
    return response


def _enrol_page(agent: Agent, errors: Mapping[str, str], status: int = 200) -> Page:
    ciphertext = agent.totp_secret_ciphertext
    assert ciphertext is not None, "the secret is made on the first visit"
    page = render_template(
        "agent/auth/enrol.html",
        secret=totp.grouped(totp.decrypt_secret(ciphertext)),
        username=agent.username,
        errors=errors,
    )
    return page, status


@blueprint.get("/dang-ky-xac-thuc/qr.png")
def enrol_qr() -> Response:
    mark_no_store()
    agent = _pending_agent(get_session(), sessions.utc_now())
    if agent is None or agent.totp_enrolled_at is not None or agent.totp_secret_ciphertext is None:
        abort(404)
    secret = totp.decrypt_secret(agent.totp_secret_ciphertext)
    uri = totp.provisioning_uri(secret, agent.username, issuer=TOTP_ISSUER)
    return Response(totp.qr_png(uri), mimetype="image/png")


# --- Signing out and the password ---------------------------------------------------------------


@blueprint.post("/dang-xuat")
def sign_out() -> BaseResponse:
    db = get_session()
    now = sessions.utc_now()
    agent = load_agent()
    sessions.sign_out(db, now)
    if agent is not None:
        audit.record_on_agent(db, agent, actor=agent.principal, action=Action.SIGNED_OUT, now=now)
    flash(_("Bạn đã đăng xuất."))
    return redirect(url_for(SIGN_IN_ENDPOINT))


@blueprint.route("/tai-khoan/mat-khau", methods=["GET", "POST"])
@agent_required
def change_password() -> Page | BaseResponse:
    if request.method == "GET":
        return _change_password_page({})
    agent = current_agent()
    db = get_session()
    now = sessions.utc_now()
    form = request.form
    current = form.get("current_password", "")
    new = form.get("password", "")
    # The new password's rules first: no secret is checked, so nothing is counted.
    try:
        check_new_password(new, username=agent.username)
    except StaffRefused as refused:
        return _change_password_page({refused.field: refused.message}, 422)
    if form.get("password_again", "") != new:
        message = _("Hai lần nhập mật khẩu mới không giống nhau. Hãy nhập lại.")
        return _change_password_page({"password_again": message}, 422)
    if new == current:
        message = _("Mật khẩu mới phải khác mật khẩu hiện tại.")
        return _change_password_page({"password": message}, 422)
    try:
        authenticate_agent(db, agent.username, current, now)
    except Locked as locked:
        return _change_password_page({"form": _locked_message(locked)}, 429)
    except WrongPassword:
        metrics.login_failed(metrics.LoginFailure.AGENT_PASSWORD)
        message = _("Mật khẩu hiện tại không đúng.")
        return _change_password_page({"current_password": message}, 422)
    # Every session of the agent ends, this one included: the next sign-in uses the new one.
    set_password(db, agent, new, now)
    audit.record_on_agent(db, agent, actor=agent.principal, action=Action.PASSWORD_CHANGED, now=now)
    sessions.sign_out(db, now)
    flash(_("Đã đổi mật khẩu. Hãy đăng nhập lại bằng mật khẩu mới."))
    return redirect(url_for(SIGN_IN_ENDPOINT))


def _change_password_page(errors: Mapping[str, str], status: int = 200) -> Page:
    page = render_template(
        "agent/auth/change_password.html",
        password_length_min=PASSWORD_LENGTH_MIN_CHARS,
        errors=errors,
    )
    return page, status
