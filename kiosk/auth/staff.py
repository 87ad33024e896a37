"""Staff who sign in with a login name, a password and a TOTP code: post-office agents and
commune / province officials. One `StaffDirectory` per kind of staff (its table, its principal
kind in `web_sessions`, its throttle keys) owns their passwords and the end of their sessions.

Passwords are hashed with Argon2id (argon2-cffi's defaults, stronger than the citizens' PIN
hashing because staff sign in a few times a day, not a few times a minute), and every check is
counted against the login name's throttle before the password is looked at.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import secrets
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.auth.sessions import SessionPolicy, revoke_all
from kiosk.auth.throttles import ThrottlePolicy, clear, count_attempt, failed
from kiosk.auth.totp import encrypt_secret

# Staff work one shift at a desk or a counter: idle ≤ 15 minutes, absolute ≤ 8 hours.
STAFF_POLICY = SessionPolicy(idle_s=15 * 60, absolute_s=8 * 60 * 60)
PASSWORD_POLICY = ThrottlePolicy(attempts_max=5, window_s=3600, lock_s=15 * 60)
PASSWORD_LENGTH_MIN_CHARS = 10
PASSWORD_LENGTH_MAX_CHARS = 128
FULL_NAME_LENGTH_MIN_CHARS = 2
FULL_NAME_LENGTH_MAX_CHARS = 100
USERNAME_PATTERN = re.compile(r"[a-z][a-z0-9._-]{2,39}")
# Throttle keys hold at most this much of a typed login name (the column is 120 characters).
THROTTLED_USERNAME_LENGTH_MAX_CHARS = 80

PASSWORD_HASHER = PasswordHasher()


class StaffMember(Protocol):
    """A row of a staff table (`agent_portal.models.Agent`, `kiosk.community.models.Official`)."""

    id: int
    username: str
    password_hash: str
    password_changed_at: dt.datetime
    totp_secret_ciphertext: bytes | None
    totp_enrolled_at: dt.datetime | None
    totp_last_step: int | None
    session_epoch: int
    active: bool

    @property
    def principal(self) -> str: ...


MemberT = TypeVar("MemberT", bound=StaffMember)


class StaffRefused(ValueError):
    """A staff change breaks a rule; ``field`` names the form field, ``message`` is shown."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class WrongPassword(Exception):
    """Unknown login name, deactivated account or wrong password; which one is never said."""

    def __init__(self) -> None:
        self.message: str = _("Tên đăng nhập hoặc mật khẩu không đúng.")
        super().__init__(self.message)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def normalise_username(raw: str) -> str:
    return raw.strip().lower()


def check_username(raw: str) -> str:
    """The login name, lower-cased, or `StaffRefused`."""
    username = normalise_username(raw)
    if not USERNAME_PATTERN.fullmatch(username):
        raise StaffRefused(
            "username",
            _("Tên đăng nhập gồm 3 đến 40 chữ thường không dấu, chữ số hoặc . _ -"),
        )
    return username


def check_full_name(raw: str) -> str:
    """The name with its spaces tidied, or `StaffRefused`."""
    full_name = " ".join(raw.split())
    if not FULL_NAME_LENGTH_MIN_CHARS <= len(full_name) <= FULL_NAME_LENGTH_MAX_CHARS:
        raise StaffRefused("full_name", _("Hãy nhập họ và tên (2 đến 100 ký tự)."))
    return full_name


def check_new_password(password: str, *, username: str) -> str:
    if not PASSWORD_LENGTH_MIN_CHARS <= len(password) <= PASSWORD_LENGTH_MAX_CHARS:
        raise StaffRefused(
            "password",
            _(
                "Mật khẩu dài từ %(min)d đến %(max)d ký tự.",
                min=PASSWORD_LENGTH_MIN_CHARS,
                max=PASSWORD_LENGTH_MAX_CHARS,
            ),
        )
    if username and username in password.lower():
        raise StaffRefused("password", _("Mật khẩu không được chứa tên đăng nhập."))
    if len(set(password)) < 4:
        raise StaffRefused("password", _("Mật khẩu quá dễ đoán. Hãy dùng một câu ngắn dễ nhớ."))
    return password


