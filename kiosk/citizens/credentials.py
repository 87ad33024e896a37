"""What proves who a citizen is: the 6-digit PIN (rules, hashing, checking, changing) and the
session epoch that ends every session at once.

A PIN is hashed with Argon2id over a keyed HMAC of the PIN (a pepper from the data-key folder):
a 6-digit PIN has only a million values, so a stolen database alone must not be enough to test
them offline. Every check of a PIN is counted against the phone's throttle before the PIN is
looked at, and an unknown phone is checked against a dummy hash, so that neither the answer nor
its timing says whether a phone number is registered.
"""

from __future__ import annotations

import datetime as dt
import functools
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.auth.sessions import revoke_all
from kiosk.auth.throttles import PIN_POLICY, clear, count_attempt, failed
from kiosk.citizens.models import Citizen
from kiosk.pii import vault

PIN_LENGTH_DIGITS = 6
# Argon2id at the OWASP baseline (19 MiB, 2 passes, 1 lane): about 20 ms on one core, so a
# post-office server's sign-ins stay cheap, while the pepper, not the cost, is what makes an
# offline search of a million PINs impossible without the key folder.
PIN_HASH_MEMORY_KIB = 19 * 1024
PIN_HASH_ITERATIONS = 2
PIN_HASH_LANES = 1
PIN_PEPPER_PURPOSE = "citizen_pin"
PRINCIPAL_KIND = "citizen"

PIN_HASHER = PasswordHasher(
    time_cost=PIN_HASH_ITERATIONS,
    memory_cost=PIN_HASH_MEMORY_KIB,
    parallelism=PIN_HASH_LANES,
    type=Type.ID,
)

_DIGITS = "0123456789"
# Runs of six consecutive digits either way: 012345 … 456789 and 987654 … 543210.
SEQUENTIAL_PINS = frozenset(
    run[start : start + PIN_LENGTH_DIGITS]
    for run in (_DIGITS, _DIGITS[::-1])
    for start in range(len(_DIGITS) - PIN_LENGTH_DIGITS + 1)
)


class PinRejected(ValueError):
    """A new PIN breaks a rule. ``field`` is the form field to mark ("pin" or "pin_again")."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# From this many tries left, a wrong PIN also says how many remain before the phone locks.
WARN_FROM_ATTEMPTS_LEFT = 2


class WrongCredentials(Exception):
    """The phone is unknown, has no PIN yet, or the PIN is wrong; which one is never said. Near
    the lock it says how many tries are left (the same for any phone number, known or not)."""

    def __init__(self, attempts_left: int) -> None:
        message: str = _("Số điện thoại hoặc mã PIN không đúng.")
        if 0 < attempts_left <= WARN_FROM_ATTEMPTS_LEFT:
            message += " " + _(
                "Còn %(left)d lần thử; sai nữa thì số điện thoại này bị tạm khoá %(minutes)d phút.",
                left=attempts_left,
                minutes=PIN_POLICY.lock_s // 60,
            )
        self.message = message
        super().__init__(self.message)


class WrongPin(Exception):
    """The signed-in citizen's current PIN, typed to confirm a change, is wrong."""

    def __init__(self) -> None:
        self.message: str = _("Mã PIN hiện tại không đúng.")
        super().__init__(self.message)


def pin_throttle_key(phone: str) -> str:
    return f"pin:{phone}"


