"""The sign-in pages of staff (post-office agents, officials): a password, then a TOTP code.

`StaffSignIn` builds one blueprint per kind of staff from a `kiosk.auth.staff.StaffDirectory`,
the area's templates and endpoints, and an `AuditTrail` for what the area keeps of it.

Signing in takes two steps. The password first (throttled per login name): it proves nothing
alone, so it only leaves a short-lived note in the signed cookie, "member 7 typed the right
password at 10:02", valid for five minutes and only while the member's session epoch is
unchanged. Then a 6-digit TOTP code; on the member's very first sign-in, enrolment in an
authenticator app takes its place. Only after the code does a server-side session exist
(`kiosk.auth.sessions`).

Each TOTP step is accepted at most once per member (`kiosk.auth.totp.claim_step`), so a code
read over the shoulder is worthless once used, even by a request racing the first one.
`StaffSignIn.step_up` lends the same check to other views, before a large payout for instance.

The templates (``staff/auth/sign_in.html``, ``totp.html``, ``enrol.html``,
``change_password.html``) are every area's: they extend the area's layout and say what its
`StaffPageWords` hold, and post to ``<auth>.sign_in``, ``.totp``, ``.enrol`` and
``.change_password`` (``auth`` is the blueprint's name) and show ``<auth>.enrol_qr``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

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
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from kiosk import metrics
from kiosk.auth import sessions, totp
from kiosk.auth.models import WebSession
from kiosk.auth.staff import (
    PASSWORD_LENGTH_MIN_CHARS,
    MemberT,
    StaffDirectory,
    StaffMember,
    StaffRefused,
    WrongPassword,
    check_new_password,
    normalise_username,
)
from kiosk.auth.throttles import TOTP_POLICY, Locked, clear, count_attempt, failed
from kiosk.database import get_session
from kiosk.formatting import local_time
from kiosk.security import local_path, mark_no_store

PENDING_TTL_S = 5 * 60
TEMPLATES = "staff/auth"

Page = str | tuple[str, int]
ViewDecorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class Event:
    """What an `AuditTrail` is told about (the agents' audit log uses the same words)."""

    SIGNED_IN = "signed_in"
    SIGN_IN_REFUSED = "sign_in_refused"
    SIGNED_OUT = "signed_out"
    TOTP_ENROLLED = "totp_enrolled"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - an event name, not a password


AuditedT_contra = TypeVar("AuditedT_contra", bound=StaffMember, contravariant=True)


class AuditTrail(Protocol[AuditedT_contra]):
    """What an area keeps of its staff's sign-ins. Never give it a password or a code."""

    def record(self, db: Session, member: AuditedT_contra, event: str, now: dt.datetime) -> None:
        """A member's own action, in the request's transaction."""

    def refuse(
        self,
        db: Session,
        member: AuditedT_contra | None,
        username: str,
        now: dt.datetime,
        detail: str,
    ) -> None:
        """A refused password or code (``member`` is None when the password was refused). The
        refused request rolls back, so this must be kept apart from its transaction."""


class WrongCode(Exception):
    """The code is not the app's current one, or its step was used already; ``message`` says
    which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def wrong_code_message() -> str:
    message: str = _(
        "Mã không đúng. Hãy nhập 6 chữ số đang hiện trên ứng dụng xác thực "
        "và kiểm tra giờ trên điện thoại."
    )
    return message


def locked_message(locked: Locked) -> str:
    message: str = _(
        "Tài khoản tạm khoá đến %(time)s vì nhập sai nhiều lần. Vui lòng thử lại sau.",
        time=local_time(locked.until, "%H:%M"),
    )
    return message


@dataclass(frozen=True)
class StaffPageWords:
    """What the sign-in pages say of one area, and the layout they extend. Give the sentences as
    `flask_babel.lazy_gettext` strings: they are translated when a page is drawn."""

    base_template: str
    area_name: str  # after each page's title
    sign_in_heading: str
    sign_in_lead: str | None  # under the heading, who the area is for
    sign_in_hint: str  # under the form, whom to ask about a lost password or phone
    totp_lead: str
    enrol_lead: str
    qr_alt: str
    home_link: str  # the change-password page's link back to ``home_endpoint``


@dataclass(frozen=True)
class StaffSignIn(Generic[MemberT]):
    """The sign-in pages of one kind of staff.

    ``load_member`` returns the signed-in member (or None) and ``member_required`` guards a
    view for them; ``words`` is what the pages say of the area; ``totp_issuer`` names the
    area in the authenticator app; ``password_failure`` labels refused passwords in the
    metrics.
    """

    directory: StaffDirectory[MemberT]
    name: str
    url_prefix: str
    home_endpoint: str
    words: StaffPageWords
    totp_issuer: str
    load_member: Callable[[], MemberT | None]
    member_required: ViewDecorator
    audit: AuditTrail[MemberT]
    password_failure: metrics.LoginFailure

    @property
    def sign_in_endpoint(self) -> str:
        return f"{self.name}.sign_in"

    @property
    def pending_field(self) -> str:
        # The Flask session (a signed cookie) holds who typed the right password, until the code.
        return f"{self.directory.principal_kind}_pending"

    # --- The code check, shared with other views ------------------------------------------------

    def verify_code(self, db: Session, member: MemberT, raw_code: str, now: dt.datetime) -> None:
        """Accept ``raw_code`` for the member's secret (enrolled or being enrolled) once, or
        raise `WrongCode` or `kiosk.auth.throttles.Locked`.

        The attempt is counted before the code is looked at. On SQLite that ends the request's
        transaction, so call this before the request writes anything.
        """
        key = self.directory.totp_throttle_key(member.id)
        attempts_left = count_attempt(db, key, TOTP_POLICY, now)
        ciphertext = member.totp_secret_ciphertext
        step = (
            None
            if ciphertext is None
            else totp.matching_step(totp.decrypt_secret(ciphertext), raw_code, now)
        )
        if step is None:
            failed(db, key, TOTP_POLICY, now, attempts_left)
            raise WrongCode(wrong_code_message())
        if not totp.claim_step(db, member, step):
            raise WrongCode(_("Mã này đã được dùng, hãy chờ mã mới (khoảng 30 giây)."))
        clear(db, key)
        db.flush()

    def step_up(
        self, member: MemberT, web_session: WebSession, raw_code: str, now: dt.datetime
    ) -> bool:
        """True when ``raw_code`` is a fresh code of the signed-in member: the session is then
        marked stepped up (see `kiosk.auth.sessions.stepped_up_within`). False for a wrong or
        used code.

        Raises `kiosk.auth.throttles.Locked` after too many wrong codes; call it before the
        request writes anything (see `verify_code`).
        """
        try:
            self.verify_code(get_session(), member, raw_code, now)
        except WrongCode:
            metrics.login_failed(metrics.LoginFailure.TOTP)
            return False
        sessions.mark_stepped_up(web_session, now)
        return True

    # --- Between the password and the code ------------------------------------------------------

    def _remember_pending(self, member: MemberT, target: str | None, now: dt.datetime) -> None:
        session[self.pending_field] = {
            "id": member.id,
            "epoch": member.session_epoch,
            "at": int(now.timestamp()),
            "next": target or "",
        }

    def _pending_member(self, db: Session, now: dt.datetime) -> MemberT | None:
        """The member who typed the right password on this browser less than five minutes ago,
        still active and with the same session epoch; None otherwise (the note is dropped)."""
        pending: Any = session.get(self.pending_field)
        if not isinstance(pending, dict):
            return None
        member = None
        try:
            member_id, epoch, at = int(pending["id"]), int(pending["epoch"]), int(pending["at"])
        except (KeyError, TypeError, ValueError):
            member_id, epoch, at = 0, -1, 0
        if 0 <= now.timestamp() - at <= PENDING_TTL_S:
            member = db.get(self.directory.model, member_id)
        if member is None or not member.active or member.session_epoch != epoch:
            session.pop(self.pending_field, None)
            return None
        return member

    def _pending_target(self) -> str | None:
        pending: Any = session.get(self.pending_field)
        return local_path(pending.get("next")) if isinstance(pending, dict) else None

    def _back_to_sign_in(self, had_note: bool) -> BaseResponse:
        """No note, or one that has run out: start again from the password."""
        if had_note:
            flash(_("Bước đăng nhập đã hết hạn (quá 5 phút). Hãy nhập lại mật khẩu."))
        return redirect(url_for(self.sign_in_endpoint))

    def _finish_sign_in(self, db: Session, member: MemberT, now: dt.datetime) -> BaseResponse:
        target = self._pending_target()
        # sign_in clears the cookie (the note included) before it starts the session.
        sessions.sign_in(
            db,
            principal_kind=self.directory.principal_kind,
            principal_id=member.id,
            epoch=member.session_epoch,
            policy=self.directory.policy,
            now=now,
        )
        self.audit.record(db, member, Event.SIGNED_IN, now)
        return redirect(target or url_for(self.home_endpoint))

    def _page(self, template: str, errors: Mapping[str, str], status: int, **context: Any) -> Page:
        page = render_template(
            f"{TEMPLATES}/{template}",
            errors=errors,
            words=self.words,
            auth=self.name,
            home_endpoint=self.home_endpoint,
            **context,
        )
        return page, status

    # --- The pages ------------------------------------------------------------------------------

    def blueprint(self) -> Blueprint:
        """A new blueprint with the sign-in, code, enrolment, sign-out and password pages."""
        blueprint = Blueprint(self.name, __name__, url_prefix=self.url_prefix)
        blueprint.add_url_rule("/dang-nhap", "sign_in", self.sign_in_view, methods=["GET", "POST"])
        blueprint.add_url_rule("/xac-thuc", "totp", self.totp_view, methods=["GET", "POST"])
        blueprint.add_url_rule(
            "/dang-ky-xac-thuc", "enrol", self.enrol_view, methods=["GET", "POST"]
        )
        blueprint.add_url_rule("/dang-ky-xac-thuc/qr.png", "enrol_qr", self.enrol_qr_view)
        blueprint.add_url_rule("/dang-xuat", "sign_out", self.sign_out_view, methods=["POST"])
        blueprint.add_url_rule(
            "/tai-khoan/mat-khau",
            "change_password",
            self.member_required(self.change_password_view),
            methods=["GET", "POST"],
        )
        return blueprint

    def sign_in_view(self) -> Page | BaseResponse:
        mark_no_store()
        target = local_path(request.values.get("next"))
        if request.method == "GET":
            if self.load_member() is not None:
                return redirect(target or url_for(self.home_endpoint))
            return self._sign_in_page({}, target, {})
        form = request.form.to_dict()
        username = normalise_username(form.get("username", ""))
        db = get_session()
        now = sessions.utc_now()
        try:
            member = self.directory.authenticate(db, username, form.get("password", ""), now)
        except Locked as locked:
            self.audit.refuse(db, None, username, now, "locked")
            return self._sign_in_page(form, target, {"form": locked_message(locked)}, 429)
        except WrongPassword as wrong:
            metrics.login_failed(self.password_failure)
            self.audit.refuse(db, None, username, now, "wrong password")
            return self._sign_in_page(form, target, {"form": wrong.message}, 422)
        # Whoever was signed in on this browser before is signed out, not just forgotten.
        sessions.sign_out(db, now)
        self._remember_pending(member, target, now)
        if member.totp_enrolled_at is None:
            return redirect(url_for(f"{self.name}.enrol"))
        return redirect(url_for(f"{self.name}.totp"))

    def _sign_in_page(
        self,
        form: Mapping[str, str],
        target: str | None,
        errors: Mapping[str, str],
        status: int = 200,
    ) -> Page:
        # The password is never written back into the page.
        shown = {"username": form.get("username", "")}
        return self._page("sign_in.html", errors, status, form=shown, next=target)

    def totp_view(self) -> Page | BaseResponse:
        mark_no_store()
        db = get_session()
        now = sessions.utc_now()
        had_note = self.pending_field in session
        member = self._pending_member(db, now)
        if member is None:
            return self._back_to_sign_in(had_note)
        if member.totp_enrolled_at is None:
            return redirect(url_for(f"{self.name}.enrol"))
        if request.method == "GET":
            return self._page("totp.html", {}, 200)
        try:
            self.verify_code(db, member, request.form.get("code", ""), now)
        except Locked as locked:
            self.audit.refuse(db, member, member.username, now, "totp locked")
            return self._page("totp.html", {"form": locked_message(locked)}, 429)
        except WrongCode as wrong:
            metrics.login_failed(metrics.LoginFailure.TOTP)
            self.audit.refuse(db, member, member.username, now, "wrong totp code")
            return self._page("totp.html", {"code": wrong.message}, 422)
        return self._finish_sign_in(db, member, now)

    def enrol_view(self) -> Page | BaseResponse:
        mark_no_store()
        db = get_session()
        now = sessions.utc_now()
        had_note = self.pending_field in session
        member = self._pending_member(db, now)
        if member is None:
            return self._back_to_sign_in(had_note)
        if member.totp_enrolled_at is not None:
            return redirect(url_for(f"{self.name}.totp"))
        if request.method == "GET":
            # The secret waits in the member's row until a code confirms it; reloading the page
            # (or signing in again before confirming) shows the same one, so a scanned QR stays
            # good.
            if member.totp_secret_ciphertext is None:
                member.totp_secret_ciphertext = totp.encrypt_secret(totp.new_secret())
                db.flush()
            return self._enrol_page(member, {})
        if member.totp_secret_ciphertext is None:
            return redirect(url_for(f"{self.name}.enrol"))
        try:
            self.verify_code(db, member, request.form.get("code", ""), now)
        except Locked as locked:
            self.audit.refuse(db, member, member.username, now, "totp enrolment locked")
            return self._enrol_page(member, {"form": locked_message(locked)}, 429)
        except WrongCode as wrong:
            metrics.login_failed(metrics.LoginFailure.TOTP)
            self.audit.refuse(db, member, member.username, now, "wrong totp enrolment code")
            return self._enrol_page(member, {"code": wrong.message}, 422)
        member.totp_enrolled_at = now
        self.audit.record(db, member, Event.TOTP_ENROLLED, now)
        response = self._finish_sign_in(db, member, now)
        # After the session starts: starting it clears the cookie, flashed messages included.
        flash(_("Đã cài xác thực hai bước. Lần sau, hãy nhập mã 6 số trên ứng dụng."))
        return response

    def _enrol_page(self, member: MemberT, errors: Mapping[str, str], status: int = 200) -> Page:
        ciphertext = member.totp_secret_ciphertext
        assert ciphertext is not None, "the secret is made on the first visit"
        secret = totp.decrypt_secret(ciphertext)
        return self._page(
            "enrol.html",
            errors,
            status,
            secret=totp.grouped(secret),
            setup_link=self._setup_uri(member, secret),
            username=member.username,
        )

    def enrol_qr_view(self) -> Response:
        mark_no_store()
        member = self._pending_member(get_session(), sessions.utc_now())
        if (
            member is None
            or member.totp_enrolled_at is not None
            or member.totp_secret_ciphertext is None
        ):
            abort(404)
        secret = totp.decrypt_secret(member.totp_secret_ciphertext)
        return Response(totp.qr_png(self._setup_uri(member, secret)), mimetype="image/png")

    def _setup_uri(self, member: MemberT, secret: str) -> str:
        """What the QR code holds and the same-phone link opens."""
        return totp.provisioning_uri(secret, member.username, issuer=self.totp_issuer)

    def sign_out_view(self) -> BaseResponse:
        db = get_session()
        now = sessions.utc_now()
        member = self.load_member()
        sessions.sign_out(db, now)
        if member is not None:
            self.audit.record(db, member, Event.SIGNED_OUT, now)
        flash(_("Bạn đã đăng xuất."))
        return redirect(url_for(self.sign_in_endpoint))

    def change_password_view(self) -> Page | BaseResponse:
        if request.method == "GET":
            return self._change_password_page({})
        member = self.load_member()
        assert member is not None, "change_password is wrapped by member_required"
        db = get_session()
        now = sessions.utc_now()
        form = request.form
        current = form.get("current_password", "")
        new = form.get("password", "")
        # The new password's rules first: no secret is checked, so nothing is counted.
        try:
            check_new_password(new, username=member.username)
        except StaffRefused as refused:
            return self._change_password_page({refused.field: refused.message}, 422)
        if form.get("password_again", "") != new:
            message = _("Hai lần nhập mật khẩu mới không giống nhau. Hãy nhập lại.")
            return self._change_password_page({"password_again": message}, 422)
        if new == current:
            message = _("Mật khẩu mới phải khác mật khẩu hiện tại.")
            return self._change_password_page({"password": message}, 422)
        try:
            self.directory.authenticate(db, member.username, current, now)
        except Locked as locked:
            return self._change_password_page({"form": locked_message(locked)}, 429)
        except WrongPassword:
            metrics.login_failed(self.password_failure)
            message = _("Mật khẩu hiện tại không đúng.")
            return self._change_password_page({"current_password": message}, 422)
        # Every session of the member ends, this one included: the next sign-in uses the new one.
        self.directory.set_password(db, member, new, now)
        self.audit.record(db, member, Event.PASSWORD_CHANGED, now)
        sessions.sign_out(db, now)
        flash(_("Đã đổi mật khẩu. Hãy đăng nhập lại bằng mật khẩu mới."))
        return redirect(url_for(self.sign_in_endpoint))

    def _change_password_page(self, errors: Mapping[str, str], status: int = 200) -> Page:
        return self._page(
            "change_password.html",
            errors,
            status,
            password_length_min=PASSWORD_LENGTH_MIN_CHARS,
        )
