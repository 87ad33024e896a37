"""Transfers with a fee leg: the debit account pays the amount and the fee, in one transfer.

On SQLite, on PostgreSQL through `ledger_apply`, and on the portable path on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import ledger
from ledger import AccountKind, Post, Reverse
from ledger.reads import StatementFilter
from ledger.schema import Transfer, balances_table, transfers_table
from tests.ledger.conftest import NOW, disable_append_only, forged_row

FEE = 1_100


def key() -> str:
    return f"fee:{uuid.uuid4()}"


def posted(session: Session, *accounts: int) -> list[int]:
    return [ledger.balance(session, account, now=NOW).posted for account in accounts]


def transfer_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Transfer)) or 0


@pytest.fixture
def fees(open_account: Callable[..., int]) -> int:
    return open_account(AccountKind.FEE_REVENUE)


def test_a_payment_and_its_fee_are_one_transfer(
    db_session: Session, wallet_with: Callable[[int], int], fees: int
) -> None:
    payer, payee = wallet_with(100_000), wallet_with(0)
    before = transfer_count(db_session)
    result = ledger.post_transfer(
        db_session,
        Post(key(), payer, payee, 40_000, "payment", fee_account_id=fees, fee_amount=FEE),
        now=NOW,
    )
    assert transfer_count(db_session) == before + 1
    assert (result.amount, result.fee_account_id, result.fee_amount) == (40_000, fees, FEE)
    assert result.debit_balance_after == 100_000 - 40_000 - FEE
    assert result.credit_balance_after == 40_000
    assert result.fee_balance_after == FEE
    assert posted(db_session, payer, payee, fees) == [100_000 - 40_000 - FEE, 40_000, FEE]
    assert ledger.verify_ledger(db_session).ok
    # Without a fee leg, a result says so.
    plain = ledger.post_transfer(db_session, Post(key(), payee, payer, 1_000, "payment"), now=NOW)
    assert (plain.fee_account_id, plain.fee_amount, plain.fee_balance_after) == (None, None, None)


def test_the_fee_counts_against_what_the_payer_holds(
    db_session: Session, wallet_with: Callable[[int], int], fees: int
) -> None:
    payer, payee = wallet_with(40_000), wallet_with(0)
    db_session.commit()
    before = transfer_count(db_session)
    with pytest.raises(ledger.InsufficientFunds) as raised:
        ledger.post_transfer(
            db_session,
            Post(key(), payer, payee, 40_000, "payment", fee_account_id=fees, fee_amount=1),
            now=NOW,
        )
    assert raised.value.account_id == payer
    db_session.rollback()
    assert transfer_count(db_session) == before
    assert posted(db_session, payer, payee, fees) == [40_000, 0, 0]
    ledger.post_transfer(
        db_session,
        Post(key(), payer, payee, 39_999, "payment", fee_account_id=fees, fee_amount=1),
        now=NOW,
    )
    assert posted(db_session, payer, payee, fees) == [0, 39_999, 1]


def test_a_fee_account_with_a_rule_refuses_a_reversal_it_cannot_pay(
    db_session: Session,
    open_account: Callable[..., int],
    wallet_with: Callable[[int], int],
) -> None:
    """The fee leg's side is checked like any other: a fee account that must not go below zero
    (here a wallet) cannot pay back a fee it has spent, and is the account named."""
    payer, payee, fee_wallet = wallet_with(10_000), wallet_with(0), wallet_with(0)
    paid = ledger.post_transfer(
        db_session,
        Post(key(), payer, payee, 5_000, "payment", fee_account_id=fee_wallet, fee_amount=500),
        now=NOW,
    )
    ledger.post_transfer(db_session, Post(key(), fee_wallet, payee, 500, "spent"), now=NOW)
    db_session.commit()
    with pytest.raises(ledger.InsufficientFunds) as raised:
        ledger.post_transfer(db_session, Reverse(key(), paid.id), now=NOW)
    assert raised.value.account_id == fee_wallet
    db_session.rollback()


def test_a_reversal_gives_the_fee_back_too(
    db_session: Session, wallet_with: Callable[[int], int], fees: int
) -> None:
    payer, payee = wallet_with(100_000), wallet_with(0)
    original = ledger.post_transfer(
        db_session,
        Post(key(), payer, payee, 40_000, "payment", fee_account_id=fees, fee_amount=FEE),
        now=NOW,
    )
    reversal = ledger.post_transfer(db_session, Reverse(key(), original.id), now=NOW)
    assert (reversal.debit_account_id, reversal.credit_account_id) == (payee, payer)
    assert (reversal.fee_account_id, reversal.fee_amount) == (fees, FEE)
    assert reversal.credit_balance_after == 100_000
    assert reversal.debit_balance_after == 0
    assert reversal.fee_balance_after == 0
    assert posted(db_session, payer, payee, fees) == [100_000, 0, 0]
    assert ledger.verify_ledger(db_session).ok

    # Each account's statement reads its own side: the payer paid the amount and the fee and
    # got both back; the fee account got the fee from the payer and gave it back to the payer.
    payer_lines = ledger.statement(db_session, payer).lines
    assert [(line.amount, line.balance_after) for line in payer_lines[:2]] == [
        (40_000 + FEE, 100_000),
        (-(40_000 + FEE), 100_000 - 40_000 - FEE),
    ]
    fee_lines = ledger.statement(db_session, fees).lines
    assert [(line.amount, line.counterparty_account_id) for line in fee_lines] == [
        (-FEE, payer),
        (FEE, payer),
    ]
    assert [line.balance_after for line in fee_lines] == [0, FEE]
    fees_in = ledger.statement(db_session, fees, only=StatementFilter(direction="in"))
    assert [line.transfer_id for line in fees_in.lines] == [original.id]
    fees_out = ledger.statement(db_session, fees, only=StatementFilter(direction="out"))
    assert [line.transfer_id for line in fees_out.lines] == [reversal.id]
    payee_lines = ledger.statement(db_session, payee).lines
    assert [line.amount for line in payee_lines] == [-40_000, 40_000]

    # And as of a time between the two, each balance is what it was then.
    later = NOW + dt.timedelta(minutes=1)
    ledger.post_transfer(
        db_session,
        Post(key(), payer, payee, 1_000, "payment", fee_account_id=fees, fee_amount=FEE),
        now=later,
    )
    assert ledger.balance_as_of(db_session, payer, NOW) == 100_000
    assert ledger.balance_as_of(db_session, fees, NOW) == 0
    assert ledger.balance_as_of(db_session, payer, later) == 100_000 - 1_000 - FEE
    assert ledger.balance_as_of(db_session, fees, later) == FEE


def test_a_fee_leg_is_part_of_the_idempotent_content(
    db_session: Session, wallet_with: Callable[[int], int], fees: int
) -> None:
    payer, payee = wallet_with(100_000), wallet_with(0)
    the_key = key()
    request = Post(the_key, payer, payee, 40_000, "payment", fee_account_id=fees, fee_amount=FEE)
    first = ledger.post_transfer(db_session, request, now=NOW)
    db_session.commit()
    again = ledger.post_transfer(db_session, request, now=NOW)
    assert again.replayed and again.id == first.id
    assert (again.fee_account_id, again.fee_amount, again.fee_balance_after) == (fees, FEE, FEE)
    for changed in (
        Post(the_key, payer, payee, 40_000, "payment", fee_account_id=fees, fee_amount=FEE + 1),
        Post(the_key, payer, payee, 40_000, "payment"),
    ):
        with pytest.raises(ledger.IdempotencyConflict):
            ledger.post_transfer(db_session, changed, now=NOW)
        db_session.rollback()
    plain_key = key()
    ledger.post_transfer(db_session, Post(plain_key, payer, payee, 1_000, "payment"), now=NOW)
    db_session.commit()
    with pytest.raises(ledger.IdempotencyConflict):
        ledger.post_transfer(
            db_session,
            Post(plain_key, payer, payee, 1_000, "payment", fee_account_id=fees, fee_amount=1),
            now=NOW,
        )
    db_session.rollback()
    assert posted(db_session, payer, fees) == [100_000 - 41_000 - FEE, FEE]


@pytest.mark.parametrize(
    ("fee_account", "fee_amount", "message"),
    [
        ("fees", None, "both its account and its amount"),
        (None, 100, "both its account and its amount"),
        ("payer", 100, "two different accounts"),
        ("payee", 100, "an account of its own"),
        ("fees", 0, "fee must be between"),
        ("fees", -5, "fee must be between"),
        ("fees", 10**15 + 1, "fee must be between"),
        ("fees", True, "whole number"),
        ("fees", 1.5, "whole number"),
        (0, 100, "positive integers"),
    ],
)
def test_a_bad_fee_leg_is_refused_before_the_database(
    db_session: Session,
    wallet_with: Callable[[int], int],
    fees: int,
    *,
    fee_account: object,
    fee_amount: object,
    message: str,
) -> None:
    payer, payee = wallet_with(100_000), wallet_with(0)
    named = {"fees": fees, "payer": payer, "payee": payee}
    account = named.get(fee_account, fee_account) if isinstance(fee_account, str) else fee_account
    db_session.commit()
    before = transfer_count(db_session)
    with pytest.raises(ledger.InvalidTransfer, match=message):
        ledger.post_transfer(
            db_session,
            Post(
                key(), payer, payee, 1_000, "payment", fee_account_id=account, fee_amount=fee_amount
            ),  # type: ignore[arg-type]
            now=NOW,
        )
    db_session.rollback()
    assert transfer_count(db_session) == before


def test_a_fee_to_a_missing_account_is_named(
    db_session: Session, wallet_with: Callable[[int], int]
) -> None:
    payer, payee = wallet_with(100_000), wallet_with(0)
    db_session.commit()
    missing = 987_654_321
    with pytest.raises(ledger.AccountNotFound) as raised:
        ledger.post_transfer(
            db_session,
            Post(key(), payer, payee, 1_000, "payment", fee_account_id=missing, fee_amount=10),
            now=NOW,
        )
    assert raised.value.account_id == missing
    db_session.rollback()
    assert posted(db_session, payer, payee) == [100_000, 0]


@pytest.mark.parametrize("size", [1, 2, 3, 12])
def test_fee_legs_in_linked_batches_of_every_size(
    db_session: Session,
    open_account: Callable[..., int],
    wallet_with: Callable[[int], int],
    size: int,
) -> None:
    """Batches of one, a few and many: each way `ledger_apply` orders its sides, with fee legs
    on some transfers (one hot fee account in shards, one plain) and not on others."""
    hot = open_account(AccountKind.FEE_REVENUE, shard_count=4)
    plain_fees = open_account(AccountKind.FEE_REVENUE)
    wallets = [wallet_with(1_000_000) for _ in range(4)]
    batch = []
    for n in range(size):
        payer, payee = wallets[n % 4], wallets[(n + 1) % 4]
        fee_account = (hot, plain_fees, None)[n % 3]
        batch.append(
            Post(
                key(),
                payer,
                payee,
                10_000 + n,
                "payment",
                fee_account_id=fee_account,
                fee_amount=None if fee_account is None else 100 + n,
            )
        )
    results = ledger.post_transfers(db_session, batch, now=NOW)
    expected = {w: 1_000_000 for w in wallets} | {hot: 0, plain_fees: 0}
    for request in batch:
        expected[request.debit_account_id] -= request.amount + (request.fee_amount or 0)
        expected[request.credit_account_id] += request.amount
        if request.fee_account_id is not None:
            expected[request.fee_account_id] += request.fee_amount or 0
    assert {a: ledger.balance(db_session, a, now=NOW).posted for a in expected} == expected
    for request, result in zip(batch, results, strict=True):
        assert (result.fee_account_id, result.fee_amount) == (
            request.fee_account_id,
            request.fee_amount,
        )
    db_session.commit()
    # Reversed in one batch with new payments: the resolutions-and-reversals path.
    reversals = [Reverse(key(), r.id) for r in results if r.fee_account_id is not None]
    again = Post(key(), wallets[0], wallets[1], 5, "payment", fee_account_id=hot, fee_amount=1)
    ledger.post_transfers(db_session, [*reversals, again], now=NOW)
    assert ledger.balance(db_session, hot, now=NOW).posted == 1
    report = ledger.verify_ledger(db_session)
    assert report.ok, report.problems


def test_verification_names_a_broken_link_in_a_fee_chain(
    db_session: Session, wallet_with: Callable[[int], int], fees: int, backend: str
) -> None:
    payer, payee = wallet_with(100_000), wallet_with(0)
    results = [
        ledger.post_transfer(
            db_session,
            Post(key(), payer, payee, 1_000, "payment", fee_account_id=fees, fee_amount=100),
            now=NOW,
        )
        for _ in range(3)
    ]
    assert ledger.verify_ledger(db_session).ok
    disable_append_only(db_session, backend)
    # A smaller fee on the middle transfer, with the fee account's and payer's totals to match.
    db_session.execute(
        update(transfers_table).where(transfers_table.c.id == results[1].id).values(fee_amount=50)
    )
    for account, column in ((fees, "credits_posted"), (payer, "debits_posted")):
        db_session.execute(
            update(balances_table)
            .where(balances_table.c.account_id == account)
            .values({column: balances_table.c[column] - 50})
        )
    report = ledger.verify_ledger(db_session)
    fee_seq = db_session.scalar(select(Transfer.fee_seq).where(Transfer.id == results[1].id))
    assert f"account {fees} shard 0: hash chain broken at seq {fee_seq}" in " ".join(
        report.problems
    )
    assert any(f"account {payer} shard 0: hash chain broken" in p for p in report.problems)


WHOLE_LEG = {"fee_shard": 0, "fee_amount": 5, "fee_seq": 1, "fee_hash": bytes(32)}


@pytest.mark.parametrize(
    "shape",
    [
        {"fee_seq": None, "fee_hash": None},
        {"phase": "pending", "expires_at": NOW},
        {"fee_seq": 0},
    ],
    ids=["leg without its chain", "fee on a reservation", "seq"],
)
def test_a_misshapen_fee_leg_is_refused_or_reported(
    db_session: Session,
    wallet_with: Callable[[int], int],
    fees: int,
    backend: str,
    shape: dict[str, object],
) -> None:
    """SQLite refuses a row whose fee leg is not whole, not on a posted transfer or out of its
    chain; on PostgreSQL, which keeps only the money rule as a constraint, verification names
    it."""
    payer, payee = wallet_with(100_000), wallet_with(0)
    db_session.commit()
    forged_id = uuid.uuid4()
    row = forged_row(payer, payee, id=forged_id, debit_seq=90, credit_seq=90, fee_account_id=fees)
    row |= WHOLE_LEG | {"fee_balance_after": 5} | shape
    if backend == "sqlite":
        with pytest.raises(IntegrityError, match="fee_leg"):
            db_session.execute(transfers_table.insert().values(row))
        db_session.rollback()
        return
    db_session.execute(transfers_table.insert().values(row))
    report = ledger.verify_ledger(db_session)
    problem = f"transfer {forged_id}: its phase, references, sequence numbers, amount, accounts"
    assert problem in " ".join(report.problems)


@pytest.mark.parametrize(
    "leg", [{"fee_amount": 0}, {"fee_account_id": "payer"}, {"fee_account_id": "payee"}]
)
def test_a_fee_leg_is_checked_by_the_database_on_both(
    db_session: Session,
    wallet_with: Callable[[int], int],
    fees: int,
    leg: dict[str, object],
) -> None:
    """The money rule of a fee leg — a positive fee to a third account — is a constraint on
    both databases, as a transfer's own amount and accounts are."""
    payer, payee = wallet_with(100_000), wallet_with(0)
    db_session.commit()
    named = {"payer": payer, "payee": payee}
    row = forged_row(payer, payee, debit_seq=90, credit_seq=90, fee_account_id=fees)
    row |= WHOLE_LEG | {"fee_balance_after": 5}
    row |= {k: named.get(v, v) if isinstance(v, str) else v for k, v in leg.items()}
    with pytest.raises(IntegrityError, match="fee_leg_valid"):
        db_session.execute(transfers_table.insert().values(row))
    db_session.rollback()