def hash_password(password: str) -> str:
    return PASSWORD_HASHER.hash(password)


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return PASSWORD_HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_password_hash() -> str:
    return PASSWORD_HASHER.hash(secrets.token_hex(32))


def enrol_known_secret(member: StaffMember, secret: str, now: dt.datetime) -> None:
    """Enrol ``member`` in TOTP with a secret chosen in advance (demo data, tests): their
    authenticator app is set up from the published secret, not from the enrolment page."""
    member.totp_secret_ciphertext = encrypt_secret(secret)
    member.totp_enrolled_at = now


@dataclass(frozen=True)
class StaffDirectory(Generic[MemberT]):
    """The accounts of one kind of staff: ``model`` is their table, ``principal_kind`` their
    kind in `web_sessions`, ``throttle_prefix`` starts their throttle keys ("agent" gives
    "agent-password:hoa.tran" and "agent-totp:7")."""

    model: type[MemberT]
    principal_kind: str
    throttle_prefix: str
    policy: SessionPolicy = STAFF_POLICY

    def password_throttle_key(self, username: str) -> str:
        return f"{self.throttle_prefix}-password:{username}"

    def totp_throttle_key(self, member_id: int) -> str:
        return f"{self.throttle_prefix}-totp:{member_id}"

    def find(self, session: Session, username: str) -> MemberT | None:
        # The Protocol types the row, not the mapped class's columns.
        model: Any = self.model
        found: MemberT | None = session.scalar(
            select(model).where(model.username == normalise_username(username))
        )
        return found

    def username_taken(self, session: Session, username: str) -> bool:
        return self.find(session, username) is not None

    def authenticate(
        self, session: Session, username: str, password: str, now: dt.datetime
    ) -> MemberT:
        """The active member with this login name and password, or `WrongPassword`.

        The attempt is counted first (`kiosk.auth.throttles.Locked` while the name is locked)
        and the counter cleared on success; an unknown name costs one Argon2 check like a known
        one.
        """
        username = normalise_username(username)
        key = self.password_throttle_key(username[:THROTTLED_USERNAME_LENGTH_MAX_CHARS])
        attempts_left = count_attempt(session, key, PASSWORD_POLICY, now)
        member = self.find(session, username)
        stored = _dummy_password_hash() if member is None else member.password_hash
        matches = _password_matches(stored, password)
        if member is None or not member.active or not matches:
            failed(session, key, PASSWORD_POLICY, now, attempts_left)
            raise WrongPassword
        clear(session, key)
        if PASSWORD_HASHER.check_needs_rehash(member.password_hash):
            member.password_hash = hash_password(password)
        session.flush()
        return member

    def end_all_sessions(self, session: Session, member: MemberT, now: dt.datetime) -> None:
        """Sign the member out everywhere (password or TOTP change, deactivation)."""
        member.session_epoch += 1
        revoke_all(session, principal_kind=self.principal_kind, principal_id=member.id, now=now)
        session.flush()

    def set_password(
        self, session: Session, member: MemberT, password: str, now: dt.datetime
    ) -> None:
        check_new_password(password, username=member.username)
        member.password_hash = hash_password(password)
        member.password_changed_at = now
        self.end_all_sessions(session, member, now)

    def reset_totp(self, session: Session, member: MemberT, now: dt.datetime) -> None:
        """Forget the member's TOTP secret: they enrol a new one at their next sign-in."""
        member.totp_secret_ciphertext = None
        member.totp_enrolled_at = None
        self.end_all_sessions(session, member, now)

    def set_active(self, session: Session, member: MemberT, active: bool, now: dt.datetime) -> None:
        member.active = active
        if not active:
            self.end_all_sessions(session, member, now)
        session.flush()

    def can_sign_in(self, member: MemberT) -> bool:
        """Whether a session of ``member`` may go on: active and enrolled in TOTP."""
        return member.active and member.totp_enrolled_at is not None
