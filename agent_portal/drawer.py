"""Cash drawer sessions: opening with a counted float, the cash the ledger says is in the drawer,
closing with a count, variances, and the end-of-day statement.

The drawer is a ledger account (debit-normal, never below zero): every payout, cash-in, top-up
and hand-back moves it, so "expected cash" is simply its posted balance. A count that differs is
posted to the cash-variance account, so the drawer's account again says what is really there.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import ledger
from agent_portal import audit
from agent_portal.asking import ask
from agent_portal.audit import Action
from agent_portal.models import (
    Agent,
    Approval,
    ApprovalKind,
    CounterOperation,
    DrawerSession,
    DrawerStatus,
    OperationKind,
    PostOffice,
)
from kiosk import metrics
from kiosk.formatting import parse_vnd, vnd
from kiosk.payments.codes import system_account
from ledger import AccountKind, Post

# Vietnamese banknotes in circulation, largest first (polymer 500 000 … 10 000, cotton 5 000 …
# 1 000). Coins and the 500 đ and 200 đ notes do not reach a commune counter's drawer.
BANKNOTES_VND = (500_000, 200_000, 100_000, 50_000, 20_000, 10_000, 5_000, 2_000, 1_000)
NOTE_COUNT_MAX = 100_000
CASH_COUNT_MAX_VND = 10_000_000_000
CASH_VARIANCE_OWNER = "system:cash_variance"


class DrawerRefused(Exception):
    """The drawer cannot do this now; ``message`` is for the agent."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Count:
    """Cash counted: the total, and the count of each note when counted note by note."""

    total: int
    notes: str | None


def parse_count(form: Mapping[str, str]) -> Count:
    """Read a count from a form: fields ``note_500000`` … ``note_1000`` (how many of each note),
    or a single ``total``. Raises `DrawerRefused` with a message naming the problem."""
    notes: list[tuple[int, int]] = []
    for note in BANKNOTES_VND:
        raw = (form.get(f"note_{note}") or "").strip()
        if not raw:
            continue
        if not raw.isascii() or not raw.isdigit() or int(raw) > NOTE_COUNT_MAX:
            raise DrawerRefused(
                "count_invalid",
                _("Số tờ %(note)s phải là một số nguyên từ 0.", note=vnd(note)),
            )
        if int(raw):
            notes.append((note, int(raw)))
    raw_total = (form.get("total") or "").strip()
    if notes:
        total = sum(note * count for note, count in notes)
        if raw_total and _amount(raw_total) != total:
            raise DrawerRefused(
                "count_mismatch",
                _(
                    "Tổng theo từng loại tờ là %(notes)s, khác tổng đã nhập %(total)s. "
                    "Hãy đếm lại.",
                    notes=vnd(total),
                    total=vnd(_amount(raw_total)),
                ),
            )
        return Count(total, ",".join(f"{note}:{count}" for note, count in notes))
    if not raw_total:
        raise DrawerRefused(
            "count_missing", _("Hãy nhập số tờ của từng loại tiền, hoặc tổng số tiền đã đếm.")
        )
    return Count(_amount(raw_total), None)


def _amount(raw: str) -> int:
    amount = parse_vnd(raw)
    if amount is None or amount > CASH_COUNT_MAX_VND:
        raise DrawerRefused(
            "count_invalid", _("Số tiền đã đếm phải là một số nguyên, ví dụ 20.000.000.")
        )
    return amount


def not_in_notes(amount: int) -> str | None:
    """Why no notes make `amount` of cash, or None: the drawer is counted in notes, and an amount
    they cannot make would leave it at a total no count could ever match."""
    smallest = BANKNOTES_VND[-1]
    if amount % smallest == 0:
        return None
    message: str = _(
        "Tiền mặt phải là bội số của %(step)s, ví dụ %(example)s.",
        step=vnd(smallest),
        example=vnd(max(smallest, amount - amount % smallest)),
    )
    return message


def cash_in_drawer(session: Session, agent: Agent, now: dt.datetime | None = None) -> int:
    """What the ledger says the agent's drawer holds."""
    return ledger.balance(session, agent.drawer_account_id, now=now).posted


def cash_variance_account(session: Session) -> int:
    return system_account(
        session, CASH_VARIANCE_OWNER, AccountKind.CASH_VARIANCE, "Chênh lệch tiền mặt"
    )


