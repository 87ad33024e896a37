"""The `agent_auth` blueprint: how an agent gets to the counter and leaves it.

The pages are every staff member's (`kiosk.auth.staff_sign_in`): a password, then a TOTP code
(enrolment in an authenticator app at the first sign-in), then a server-side session. This
module names the agents' layout, words and endpoints and writes their sign-ins to the agents'
audit log. `step_up` lends the code check to other views, before a large payout for instance.
"""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent_portal import audit
from agent_portal.access import agent_required, load_agent
from agent_portal.audit import Action
from agent_portal.models import Agent
from agent_portal.staff import AGENTS
from kiosk import metrics
from kiosk.auth.models import WebSession
from kiosk.auth.staff_sign_in import StaffPageWords, StaffSignIn, WrongCode

HOME_ENDPOINT = "counter.home"
SIGN_IN_ENDPOINT = "agent_auth.sign_in"
# How the portal is named in the authenticator app, apart from the citizens' "ATM mềm".
TOTP_ISSUER = "Quầy ATM mềm"
# Refused sign-ins are not anybody's yet: the login name typed is the entry's subject.
ANONYMOUS_ACTOR = "anonymous"
SUBJECT_LENGTH_MAX_CHARS = 80

__all__ = ["WrongCode", "blueprint", "step_up", "verify_code"]


class AgentAuditTrail:
    """Agents' sign-ins in the audit log, where their post office's supervisors see them."""

    def record(self, db: Session, member: Agent, event: str, now: dt.datetime) -> None:
        audit.record_on_agent(db, member, actor=member.principal, action=event, now=now)

    def refuse(
        self, db: Session, member: Agent | None, username: str, now: dt.datetime, detail: str
    ) -> None:
        if member is None:
            # The point whose agent was named sees the attempt; the page still never says which
            # part was wrong.
            post_office_id = db.scalar(
                select(Agent.post_office_id).where(Agent.username == username)
            )
            actor = ANONYMOUS_ACTOR
        else:
            post_office_id, actor = member.post_office_id, member.principal
        audit.record_refusal(
            actor=actor,
            action=Action.SIGN_IN_REFUSED,
            now=now,
            post_office_id=post_office_id,
            subject=username[:SUBJECT_LENGTH_MAX_CHARS] or None,
            detail=detail,
        )


PAGES = StaffSignIn(
    directory=AGENTS,
    name="agent_auth",
    url_prefix="/quay",
    home_endpoint=HOME_ENDPOINT,
    words=StaffPageWords(
        base_template="agent/base.html",
        area_name=lazy_gettext("Quầy ATM mềm"),
        sign_in_heading=lazy_gettext("Đăng nhập quầy"),
        sign_in_lead=None,
        sign_in_hint=lazy_gettext(
            "Sau mật khẩu, bạn nhập mã 6 số trên ứng dụng xác thực. Quên mật khẩu hoặc mất "
            "điện thoại? Hãy báo kiểm soát viên của điểm bưu điện."
        ),
        totp_lead=lazy_gettext(
            "Mở ứng dụng xác thực trên điện thoại và nhập mã 6 số của Quầy ATM mềm."
        ),
        enrol_lead=lazy_gettext(
            "Lần đầu đăng nhập quầy: mỗi lần đăng nhập sau này, ngoài mật khẩu bạn sẽ nhập mã "
            "6 số do ứng dụng trên điện thoại của bạn tạo ra."
        ),
        qr_alt=lazy_gettext("Mã QR để thêm Quầy ATM mềm vào ứng dụng xác thực"),
        home_link=lazy_gettext("Quay lại quầy"),
    ),
    totp_issuer=TOTP_ISSUER,
    load_member=load_agent,
    member_required=agent_required,
    audit=AgentAuditTrail(),
    password_failure=metrics.LoginFailure.AGENT_PASSWORD,
)
blueprint = PAGES.blueprint()


def verify_code(db: Session, agent: Agent, raw_code: str, now: dt.datetime) -> None:
    """Accept ``raw_code`` for the agent's secret once, or raise `WrongCode` or
    `kiosk.auth.throttles.Locked` (see `kiosk.auth.staff_sign_in.StaffSignIn.verify_code`)."""
    PAGES.verify_code(db, agent, raw_code, now)


def step_up(agent: Agent, web_session: WebSession, raw_code: str, now: dt.datetime) -> bool:
    """True when ``raw_code`` is a fresh code of the signed-in agent: the session is then marked
    stepped up. False for a wrong or used code; `kiosk.auth.throttles.Locked` after too many."""
    return PAGES.step_up(agent, web_session, raw_code, now)
