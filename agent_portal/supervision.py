"""What a supervisor sees of their post office and changes in it: the agents with their drawers,
an agent's past drawer sessions, and the agents' accounts (create, deactivate, reactivate,
reset the authenticator).

Everything is looked up through the supervisor's own post office: an agent or a drawer session
of another post office is "not found", never "forbidden". Every change is written to the audit
log in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent_portal import audit, drawer, staff
from agent_portal.audit import Action
from agent_portal.models import Agent, DrawerSession, DrawerStatus, PostOffice, Role
from agent_portal.staff import StaffRefused

AGENTS_LISTED_MAX = 200
DRAWER_SESSIONS_PER_PAGE = 20
PAGE_MAX = 1000


@dataclass(frozen=True)
class AgentAtCounter:
    """One of the post office's people, their drawer session not yet closed, and its cash."""

    agent: Agent
    drawer: DrawerSession | None
    cash: int
    low_float: bool


def agents_overview(
    session: Session, post_office: PostOffice, now: dt.datetime, low_float_vnd: int
) -> list[AgentAtCounter]:
    """The post office's agents and supervisors, active first, by name."""
    agents = list(
        session.scalars(
            select(Agent)
            .where(Agent.post_office_id == post_office.id)
            .order_by(Agent.active.desc(), Agent.full_name, Agent.id)
            .limit(AGENTS_LISTED_MAX)
        )
    )
    unclosed = {
        found.agent_id: found
        for found in session.scalars(
            select(DrawerSession).where(
                DrawerSession.post_office_id == post_office.id,
                DrawerSession.status != DrawerStatus.CLOSED,
            )
        )
    }
    overview = []
    for agent in agents:
        cash = drawer.cash_in_drawer(session, agent, now)
        current = unclosed.get(agent.id)
        overview.append(
            AgentAtCounter(
                agent=agent,
                drawer=current,
                cash=cash,
                low_float=current is not None
                and current.status == DrawerStatus.OPEN
                and cash < low_float_vnd,
            )
        )
    return overview


def agent_of(session: Session, post_office: PostOffice, agent_id: int) -> Agent | None:
    agent = session.get(Agent, agent_id)
    return agent if agent is not None and agent.post_office_id == post_office.id else None


def drawer_of(session: Session, post_office: PostOffice, drawer_id: int) -> DrawerSession | None:
    found = session.get(DrawerSession, drawer_id)
    return found if found is not None and found.post_office_id == post_office.id else None


@dataclass(frozen=True)
class DrawerSessionsPage:
    sessions: list[DrawerSession]
    page: int
    has_next: bool


def drawer_sessions(session: Session, agent: Agent, page: int = 1) -> DrawerSessionsPage:
    """The agent's drawer sessions, latest first, `DRAWER_SESSIONS_PER_PAGE` to a page."""
    page = min(max(page, 1), PAGE_MAX)
    rows = list(
        session.scalars(
            select(DrawerSession)
            .where(DrawerSession.agent_id == agent.id)
            .order_by(DrawerSession.opened_at.desc(), DrawerSession.id.desc())
            .offset((page - 1) * DRAWER_SESSIONS_PER_PAGE)
            .limit(DRAWER_SESSIONS_PER_PAGE + 1)
        )
    )
    return DrawerSessionsPage(
        sessions=rows[:DRAWER_SESSIONS_PER_PAGE],
        page=page,
        has_next=len(rows) > DRAWER_SESSIONS_PER_PAGE,
    )


# --- Agents' accounts --------------------------------------------------------------------------


def create_counter_agent(
    session: Session,
    *,
    supervisor: Agent,
    post_office: PostOffice,
    username: str,
    full_name: str,
    password: str,
    password_again: str,
    now: dt.datetime,
) -> Agent:
    """A new agent (never a supervisor: the admin command makes those) of the supervisor's
    post office. Raises `StaffRefused`."""
    assert supervisor.post_office_id == post_office.id
    if password != password_again:
        raise StaffRefused(
            "password_again", _("Hai lần nhập mật khẩu không giống nhau. Hãy nhập lại.")
        )
    agent = staff.create_agent(
        session,
        post_office=post_office,
        username=username,
        full_name=full_name,
        password=password,
        role=Role.AGENT,
        created_by=supervisor.principal,
        now=now,
    )
    audit.record_on_agent(
        session,
        agent,
        actor=supervisor.principal,
        action=Action.AGENT_CREATED,
        now=now,
        detail=f"role={agent.role}",
    )
    return agent


def _check_may_change(supervisor: Agent, agent: Agent) -> None:
    assert supervisor.post_office_id == agent.post_office_id
    if agent.id == supervisor.id:
        raise StaffRefused("form", _("Bạn không thay đổi được tài khoản của chính mình ở đây."))
    if agent.role != Role.AGENT:
        raise StaffRefused(
            "form", _("Tài khoản kiểm soát viên do quản trị viên hệ thống thay đổi.")
        )


def deactivate(session: Session, supervisor: Agent, agent: Agent, now: dt.datetime) -> None:
    """Stop the agent signing in; their sessions end at once."""
    _check_may_change(supervisor, agent)
    if not agent.active:
        raise StaffRefused("form", _("Tài khoản này đã bị khoá."))
    staff.set_active(session, agent, False, now)
    audit.record_on_agent(
        session, agent, actor=supervisor.principal, action=Action.AGENT_DEACTIVATED, now=now
    )


def reactivate(session: Session, supervisor: Agent, agent: Agent, now: dt.datetime) -> None:
    _check_may_change(supervisor, agent)
    if agent.active:
        raise StaffRefused("form", _("Tài khoản này đang hoạt động."))
    staff.set_active(session, agent, True, now)
    audit.record_on_agent(
        session, agent, actor=supervisor.principal, action=Action.AGENT_REACTIVATED, now=now
    )


def reset_totp(session: Session, supervisor: Agent, agent: Agent, now: dt.datetime) -> None:
    """Forget the agent's authenticator (a lost phone): they set up a new one at next sign-in,
    and their sessions end at once."""
    _check_may_change(supervisor, agent)
    staff.reset_totp(session, agent, now)
    audit.record_on_agent(
        session, agent, actor=supervisor.principal, action=Action.TOTP_RESET, now=now
    )
