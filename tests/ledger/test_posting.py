"""Posting rules and every error, on SQLite, on PostgreSQL, and the portable path on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import pathlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

import ledger
from ledger import AccountKind, Phase, Post, PostPending, Reserve, Reverse, VoidPending
from ledger.database import make_engine
from ledger.schema import Transfer
from tests.ledger.conftest import NOW

LATER = NOW + dt.timedelta(minutes=20)


def key() -> str:
    return f"k:{uuid.uuid4()}"


def transfer_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Transfer)) or 0


def test_post_moves_money_and_reports_balances(
    db_session: Session, wallet_with: Callable[[int], int]
) -> None:
    alice, bob = wallet_with(500_000), wallet_with(0)
    result = ledger.post_transfer(
        db_session, Post(key(), alice, bob, 200_000, "payment", "chợ phiên"), now=NOW
    )
    assert result.phase == Phase.POSTED and not result.replayed
    assert (result.debit_account_id, result.credit_account_id) == (alice, bob)
    assert result.amount == 200_000
    assert result.debit_balance_after == 300_000
    assert result.credit_balance_after == 200_000
    assert ledger.balance(db_session, alice, now=NOW).available == 300_000
    assert ledger.balance(db_session, bob, now=NOW).posted == 200_000


def test_wallet_cannot_go_below_zero_and_nothing_changes(
    db_session: Session, wallet_with: Callable[[int], int]
) -> None:
    alice, bob = wallet_with(100_000), wallet_with(0)
    db_session.commit()
    before = transfer_count(db_session)
    with pytest.raises(ledger.InsufficientFunds) as raised:
        ledger.post_transfer(db_session, Post(key(), alice, bob, 100_001, "payment"), now=NOW)
    assert raised.value.account_id == alice
    db_session.rollback()
    assert ledger.balance(db_session, alice, now=NOW).posted == 100_000
    assert ledger.balance(db_session, bob, now=NOW).posted == 0
    assert transfer_count(db_session) == before


def test_drawer_cannot_pay_out_more_cash_than_it_holds(
    db_session: Session, open_account: Callable[..., int], wallet_with: Callable[[int], int]
) -> None:
    vault = open_account(AccountKind.DISTRICT_CASH, rule=ledger.BalanceRule())
    drawer = open_account(AccountKind.AGENT_DRAWER)
    wallet = wallet_with(1_000_000)
    # Opening float: cash comes into the drawer, an asset, so the drawer is debited.
    ledger.post_transfer(db_session, Post(key(), drawer, vault, 50_000, "opening_float"), now=NOW)
    assert ledger.balance(db_session, drawer, now=NOW).posted == 50_000
    db_session.commit()
    with pytest.raises(ledger.InsufficientFunds) as raised:
        ledger.post_transfer(db_session, Post(key(), wallet, drawer, 60_000, "payout"), now=NOW)
    assert raised.value.account_id == drawer
    db_session.rollback()
    ledger.post_transfer(db_session, Post(key(), wallet, drawer, 50_000, "payout"), now=NOW)
    assert ledger.balance(db_session, drawer, now=NOW).posted == 0
    assert ledger.balance(db_session, wallet, now=NOW).posted == 950_000


@pytest.mark.parametrize("drawer_first", [True, False])
def test_when_both_sides_break_their_rules_the_debit_side_is_named(
    db_session: Session,
    open_account: Callable[..., int],
    wallet_with: Callable[[int], int],
    drawer_first: bool,
) -> None:
    """A payout beyond both the wallet and the drawer: the wallet is named, whichever id is lower.

    On PostgreSQL a single transfer updates the lower account id first, so with the drawer
    opened first its credit side is the one refused first.
    """
    if drawer_first:
        drawer, wallet = open_account(AccountKind.AGENT_DRAWER), wallet_with(10_000)
    else:
        wallet, drawer = wallet_with(10_000), open_account(AccountKind.AGENT_DRAWER)
    assert (drawer < wallet) == drawer_first
    db_session.commit()
    before = transfer_count(db_session)
    with pytest.raises(ledger.InsufficientFunds) as raised:
        ledger.post_transfer(db_session, Post(key(), wallet, drawer, 60_000, "payout"), now=NOW)
    assert raised.value.account_id == wallet
    db_session.rollback()
    assert ledger.balance(db_session, wallet, now=NOW).posted == 10_000
    assert ledger.balance(db_session, drawer, now=NOW).posted == 0
    assert transfer_count(db_session) == before


@pytest.mark.parametrize("lower_first", [True, False])
def test_a_batch_names_the_refusal_that_comes_first_in_its_order(
    db_session: Session, wallet_with: Callable[[int], int], lower_first: bool
) -> None:
    """Two wallets each pay more than they hold, in one batch: the earlier transfer's is named.

    On PostgreSQL a batch of new transfers updates its accounts in ascending order of id, so
    when the later transfer's wallet has the lower id, it is refused first, yet not named.
    """
    low, high, payee = wallet_with(10_000), wallet_with(10_000), wallet_with(0)
    assert low < high
    first, second = (low, high) if lower_first else (high, low)
    db_session.commit()
    before = transfer_count(db_session)
    batch = [
        Post(key(), payee, first, 1, "payment"),  # the payee holds nothing: the first refusal
        Post(key(), first, payee, 10_001, "payment"),
        Post(key(), second, payee, 10_001, "payment"),
    ]
    with pytest.raises(ledger.InsufficientFunds) as raised:
        ledger.post_transfers(db_session, batch[1:], now=NOW)
    assert raised.value.account_id == first
    db_session.rollback()
    with pytest.raises(ledger.InsufficientFunds) as raised:
        ledger.post_transfers(db_session, batch, now=NOW)
    assert raised.value.account_id == payee
    db_session.rollback()
    assert transfer_count(db_session) == before
    assert [ledger.balance(db_session, w, now=NOW).posted for w in (low, high, payee)] == [
        10_000,
        10_000,
        0,
    ]
    # Within what each holds, the same batch goes through, every balance after in batch order.
    fits = [Post(key(), first, payee, 4_000, "payment"), Post(key(), second, payee, 6_000, "p2")]
    fits += [Post(key(), payee, first, 1_000, "refund"), Post(key(), first, second, 7_000, "p3")]
    results = ledger.post_transfers(db_session, fits, now=NOW)
    assert [(r.debit_balance_after, r.credit_balance_after) for r in results] == [
        (6_000, 4_000),
        (4_000, 10_000),
        (9_000, 7_000),
        (0, 11_000),
    ]


def test_same_key_same_content_returns_the_original_once(
    db_session: Session, wallet_with: Callable[[int], int]
) -> None:
    alice, bob = wallet_with(100_000), wallet_with(0)
    request = Post(key(), alice, bob, 30_000, "payment")
    first = ledger.post_transfer(db_session, request, now=NOW)
    again = ledger.post_transfer(db_session, request, now=LATER)
    assert again.replayed and again.id == first.id and again.created_at == first.created_at
    assert ledger.balance(db_session, alice, now=NOW).posted == 70_000


@pytest.mark.parametrize("size", [2, 3, 4])
@pytest.mark.parametrize("applied", ["first", "last"])
def test_a_batch_with_any_key_applied_before_applies_nothing(
    db_session: Session, wallet_with: Callable[[int], int], size: int, applied: str
) -> None:
    """Batches of two or three probe their keys at once: any key found, and nothing is applied.
    The other keys were never applied, so the answer is a conflict naming the first of them."""
    alice, bob = wallet_with(100_000), wallet_with(0)
    batch = [Post(key(), alice, bob, 1_000 + n, "payment") for n in range(size)]
    earlier = batch[0] if applied == "first" else batch[-1]
    ledger.post_transfer(db_session, earlier, now=NOW)
    before = transfer_count(db_session)
    with pytest.raises(ledger.IdempotencyConflict) as refused:
        ledger.post_transfers(db_session, batch, now=NOW)
    assert refused.value.key == (batch[1] if applied == "first" else batch[0]).key
    assert transfer_count(db_session) == before
    assert ledger.balance(db_session, alice, now=NOW).posted == 100_000 - earlier.amount
    again = ledger.post_transfers(db_session, [earlier], now=NOW)
    assert [r.replayed for r in again] == [True]


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 30_001},
        {"code": "refund"},
        {"memo": "khác"},
        {"swap": True},
    ],
)
def test_same_key_different_content_is_a_conflict(
    db_session: Session, wallet_with: Callable[[int], int], change: dict[str, object]
) -> None:
    alice, bob = wallet_with(100_000), wallet_with(0)
    k = key()
    ledger.post_transfer(db_session, Post(k, alice, bob, 30_000, "payment"), now=NOW)
    fields: dict[str, object] = {
        "key": k,
        "debit_account_id": alice,
        "credit_account_id": bob,
        "amount": 30_000,
        "code": "payment",
    }
    change = dict(change)
    if change.pop("swap", False):
        fields["debit_account_id"], fields["credit_account_id"] = bob, alice
    fields.update(change)
    with pytest.raises(ledger.IdempotencyConflict):
        ledger.post_transfer(db_session, Post(**fields), now=NOW)  # type: ignore[arg-type]


def test_a_key_reused_by_another_kind_of_request_is_a_conflict(
    db_session: Session, wallet_with: Callable[[int], int]
) -> None:
    alice, bob = wallet_with(100_000), wallet_with(0)
    k = key()
    ledger.post_transfer(db_session, Post(k, alice, bob, 30_000, "payment"), now=NOW)
    with pytest.raises(ledger.IdempotencyConflict):
        ledger.post_transfer(db_session, Reserve(k, alice, bob, 30_000, "payment", 60), now=NOW)


def test_reservation_holds_funds_then_posts_once(
    db_session: Session, wallet_with: Callable[[int], int]
) -> None:
    citizen, drawer_side = wallet_with(1_000_000), wallet_with(0)
    pending = ledger.post_transfer(
        db_session, Reserve(key(), citizen, drawer_side, 400_000, "withdrawal", 900), now=NOW
    )
    assert pending.phase == Phase.PENDING
    assert pending.expires_at == NOW + dt.timedelta(seconds=900)
    held = ledger.balance(db_session, citizen, now=NOW)
    assert (held.posted, held.reserved, held.available) == (1_000_000, 400_000, 600_000)
    # The reserved money cannot be spent twice.
    with pytest.raises(ledger.InsufficientFunds):
        ledger.post_transfer(
            db_session, Post(key(), citizen, drawer_side, 600_001, "payment"), now=NOW
        )
    db_session.rollback()


def test_post_pending_then_every_second_resolution_is_refused(
    db_session: Session, wallet_with: Callable[[int], int]
) -> None:
    citizen, other = wallet_with(1_000_000), wallet_with(0)
    pending = ledger.post_transfer(
        db_session, Reserve(key(), citizen, other, 400_000, "withdrawal", 900), now=NOW
    )
    posted = ledger.post_transfer(db_session, PostPending(key(), pending.id), now=NOW)
    assert (posted.debit_account_id, posted.credit_account_id, posted.amount) == (
        citizen,
        other,
        400_000,
    )
    after = ledger.balance(db_session, citizen, now=NOW)
    assert (after.posted, after.reserved) == (600_000, 0)
    assert ledger.resolution_of(db_session, pending.id) == posted
    db_session.commit()
    for second in (PostPending(key(), pending.id), VoidPending(key(), pending.id)):
        with pytest.raises(ledger.PendingAlreadyResolved):
            ledger.post_transfer(db_session, second, now=NOW)
        db_session.rollback()
    assert ledger.balance(db_session, other, now=NOW).posted == 400_000


def test_void_releases_the_reservation(
    db_session: Session, wallet_with: Callable[[int], int]
) -> None:
    citizen, other = wallet_with(100_000), wallet_with(0)
    pending = ledger.post_transfer(
        db_session, Reserve(key(), citizen, other, 100_000, "withdrawal", 900), now=NOW
    )
    ledger.post_transfer(db_session, VoidPending(key(), pending.id, "cancelled"), now=NOW)
    assert ledger.balance(db_session, citizen, now=NOW).available == 100_000
    assert ledger.balance(db_session, other, now=NOW).incoming == 0


def test_expired_reservation_is_not_held_and_cannot_be_posted(
    db_session: Session, wallet_with: Callable[[int], int]
) -> None:
    citizen, other = wallet_with(100_000), wallet_with(0)
    pending = ledger.post_transfer(
        db_session, Reserve(key(), citizen, other, 80_000, "withdrawal", 900), now=NOW
    )
    db_session.commit()
    assert ledger.balance(db_session, citizen, now=NOW).available == 20_000
    # Past the expiry the money is available again, before any sweeper has run.
    assert ledger.balance(db_session, citizen, now=LATER).available == 100_000
    with pytest.raises(ledger.PendingExpired):
        ledger.post_transfer(db_session, PostPending(key(), pending.id), now=LATER)
    db_session.rollback()
    assert ledger.void_expired_reservations(db_session, now=LATER, account_id=citizen) == 1
    assert ledger.void_expired_reservations(db_session, now=LATER, account_id=citizen) == 0
    voided = ledger.resolution_of(db_session, pending.id)
    assert voided is not None and voided.phase == Phase.VOID_PENDING and voided.code == "expired"
    after = ledger.balance(db_session, citizen, now=LATER)
    assert (after.posted, after.reserved, after.debits_pending) == (100_000, 0, 0)


def test_linked_batch_is_all_or_nothing(
    db_session: Session, wallet_with: Callable[[int], int], open_account: Callable[..., int]
) -> None:
    citizen, merchant = wallet_with(100_000), wallet_with(0)
    fees = open_account(AccountKind.FEE_REVENUE)
    db_session.commit()
    before = transfer_count(db_session)
    with pytest.raises(ledger.InsufficientFunds):
        ledger.post_transfers(
            db_session,
            [
                Post(key(), citizen, merchant, 99_000, "payment"),
                Post(key(), citizen, fees, 2_000, "fee"),
            ],
            now=NOW,
        )
    db_session.rollback()
    assert transfer_count(db_session) == before
    assert ledger.balance(db_session, citizen, now=NOW).posted == 100_000
    results = ledger.post_transfers(
        db_session,
        [
            Post(key(), citizen, merchant, 98_000, "payment"),
            Post(key(), citizen, fees, 2_000, "fee"),
        ],
        now=NOW,
    )
    assert results[0].batch_id == results[1].batch_id
    assert results[1].debit_balance_after == 0


def test_reversal_moves_money_back_once(
    db_session: Session, wallet_with: Callable[[int], int]
) -> None:
    alice, bob = wallet_with(100_000), wallet_with(0)
    original = ledger.post_transfer(db_session, Post(key(), alice, bob, 40_000, "payment"), now=NOW)
    reversal = ledger.post_transfer(db_session, Reverse(key(), original.id, memo="nhầm"), now=NOW)
    assert (reversal.debit_account_id, reversal.credit_account_id) == (bob, alice)
    assert reversal.reverses_id == original.id
    assert ledger.balance(db_session, alice, now=NOW).posted == 100_000
    db_session.commit()
    with pytest.raises(ledger.AlreadyReversed):
        ledger.post_transfer(db_session, Reverse(key(), original.id), now=NOW)
    db_session.rollback()


def test_reversal_refusals(db_session: Session, wallet_with: Callable[[int], int]) -> None:
    alice, bob = wallet_with(100_000), wallet_with(0)
    pending = ledger.post_transfer(
        db_session, Reserve(key(), alice, bob, 1_000, "withdrawal", 60), now=NOW
    )
    db_session.commit()
    with pytest.raises(ledger.NotReversible):
        ledger.post_transfer(db_session, Reverse(key(), pending.id), now=NOW)
    db_session.rollback()
    with pytest.raises(ledger.TransferNotFound):
        ledger.post_transfer(db_session, Reverse(key(), uuid.uuid4()), now=NOW)
    db_session.rollback()
    # A reversal that would overdraw the receiver is refused like any other transfer.
    paid = ledger.post_transfer(db_session, Post(key(), alice, bob, 50_000, "payment"), now=NOW)
    ledger.post_transfer(db_session, Post(key(), bob, alice, 50_000, "payment"), now=NOW)
    db_session.commit()
    with pytest.raises(ledger.InsufficientFunds):
        ledger.post_transfer(db_session, Reverse(key(), paid.id), now=NOW)
    db_session.rollback()


def test_unknown_references_are_refused(
    db_session: Session, wallet_with: Callable[[int], int]
) -> None:
    alice = wallet_with(10_000)
    db_session.commit()
    with pytest.raises(ledger.PendingNotFound):
        ledger.post_transfer(db_session, PostPending(key(), uuid.uuid4()), now=NOW)
    db_session.rollback()
    with pytest.raises(ledger.AccountNotFound) as raised:
        ledger.post_transfer(db_session, Post(key(), alice, 987_654_321, 1, "payment"), now=NOW)
    assert raised.value.account_id == 987_654_321
    db_session.rollback()
    # A posted transfer is not a reservation.
    bob = wallet_with(0)
    paid = ledger.post_transfer(db_session, Post(key(), alice, bob, 1, "payment"), now=NOW)
    db_session.commit()
    with pytest.raises(ledger.PendingNotFound):
        ledger.post_transfer(db_session, VoidPending(key(), paid.id), now=NOW)
    db_session.rollback()


@pytest.mark.parametrize(
    ("request_factory", "message"),
    [
        (lambda a, b: Post("", a, b, 1, "payment"), "idempotency key"),
        (lambda a, b: Post("x" * 129, a, b, 1, "payment"), "idempotency key"),
        (lambda a, b: Post("k\n", a, b, 1, "payment"), "printable"),
        (lambda a, b: Post(key(), a, b, 0, "payment"), "amount"),
        (lambda a, b: Post(key(), a, b, -5, "payment"), "amount"),
        (lambda a, b: Post(key(), a, b, 1.5, "payment"), "whole number"),
        (lambda a, b: Post(key(), a, b, True, "payment"), "whole number"),
        (lambda a, b: Post(key(), a, b, 10**15 + 1, "payment"), "amount"),
        (lambda a, b: Post(key(), a, a, 1, "payment"), "two different accounts"),
        (lambda a, b: Post(key(), a, -b, 1, "payment"), "positive integers"),
        (lambda a, b: Post(key(), a, b, 1, "Payment!"), "code"),
        (lambda a, b: Post(key(), a, b, 1, "payment", "m" * 201), "memo"),
        (lambda a, b: Reserve(key(), a, b, 1, "withdrawal", 0), "timeout"),
        (lambda a, b: Reserve(key(), a, b, 1, "withdrawal", 91 * 86_400), "timeout"),
        (lambda a, b: PostPending(key(), "not-a-uuid"), "UUID"),
    ],
)
def test_bad_requests_are_refused_before_touching_the_database(
    db_session: Session,
    wallet_with: Callable[[int], int],
    request_factory: Callable[[int, int], ledger.TransferRequest],
    message: str,
) -> None:
    alice, bob = wallet_with(10_000), wallet_with(0)
    with pytest.raises(ledger.InvalidTransfer, match=message):
        ledger.post_transfer(db_session, request_factory(alice, bob), now=NOW)
    assert ledger.balance(db_session, alice, now=NOW).posted == 10_000


def test_a_batch_cannot_repeat_keys_or_resolve_twice(
    db_session: Session, wallet_with: Callable[[int], int]
) -> None:
    alice, bob = wallet_with(10_000), wallet_with(0)
    k = key()
    with pytest.raises(ledger.InvalidTransfer, match="differ"):
        ledger.post_transfers(
            db_session, [Post(k, alice, bob, 1, "a"), Post(k, alice, bob, 1, "a")], now=NOW
        )
    pending_id = uuid.uuid4()
    with pytest.raises(ledger.InvalidTransfer, match="only once"):
        ledger.post_transfers(
            db_session, [PostPending(key(), pending_id), VoidPending(key(), pending_id)], now=NOW
        )
    with pytest.raises(ledger.InvalidTransfer, match="at least one"):
        ledger.post_transfers(db_session, [], now=NOW)


def test_naive_time_is_a_bug(db_session: Session, wallet_with: Callable[[int], int]) -> None:
    alice, bob = wallet_with(10_000), wallet_with(0)
    with pytest.raises(AssertionError):
        ledger.post_transfer(
            db_session,
            Post(key(), alice, bob, 1, "payment"),
            now=dt.datetime(2026, 1, 1),  # noqa: DTZ001
        )


def test_a_connection_lost_during_a_post_is_replaced_and_nothing_is_kept(
    postgres_engine: Engine,
) -> None:
    """ledger_apply goes through the driver's cursor: SQLAlchemy still learns of a lost link."""
    with Session(postgres_engine, expire_on_commit=False) as session:
        payer, payee = (
            ledger.open_account(
                session, kind=AccountKind.FUNDING, name="lost link", owner_ref=f"lost:{key()}"
            ).id
            for _ in range(2)
        )
        session.commit()
        pid = session.scalar(text("SELECT pg_backend_pid()"))
        with postgres_engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        lost = Post(key(), payer, payee, 5_000, "payment")
        with pytest.raises(OperationalError) as raised:
            ledger.post_transfer(session, lost)
        assert raised.value.connection_invalidated
        assert "batch_id" not in str(raised.value)  # the batch is kept out of messages and logs
        session.rollback()
        # The session carries on with a new connection, and the lost transfer was never kept.
        assert session.scalar(text("SELECT pg_backend_pid()")) != pid
        result = ledger.post_transfer(session, lost)
        session.commit()
        assert not result.replayed
        assert ledger.balance(session, payee).posted == 5_000


