"""Post office points and the people who work them: creating them, passwords, deactivation.

Agents' passwords are hashed with Argon2id (argon2-cffi's defaults, stronger than the citizens'
PIN hashing because an agent signs in a few times a day, not a few times a minute), and every
check is counted against the login name's throttle before the password is looked at.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.orm import Session

import ledger
from agent_portal.models import Agent, PostOffice, Role
from kiosk.auth.sessions import SessionPolicy, revoke_all
from kiosk.auth.throttles import ThrottlePolicy, clear, count_attempt
from ledger import AccountKind

PRINCIPAL_KIND = "agent"
# The bounds for a counter: idle ≤ 15 minutes, absolute ≤ 8 hours (one shift).
AGENT_POLICY = SessionPolicy(idle_s=15 * 60, absolute_s=8 * 60 * 60)
PASSWORD_POLICY = ThrottlePolicy(attempts_max=5, window_s=3600, lock_s=15 * 60)
PASSWORD_LENGTH_MIN_CHARS = 10
PASSWORD_LENGTH_MAX_CHARS = 128
USERNAME_PATTERN = re.compile(r"[a-z][a-z0-9._-]{2,39}")
POST_OFFICE_CODE_PATTERN = re.compile(r"[A-Z0-9-]{3,16}")

PASSWORD_HASHER = PasswordHasher()


class StaffRefused(ValueError):
    """A staff change breaks a rule; ``field`` names the form field, ``message`` is shown."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class WrongPassword(Exception):
    """Unknown login name, deactivated agent or wrong password; which one is never said."""

    def __init__(self) -> None:
        self.message: str = _("Tên đăng nhập hoặc mật khẩu không đúng.")
        super().__init__(self.message)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def normalise_username(raw: str) -> str:
    return raw.strip().lower()


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


def create_post_office(
    session: Session,
    *,
    code: str,
    name: str,
    commune_code: str,
    opens_minute: int = 7 * 60,
    closes_minute: int = 17 * 60,
    now: dt.datetime | None = None,
) -> PostOffice:
    """A post office point with its ledger accounts (district cash exchange, commissions)."""
    now = now or utc_now()
    code = code.strip().upper()
    if not POST_OFFICE_CODE_PATTERN.fullmatch(code):
        raise StaffRefused("code", _("Mã điểm bưu điện gồm 3 đến 16 chữ in hoa, chữ số hoặc -."))
    if session.scalar(select(PostOffice.id).where(PostOffice.code == code)) is not None:
        raise StaffRefused("code", _("Mã điểm bưu điện này đã có."))
    district = ledger.open_account(
        session,
        # The district office's side: money it sends as float or receives back; either way.
        kind=AccountKind.SETTLEMENT,
        name=f"Bưu điện huyện — quỹ tiền mặt của {code}",
        owner_ref=f"post_office:{code}:district",
        now=now,
    )
    commission = ledger.open_account(
        session,
        kind=AccountKind.AGENT_COMMISSION,
        name=f"Hoa hồng đại lý — {code}",
        owner_ref=f"post_office:{code}:commission",
        now=now,
    )
    post_office = PostOffice(
        code=code,
        name=name.strip(),
        commune_code=commune_code,
        district_account_id=district.id,
        commission_account_id=commission.id,
        opens_minute=opens_minute,
        closes_minute=closes_minute,
        created_at=now,
    )
    session.add(post_office)
    session.flush()
    return post_office


def create_agent(
    session: Session,
    *,
    post_office: PostOffice,
    username: str,
    full_name: str,
    password: str,
    role: Role = Role.AGENT,
    created_by: str,
    now: dt.datetime | None = None,
) -> Agent:
    """An agent or supervisor of ``post_office`` with a cash drawer account. TOTP is enrolled at
    the first sign-in. Raises `StaffRefused`."""
    now = now or utc_now()
    username = normalise_username(username)
    if not USERNAME_PATTERN.fullmatch(username):
        raise StaffRefused(
            "username",
            _("Tên đăng nhập gồm 3 đến 40 chữ thường không dấu, chữ số hoặc . _ -"),
        )
    full_name = " ".join(full_name.split())
    if not 2 <= len(full_name) <= 100:
        raise StaffRefused("full_name", _("Hãy nhập họ và tên (2 đến 100 ký tự)."))
    check_new_password(password, username=username)
    if session.scalar(select(Agent.id).where(Agent.username == username)) is not None:
        raise StaffRefused("username", _("Tên đăng nhập này đã có người dùng."))
    drawer = ledger.open_account(
        session,
        kind=AccountKind.AGENT_DRAWER,
        name=f"Két tiền — {full_name} ({post_office.code})",
        owner_ref=f"agent:{username}:drawer",
        now=now,
    )
    agent = Agent(
        post_office_id=post_office.id,
        username=username,
        full_name=full_name,
        role=Role(role).value,
        password_hash=hash_password(password),
        password_changed_at=now,
        session_epoch=0,
        active=True,
        drawer_account_id=drawer.id,
        created_at=now,
        created_by=created_by,
    )
    session.add(agent)
    session.flush()
    return agent


def password_throttle_key(username: str) -> str:
    return f"agent-password:{username}"


def authenticate_agent(session: Session, username: str, password: str, now: dt.datetime) -> Agent:
    """The active agent with this login name and password, or `WrongPassword`.

    The attempt is counted first (`kiosk.auth.throttles.Locked` while the name is locked) and
    the counter cleared on success; an unknown name costs one Argon2 check like a known one.
    """
    username = normalise_username(username)
    key = password_throttle_key(username[:80])
    count_attempt(session, key, PASSWORD_POLICY, now)
    agent = session.scalar(select(Agent).where(Agent.username == username))
    stored = _dummy_password_hash() if agent is None else agent.password_hash
    matches = _password_matches(stored, password)
    if agent is None or not agent.active or not matches:
        raise WrongPassword
    clear(session, key)
    if PASSWORD_HASHER.check_needs_rehash(agent.password_hash):
        agent.password_hash = hash_password(password)
    session.flush()
    return agent


def end_all_sessions(session: Session, agent: Agent, now: dt.datetime) -> None:
    """Sign the agent out everywhere (password or TOTP change, deactivation)."""
    agent.session_epoch += 1
    revoke_all(session, principal_kind=PRINCIPAL_KIND, principal_id=agent.id, now=now)
    session.flush()


def set_password(session: Session, agent: Agent, password: str, now: dt.datetime) -> None:
    check_new_password(password, username=agent.username)
    agent.password_hash = hash_password(password)
    agent.password_changed_at = now
    end_all_sessions(session, agent, now)


def reset_totp(session: Session, agent: Agent, now: dt.datetime) -> None:
    """Forget the agent's TOTP secret: they enrol a new one at their next sign-in."""
    agent.totp_secret_ciphertext = None
    agent.totp_enrolled_at = None
    end_all_sessions(session, agent, now)


def set_active(session: Session, agent: Agent, active: bool, now: dt.datetime) -> None:
    agent.active = active
    if not active:
        end_all_sessions(session, agent, now)
    session.flush()
