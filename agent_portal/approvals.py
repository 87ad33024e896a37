"""A supervisor's decisions: large payouts, large drawer variances, float top-ups and hand-backs.

An agent asks (`counter.request_payout_approval`, `drawer.count_closing`,
`drawer.request_float_move`); a supervisor of the same post office who is not the one asking
decides here, once. The approval's row is locked before it is read, so two supervisors pressing
"approve" on the same request at the same instant decide it once: the second finds it decided.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent_portal import audit, drawer
from agent_portal.audit import Action
from agent_portal.drawer import DrawerRefused
from agent_portal.models import (
    Agent,
    Approval,
    ApprovalKind,
    ApprovalStatus,
    DrawerSession,
    DrawerStatus,
    PostOffice,
)
from kiosk.citizens.models import Citizen
from kiosk.payments.models import IssuedCode

PENDING_LISTED_MAX = 100
NOTE_LENGTH_MAX_CHARS = 200
DRAWER_SUBJECT_PREFIX = "drawer:"


class ApprovalRefused(Exception):
    """This decision cannot be made (now, by this supervisor); ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApprovalNotFound(ApprovalRefused):
    """No such approval at the supervisor's post office: the web layer answers 404, so that
    another post office's requests are not even confirmed to exist."""


@dataclass(frozen=True)
class PendingApproval:
    """A request waiting for a decision, with what the supervisor needs to judge it."""

    approval: Approval
    requester: Agent
    # The drawer session a variance, top-up or hand-back concerns.
    drawer: DrawerSession | None
    # Whose withdrawal code a payout approval is for.
    citizen: Citizen | None

    @property
    def variance(self) -> int | None:
        """Counted minus expected, for a variance approval."""
        if self.drawer is None or self.drawer.closing_counted is None:
            return None
        if self.drawer.closing_expected is None:
            return None
        return self.drawer.closing_counted - self.drawer.closing_expected


def drawer_id_of(approval: Approval) -> int | None:
    subject = approval.subject or ""
    if not subject.startswith(DRAWER_SUBJECT_PREFIX):
        return None
    number = subject.removeprefix(DRAWER_SUBJECT_PREFIX)
    return int(number) if number.isascii() and number.isdigit() else None


def _code_id_of(approval: Approval) -> uuid.UUID | None:
    try:
        return uuid.UUID(approval.subject or "")
    except ValueError:
        return None


def pending(session: Session, post_office: PostOffice) -> list[PendingApproval]:
    """The post office's requests waiting for a decision, oldest first (at most
    `PENDING_LISTED_MAX`)."""
    rows = session.execute(
        select(Approval, Agent)
        .join(Agent, Agent.id == Approval.requested_by)
        .where(
            Approval.post_office_id == post_office.id,
            Approval.status == ApprovalStatus.PENDING,
        )
        .order_by(Approval.created_at, Approval.id)
        .limit(PENDING_LISTED_MAX)
    ).all()
    drawer_ids = {drawer_id_of(approval) for approval, _agent in rows} - {None}
    drawers = {
        found.id: found
        for found in session.scalars(
            select(DrawerSession).where(
                DrawerSession.id.in_(drawer_ids),
                DrawerSession.post_office_id == post_office.id,
            )
        )
    }
    code_ids = {
        _code_id_of(approval) for approval, _agent in rows if approval.kind == ApprovalKind.PAYOUT
    } - {None}
    citizens = {
        code_id: citizen
        for code_id, citizen in session.execute(
            select(IssuedCode.id, Citizen)
            .join(Citizen, Citizen.id == IssuedCode.citizen_id)
            .where(IssuedCode.id.in_(code_ids))
        )
    }
    listed = []
    for approval, requester in rows:
        drawer_id = drawer_id_of(approval)
        code_id = _code_id_of(approval) if approval.kind == ApprovalKind.PAYOUT else None
        listed.append(
            PendingApproval(
                approval=approval,
                requester=requester,
                drawer=None if drawer_id is None else drawers.get(drawer_id),
                citizen=None if code_id is None else citizens.get(code_id),
            )
        )
    return listed