# --- commit_transfers: a transaction of its own ---------------------------------------------------


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def committing_engine(request: pytest.FixtureRequest) -> Engine:
    """An engine whose commits are real: commit_transfers commits, so no test rollback undoes it."""
    engine: Engine = request.getfixturevalue(f"{request.param}_engine")
    return engine


def _committed_accounts(engine: Engine, funded: int) -> tuple[int, int, int]:
    """A funding account, a wallet holding `funded` đồng and an empty wallet, all committed."""
    with Session(engine) as session:
        funding, payer, payee = (
            ledger.open_account(session, kind=kind, name=kind, owner_ref=f"commit:{key()}").id
            for kind in [AccountKind.FUNDING] + [AccountKind.CITIZEN_WALLET] * 2
        )
        ledger.post_transfer(session, Post(key(), funding, payer, funded, "funding"))
        session.commit()
    return funding, payer, payee


def test_commit_transfers_commits_and_replays(committing_engine: Engine) -> None:
    _, payer, payee = _committed_accounts(committing_engine, 100_000)
    payment = Post(key(), payer, payee, 30_000, "payment", "chợ phiên")
    result = ledger.commit_transfer(committing_engine, payment)
    assert not result.replayed and result.debit_balance_after == 70_000
    with Session(committing_engine) as other:  # committed: another session sees it at once
        assert ledger.balance(other, payee).posted == 30_000
    again = ledger.commit_transfer(committing_engine, payment)
    assert again.replayed and again.id == result.id and again.created_at == result.created_at
    with pytest.raises(ledger.IdempotencyConflict):
        reused = Post(payment.key, payer, payee, 30_001, "payment")
        ledger.commit_transfer(committing_engine, reused)
    with Session(committing_engine) as other:
        assert ledger.balance(other, payer).posted == 70_000


