"""A citizen's optional second factor (an authenticator app's 6-digit code): turning it on after
a code proves the app holds the secret, checking a code (step-up before a large payment),
and turning it off.

Every code checked is first counted against the citizen's TOTP throttle, as PINs are.
"""

from __future__ import annotations

import datetime as dt

from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy.orm import Session

from kiosk.auth import totp
from kiosk.auth.throttles import TOTP_POLICY, clear, count_attempt, failed
from kiosk.citizens.models import Citizen


class WrongCode(Exception):
    """The code is not the app's current one, or was used already; ``message`` says which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TwoFactorState(Exception):
    """The second factor is not in the state this action needs (on when turning on, …)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def totp_throttle_key(citizen_id: int) -> str:
    return f"totp:citizen:{citizen_id}"


def is_enabled(citizen: Citizen) -> bool:
    return citizen.totp_secret_ciphertext is not None


def enable(session: Session, citizen: Citizen, secret: str, code: str, now: dt.datetime) -> None:
    """Turn the second factor on with ``secret`` once ``code`` shows the app generates it."""
    if is_enabled(citizen):
        raise TwoFactorState(_("Xác thực hai bước đã được bật."))
    key = totp_throttle_key(citizen.id)
    attempts_left = count_attempt(session, key, TOTP_POLICY, now)
    step = totp.matching_step(secret, code, now)
    if step is None:
        failed(session, key, TOTP_POLICY, now, attempts_left)
        raise WrongCode(_wrong_code_message())
    citizen.totp_secret_ciphertext = totp.encrypt_secret(secret)
    # The confirming code is used up: it cannot also pass a step-up.
    citizen.totp_last_step = step
    clear(session, key)
    session.flush()


def verify(session: Session, citizen: Citizen, code: str, now: dt.datetime) -> None:
    """Accept ``code`` once, or raise `WrongCode` (or `kiosk.auth.throttles.Locked`)."""
    if not is_enabled(citizen):
        raise TwoFactorState(_("Bạn chưa bật xác thực hai bước."))
    key = totp_throttle_key(citizen.id)
    attempts_left = count_attempt(session, key, TOTP_POLICY, now)
    ciphertext = citizen.totp_secret_ciphertext
    assert ciphertext is not None
    step = totp.matching_step(totp.decrypt_secret(ciphertext), code, now)
    if step is None:
        failed(session, key, TOTP_POLICY, now, attempts_left)
        raise WrongCode(_wrong_code_message())
    if not totp.claim_step(session, citizen, step):
        raise WrongCode(
            _("Mã này đã được dùng rồi. Hãy đợi ứng dụng hiện mã mới (khoảng 30 giây) rồi nhập.")
        )
    clear(session, key)
    session.flush()


def disable(session: Session, citizen: Citizen, code: str, now: dt.datetime) -> None:
    """Turn the second factor off; a current code is required, as for any step-up."""
    verify(session, citizen, code, now)
    citizen.totp_secret_ciphertext = None
    citizen.totp_last_step = None
    session.flush()


def _wrong_code_message() -> str:
    message: str = _(
        "Mã không đúng. Hãy nhập 6 chữ số đang hiện trên ứng dụng xác thực "
        "và kiểm tra giờ trên điện thoại."
    )
    return message
