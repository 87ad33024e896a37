"""Reads (statements, trial balance, balance as of a time), hot accounts, verification and the
database-side guards: append-only transfers, CHECK constraints, tamper evidence."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

import ledger
from ledger import AccountKind, Post, Reserve, Reverse
from ledger.schema import AccountBalance, Transfer, balances_table, transfers_table
from tests.ledger.conftest import NOW, disable_append_only, forged_row


def key() -> str:
    return f"k:{uuid.uuid4()}"


def test_statement_pages_newest_first_with_running_balance(
    db_session: Session, wallet_with: Callable[[int], int]
) -> None:
    alice, bob = wallet_with(1_000_000), wallet_with(0)
    for minute, amount in enumerate([10_000, 20_000, 30_000, 40_000, 50_000], start=1):
        ledger.post_transfer(
            db_session,
            Post(key(), alice, bob, amount, "payment"),
            now=NOW + dt.timedelta(minutes=minute),
        )
    pending = ledger.post_transfer(
        db_session, Reserve(key(), alice, bob, 5_000, "withdrawal", 600), now=NOW
    )
    first = ledger.statement(db_session, alice, limit=4)
    assert [line.amount for line in first.lines] == [-5_000, -50_000, -40_000, -30_000]
    assert [line.moves_posted for line in first.lines] == [False, True, True, True]
    assert [line.balance_after for line in first.lines] == [850_000, 850_000, 900_000, 940_000]
    assert first.lines[0].transfer_id == pending.id
    assert first.next_before is not None
    second = ledger.statement(db_session, alice, before=first.next_before, limit=4)
    assert [line.amount for line in second.lines] == [-20_000, -10_000, 1_000_000]
    assert [line.balance_after for line in second.lines] == [970_000, 990_000, 1_000_000]
    assert second.next_before is None
    assert second.lines[-1].seq == 1
    received = ledger.statement(db_session, bob, limit=10)
    assert received.lines[0].amount == 5_000 and not received.lines[0].moves_posted
    assert received.lines[1].counterparty_account_id == alice


def test_drawer_statement_is_on_the_debit_side(
    db_session: Session, open_account: Callable[..., int], wallet_with: Callable[[int], int]
) -> None:
    vault = open_account(AccountKind.SETTLEMENT)
    drawer = open_account(AccountKind.AGENT_DRAWER)
    wallet = wallet_with(0)
    ledger.post_transfer(db_session, Post(key(), drawer, vault, 500_000, "opening_float"), now=NOW)
    ledger.post_transfer(db_session, Post(key(), drawer, wallet, 200_000, "cash_in"), now=NOW)
    lines = ledger.statement(db_session, drawer).lines
    assert [(line.amount, line.balance_after) for line in lines] == [
        (200_000, 700_000),
        (500_000, 500_000),
    ]
    assert ledger.balance(db_session, drawer, now=NOW).posted == 700_000


@pytest.mark.parametrize("limit", [0, 201])
def test_statement_limits(
    db_session: Session, wallet_with: Callable[[int], int], limit: int
) -> None:
    with pytest.raises(ledger.InvalidTransfer, match="limit"):
        ledger.statement(db_session, wallet_with(1), limit=limit)


def test_balance_as_of_a_time(db_session: Session, wallet_with: Callable[[int], int]) -> None:
    alice, bob = wallet_with(0), wallet_with(300_000)
    for hour in (1, 2, 3):
        ledger.post_transfer(
            db_session,
            Post(key(), bob, alice, 100_000, "payment"),
            now=NOW + dt.timedelta(hours=hour),
        )
    assert ledger.balance_as_of(db_session, alice, NOW) == 0
    assert ledger.balance_as_of(db_session, alice, NOW + dt.timedelta(hours=2)) == 200_000
    assert ledger.balance_as_of(db_session, alice, NOW + dt.timedelta(days=1)) == 300_000
    with pytest.raises(ledger.AccountNotFound):
        ledger.balance_as_of(db_session, 999_999_999, NOW)


def test_trial_balance_sums_to_zero(db_session: Session, wallet_with: Callable[[int], int]) -> None:
    alice, bob = wallet_with(100_000), wallet_with(0)
    ledger.post_transfer(db_session, Post(key(), alice, bob, 1_234, "payment"), now=NOW)
    ledger.post_transfer(db_session, Reserve(key(), alice, bob, 4_321, "withdrawal", 60), now=NOW)
    trial = ledger.trial_balance(db_session)
    assert trial.balanced
    lines = {line.account_id: line for line in trial.lines}
    assert (lines[alice].debits_posted, lines[alice].credits_posted) == (1_234, 100_000)


def test_hot_account_spreads_over_shards_and_sums(
    db_session: Session, open_account: Callable[..., int], wallet_with: Callable[[int], int]
) -> None:
    fees = open_account(AccountKind.FEE_REVENUE, shard_count=8)
    wallets = [wallet_with(10_000) for _ in range(20)]
    for wallet in wallets:
        ledger.post_transfer(db_session, Post(key(), wallet, fees, 1_000, "fee"), now=NOW)
    assert ledger.balance(db_session, fees, now=NOW).posted == 20_000
    rows = db_session.scalars(select(AccountBalance).where(AccountBalance.account_id == fees)).all()
    assert len(rows) == 8
    assert sum(row.credits_posted for row in rows) == 20_000
    with pytest.raises(ledger.InvalidTransfer, match="shard"):
        ledger.statement(db_session, fees)
    assert ledger.verify_ledger(db_session).ok


def test_a_sharded_account_cannot_have_a_balance_rule(
    db_session: Session, open_account: Callable[..., int]
) -> None:
    with pytest.raises(ledger.InvalidTransfer, match="sharded"):
        open_account(AccountKind.CITIZEN_WALLET, shard_count=4)
    with pytest.raises(ledger.InvalidTransfer, match="shard_count"):
        open_account(AccountKind.FEE_REVENUE, shard_count=65)


def test_verification_of_a_clean_ledger(
    db_session: Session, wallet_with: Callable[[int], int]
) -> None:
    alice, bob = wallet_with(100_000), wallet_with(0)
    paid = ledger.post_transfer(db_session, Post(key(), alice, bob, 10_000, "payment"), now=NOW)
    ledger.post_transfer(db_session, Reverse(key(), paid.id), now=NOW)
    pending = ledger.post_transfer(
        db_session, Reserve(key(), alice, bob, 10_000, "withdrawal", 60), now=NOW
    )
    ledger.post_transfer(db_session, ledger.PostPending(key(), pending.id), now=NOW)
    ledger.post_transfer(db_session, Reserve(key(), alice, bob, 1, "withdrawal", 60), now=NOW)
    report = ledger.verify_ledger(db_session)
    assert report.ok, report.problems
    assert report.transfers_checked >= 6
    assert report.chains_checked >= 2


def test_verification_names_the_first_broken_link(
    db_session: Session, wallet_with: Callable[[int], int], backend: str
) -> None:
    alice, bob = wallet_with(100_000), wallet_with(0)
    results = [
        ledger.post_transfer(db_session, Post(key(), alice, bob, 1_000, "payment"), now=NOW)
        for _ in range(3)
    ]
    disable_append_only(db_session, backend)
    # Change the amount of the middle transfer and even fix up the totals to match.
    db_session.execute(
        update(transfers_table).where(transfers_table.c.id == results[1].id).values(amount=900)
    )
    db_session.execute(
        update(balances_table)
        .where(balances_table.c.account_id == alice)
        .values(debits_posted=balances_table.c.debits_posted - 100)
    )
    db_session.execute(
        update(balances_table)
        .where(balances_table.c.account_id == bob)
        .values(credits_posted=balances_table.c.credits_posted - 100)
    )
    report = ledger.verify_ledger(db_session)
    assert not report.ok
    broken = [p for p in report.problems if "hash chain broken" in p]
    alice_seq = db_session.scalar(select(Transfer.debit_seq).where(Transfer.id == results[1].id))
    assert f"account {alice} shard 0: hash chain broken at seq {alice_seq}" in " ".join(broken)
    assert any(f"account {bob} shard 0: hash chain broken" in p for p in broken)
    assert any("running balance" in p for p in report.problems)


def test_verification_finds_totals_that_do_not_match(
    db_session: Session, wallet_with: Callable[[int], int]
) -> None:
    alice = wallet_with(100_000)
    db_session.execute(
        update(balances_table)
        .where(balances_table.c.account_id == alice)
        .values(credits_posted=balances_table.c.credits_posted + 1)
    )
    report = ledger.verify_ledger(db_session)
    assert any(f"account {alice} shard 0: totals" in p for p in report.problems)
    assert any("posted debits" in p for p in report.problems)


def test_transfers_are_append_only(db_session: Session, wallet_with: Callable[[int], int]) -> None:
    alice, bob = wallet_with(100_000), wallet_with(0)
    paid = ledger.post_transfer(db_session, Post(key(), alice, bob, 1_000, "payment"), now=NOW)
    db_session.commit()
    for statement in (
        update(transfers_table).where(transfers_table.c.id == paid.id).values(amount=1),
        transfers_table.delete().where(transfers_table.c.id == paid.id),
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            db_session.execute(statement)
        db_session.rollback()
    assert db_session.get(Transfer, paid.id) is not None


@pytest.mark.parametrize(
    ("column", "constraint"),
    [
        ("debits_posted", "debits_within_credits"),
        ("debits_pending", "debits_within_credits"),
    ],
)
def test_balance_rules_hold_in_the_database_too(
    db_session: Session, wallet_with: Callable[[int], int], column: str, constraint: str
) -> None:
    """Even a write that bypasses the ledger's code cannot overdraw a wallet."""
    alice = wallet_with(100_000)
    db_session.commit()
    value = 100_001
    with pytest.raises(IntegrityError, match=constraint):
        db_session.execute(
            update(balances_table)
            .where(balances_table.c.account_id == alice)
            .values({column: value})
        )
    db_session.rollback()