def test_commit_transfers_is_all_or_nothing_and_leaves_nothing(committing_engine: Engine) -> None:
    funding, payer, payee = _committed_accounts(committing_engine, 100_000)
    with Session(committing_engine) as session:
        fees = ledger.open_account(
            session, kind=AccountKind.FEE_REVENUE, name="fees", owner_ref=f"commit:{key()}"
        ).id
        session.commit()
        before = transfer_count(session)
    refused = [Post(key(), payer, payee, 99_000, "payment"), Post(key(), payer, fees, 2_000, "fee")]
    with pytest.raises(ledger.InsufficientFunds) as raised:
        ledger.commit_transfers(committing_engine, refused)
    assert raised.value.account_id == payer
    with pytest.raises(ledger.AccountNotFound):
        ledger.commit_transfer(committing_engine, Post(key(), funding, 10**12, 1, "funding"))
    with Session(committing_engine) as session:
        assert transfer_count(session) == before
        assert ledger.balance(session, payer).posted == 100_000
    # The same keys are free: nothing of the refused batch was kept.
    cheaper = [Post(refused[0].key, payer, payee, 98_000, "payment"), refused[1]]
    results = ledger.commit_transfers(committing_engine, cheaper)
    assert results[0].batch_id == results[1].batch_id and results[1].debit_balance_after == 0