def unclosed_drawer(session: Session, agent: Agent) -> DrawerSession | None:
    return session.scalar(
        select(DrawerSession).where(
            DrawerSession.agent_id == agent.id, DrawerSession.status != DrawerStatus.CLOSED
        )
    )


def open_drawer(session: Session, agent: Agent) -> DrawerSession | None:
    """The agent's drawer session that can take operations now, if any."""
    drawer = unclosed_drawer(session, agent)
    return drawer if drawer is not None and drawer.status == DrawerStatus.OPEN else None


def _post_variance(
    session: Session,
    drawer: DrawerSession,
    *,
    variance: int,
    stage: str,
    approved_by: int | None,
    now: dt.datetime,
) -> CounterOperation | None:
    """Move ``variance`` (counted - expected) between the drawer and cash variance."""
    if variance == 0:
        return None
    variance_account = cash_variance_account(session)
    surplus = variance > 0
    transfer = ledger.post_transfer(
        session,
        Post(
            key=f"drawer:{drawer.id}:{stage}-variance",
            debit_account_id=drawer.drawer_account_id if surplus else variance_account,
            credit_account_id=variance_account if surplus else drawer.drawer_account_id,
            amount=abs(variance),
            code="cash_variance",
            memo=f"drawer session {drawer.id} {stage}",
        ),
        now=now,
    )
    metrics.transfers_posted([transfer])
    metrics.drawer_variance(stage, variance)
    operation = CounterOperation(
        id=uuid.uuid4(),
        kind=OperationKind.VARIANCE.value,
        drawer_session_id=drawer.id,
        agent_id=drawer.agent_id,
        post_office_id=drawer.post_office_id,
        amount=abs(variance),
        fee=0,
        commission=0,
        cash_delta=variance,
        transfer_id=transfer.id,
        approved_by=approved_by,
        created_at=now,
    )
    session.add(operation)
    session.flush()
    return operation


def start_drawer(session: Session, agent: Agent, count: Count, now: dt.datetime) -> DrawerSession:
    """Open a drawer session with the counted float. A count that differs from what the ledger
    says the drawer holds is posted as an opening variance (and shows in the supervisor's
    alerts), so the session starts from what is really there."""
    if unclosed_drawer(session, agent) is not None:
        raise DrawerRefused("already_open", _("Két tiền của bạn đang mở."))
    expected = cash_in_drawer(session, agent, now)
    drawer = DrawerSession(
        agent_id=agent.id,
        post_office_id=agent.post_office_id,
        drawer_account_id=agent.drawer_account_id,
        status=DrawerStatus.OPEN.value,
        opened_at=now,
        opening_expected=expected,
        opening_counted=count.total,
        opening_notes=count.notes,
    )
    try:
        with session.begin_nested():
            session.add(drawer)
            session.flush()
    except IntegrityError:
        # Another tab opened it in the meantime (the partial unique index).
        raise DrawerRefused("already_open", _("Két tiền của bạn đang mở.")) from None
    _post_variance(
        session, drawer, variance=count.total - expected, stage="opening", approved_by=None, now=now
    )
    audit.record(
        session,
        actor=agent.principal,
        action=Action.DRAWER_OPENED,
        now=now,
        post_office_id=agent.post_office_id,
        subject=f"drawer:{drawer.id}",
        detail=f"expected={expected} counted={count.total}",
    )
    return drawer


def count_closing(
    session: Session,
    agent: Agent,
    count: Count,
    *,
    sign_off_above_vnd: int,
    now: dt.datetime,
) -> DrawerSession:
    """Record the closing count. A variance within the threshold is posted and the session
    closes; a larger one waits for a supervisor (`sign_off`), and the drawer takes no more
    operations meanwhile."""
    drawer = open_drawer(session, agent)
    if drawer is None:
        raise DrawerRefused("not_open", _("Két tiền của bạn chưa mở."))
    expected = cash_in_drawer(session, agent, now)
    drawer.closing_expected = expected
    drawer.closing_counted = count.total
    drawer.closing_notes = count.notes
    drawer.counted_at = now
    # Counted, so no longer open (the CHECK "closing_counted_when_closing"); `_close` closes it.
    drawer.status = DrawerStatus.AWAITING_SIGN_OFF.value
    variance = count.total - expected
    audit.record(
        session,
        actor=agent.principal,
        action=Action.DRAWER_COUNTED,
        now=now,
        post_office_id=agent.post_office_id,
        subject=f"drawer:{drawer.id}",
        detail=f"expected={expected} counted={count.total} variance={variance}",
    )
    if abs(variance) > sign_off_above_vnd:
        ask(
            session,
            agent,
            ApprovalKind.VARIANCE,
            amount=abs(variance),
            subject=f"drawer:{drawer.id}",
            audit_subject=f"drawer:{drawer.id}",
            now=now,
        )
        return drawer
    _close(session, drawer, variance=variance, approved_by=None, actor=agent.principal, now=now)
    return drawer