def _lock(session: Session, approval_id: uuid.UUID) -> Approval | None:
    return session.scalar(
        select(Approval)
        .where(Approval.id == approval_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _drawer_of(session: Session, approval: Approval) -> DrawerSession:
    drawer_id = drawer_id_of(approval)
    found = None if drawer_id is None else session.get(DrawerSession, drawer_id)
    if found is None or found.post_office_id != approval.post_office_id:
        raise ApprovalRefused(_("Không tìm thấy két tiền của yêu cầu này."))
    return found


def _check_may_decide(session: Session, approval: Approval, supervisor: Agent) -> None:
    if not supervisor.is_supervisor or not supervisor.active:
        raise ApprovalRefused(_("Chỉ kiểm soát viên mới được phê duyệt."))
    if approval.status != ApprovalStatus.PENDING:
        raise ApprovalRefused(_("Yêu cầu này đã được quyết định rồi, không quyết định lại."))
    # Four eyes: the person who asked is never the one who decides.
    if approval.requested_by == supervisor.id:
        raise ApprovalRefused(
            _("Bạn không tự duyệt yêu cầu của chính mình. Cần một kiểm soát viên khác duyệt.")
        )
    if approval.kind == ApprovalKind.VARIANCE:
        concerned = _drawer_of(session, approval)
        if concerned.agent_id == supervisor.id:
            raise ApprovalRefused(_("Bạn không tự ký duyệt chênh lệch két tiền của chính mình."))
        if concerned.status != DrawerStatus.AWAITING_SIGN_OFF:
            raise ApprovalRefused(_("Két tiền này không còn chờ ký duyệt."))


def decide(
    session: Session,
    approval_id: uuid.UUID,
    supervisor: Agent,
    approve: bool,
    now: dt.datetime,
    *,
    note: str | None = None,
) -> Approval:
    """Approve or reject a pending request of the supervisor's post office, and carry out what
    the decision means:

    - payout: approved, the agent may now pay the code out (it becomes "used" then);
    - variance: approved, the variance is posted and the drawer closes (`drawer.sign_off`);
      rejected, the drawer opens again for a recount (`drawer.reopen_for_recount`);
    - top-up or hand-back: approved, the cash moves at once (`drawer.move_float`) and the request
      is used; if the move is refused, nothing changes and the request stays pending.

    Raises `ApprovalNotFound` for no such request at the supervisor's post office, and
    `ApprovalRefused` for a request already decided, one's own request or drawer, or a move the
    drawer refuses.
    """
    approval = _lock(session, approval_id)
    if approval is None or approval.post_office_id != supervisor.post_office_id:
        raise ApprovalNotFound(_("Không tìm thấy yêu cầu này."))
    _check_may_decide(session, approval, supervisor)
    kind = ApprovalKind(approval.kind)
    moves_float = kind in (ApprovalKind.TOP_UP, ApprovalKind.HAND_BACK)
    if approve and moves_float:
        try:
            # A savepoint: if the drawer refuses, whatever the move wrote goes, and the request
            # stays pending, untouched.
            with session.begin_nested():
                drawer.move_float(session, approval, supervisor, now)
        except DrawerRefused as refused:
            raise ApprovalRefused(refused.message) from None
    note = " ".join((note or "").split())[:NOTE_LENGTH_MAX_CHARS] or None
    approval.decided_by = supervisor.id
    approval.decided_at = now
    if note is not None:
        approval.note = note
    if not approve:
        approval.status = ApprovalStatus.REJECTED.value
        if kind is ApprovalKind.VARIANCE:
            drawer.reopen_for_recount(session, approval, now)
    elif moves_float:
        approval.status = ApprovalStatus.USED.value
    elif kind is ApprovalKind.PAYOUT:
        approval.status = ApprovalStatus.APPROVED.value
    else:
        approval.status = ApprovalStatus.APPROVED.value
        drawer.sign_off(session, approval, supervisor, now)
    session.flush()
    audit.record(
        session,
        actor=supervisor.principal,
        action=Action.APPROVAL_DECIDED,
        now=now,
        post_office_id=approval.post_office_id,
        subject=f"approval:{approval.id}",
        detail=(
            f"{kind.value} {'approved' if approve else 'rejected'} amount={approval.amount} "
            f"requested_by={approval.requested_by} on={approval.subject}"
        ),
    )
    return approval
