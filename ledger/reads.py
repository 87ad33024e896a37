"""Reading the ledger: balances, statements, the trial balance and balances as of a time.

Every list is bounded and paged. An expired reservation never counts against what is available,
even before the sweeper has voided it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    Select,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased
from sqlalchemy.sql.selectable import ScalarSelect

from ledger import errors
from ledger.accounts import DEBIT_NORMAL_KINDS
from ledger.schema import (
    SIDES,
    Account,
    AccountBalance,
    AccountKind,
    OpenReservation,
    Phase,
    Side,
    Transfer,
)

STATEMENT_PAGE_SIZE_MAX = 200
TRIAL_BALANCE_ROWS_MAX = 100_000


@dataclass(frozen=True, slots=True)
class Balance:
    account_id: int
    debit_normal: bool
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int
    # Reserved amounts whose time has run out but that the sweeper has not voided yet.
    debits_pending_expired: int
    credits_pending_expired: int

    @property
    def posted(self) -> int:
        """The posted balance on the account's normal side."""
        net = self.credits_posted - self.debits_posted
        return -net if self.debit_normal else net

    @property
    def reserved(self) -> int:
        """Money on its way out, held by open reservations (e.g. unredeemed withdrawal codes)."""
        if self.debit_normal:
            return self.credits_pending - self.credits_pending_expired
        return self.debits_pending - self.debits_pending_expired

    @property
    def incoming(self) -> int:
        if self.debit_normal:
            return self.debits_pending - self.debits_pending_expired
        return self.credits_pending - self.credits_pending_expired

    @property
    def available(self) -> int:
        return self.posted - self.reserved


def balance(session: Session, account_id: int, *, now: dt.datetime | None = None) -> Balance:
    """The account's totals and its expired-but-unswept reservations, in one statement (every
    counter request reads a drawer's or a wallet's balance, some several times)."""
    now = now or dt.datetime.now(dt.UTC)
    expired = OpenReservation.expires_at <= now

    def totals_of(column: InstrumentedAttribute[int]) -> ScalarSelect[int]:
        return (
            select(func.coalesce(func.sum(column), 0))
            .where(AccountBalance.account_id == account_id)
            .scalar_subquery()
        )

    def expired_on(side: InstrumentedAttribute[int]) -> ScalarSelect[int]:
        return (
            select(func.coalesce(func.sum(OpenReservation.amount), 0))
            .where(side == account_id, expired)
            .scalar_subquery()
        )

    row = session.execute(
        select(
            Account.kind,
            totals_of(AccountBalance.debits_posted),
            totals_of(AccountBalance.credits_posted),
            totals_of(AccountBalance.debits_pending),
            totals_of(AccountBalance.credits_pending),
            expired_on(OpenReservation.debit_account_id),
            expired_on(OpenReservation.credit_account_id),
        ).where(Account.id == account_id)
    ).one_or_none()
    if row is None:
        raise errors.AccountNotFound(account_id)
    return Balance(
        account_id=account_id,
        debit_normal=AccountKind(row[0]) in DEBIT_NORMAL_KINDS,
        # PostgreSQL sums BIGINT into NUMERIC (a Decimal); the amounts are whole đồng.
        debits_posted=int(row[1]),
        credits_posted=int(row[2]),
        debits_pending=int(row[3]),
        credits_pending=int(row[4]),
        debits_pending_expired=int(row[5]),
        credits_pending_expired=int(row[6]),
    )


@dataclass(frozen=True, slots=True)
class StatementLine:
    transfer_id: uuid.UUID
    seq: int
    created_at: dt.datetime
    phase: Phase
    code: str
    memo: str
    counterparty_account_id: int
    # Signed on the account's normal side: positive money in, negative money out.
    amount: int
    # False for a reservation and its void: they hold money without moving the posted balance.
    moves_posted: bool
    # The posted balance on the normal side right after this line (a pending line leaves it).
    balance_after: int
    pending_id: uuid.UUID | None
    reverses_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class StatementFilter:
    """Which lines of a statement to keep. Every field is optional; all given must hold."""

    # "in": lines that credit the account; "out": lines that debit it.
    direction: Literal["in", "out"] | None = None
    # Transfer codes to keep; a resolution (post or void) is kept when the reservation it
    # resolves has one of them, so a withdrawal's payout reads as a withdrawal.
    codes: frozenset[str] | None = None
    created_from: dt.datetime | None = None
    created_until: dt.datetime | None = None  # exclusive
    # One line per reservation, as a person reads an account: a reservation posted later is
    # left out (its posting moved the money and stands for it), and so is every void (the
    # reservation it voided stands for it, and can say it was released).
    one_line_per_reservation: bool = False


