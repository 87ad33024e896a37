"""The first PIN of an account opened on the citizen's behalf, set by the citizen on their own
phone with a one-time code (``/dat-ma-pin``).

A community team member (or agent) who opens the account is shown an 8-digit code once; only a
keyed hash of it is stored, with its expiry. The citizen types their phone number, the code and
a new PIN; the code works once, for 7 days, and every try counts against the phone's throttle
before the code is looked at, as a PIN does. The answer to a wrong try never says whether the
phone number has an account.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from kiosk.auth import sessions
from kiosk.auth.throttles import Locked, ThrottlePolicy, clear, count_attempt, failed
from kiosk.citizens.credentials import (
    PRINCIPAL_KIND,
    PinRejected,
    check_new_pin,
    end_all_sessions,
    hash_pin,
)
from kiosk.citizens.models import Citizen
from kiosk.citizens.phone import PhoneInvalid, normalise_phone
from kiosk.database import get_session
from kiosk.formatting import local_time
from kiosk.pii import vault
from kiosk.security import mark_no_store

PIN_SETUP_CODE_DIGITS = 8
PIN_SETUP_CODE_TTL_S = 7 * 24 * 60 * 60
PIN_SETUP_CODE_PURPOSE = "pin_setup_code"
# 10^8 codes and 5 tries a day per phone: guessing is hopeless within the code's 7 days.
PIN_SETUP_POLICY = ThrottlePolicy(attempts_max=5, window_s=24 * 3600, lock_s=30 * 60)


class PinSetupRefused(Exception):
    """The phone, the code or the time is wrong; ``field`` is the form field to mark."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class WrongPinSetupCode(PinSetupRefused):
    """Unknown phone, no code waiting, or a wrong code: which one is never said."""

    def __init__(self) -> None:
        super().__init__(
            "code",
            _(
                "Số điện thoại hoặc mã đặt PIN không đúng. Kiểm tra lại mã trên giấy tổ công "
                "nghệ số đưa cho bạn."
            ),
        )


class PinSetupCodeExpired(PinSetupRefused):
    def __init__(self) -> None:
        super().__init__(
            "code",
            _("Mã đặt PIN đã hết hạn. Nhờ tổ công nghệ số hoặc bưu điện xã cấp mã mới."),
        )


@dataclass(frozen=True)
class IssuedPinSetupCode:
    code: str  # shown once, never stored
    expires_at: dt.datetime


def _code_hash(citizen_id: int, code: str) -> bytes:
    return vault().lookup_hash(f"{citizen_id}:{code}", purpose=PIN_SETUP_CODE_PURPOSE)


def issue_pin_setup_code(
    session: Session, citizen: Citizen, now: dt.datetime
) -> IssuedPinSetupCode:
    """A new one-time code for a citizen who has no PIN yet (an older code stops working)."""
    if citizen.pin_hash is not None:
        raise ValueError("the citizen has a PIN already: a change goes through change_pin")
    code = f"{secrets.randbelow(10**PIN_SETUP_CODE_DIGITS):0{PIN_SETUP_CODE_DIGITS}d}"
    expires_at = now + dt.timedelta(seconds=PIN_SETUP_CODE_TTL_S)
    citizen.pin_setup_code_hash = _code_hash(citizen.id, code)
    citizen.pin_setup_code_expires_at = expires_at
    session.flush()
    return IssuedPinSetupCode(code=code, expires_at=expires_at)


def throttle_key(phone: str) -> str:
    return f"pin-setup:{phone}"


def set_first_pin(
    session: Session,
    *,
    phone: str,
    code: str,
    pin: str,
    pin_again: str,
    now: dt.datetime,
) -> Citizen:
    """Set the PIN of the citizen with this (normalised) phone if the code is theirs, waiting
    and not expired; the code is used up.

    Raises `kiosk.auth.throttles.Locked` (counted before anything is read), `WrongPinSetupCode`,
    `PinSetupCodeExpired` or `kiosk.citizens.credentials.PinRejected`.
    """
    # The rules that need nothing secret are checked before a try is counted.
    check_new_pin(pin, pin_again, phone=phone)
    key = throttle_key(phone)
    attempts_left = count_attempt(session, key, PIN_SETUP_POLICY, now)
    citizen = session.scalar(select(Citizen).where(Citizen.phone == phone).with_for_update())
    code = "".join(code.split())
    if (
        citizen is None
        or citizen.pin_hash is not None
        or citizen.pin_setup_code_hash is None
        or citizen.pin_setup_code_expires_at is None
        or not hmac.compare_digest(bytes(citizen.pin_setup_code_hash), _code_hash(citizen.id, code))
    ):
        failed(session, key, PIN_SETUP_POLICY, now, attempts_left)
        raise WrongPinSetupCode
    if citizen.pin_setup_code_expires_at <= now:
        raise PinSetupCodeExpired
    checked = check_new_pin(pin, pin_again, date_of_birth=citizen.date_of_birth, phone=phone)
    clear(session, key)
    citizen.pin_hash = hash_pin(checked)
    citizen.pin_changed_at = now
    citizen.pin_setup_code_hash = None
    citizen.pin_setup_code_expires_at = None
    # No session could exist before the first PIN; raised anyway, as on every PIN change.
    end_all_sessions(session, citizen, now)
    return citizen


# --- The page -----------------------------------------------------------------------------------


def set_pin_view() -> tuple[str, int] | BaseResponse:
    """``/dat-ma-pin``: phone, code and the new PIN twice; signs the citizen in on success."""
    mark_no_store()
    if request.method == "GET":
        return _page({"phone": request.args.get("phone", "")}, {})
    form = request.form.to_dict()
    try:
        phone = normalise_phone(form.get("phone", ""))
    except PhoneInvalid as invalid:
        return _page(form, {"phone": invalid.message}, 422)
    db = get_session()
    now = sessions.utc_now()
    try:
        citizen = set_first_pin(
            db,
            phone=phone,
            code=form.get("code", ""),
            pin=form.get("pin", ""),
            pin_again=form.get("pin_again", ""),
            now=now,
        )
    except Locked as locked:
        message = _(
            "Đã nhập sai nhiều lần. Vui lòng thử lại sau %(time)s.",
            time=local_time(locked.until, "%H:%M"),
        )
        return _page(form, {"form": message}, 429)
    except (PinSetupRefused, PinRejected) as refused:
        return _page(form, {refused.field: refused.message}, 422)
    sessions.sign_out(db, now)
    sessions.sign_in(
        db,
        principal_kind=PRINCIPAL_KIND,
        principal_id=citizen.id,
        epoch=citizen.session_epoch,
        policy=sessions.CITIZEN_POLICY,
        now=now,
    )
    flash(_("Đã đặt mã PIN. Từ nay bạn đăng nhập bằng số điện thoại và mã PIN này."))
    return redirect(url_for("wallet.home"))


def _page(form: Mapping[str, str], errors: Mapping[str, str], status: int = 200) -> tuple[str, int]:
    # The code and the PIN are never written back into the page.
    shown = {"phone": form.get("phone", "")}
    return render_template("citizens/set_pin.html", form=shown, errors=errors), status
