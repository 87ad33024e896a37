"""The `citizens` blueprint: registration, sign-in and sign-out, and the citizen's own settings
(PIN, second factor, signing out everywhere), plus the step-up page other areas send people to.

Each view parses the form, checks who may act, calls one operation and renders; the rules live
in the operations modules beside this one. A form answered with an error gets a 4xx status, so
the request's transaction rolls back and nothing half-done is stored. Every page works without
JavaScript: the commune is chosen in a second step of the registration form.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _  # type: ignore[import-untyped]
from werkzeug.wrappers import Response as BaseResponse

from kiosk import metrics
from kiosk.auth import sessions, totp
from kiosk.auth.throttles import Locked
from kiosk.citizens import credentials, pin_setup, profile, registration, two_factor
from kiosk.citizens.access import citizen_required, current_citizen, load_citizen
from kiosk.citizens.phone import PhoneInvalid, normalise_phone
from kiosk.database import get_session
from kiosk.formatting import local_time, local_today
from kiosk.pii import vault
from kiosk.places.models import Province
from kiosk.places.seed import communes_of, provinces
from kiosk.security import local_path, mark_no_store

blueprint = Blueprint("citizens", __name__)
# The first PIN of an account opened on the citizen's behalf (see pin_setup.py).
blueprint.add_url_rule("/dat-ma-pin", "set_pin", pin_setup.set_pin_view, methods=["GET", "POST"])

HOME_ENDPOINT = "wallet.home"
SETTINGS_ENDPOINT = "citizens.settings"
# The Flask session holds the second-factor secret being set up, encrypted, until confirmed.
PENDING_TOTP_FIELD = "totp_pending"
PENDING_TOTP_PURPOSE = "totp_pending_secret"
PRINCIPAL_KIND = credentials.PRINCIPAL_KIND

Page = str | tuple[str, int]


def _home_url() -> str:
    return url_for(HOME_ENDPOINT)


def _locked_message(locked: Locked) -> str:
    message: str = _(
        "Tài khoản tạm khoá đến %(time)s vì nhập sai nhiều lần. Vui lòng thử lại sau.",
        time=local_time(locked.until, "%H:%M"),
    )
    return message


def _start_session(citizen_id: int, epoch: int) -> None:
    sessions.sign_in(
        get_session(),
        principal_kind=PRINCIPAL_KIND,
        principal_id=citizen_id,
        epoch=epoch,
        policy=sessions.CITIZEN_POLICY,
    )


# --- Registration -------------------------------------------------------------------------------


@blueprint.route("/dang-ky", methods=["GET", "POST"])
def register() -> Page | BaseResponse:
    mark_no_store()
    if request.method == "GET":
        if load_citizen() is not None:
            return redirect(_home_url())
        return _personal_step({}, {})
    form = request.form.to_dict()
    db = get_session()
    now = sessions.utc_now()
    action = form.get("action", "")
    if action == "edit":
        return _personal_step(form, {})
    if action == "register":
        try:
            citizen = registration.register_citizen(db, form, registration.SELF, now)
        except registration.RegistrationError as error:
            return _registration_refused(form, error)
        _start_session(citizen.id, citizen.session_epoch)
        flash(_("Đã mở tài khoản. Chào mừng bạn đến với ATM mềm!"))
        return redirect(_home_url())
    # "details" (the first step) or "search" (looking for a commune): the personal fields first.
    try:
        registration.check_personal_details(db, form, local_today(now), require_commune=False)
    except registration.RegistrationError as error:
        return _registration_refused(form, error)
    return _commune_step(form, {})


def _registration_refused(form: Mapping[str, str], error: registration.RegistrationError) -> Page:
    status = 422 if isinstance(error, registration.RegistrationInvalid) else 409
    personal = {
        field: message
        for field, message in error.errors.items()
        if field in registration.PERSONAL_FIELDS
    }
    if personal:
        # The first step has only these fields; the others are asked again on the second.
        return _personal_step(form, personal, status)
    return _commune_step(form, error.errors, status)


def _personal_step(form: Mapping[str, str], errors: Mapping[str, str], status: int = 200) -> Page:
    page = render_template(
        "citizens/register.html",
        step="personal",
        form=form,
        errors=errors,
        provinces=provinces(get_session()),
    )
    return page, status


def _commune_step(form: Mapping[str, str], errors: Mapping[str, str], status: int = 200) -> Page:
    db = get_session()
    province = db.get(Province, form.get(registration.Field.PROVINCE, ""))
    assert province is not None, "the personal fields were checked"
    query = form.get("commune_query", "").strip()
    communes = communes_of(db, province.code, query)
    not_found = bool(query) and not communes
    if not_found:
        communes = communes_of(db, province.code)
    chosen = form.get(registration.Field.COMMUNE, "")
    if len(communes) == 1:
        chosen = communes[0].code
    page = render_template(
        "citizens/register.html",
        step="commune",
        form=form,
        errors=errors,
        province=province,
        communes=communes,
        chosen_commune=chosen,
        commune_query=query,
        commune_not_found=not_found,
        consent_version=registration.CONSENT_VERSION,
    )
    return page, status


# --- Signing in and out -------------------------------------------------------------------------


@blueprint.route("/dang-nhap", methods=["GET", "POST"])
def sign_in() -> Page | BaseResponse:
    mark_no_store()
    target = local_path(request.values.get("next"))
    if request.method == "GET":
        if load_citizen() is not None:
            return redirect(target or _home_url())
        return _sign_in_page({}, target, {})
    form = request.form.to_dict()
    try:
        phone = normalise_phone(form.get("phone", ""))
    except PhoneInvalid as invalid:
        return _sign_in_page(form, target, {"phone": invalid.message}, 422)
    db = get_session()
    now = sessions.utc_now()
    try:
        citizen = credentials.authenticate_citizen(db, phone, form.get("pin", ""), now)
    except Locked as locked:
        return _sign_in_page(form, target, {"form": _locked_message(locked)}, 429)
    except credentials.WrongCredentials as wrong:
        metrics.login_failed(metrics.LoginFailure.CITIZEN_PIN)
        return _sign_in_page(form, target, {"form": wrong.message}, 422)
    # Whoever was signed in on this browser before is signed out, not just forgotten.
    sessions.sign_out(db, now)
    _start_session(citizen.id, citizen.session_epoch)
    return redirect(target or _home_url())


def _sign_in_page(
    form: Mapping[str, str], target: str | None, errors: Mapping[str, str], status: int = 200
) -> Page:
    # The PIN is never written back into the page.
    shown = {"phone": form.get("phone", "")}
    return render_template("citizens/sign_in.html", form=shown, next=target, errors=errors), status


@blueprint.post("/dang-xuat")
def sign_out() -> BaseResponse:
    sessions.sign_out(get_session())
    flash(_("Bạn đã đăng xuất."))
    return redirect(url_for("citizens.sign_in"))


# --- Settings -----------------------------------------------------------------------------------


@blueprint.get("/tai-khoan")
@citizen_required
def settings() -> str:
    summary = profile.summarise(get_session(), current_citizen(), current_app.config)
    return render_template("citizens/settings.html", profile=summary)


@blueprint.route("/tai-khoan/doi-ma-pin", methods=["GET", "POST"])
@citizen_required
def change_pin() -> Page | BaseResponse:
    if request.method == "GET":
        return render_template("citizens/change_pin.html", errors={})
    citizen = current_citizen()
    db = get_session()
    now = sessions.utc_now()
    form = request.form
    try:
        credentials.change_pin(
            db,
            citizen,
            current_pin=form.get("current_pin", ""),
            new_pin=form.get("pin", ""),
            new_pin_again=form.get("pin_again", ""),
            now=now,
        )
    except credentials.PinRejected as rejected:
        return _change_pin_page({rejected.field: rejected.message}, 422)
    except credentials.WrongPin as wrong:
        metrics.login_failed(metrics.LoginFailure.CITIZEN_PIN)
        return _change_pin_page({"current_pin": wrong.message}, 422)
    except Locked as locked:
        return _change_pin_page({"form": _locked_message(locked)}, 429)
    # Every session ended with the old PIN, this one included; this browser starts afresh.
    _start_session(citizen.id, citizen.session_epoch)
    flash(_("Đã đổi mã PIN. Các điện thoại khác đang đăng nhập đã được đăng xuất."))
    return redirect(url_for(SETTINGS_ENDPOINT))


def _change_pin_page(errors: Mapping[str, str], status: int) -> Page:
    return render_template("citizens/change_pin.html", errors=errors), status


@blueprint.post("/tai-khoan/dang-xuat-moi-noi")
@citizen_required
def sign_out_everywhere() -> BaseResponse:
    db = get_session()
    now = sessions.utc_now()
    credentials.end_all_sessions(db, current_citizen(), now)
    sessions.sign_out(db, now)
    flash(_("Đã đăng xuất trên mọi điện thoại. Hãy đăng nhập lại."))
    return redirect(url_for("citizens.sign_in"))


# --- Second factor ------------------------------------------------------------------------------


def _pending_secret(*, create: bool) -> str | None:
    sealed = session.get(PENDING_TOTP_FIELD)
    if isinstance(sealed, bytes):
        return vault().decrypt(sealed, purpose=PENDING_TOTP_PURPOSE)
    if not create:
        return None
    secret = totp.new_secret()
    session[PENDING_TOTP_FIELD] = vault().encrypt(secret, purpose=PENDING_TOTP_PURPOSE)
    return secret


@blueprint.route("/tai-khoan/xac-thuc-hai-buoc", methods=["GET", "POST"])
@citizen_required
def two_factor_setup() -> Page | BaseResponse:
    citizen = current_citizen()
    if two_factor.is_enabled(citizen):
        if request.method == "POST":
            return redirect(url_for("citizens.two_factor_setup"))
        return _two_factor_page(None, {})
    secret = _pending_secret(create=True)
    assert secret is not None
    if request.method == "GET":
        return _two_factor_page(secret, {})
    try:
        two_factor.enable(
            get_session(), citizen, secret, request.form.get("code", ""), sessions.utc_now()
        )
    except two_factor.WrongCode as wrong:
        metrics.login_failed(metrics.LoginFailure.TOTP)
        return _two_factor_page(secret, {"code": wrong.message}, 422)
    except Locked as locked:
        return _two_factor_page(secret, {"form": _locked_message(locked)}, 429)
    session.pop(PENDING_TOTP_FIELD, None)
    flash(_("Đã bật xác thực hai bước."))
    return redirect(url_for(SETTINGS_ENDPOINT))


def _two_factor_page(secret: str | None, errors: Mapping[str, str], status: int = 200) -> Page:
    page = render_template(
        "citizens/two_factor.html",
        enabled=secret is None,
        secret=None if secret is None else totp.grouped(secret),
        setup_link=None if secret is None else _setup_uri(secret),
        errors=errors,
    )
    return page, status


@blueprint.get("/tai-khoan/xac-thuc-hai-buoc/ma-qr.png")
@citizen_required
def two_factor_qr() -> Response:
    citizen = current_citizen()
    secret = _pending_secret(create=False)
    if secret is None or two_factor.is_enabled(citizen):
        abort(404)
    png = totp.qr_png(_setup_uri(secret))
    return Response(png, mimetype="image/png")


def _setup_uri(secret: str) -> str:
    """What the QR code holds and the same-phone link opens: the signed-in citizen's account."""
    return totp.provisioning_uri(secret, current_citizen().phone)