def _close(
    session: Session,
    drawer: DrawerSession,
    *,
    variance: int,
    approved_by: int | None,
    actor: str,
    now: dt.datetime,
) -> None:
    _post_variance(
        session, drawer, variance=variance, stage="closing", approved_by=approved_by, now=now
    )
    drawer.status = DrawerStatus.CLOSED.value
    drawer.closed_at = now
    drawer.signed_off_by = approved_by
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=Action.DRAWER_CLOSED,
        now=now,
        post_office_id=drawer.post_office_id,
        subject=f"drawer:{drawer.id}",
        detail=f"variance={variance}",
    )


def sign_off(
    session: Session, approval: Approval, supervisor: Agent, now: dt.datetime
) -> DrawerSession:
    """A supervisor accepts a drawer's large variance: it is posted and the session closes.
    The caller has checked the supervisor's post office and that it is not their own drawer."""
    assert approval.kind == ApprovalKind.VARIANCE and approval.subject is not None
    drawer = session.get(DrawerSession, int(approval.subject.removeprefix("drawer:")))
    assert drawer is not None and drawer.status == DrawerStatus.AWAITING_SIGN_OFF
    assert drawer.closing_counted is not None and drawer.closing_expected is not None
    # Nothing moves a drawer that is awaiting sign-off, so the variance counted still holds.
    variance = drawer.closing_counted - drawer.closing_expected
    _close(
        session,
        drawer,
        variance=variance,
        approved_by=supervisor.id,
        actor=supervisor.principal,
        now=now,
    )
    return drawer


def reopen_for_recount(session: Session, approval: Approval, now: dt.datetime) -> DrawerSession:
    """A supervisor refuses a variance: the drawer opens again so that the agent counts again."""
    assert approval.subject is not None
    drawer = session.get(DrawerSession, int(approval.subject.removeprefix("drawer:")))
    assert drawer is not None and drawer.status == DrawerStatus.AWAITING_SIGN_OFF
    drawer.status = DrawerStatus.OPEN.value
    drawer.closing_counted = None
    drawer.closing_expected = None
    drawer.closing_notes = None
    drawer.counted_at = None
    session.flush()
    return drawer


@dataclass(frozen=True)
class Statement:
    drawer: DrawerSession
    agent: Agent
    post_office: PostOffice
    operations: list[CounterOperation]

    @property
    def cash_in_total(self) -> int:
        return sum(op.cash_delta for op in self.operations if op.cash_delta > 0)

    @property
    def cash_out_total(self) -> int:
        return -sum(op.cash_delta for op in self.operations if op.cash_delta < 0)

    @property
    def fees_total(self) -> int:
        return sum(op.fee for op in self.operations)

    @property
    def commission_total(self) -> int:
        return sum(op.commission for op in self.operations)


def statement(session: Session, drawer: DrawerSession) -> Statement:
    """Every operation of a drawer session, oldest first, for the end-of-day statement."""
    agent = session.get(Agent, drawer.agent_id)
    post_office = session.get(PostOffice, drawer.post_office_id)
    assert agent is not None and post_office is not None
    operations = list(
        session.scalars(
            select(CounterOperation)
            .where(CounterOperation.drawer_session_id == drawer.id)
            .order_by(CounterOperation.created_at, CounterOperation.id)
        )
    )
    return Statement(drawer, agent, post_office, operations)