def check_new_pin(
    pin: str,
    pin_again: str,
    *,
    date_of_birth: dt.date | None = None,
    phone: str | None = None,
) -> str:
    """Return the PIN if it may be used, or raise `PinRejected` naming the first broken rule.

    Refused: anything but 6 ASCII digits, two entries that differ, one digit repeated, a run of
    consecutive digits, the birth date as ddmmyy, and the last six digits of the phone number:
    the guesses anyone who knows the person tries first.
    """
    if len(pin) != PIN_LENGTH_DIGITS or not (pin.isascii() and pin.isdigit()):
        raise PinRejected("pin", _("Mã PIN phải gồm đúng 6 chữ số."))
    if len(set(pin)) == 1:
        raise PinRejected(
            "pin", _("Mã PIN không được là một chữ số lặp lại (như 111111). Hãy chọn số khác.")
        )
    if pin in SEQUENTIAL_PINS:
        raise PinRejected(
            "pin",
            _("Mã PIN không được là dãy số liên tiếp (như 123456 hoặc 654321). Hãy chọn số khác."),
        )
    if date_of_birth is not None and pin == date_of_birth.strftime("%d%m%y"):
        raise PinRejected(
            "pin", _("Mã PIN không được là ngày sinh của bạn (ngày tháng năm). Hãy chọn số khác.")
        )
    if phone is not None and pin == phone[-PIN_LENGTH_DIGITS:]:
        raise PinRejected(
            "pin",
            _("Mã PIN không được là 6 số cuối của số điện thoại. Hãy chọn số khác."),
        )
    if pin_again != pin:
        raise PinRejected("pin_again", _("Hai lần nhập mã PIN không giống nhau. Hãy nhập lại."))
    return pin


def hash_pin(pin: str) -> str:
    return PIN_HASHER.hash(_peppered(pin))


def pin_matches(pin_hash: str, pin: str) -> bool:
    try:
        return PIN_HASHER.verify(pin_hash, _peppered(pin))
    except (VerificationError, InvalidHashError):
        return False


def authenticate_citizen(session: Session, phone: str, pin: str, now: dt.datetime) -> Citizen:
    """Return the citizen whose phone and PIN these are, or raise `WrongCredentials`.

    The attempt is counted first (`kiosk.auth.throttles.Locked` when the phone's throttle is
    locked, even for the right PIN) and the counter cleared on success. A wrong PIN on the last
    try locks the phone at once and raises `Locked` too, for any phone number, known or not.
    """
    key = pin_throttle_key(phone)
    attempts_left = count_attempt(session, key, PIN_POLICY, now)
    citizen = session.scalar(select(Citizen).where(Citizen.phone == phone))
    stored = None if citizen is None else citizen.pin_hash
    # Always one Argon2 verification, so an unknown phone costs the same time as a wrong PIN.
    matches = pin_matches(stored if stored is not None else _dummy_pin_hash(), pin)
    if citizen is None or stored is None or not matches:
        failed(session, key, PIN_POLICY, now, attempts_left)
        raise WrongCredentials(attempts_left)
    clear(session, key)
    if PIN_HASHER.check_needs_rehash(stored):
        citizen.pin_hash = hash_pin(pin)
    session.flush()
    return citizen


def change_pin(
    session: Session,
    citizen: Citizen,
    *,
    current_pin: str,
    new_pin: str,
    new_pin_again: str,
    now: dt.datetime,
) -> None:
    """Replace the PIN and end every session of the citizen (the caller signs this one in again).

    Raises `PinRejected` for a new PIN that breaks a rule (before anything is counted, since no
    secret is checked), `Locked`, or `WrongPin`.
    """
    phone = citizen.phone
    check_new_pin(new_pin, new_pin_again, date_of_birth=citizen.date_of_birth, phone=phone)
    if new_pin == current_pin:
        raise PinRejected("pin", _("Mã PIN mới phải khác mã PIN hiện tại."))
    key = pin_throttle_key(phone)
    attempts_left = count_attempt(session, key, PIN_POLICY, now)
    if citizen.pin_hash is None or not pin_matches(citizen.pin_hash, current_pin):
        failed(session, key, PIN_POLICY, now, attempts_left)
        raise WrongPin
    clear(session, key)
    citizen.pin_hash = hash_pin(new_pin)
    citizen.pin_changed_at = now
    end_all_sessions(session, citizen, now)


def end_all_sessions(session: Session, citizen: Citizen, now: dt.datetime) -> None:
    """Sign the citizen out everywhere: raise the epoch (any session signed in before stops
    working at its next request) and mark every open session revoked."""
    citizen.session_epoch += 1
    revoke_all(session, principal_kind=PRINCIPAL_KIND, principal_id=citizen.id, now=now)
    session.flush()


def _peppered(pin: str) -> str:
    return vault().lookup_hash(pin, purpose=PIN_PEPPER_PURPOSE).hex()


@functools.cache
def _dummy_pin_hash() -> str:
    return PIN_HASHER.hash(secrets.token_hex(32))