@pytest.fixture
def one_connection_engine(postgres_url: str) -> Iterator[Engine]:
    """A PostgreSQL engine whose pool holds one connection: every user gets the same one.

    No ping at checkout (make_engine's default sends one, a round trip of its own), so that
    what is on the wire is ledger's alone.
    """
    engine = make_engine(postgres_url, pool_size=1, max_overflow=0, pool_pre_ping=False)
    yield engine
    engine.dispose()


def _sent_by_client(trace: pathlib.Path) -> list[str]:
    """The messages the client sent, from libpq's protocol trace: a line holds a timestamp, the
    direction (F: from the client), the length, the message type and its contents."""
    lines = [line.split("\t") for line in trace.read_text().splitlines()]
    return [fields[fields.index("F") + 2] for fields in lines if "F" in fields]


@pytest.mark.postgres
def test_commit_transfers_is_one_round_trip_on_postgresql(
    one_connection_engine: Engine, tmp_path: pathlib.Path
) -> None:
    """No BEGIN and no COMMIT go over the wire: the one call is the whole transaction.

    libpq's protocol trace of the pooled connection shows what the client sent: one Sync (the
    end of one extended-protocol exchange) and no simple Query. The connection's first call
    also prepares the statement, and so does the first after psycopg deallocated it.
    """
    engine = one_connection_engine
    _, payer, payee = _committed_accounts(engine, 10_000)
    with engine.connect() as connection:
        driver: Any = connection.connection.dbapi_connection
    for round_trips in (3, 1, 1, "deallocated", 3, 1):
        if round_trips == "deallocated":
            with engine.connect() as connection:
                connection.exec_driver_sql("DEALLOCATE ALL")
            continue
        trace = tmp_path / f"libpq.{round_trips}.trace"
        with trace.open("w") as sink:
            driver.pgconn.trace(sink.fileno())
            result = ledger.commit_transfer(engine, Post(key(), payer, payee, 1_000, "payment"))
            driver.pgconn.untrace()
        sent = _sent_by_client(trace)
        # The statement refused for want of preparing, Parse of it, then the call itself.
        assert sent.count("Sync") == round_trips and "Query" not in sent, sent
        with Session(engine) as session:  # and it was committed
            assert session.get(Transfer, result.id) is not None
    with Session(engine) as session:
        assert ledger.balance(session, payee).posted == 5_000