def move_float(
    session: Session,
    approval: Approval,
    supervisor: Agent,
    now: dt.datetime,
) -> CounterOperation:
    """Carry out an approved top-up (district office → drawer) or hand-back (drawer → district
    office) of the requesting agent's open drawer. Raises `DrawerRefused`."""
    agent = session.get(Agent, approval.requested_by)
    post_office = session.get(PostOffice, approval.post_office_id)
    assert agent is not None and post_office is not None
    drawer = open_drawer(session, agent)
    if drawer is None:
        raise DrawerRefused("not_open", _("Két tiền của %(name)s chưa mở.", name=agent.full_name))
    top_up = approval.kind == ApprovalKind.TOP_UP
    if not top_up and approval.amount > cash_in_drawer(session, agent, now):
        raise DrawerRefused(
            "not_enough_cash",
            _("Két tiền không có đủ %(amount)s để nộp về.", amount=vnd(approval.amount)),
        )
    try:
        with session.begin_nested():
            transfer = ledger.post_transfer(
                session,
                Post(
                    key=f"approval:{approval.id}",
                    debit_account_id=(
                        drawer.drawer_account_id if top_up else post_office.district_account_id
                    ),
                    credit_account_id=(
                        post_office.district_account_id if top_up else drawer.drawer_account_id
                    ),
                    amount=approval.amount,
                    code="float_top_up" if top_up else "float_hand_back",
                    memo=f"drawer session {drawer.id}",
                ),
                now=now,
            )
    except ledger.InsufficientFunds:
        raise DrawerRefused(
            "not_enough_cash",
            _("Két tiền không có đủ %(amount)s để nộp về.", amount=vnd(approval.amount)),
        ) from None
    metrics.transfers_posted([transfer])
    operation = CounterOperation(
        id=uuid.uuid4(),
        kind=(OperationKind.TOP_UP if top_up else OperationKind.HAND_BACK).value,
        drawer_session_id=drawer.id,
        agent_id=agent.id,
        post_office_id=post_office.id,
        amount=approval.amount,
        fee=0,
        commission=0,
        cash_delta=approval.amount if top_up else -approval.amount,
        transfer_id=transfer.id,
        approved_by=supervisor.id,
        created_at=now,
    )
    session.add(operation)
    session.flush()
    audit.record(
        session,
        actor=supervisor.principal,
        action=Action.TOPPED_UP if top_up else Action.HANDED_BACK,
        now=now,
        post_office_id=post_office.id,
        subject=f"drawer:{drawer.id}",
        detail=f"amount={approval.amount} agent={agent.id}",
    )
    return operation


def request_float_move(
    session: Session, agent: Agent, kind: ApprovalKind, amount: int, now: dt.datetime
) -> Approval:
    """An agent asks for a float top-up or a hand-back; a supervisor's approval carries it out
    (`move_float`). Raises `DrawerRefused`."""
    assert kind in (ApprovalKind.TOP_UP, ApprovalKind.HAND_BACK)
    drawer = open_drawer(session, agent)
    if drawer is None:
        raise DrawerRefused("not_open", _("Két tiền của bạn chưa mở."))
    if amount <= 0:
        raise DrawerRefused("amount", _("Số tiền phải lớn hơn 0."))
    not_in_notes_message = not_in_notes(amount)
    if not_in_notes_message:
        raise DrawerRefused("amount", not_in_notes_message)
    cash = cash_in_drawer(session, agent, now)
    if kind is ApprovalKind.HAND_BACK and amount > cash:
        raise DrawerRefused(
            "amount",
            _("Két tiền không có đủ %(amount)s để nộp về.", amount=vnd(amount)),
        )
    if kind is ApprovalKind.TOP_UP and cash + amount > CASH_COUNT_MAX_VND:
        # More than a drawer can be counted to: a slip of the keyboard, not a request.
        raise DrawerRefused(
            "amount",
            _(
                "Két tiền giữ được tối đa %(max)s; lần này xin bổ sung được nhiều nhất "
                "%(allowed)s.",
                max=vnd(CASH_COUNT_MAX_VND),
                allowed=vnd(max(0, CASH_COUNT_MAX_VND - cash)),
            ),
        )
    return ask(
        session,
        agent,
        kind,
        amount=amount,
        subject=f"drawer:{drawer.id}",
        audit_subject=f"drawer:{drawer.id}",
        now=now,
    )
