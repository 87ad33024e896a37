"""Post office points and the people who work them: creating them, passwords, deactivation.

The password, throttle and session rules are every staff member's (`kiosk.auth.staff`); this
module names the agents' directory and keeps the agent-shaped names its callers use.
"""

from __future__ import annotations

import datetime as dt
import re

from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.orm import Session

import ledger
from agent_portal.models import Agent, PostOffice, Role
from kiosk.auth.staff import (
    PASSWORD_LENGTH_MAX_CHARS,
    PASSWORD_LENGTH_MIN_CHARS,
    PASSWORD_POLICY,
    STAFF_POLICY,
    StaffDirectory,
    StaffRefused,
    WrongPassword,
    check_full_name,
    check_new_password,
    check_username,
    hash_password,
    normalise_username,
    utc_now,
)
from ledger import AccountKind

__all__ = [
    "AGENTS",
    "AGENT_POLICY",
    "PASSWORD_LENGTH_MAX_CHARS",
    "PASSWORD_LENGTH_MIN_CHARS",
    "PASSWORD_POLICY",
    "PRINCIPAL_KIND",
    "StaffRefused",
    "WrongPassword",
    "authenticate_agent",
    "check_new_password",
    "create_agent",
    "create_post_office",
    "end_all_sessions",
    "normalise_username",
    "password_throttle_key",
    "reset_totp",
    "set_active",
    "set_password",
]

PRINCIPAL_KIND = "agent"
# The bounds for a counter: idle ≤ 15 minutes, absolute ≤ 8 hours (one shift).
AGENT_POLICY = STAFF_POLICY
AGENTS = StaffDirectory(Agent, principal_kind=PRINCIPAL_KIND, throttle_prefix="agent")
POST_OFFICE_CODE_PATTERN = re.compile(r"[A-Z0-9-]{3,16}")


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
    username = check_username(username)
    full_name = check_full_name(full_name)
    check_new_password(password, username=username)
    if AGENTS.username_taken(session, username):
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
    return AGENTS.password_throttle_key(username)


def authenticate_agent(session: Session, username: str, password: str, now: dt.datetime) -> Agent:
    """The active agent with this login name and password, or `WrongPassword` (see
    `kiosk.auth.staff.StaffDirectory.authenticate`)."""
    return AGENTS.authenticate(session, username, password, now)


def end_all_sessions(session: Session, agent: Agent, now: dt.datetime) -> None:
    """Sign the agent out everywhere (password or TOTP change, deactivation)."""
    AGENTS.end_all_sessions(session, agent, now)


def set_password(session: Session, agent: Agent, password: str, now: dt.datetime) -> None:
    AGENTS.set_password(session, agent, password, now)


def reset_totp(session: Session, agent: Agent, now: dt.datetime) -> None:
    """Forget the agent's TOTP secret: they enrol a new one at their next sign-in."""
    AGENTS.reset_totp(session, agent, now)


def set_active(session: Session, agent: Agent, active: bool, now: dt.datetime) -> None:
    AGENTS.set_active(session, agent, active, now)