@pytest.mark.postgres
def test_ledger_apply_probes_the_key_index_without_statistics(
    unanalysed_postgres_url: str,
) -> None:
    """A connection keeps ledger_apply's plans for its life, and a database without statistics
    (new, or with autovacuum off) is where a plan goes wrong: every replay probe must look the
    keys up in their unique index there too, whatever the size of the batch. auto_explain
    reports the plan of every statement ledger_apply runs; the sixth call of each size runs
    the plans PostgreSQL keeps (generic ones, after five custom)."""
    engine = make_engine(unanalysed_postgres_url, pool_size=1, max_overflow=0, pool_pre_ping=False)
    plans: list[str] = []
    try:
        with engine.connect() as connection:
            driver: Any = connection.connection.dbapi_connection
            try:
                connection.exec_driver_sql("LOAD 'auto_explain'")
            except DBAPIError as missing:
                pytest.fail(f"auto_explain is needed to read ledger_apply's plans: {missing}")
            for setting in (
                "auto_explain.log_min_duration = 0",
                "auto_explain.log_nested_statements = on",
                "auto_explain.log_level = notice",
                "client_min_messages = notice",
            ):
                connection.exec_driver_sql(f"SET {setting}")
            connection.commit()
            driver.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
        _, payer, payee = _committed_accounts(engine, 1_000_000)
        for size in (1, 2, 3, 4):
            for _ in range(6):
                ledger.commit_transfers(
                    engine, [Post(key(), payer, payee, 1_000, "payment") for _ in range(size)]
                )
    finally:
        engine.dispose()
    probes = [plan for plan in plans if "idempotency_key" in plan]
    assert len(probes) >= 4 * 6, "auto_explain reported no replay probe"
    assert not [plan for plan in probes if "Seq Scan on transfers" in plan], probes


