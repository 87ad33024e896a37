"""Asking a supervisor: an agent's request for something they may not do alone (a large payout,
a float top-up or hand-back, closing a drawer with a large variance). `agent_portal.approvals`
decides them."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.orm import Session

from agent_portal import audit
from agent_portal.audit import Action
from agent_portal.models import Agent, Approval, ApprovalKind, ApprovalStatus


def ask(
    session: Session,
    agent: Agent,
    kind: ApprovalKind,
    *,
    amount: int,
    subject: str,
    audit_subject: str,
    now: dt.datetime,
) -> Approval:
    """A pending request by ``agent``, written to the audit log; flushes."""
    approval = Approval(
        id=uuid.uuid4(),
        kind=kind.value,
        status=ApprovalStatus.PENDING.value,
        post_office_id=agent.post_office_id,
        requested_by=agent.id,
        amount=amount,
        subject=subject,
        created_at=now,
    )
    session.add(approval)
    session.flush()
    audit.record(
        session,
        actor=agent.principal,
        action=Action.APPROVAL_REQUESTED,
        now=now,
        post_office_id=agent.post_office_id,
        subject=audit_subject,
        detail=f"{kind.value} amount={amount}",
    )
    return approval