NO_FILTER = StatementFilter()


@dataclass(frozen=True, slots=True)
class StatementPage:
    lines: list[StatementLine]
    # Pass as `before` to get the next (older) page; None when this is the last page.
    next_before: int | None


def statement(
    session: Session,
    account_id: int,
    *,
    before: int | None = None,
    limit: int = 50,
    only: StatementFilter = NO_FILTER,
) -> StatementPage:
    """The account's transfers, newest first, with the running posted balance.

    Paged by the account's own sequence number (keyset paging), so a page costs the same however
    long the history is. A sharded (hot) account is read per shard: `statement_of_shard`.
    """
    account = session.get(Account, account_id)
    if account is None:
        raise errors.AccountNotFound(account_id)
    if account.shard_count > 1:
        raise errors.InvalidTransfer("a sharded account has one statement per shard")
    return statement_of_shard(session, account, 0, before=before, limit=limit, only=only)


def statement_of_shard(
    session: Session,
    account: Account,
    shard: int,
    *,
    before: int | None,
    limit: int,
    only: StatementFilter = NO_FILTER,
) -> StatementPage:
    if not 1 <= limit <= STATEMENT_PAGE_SIZE_MAX:
        raise errors.InvalidTransfer(f"limit must be between 1 and {STATEMENT_PAGE_SIZE_MAX}")
    debit_normal = AccountKind(account.kind) in DEBIT_NORMAL_KINDS
    sides = []
    reservation = aliased(Transfer)
    resolution = aliased(Transfer)
    for side in SIDES:
        if side != "fee" and only.direction == ("in" if side == "debit" else "out"):
            continue  # debit lines are money out, credit lines money in
        seq = getattr(Transfer, f"{side}_seq")
        condition = and_(
            getattr(Transfer, f"{side}_account_id") == account.id,
            getattr(Transfer, f"{side}_shard") == shard,
        )
        if side == "fee" and only.direction is not None:
            # A fee comes in, and goes back out only in a reversal.
            reversal = Transfer.reverses_id.is_not(None)
            condition = and_(condition, reversal if only.direction == "out" else ~reversal)
        if before is not None:
            condition = and_(condition, seq < before)
        if only.codes is not None:
            codes = sorted(only.codes)
            condition = and_(
                condition,
                or_(
                    and_(Transfer.pending_id.is_(None), Transfer.code.in_(codes)),
                    exists().where(
                        reservation.id == Transfer.pending_id, reservation.code.in_(codes)
                    ),
                ),
            )
        if only.one_line_per_reservation:
            condition = and_(
                condition,
                Transfer.phase != Phase.VOID_PENDING,
                or_(
                    Transfer.phase != Phase.PENDING,
                    ~exists().where(
                        resolution.pending_id == Transfer.id,
                        resolution.phase == Phase.POST_PENDING,
                    ),
                ),
            )
        if only.created_from is not None:
            condition = and_(condition, Transfer.created_at >= only.created_from)
        if only.created_until is not None:
            condition = and_(condition, Transfer.created_at < only.created_until)
        counterparty, moved, on_debits = _side_columns(side)
        query: Select[tuple[object, ...]] = (
            select(
                Transfer.id,
                seq.label("seq"),
                Transfer.created_at,
                Transfer.phase,
                Transfer.code,
                Transfer.memo,
                counterparty.label("counterparty"),
                moved.label("amount"),
                getattr(Transfer, f"{side}_balance_after").label("balance_after"),
                Transfer.pending_id,
                Transfer.reverses_id,
                on_debits.label("on_debits"),
            )
            .where(condition)
            .order_by(seq.desc())
            .limit(limit + 1)
        )
        sides.append(query.subquery().select())
    combined = union_all(*sides).subquery()
    rows = session.execute(select(combined).order_by(combined.c.seq.desc()).limit(limit + 1)).all()
    lines = []
    for row in rows[:limit]:
        amount = -row.amount if row.on_debits else row.amount
        lines.append(
            StatementLine(
                transfer_id=row.id,
                seq=row.seq,
                created_at=row.created_at,
                phase=Phase(row.phase),
                code=row.code,
                memo=row.memo,
                counterparty_account_id=row.counterparty,
                amount=-amount if debit_normal else amount,
                moves_posted=row.phase in (Phase.POSTED, Phase.POST_PENDING),
                balance_after=-row.balance_after if debit_normal else row.balance_after,
                pending_id=row.pending_id,
                reverses_id=row.reverses_id,
            )
        )
    next_before = lines[-1].seq if len(rows) > limit else None
    return StatementPage(lines=lines, next_before=next_before)