@pytest.mark.postgres
def test_commit_transfers_hands_its_connection_back_outside_autocommit(
    one_connection_engine: Engine,
) -> None:
    """The next user of the connection gets transactions again: its rollback undoes its work."""
    engine = one_connection_engine
    _, payer, payee = _committed_accounts(engine, 10_000)
    ledger.commit_transfer(engine, Post(key(), payer, payee, 1_000, "payment"))
    with pytest.raises(ledger.InsufficientFunds):
        ledger.commit_transfer(engine, Post(key(), payer, payee, 10_000, "payment"))
    with Session(engine) as session:
        ledger.post_transfer(session, Post(key(), payer, payee, 9_000, "payment"))
        session.rollback()
    with Session(engine) as session:
        assert ledger.balance(session, payee).posted == 1_000


@pytest.mark.postgres
def test_posts_in_a_session_belong_to_its_transaction(
    one_connection_engine: Engine, tmp_path: pathlib.Path
) -> None:
    """The first call of a transaction has BEGIN sent before it; later calls go straight in.

    ledger_apply is called on libpq's handle, past psycopg, except as the first statement of a
    transaction: psycopg then sends the BEGIN it owes the server. Either way the session's
    rollback undoes the posts.
    """
    engine = one_connection_engine
    _, payer, payee = _committed_accounts(engine, 10_000)
    trace = tmp_path / "libpq.trace"
    with Session(engine) as session:
        driver: Any = session.connection().connection.dbapi_connection
        with trace.open("w") as sink:
            driver.pgconn.trace(sink.fileno())
            ledger.post_transfer(session, Post(key(), payer, payee, 1_000, "payment"))
            ledger.post_transfer(session, Post(key(), payer, payee, 2_000, "payment"))
            driver.pgconn.untrace()
        session.rollback()
    sent = _sent_by_client(trace)
    begins = [
        line for line in trace.read_text().splitlines() if "\tF\t" in line and '"BEGIN' in line
    ]
    assert len(begins) == 1 and sent.count("Sync") == 2, sent
    with Session(engine) as session:
        assert ledger.balance(session, payee).posted == 0