def test_a_balance_row_with_a_negative_total_is_refused_or_reported(
    db_session: Session, wallet_with: Callable[[int], int], backend: str
) -> None:
    """SQLite refuses it; on PostgreSQL (migration 0012) verification names it."""
    alice = wallet_with(100_000)
    db_session.commit()
    negative = update(balances_table).where(balances_table.c.account_id == alice)
    if backend == "sqlite":
        with pytest.raises(IntegrityError, match="totals_not_negative"):
            db_session.execute(negative.values(credits_pending=-1))
        db_session.rollback()
        return
    db_session.execute(negative.values(credits_pending=-1))
    report = ledger.verify_ledger(db_session)
    assert "1 balance rows hold a negative total or entry count" in report.problems


def test_a_balance_row_of_no_account_is_refused_or_reported(
    db_session: Session, open_account: Callable[..., int], backend: str
) -> None:
    """SQLite's foreign key refuses it; on PostgreSQL (migration 0013) verification names it."""
    nobody = open_account() + 1_000_000
    db_session.commit()
    stray = balances_table.insert().values(account_id=nobody, shard=0)
    if backend == "sqlite":
        with pytest.raises(IntegrityError, match="FOREIGN KEY"):
            db_session.execute(stray)
        db_session.rollback()
        return
    db_session.execute(stray)
    report = ledger.verify_ledger(db_session)
    assert f"balance row of account {nobody} shard 0: there is no such account" in report.problems