@blueprint.post("/tai-khoan/xac-thuc-hai-buoc/tat")
@citizen_required
def two_factor_disable() -> Page | BaseResponse:
    citizen = current_citizen()
    try:
        two_factor.disable(get_session(), citizen, request.form.get("code", ""), sessions.utc_now())
    except two_factor.TwoFactorState:
        return redirect(url_for("citizens.two_factor_setup"))
    except two_factor.WrongCode as wrong:
        metrics.login_failed(metrics.LoginFailure.TOTP)
        return _two_factor_page(None, {"code": wrong.message}, 422)
    except Locked as locked:
        return _two_factor_page(None, {"form": _locked_message(locked)}, 429)
    flash(_("Đã tắt xác thực hai bước."))
    return redirect(url_for(SETTINGS_ENDPOINT))


@blueprint.route("/xac-thuc-them", methods=["GET", "POST"])
@citizen_required
def step_up() -> Page | BaseResponse:
    """Ask for a second-factor code before a large payment, then go back to ``next``."""
    target = local_path(request.values.get("next"))
    citizen = current_citizen()
    if not two_factor.is_enabled(citizen):
        status = 200 if request.method == "GET" else 409
        return render_template("citizens/step_up.html", enabled=False, next=target), status
    if request.method == "GET":
        return render_template("citizens/step_up.html", enabled=True, next=target, errors={})
    now = sessions.utc_now()
    try:
        two_factor.verify(get_session(), citizen, request.form.get("code", ""), now)
    except two_factor.WrongCode as wrong:
        metrics.login_failed(metrics.LoginFailure.TOTP)
        return _step_up_page(target, {"code": wrong.message}, 422)
    except Locked as locked:
        return _step_up_page(target, {"form": _locked_message(locked)}, 429)
    sessions.mark_stepped_up(g.web_session, now)
    return redirect(target or _home_url())


def _step_up_page(target: str | None, errors: Mapping[str, str], status: int) -> Page:
    page = render_template("citizens/step_up.html", enabled=True, next=target, errors=errors)
    return page, status
