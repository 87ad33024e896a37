"""The audit log: who did what, when and from where, kept for good.

`record` writes in the request's own transaction, so an operation and its entry are committed
together or not at all. `record_refusal` writes in a transaction of its own, committed at once:
a refused scan or a wrong identity check changes nothing else (its response has an error status,
so the request's transaction is rolled back), and that rollback must not erase the trace that a
supervisor's alerts count.

Never put a citizen ID number, a password, a TOTP code or a token in ``detail``.
"""

from __future__ import annotations

import datetime as dt

from flask import has_request_context, request
from sqlalchemy.orm import Session

from agent_portal.models import Agent, AuditEvent
from kiosk import database

DETAIL_LENGTH_MAX_CHARS = 500


class Action:
    SIGNED_IN = "signed_in"
    SIGN_IN_REFUSED = "sign_in_refused"
    SIGNED_OUT = "signed_out"
    TOTP_ENROLLED = "totp_enrolled"
    TOTP_RESET = "totp_reset"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - an action name, not a password
    AGENT_CREATED = "agent_created"
    AGENT_DEACTIVATED = "agent_deactivated"
    AGENT_REACTIVATED = "agent_reactivated"
    POST_OFFICE_CREATED = "post_office_created"
    DRAWER_OPENED = "drawer_opened"
    DRAWER_COUNTED = "drawer_counted"
    DRAWER_CLOSED = "drawer_closed"
    DRAWER_SIGNED_OFF = "drawer_signed_off"
    SCANNED = "scanned"
    SCAN_REFUSED = "scan_refused"
    FALLBACK_REFUSED = "fallback_refused"
    IDENTITY_REFUSED = "identity_refused"
    PAID_OUT = "paid_out"
    PAYOUT_REFUSED = "payout_refused"
    BILL_COLLECTED = "bill_collected"
    CASHED_IN = "cashed_in"
    CITIZEN_VERIFIED = "citizen_verified"
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_DECIDED = "approval_decided"
    TOPPED_UP = "topped_up"
    HANDED_BACK = "handed_back"


def remote_addr() -> str | None:
    # The WSGI server's peer: behind a reverse proxy, the proxy must pass the client address.
    if not has_request_context():
        return None
    return (request.remote_addr or "")[:64] or None


def _event(
    *,
    actor: str,
    action: str,
    now: dt.datetime,
    post_office_id: int | None,
    subject: str | None,
    detail: str | None,
) -> AuditEvent:
    return AuditEvent(
        at=now,
        actor=actor,
        post_office_id=post_office_id,
        action=action,
        subject=subject,
        detail=None if detail is None else detail[:DETAIL_LENGTH_MAX_CHARS],
        remote_addr=remote_addr(),
    )


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    now: dt.datetime,
    post_office_id: int | None = None,
    subject: str | None = None,
    detail: str | None = None,
) -> None:
    """Add an entry to the caller's transaction (flushes; the caller commits)."""
    session.add(
        _event(
            actor=actor,
            action=action,
            now=now,
            post_office_id=post_office_id,
            subject=subject,
            detail=detail,
        )
    )
    session.flush()


def record_on_agent(
    session: Session,
    agent: Agent,
    *,
    actor: str,
    action: str,
    now: dt.datetime,
    detail: str | None = None,
) -> None:
    """`record` an action on an agent's account (created, signed in, locked, reset…)."""
    record(
        session,
        actor=actor,
        action=action,
        now=now,
        post_office_id=agent.post_office_id,
        subject=agent.username,
        detail=detail,
    )


def record_refusal(
    *,
    actor: str,
    action: str,
    now: dt.datetime,
    post_office_id: int | None = None,
    subject: str | None = None,
    detail: str | None = None,
) -> None:
    """Add an entry and commit it at once, in a session of its own (see the module's note)."""
    event = _event(
        actor=actor,
        action=action,
        now=now,
        post_office_id=post_office_id,
        subject=subject,
        detail=detail,
    )
    with database.apart() as own:
        own.add(event)