@pytest.mark.parametrize(
    "change",
    [
        {"debits_must_not_exceed_credits": False},
        {"credits_must_not_exceed_debits": True, "debits_must_not_exceed_credits": False},
        {"shard_count": 2},
        {"shard": 1},
    ],
    ids=["rule dropped", "rule turned", "shard count", "shard"],
)
def test_a_balance_row_unlike_its_account_is_reported(
    db_session: Session, wallet_with: Callable[[int], int], change: dict[str, object]
) -> None:
    alice = wallet_with(0)  # (no money: either rule holds on its row)
    db_session.commit()
    db_session.execute(
        update(balances_table).where(balances_table.c.account_id == alice).values(**change)
    )
    report = ledger.verify_ledger(db_session)
    shard = change.get("shard", 0)
    assert (
        f"balance row of account {alice} shard {shard}: its rules, shard count or shard are "
        "not its account's"
    ) in report.problems


def test_an_account_without_one_row_per_shard_is_reported(
    db_session: Session, open_account: Callable[..., int]
) -> None:
    fees = open_account(AccountKind.FEE_REVENUE, shard_count=4)
    db_session.commit()
    assert ledger.verify_ledger(db_session).ok
    db_session.execute(
        delete(balances_table).where(
            balances_table.c.account_id == fees, balances_table.c.shard == 3
        )
    )
    report = ledger.verify_ledger(db_session)
    assert report.problems == [f"account {fees} does not have one balance row per shard"]


@pytest.mark.parametrize(
    "shape",
    [
        {"phase": "refund"},
        {"phase": "posted", "pending_id": "reservation"},
        {"phase": "post_pending"},
        {"phase": "posted", "expires_at": NOW},
        {"debit_seq": 0},
    ],
    ids=["unknown phase", "posted names a reservation", "resolution names none", "expiry", "seq"],
)
def test_a_misshapen_transfer_row_is_refused_or_reported(
    db_session: Session, wallet_with: Callable[[int], int], backend: str, shape: dict[str, object]
) -> None:
    """A row written around ledger_apply: SQLite's constraints refuse it; on PostgreSQL, which
    keeps only the money rules as constraints (migration 0012), verification names it."""
    alice, bob = wallet_with(100_000), wallet_with(0)
    reservation = ledger.post_transfer(
        db_session, Reserve(key(), alice, bob, 1_000, "withdrawal", 600), now=NOW
    )
    db_session.commit()
    forged_id = uuid.uuid4()
    row = forged_row(alice, bob, id=forged_id, debit_seq=90, credit_seq=90) | shape
    if row.get("pending_id") == "reservation":
        row["pending_id"] = reservation.id
    if backend == "sqlite":
        with pytest.raises(IntegrityError):
            db_session.execute(transfers_table.insert().values(row))
        db_session.rollback()
        return
    db_session.execute(transfers_table.insert().values(row))
    report = ledger.verify_ledger(db_session)
    assert f"transfer {forged_id}: its phase, references" in " ".join(report.problems)


def test_a_transfer_row_balances_by_construction(
    db_session: Session, wallet_with: Callable[[int], int]
) -> None:
    alice = wallet_with(100_000)
    db_session.commit()
    row = forged_row(alice, alice, debit_seq=9, credit_seq=10)
    with pytest.raises(IntegrityError, match="accounts_differ"):
        db_session.execute(transfers_table.insert().values(row))
    db_session.rollback()
