"""Verification: recompute the whole ledger from its transfers and say what does not agree.

It replays every account's hash chain in sequence order (three sorted streams, debit sides,
credit sides and fee legs, merged), recomputes its posted and pending totals and running
balances, compares them with the stored balance rows, checks that every transfer row has its
phase's shape, that every balance row belongs to its account (and every account has its rows),
that reservations, resolutions and reversals agree with what they refer to, that no total is
negative and that all debits equal all credits. Memory stays flat: rows are streamed.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import CheckConstraint, ColumnElement, Table, exists, func, or_, select, text
from sqlalchemy.orm import Session, aliased

from ledger.chain import chain_step, transfer_digest
from ledger.schema import (
    GENESIS_HASH,
    SIDES,
    Account,
    AccountBalance,
    OpenReservation,
    Phase,
    Side,
    Transfer,
    balances_table,
    side_movement,
    transfers_table,
)

STREAM_BATCH_SIZE = 5_000
PROBLEMS_REPORTED_MAX = 1_000


@dataclass
class VerificationReport:
    accounts_checked: int = 0
    chains_checked: int = 0
    transfers_checked: int = 0
    problems: list[str] = field(default_factory=list)
    problems_total: int = 0

    @property
    def ok(self) -> bool:
        return self.problems_total == 0

    def add(self, problem: str) -> None:
        self.problems_total += 1
        if len(self.problems) < PROBLEMS_REPORTED_MAX:
            self.problems.append(problem)


class _Entry(NamedTuple):
    account_id: int
    shard: int
    seq: int
    side: Side
    row: Any


def _entries(session: Session, side: Side) -> Iterator[_Entry]:
    account = getattr(Transfer, f"{side}_account_id")
    shard = getattr(Transfer, f"{side}_shard")
    seq = getattr(Transfer, f"{side}_seq")
    query = select(Transfer.__table__)
    if side == "fee":
        query = query.where(Transfer.fee_account_id.is_not(None))
    result = session.execute(
        query.order_by(account, shard, seq).execution_options(yield_per=STREAM_BATCH_SIZE)
    )
    for row in result:
        yield _Entry(
            row._mapping[account.key], row._mapping[shard.key], row._mapping[seq.key], side, row
        )


def _digest_of(row: Any) -> bytes:
    names_accounts = row.phase in (Phase.POSTED, Phase.PENDING) and row.reverses_id is None
    return transfer_digest(
        transfer_id=row.id,
        idempotency_key=row.idempotency_key,
        batch_id=row.batch_id,
        phase=row.phase,
        code=row.code,
        memo=row.memo,
        debit_account_id=row.debit_account_id if names_accounts else None,
        credit_account_id=row.credit_account_id if names_accounts else None,
        amount=row.amount if names_accounts else None,
        pending_id=row.pending_id,
        reverses_id=row.reverses_id,
        expires_at=row.expires_at,
        created_at=row.created_at,
        fee_account_id=row.fee_account_id if names_accounts else None,
        fee_amount=row.fee_amount if names_accounts else None,
    )


def verify_ledger(session: Session) -> VerificationReport:
    report = VerificationReport()
    _verify_rows(session, report)
    _verify_balance_rows(session, report)
    _verify_chains(session, report)
    _verify_references(session, report)
    _verify_sums(session, report)
    return report


def _breaking(table: Table, *names: str) -> ColumnElement[bool]:
    """True for a row of `table` that breaks one of its CHECK constraints (those named, or all),
    read from the model, so that verification tests the very conditions SQLite enforces."""
    conditions = [
        text(f"NOT ({constraint.sqltext.text})")
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint)
        and (not names or str(constraint.name).endswith(names))
    ]
    assert conditions, f"no CHECK constraint {names} on {table.name}"
    return or_(*conditions)


def _verify_rows(session: Session, report: VerificationReport) -> None:
    """Every transfer row has the shape its phase gives it.

    `ledger_apply` writes rows of this shape, and on SQLite CHECK constraints refuse any other;
    on PostgreSQL only the money rules are constraints (see migration 0012), so this is where a
    row written some other way is found.
    """
    misshapen = session.scalars(
        select(Transfer.id)
        .where(_breaking(transfers_table))
        .order_by(Transfer.id)
        .limit(PROBLEMS_REPORTED_MAX)
    ).all()
    for transfer_id in misshapen:
        report.add(
            f"transfer {transfer_id}: its phase, references, sequence numbers, amount, "
            "accounts or fee leg break the shape of a transfer"
        )


def _verify_balance_rows(session: Session, report: VerificationReport) -> None:
    """Every balance row belongs to an account and carries its rules and shard count, and every
    account has one row per shard.

    On SQLite a foreign key refuses a row of no account; on PostgreSQL that key is dropped
    (migration 0013), so this is where such a row is found. The copies are the account's so that
    the rules are checked, and the shard found, on the row a writer locks.
    """
    misplaced = session.execute(
        select(AccountBalance.account_id, AccountBalance.shard, Account.id)
        .outerjoin(Account, Account.id == AccountBalance.account_id)
        .where(
            or_(
                Account.id.is_(None),
                AccountBalance.debits_must_not_exceed_credits
                != Account.debits_must_not_exceed_credits,
                AccountBalance.credits_must_not_exceed_debits
                != Account.credits_must_not_exceed_debits,
                AccountBalance.shard_count != Account.shard_count,
                AccountBalance.shard < 0,
                AccountBalance.shard >= Account.shard_count,
            )
        )
        .order_by(AccountBalance.account_id, AccountBalance.shard)
        .limit(PROBLEMS_REPORTED_MAX)
    ).all()
    for account_id, shard, account in misplaced:
        where = f"balance row of account {account_id} shard {shard}"
        if account is None:
            report.add(f"{where}: there is no such account")
        else:
            report.add(f"{where}: its rules, shard count or shard are not its account's")
    rows = (
        select(func.count())
        .where(AccountBalance.account_id == Account.id)
        .correlate(Account)
        .scalar_subquery()
    )
    short = session.scalars(
        select(Account.id)
        .where(rows != Account.shard_count)
        .order_by(Account.id)
        .limit(PROBLEMS_REPORTED_MAX)
    ).all()
    for account_id in short:
        report.add(f"account {account_id} does not have one balance row per shard")


def _verify_chains(session: Session, report: VerificationReport) -> None:
    merged = heapq.merge(
        *(_entries(session, side) for side in SIDES),
        key=lambda e: (e.account_id, e.shard, e.seq),
    )
    chains = itertools.groupby(merged, key=lambda e: (e.account_id, e.shard))
    balances = session.execute(
        select(AccountBalance.__table__)
        .order_by(AccountBalance.account_id, AccountBalance.shard)
        .execution_options(yield_per=STREAM_BATCH_SIZE)
    )
    seen_accounts: set[int] = set()
    pending_chain = next(chains, None)
    for balance in balances:
        report.chains_checked += 1
        seen_accounts.add(balance.account_id)
        key = (balance.account_id, balance.shard)
        while pending_chain is not None and pending_chain[0] < key:
            report.add(
                f"transfers on account {pending_chain[0][0]} shard {pending_chain[0][1]}, "
                "which has no balance row"
            )
            pending_chain = next(chains, None)
        if pending_chain is not None and pending_chain[0] == key:
            _verify_chain(balance, pending_chain[1], report)
            # Only now: advancing groupby invalidates the group just read.
            pending_chain = next(chains, None)
        else:
            _verify_chain(balance, iter(()), report)
    while pending_chain is not None:
        report.add(
            f"transfers on account {pending_chain[0][0]} shard {pending_chain[0][1]}, "
            "which has no balance row"
        )
        pending_chain = next(chains, None)
    report.accounts_checked = len(seen_accounts)


def _verify_chain(balance: Any, entries: Iterator[_Entry], report: VerificationReport) -> None:
    where = f"account {balance.account_id} shard {balance.shard}"
    head = GENESIS_HASH
    broken = False
    expected_seq = 0
    posted = {"debit": 0, "credit": 0}
    pending = {"debit": 0, "credit": 0}
    for entry in entries:
        row = entry.row
        expected_seq += 1
        if entry.side == "debit":
            report.transfers_checked += 1
        if entry.seq != expected_seq:
            report.add(f"{where}: sequence jumps to {entry.seq} where {expected_seq} was due")
            expected_seq = entry.seq
        head = chain_step(head, _digest_of(row))
        stored = getattr(row, f"{entry.side}_hash")
        if not broken and stored != head:
            report.add(f"{where}: hash chain broken at seq {entry.seq} (transfer {row.id})")
            broken = True
        if broken:
            head = stored  # follow the stored chain so that the head check names no second break
        on_debits, moves_posted, moves_pending = side_movement(
            entry.side, row.phase, row.amount, row.fee_amount, row.reverses_id is not None
        )
        column = "debit" if on_debits else "credit"
        posted[column] += moves_posted
        pending[column] += moves_pending
        after = getattr(row, f"{entry.side}_balance_after")
        if after != posted["credit"] - posted["debit"]:
            report.add(
                f"{where}: running balance after seq {entry.seq} is {after}, "
                f"recomputed {posted['credit'] - posted['debit']}"
            )
    if balance.entry_count != expected_seq:
        report.add(
            f"{where}: balance row counts {balance.entry_count} entries, chain has {expected_seq}"
        )
    if balance.head_hash != head and not broken:
        report.add(f"{where}: balance row's chain head does not match its last transfer")
    recomputed = (posted["debit"], posted["credit"], pending["debit"], pending["credit"])
    stored_totals = (
        balance.debits_posted,
        balance.credits_posted,
        balance.debits_pending,
        balance.credits_pending,
    )
    if recomputed != stored_totals:
        report.add(
            f"{where}: totals (debits posted, credits posted, debits pending, credits pending) "
            f"stored {stored_totals}, recomputed {recomputed}"
        )


def _verify_references(session: Session, report: VerificationReport) -> None:
    resolution = aliased(Transfer)
    pending = aliased(Transfer)
    mismatched_resolutions = session.scalars(
        select(resolution.id)
        .join(pending, pending.id == resolution.pending_id)
        .where(
            or_(
                pending.phase != Phase.PENDING.value,
                resolution.debit_account_id != pending.debit_account_id,
                resolution.credit_account_id != pending.credit_account_id,
                resolution.debit_shard != pending.debit_shard,
                resolution.credit_shard != pending.credit_shard,
                resolution.amount != pending.amount,
            )
        )
        .limit(PROBLEMS_REPORTED_MAX)
    ).all()
    for transfer_id in mismatched_resolutions:
        report.add(f"transfer {transfer_id} resolves a reservation it does not match")

    reversal = aliased(Transfer)
    original = aliased(Transfer)
    mismatched_reversals = session.scalars(
        select(reversal.id)
        .join(original, original.id == reversal.reverses_id)
        .where(
            or_(
                original.phase.not_in([Phase.POSTED.value, Phase.POST_PENDING.value]),
                reversal.debit_account_id != original.credit_account_id,
                reversal.credit_account_id != original.debit_account_id,
                reversal.amount != original.amount,
                reversal.fee_account_id.is_distinct_from(original.fee_account_id),
                reversal.fee_shard.is_distinct_from(original.fee_shard),
                reversal.fee_amount.is_distinct_from(original.fee_amount),
            )
        )
        .limit(PROBLEMS_REPORTED_MAX)
    ).all()
    for transfer_id in mismatched_reversals:
        report.add(f"transfer {transfer_id} reverses a transfer it does not mirror")

    stale = session.scalars(
        select(OpenReservation.pending_id)
        .outerjoin(pending, pending.id == OpenReservation.pending_id)
        .where(
            or_(
                pending.phase != Phase.PENDING.value,
                pending.amount != OpenReservation.amount,
                pending.debit_account_id != OpenReservation.debit_account_id,
                pending.credit_account_id != OpenReservation.credit_account_id,
                exists().where(resolution.pending_id == OpenReservation.pending_id),
            )
        )
        .limit(PROBLEMS_REPORTED_MAX)
    ).all()
    for pending_id in stale:
        report.add(f"open reservation {pending_id} does not match an unresolved pending transfer")

    lost = session.scalars(
        select(pending.id)
        .where(
            pending.phase == Phase.PENDING.value,
            ~exists().where(resolution.pending_id == pending.id),
            ~exists().where(OpenReservation.pending_id == pending.id),
        )
        .limit(PROBLEMS_REPORTED_MAX)
    ).all()
    for pending_id in lost:
        report.add(f"pending transfer {pending_id} is neither resolved nor open")


def _verify_sums(session: Session, report: VerificationReport) -> None:
    """All debits equal all credits, and no balance row breaks its rule or holds a negative
    total: one pass over the balance rows."""
    rows = session.execute(
        select(
            func.coalesce(func.sum(AccountBalance.debits_posted), 0),
            func.coalesce(func.sum(AccountBalance.credits_posted), 0),
            func.coalesce(func.sum(AccountBalance.debits_pending), 0),
            func.coalesce(func.sum(AccountBalance.credits_pending), 0),
            func.count().filter(
                _breaking(balances_table, "debits_within_credits", "credits_within_debits")
            ),
            func.count().filter(
                _breaking(balances_table, "totals_not_negative", "entry_count_not_negative")
            ),
        )
    ).one()
    debits_posted, credits_posted, debits_pending, credits_pending, broken_rules, negative = (
        int(value) for value in rows
    )
    if debits_posted != credits_posted:
        report.add(f"posted debits {debits_posted} ≠ posted credits {credits_posted}")
    if debits_pending != credits_pending:
        report.add(f"pending debits {debits_pending} ≠ pending credits {credits_pending}")
    if broken_rules:
        report.add(f"{broken_rules} balance rows break their balance rule")
    if negative:
        report.add(f"{negative} balance rows hold a negative total or entry count")