def _side_columns(side: Side) -> tuple[Any, Any, Any]:
    """For a statement's lines on `side` of their transfers: the counterparty, the amount the
    line moves and whether it moves the account's debits (see `ledger.schema.side_movement`)."""
    reversal = Transfer.reverses_id.is_not(None)
    with_fee = Transfer.fee_amount.is_not(None)
    if side == "fee":
        # The fee account's counterparty is the payer: the debit account, or in a reversal
        # the credit account (the original's debit account), which the fee goes back to.
        payer = case((reversal, Transfer.credit_account_id), else_=Transfer.debit_account_id)
        return payer, Transfer.fee_amount, case((reversal, true()), else_=false())
    if side == "debit":
        fee_here = and_(with_fee, ~reversal)
        counterparty = Transfer.credit_account_id
    else:
        fee_here = and_(with_fee, reversal)
        counterparty = Transfer.debit_account_id
    moved = Transfer.amount + case((fee_here, Transfer.fee_amount), else_=0)
    return counterparty, moved, literal(side == "debit")


@dataclass(frozen=True, slots=True)
class TrialBalanceLine:
    account_id: int
    kind: str
    name: str
    debits_posted: int
    credits_posted: int


@dataclass(frozen=True, slots=True)
class TrialBalance:
    lines: list[TrialBalanceLine]
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int

    @property
    def balanced(self) -> bool:
        return (
            self.debits_posted == self.credits_posted
            and self.debits_pending == self.credits_pending
        )


def trial_balance(session: Session) -> TrialBalance:
    """Posted totals of every account; the ledger balances when total debits equal credits."""
    count = session.scalar(select(func.count()).select_from(Account)) or 0
    if count > TRIAL_BALANCE_ROWS_MAX:
        raise errors.InvalidTransfer(
            f"more than {TRIAL_BALANCE_ROWS_MAX} accounts: use the verification command"
        )
    rows = session.execute(
        select(
            Account.id,
            Account.kind,
            Account.name,
            func.sum(AccountBalance.debits_posted),
            func.sum(AccountBalance.credits_posted),
            func.sum(AccountBalance.debits_pending),
            func.sum(AccountBalance.credits_pending),
        )
        .join(AccountBalance, AccountBalance.account_id == Account.id)
        .group_by(Account.id, Account.kind, Account.name)
        .order_by(Account.id)
    ).all()
    lines = [TrialBalanceLine(r[0], r[1], r[2], int(r[3]), int(r[4])) for r in rows]
    return TrialBalance(
        lines=lines,
        debits_posted=sum(int(r[3]) for r in rows),
        credits_posted=sum(int(r[4]) for r in rows),
        debits_pending=sum(int(r[5]) for r in rows),
        credits_pending=sum(int(r[6]) for r in rows),
    )


def balance_as_of(session: Session, account_id: int, at: dt.datetime) -> int:
    """The posted balance on the account's normal side as it stood at `at`."""
    kind = session.scalar(select(Account.kind).where(Account.id == account_id))
    if kind is None:
        raise errors.AccountNotFound(account_id)
    moved_posted = Transfer.phase.in_([Phase.POSTED.value, Phase.POST_PENDING.value])
    in_time = Transfer.created_at <= at
    net = 0
    for side in SIDES:
        _counterparty, moved, on_debits = _side_columns(side)
        signed = case((on_debits, -moved), else_=moved)
        total = session.scalar(
            select(func.coalesce(func.sum(signed), 0)).where(
                getattr(Transfer, f"{side}_account_id") == account_id, moved_posted, in_time
            )
        )
        net += int(total or 0)
    return -net if AccountKind(kind) in DEBIT_NORMAL_KINDS else net


def transfers_of_batch(session: Session, batch_id: uuid.UUID) -> list[Transfer]:
    return list(
        session.scalars(select(Transfer).where(Transfer.batch_id == batch_id).order_by(Transfer.id))
    )


def open_reservations_of(
    session: Session, account_id: int, *, limit: int = 100
) -> list[OpenReservation]:
    return list(
        session.scalars(
            select(OpenReservation)
            .where(
                or_(
                    OpenReservation.debit_account_id == account_id,
                    OpenReservation.credit_account_id == account_id,
                )
            )
            .order_by(OpenReservation.expires_at)
            .limit(limit)
        )
    )