@pytest.mark.postgres
def test_commit_transfers_commits_nothing_a_connection_was_left_holding(postgres_url: str) -> None:
    """A pool that does not reset its connections can hand out one inside a transaction; the
    call then rolls that back first, so that it commits its own transfers and nothing else."""
    engine = make_engine(
        postgres_url, pool_size=1, max_overflow=0, pool_reset_on_return=None, pool_pre_ping=False
    )
    try:
        _, payer, payee = _committed_accounts(engine, 10_000)
        leaked = engine.raw_connection()
        cursor = leaked.cursor()
        cursor.execute("UPDATE accounts SET name = 'leaked' WHERE id = %s", (payee,))
        cursor.close()
        leaked.close()  # back to the pool inside its transaction
        ledger.commit_transfer(engine, Post(key(), payer, payee, 1_000, "payment"))
        with Session(engine) as other:
            assert ledger.balance(other, payee).posted == 1_000
            assert other.get(ledger.Account, payee).name != "leaked"  # type: ignore[union-attr]
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_commit_transfers_leaves_an_autocommit_engine_in_autocommit(postgres_url: str) -> None:
    engine = make_engine(postgres_url, pool_size=1, max_overflow=0, isolation_level="AUTOCOMMIT")
    try:
        _, payer, payee = _committed_accounts(engine, 10_000)
        ledger.commit_transfer(engine, Post(key(), payer, payee, 1_000, "payment"))
        with engine.connect() as connection:
            driver: Any = connection.connection.dbapi_connection
            assert driver.autocommit
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_connection_lost_during_commit_transfers_is_replaced_and_nothing_is_kept(
    one_connection_engine: Engine,
) -> None:
    engine = one_connection_engine
    _, payer, payee = _committed_accounts(engine, 10_000)
    with engine.connect() as connection:
        pid = connection.scalar(text("SELECT pg_backend_pid()"))
    # Another connection ends the pooled one's backend, as a server restart or a network cut would.
    admin = make_engine(engine.url.render_as_string(hide_password=False), poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()
    lost = Post(key(), payer, payee, 5_000, "payment")
    with pytest.raises(OperationalError) as raised:
        ledger.commit_transfer(engine, lost)
    assert raised.value.connection_invalidated
    assert "batch_id" not in str(raised.value)
    with Session(engine) as session:
        assert session.scalar(text("SELECT pg_backend_pid()")) != pid
        assert ledger.balance(session, payee).posted == 0
    assert not ledger.commit_transfer(engine, lost).replayed
