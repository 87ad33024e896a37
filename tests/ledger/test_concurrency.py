"""Concurrency on PostgreSQL: many threads, each with its own session, committing every call.

Each test runs on three paths: `post_transfers` in a session on the `ledger_apply` function, the
same on the portable code, and `commit_transfers` (ledger_apply outside a transaction, one of its
own per call). Threads start together at a `threading.Barrier`; a test whose threads do not all
finish within HANG_TIMEOUT_S fails (a deadlock that PostgreSQL does not detect), and one that
PostgreSQL detects raises in its thread and fails the test too. After each test the whole
ledger must verify.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

import ledger
from ledger import AccountKind, Phase, Post, PostPending, Reserve, Reverse, VoidPending
from ledger.schema import OpenReservation, Transfer

pytestmark = pytest.mark.postgres

T = TypeVar("T")

HANG_TIMEOUT_S = 120
THREADS = 16
FEE = 1_000
# Reservations expire TIMEOUT_S after T0; the sweepers look at the clock SWEEP_AT.
T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
TIMEOUT_S = 60
SWEEP_AT = T0 + dt.timedelta(seconds=2 * TIMEOUT_S)


@pytest.fixture(params=["ledger_apply", "portable", "commit_transfers"])
def path(request: pytest.FixtureRequest) -> str:
    """Which implementation posts: the PL/pgSQL function in the caller's transaction, the
    portable Python code, or the PL/pgSQL function as a transaction of its own."""
    name: str = request.param
    return name


@pytest.fixture(autouse=True)
def ledger_verifies_afterwards(postgres_engine: Engine) -> Iterator[None]:
    yield
    with Session(postgres_engine) as session:
        report = ledger.verify_ledger(session)
    assert report.ok, report.problems


@dataclass
class Ledger:
    """A test's handle on the shared database: sessions on its path, and its own accounts."""

    engine: Engine
    path: str
    tag: str

    def session(self) -> Session:
        session = Session(self.engine, expire_on_commit=False)
        if self.path == "portable":
            session.info["ledger_backend"] = "portable"
        return session

    def key(self, *parts: object) -> str:
        return ":".join(["conc", self.tag, *map(str, parts)])

    def open(self, kind: AccountKind, *, shard_count: int = 1) -> int:
        with self.session() as session:
            owner = self.key("owner", uuid.uuid4().hex[:8])
            account = ledger.open_account(
                session, kind=kind, name=owner, owner_ref=owner, shard_count=shard_count, now=T0
            )
            session.commit()
            return account.id

    def post(
        self, requests: list[ledger.TransferRequest], *, now: dt.datetime = T0
    ) -> list[ledger.TransferResult]:
        """One call, one commit; on a ledger error the transaction is rolled back and it raises."""
        if self.path == "commit_transfers":
            return ledger.commit_transfers(self.engine, requests, now=now)
        with self.session() as session:
            try:
                results = ledger.post_transfers(session, requests, now=now)
            except ledger.LedgerError:
                session.rollback()
                raise
            session.commit()
            return results

    def wallets(self, count: int, amount: int) -> list[int]:
        funding = self.open(AccountKind.FUNDING)
        wallets = [self.open(AccountKind.CITIZEN_WALLET) for _ in range(count)]
        if amount:
            self.post([Post(self.key("fund", w), funding, w, amount, "funding") for w in wallets])
        return wallets

    def balance(self, account_id: int) -> ledger.Balance:
        with self.session() as session:
            return ledger.balance(session, account_id, now=T0)

    def transfers_with_keys(self, prefix: str) -> list[Transfer]:
        with self.session() as session:
            return list(
                session.scalars(
                    select(Transfer).where(Transfer.idempotency_key.startswith(self.key(prefix)))
                )
            )


@pytest.fixture
def book(postgres_engine: Engine, path: str) -> Ledger:
    return Ledger(postgres_engine, path, uuid.uuid4().hex[:12])


def run_together(count: int, work: Callable[[int, threading.Barrier], T]) -> list[T]:
    """Run work(i, barrier) on `count` threads released together; return results in order.

    Work may wait on the barrier again to start rounds together. An exception in any thread
    breaks the barrier for the others and is raised here; threads still running after
    HANG_TIMEOUT_S fail the test.
    """
    barrier = threading.Barrier(count)
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def main(index: int) -> None:
        try:
            barrier.wait(timeout=HANG_TIMEOUT_S)
            results[index] = work(index, barrier)
        except BaseException as error:
            errors.append(error)
            barrier.abort()

    threads = [
        threading.Thread(target=main, args=(i,), name=f"ledger-{i}", daemon=True)
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + HANG_TIMEOUT_S
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"still running after {HANG_TIMEOUT_S}s, deadlocked? {stuck}"
    real = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
    if real or errors:
        raise (real or errors)[0]
    return [results[i] for i in range(count)]


# --- (a) Many transfers between shared wallets ----------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    debit: int
    credit: int
    amount: int
    key: str
    applied: bool


def test_concurrent_transfers_never_overdraw_and_add_up(book: Ledger) -> None:
    """16 threads pay each other at once: no wallet below zero, totals = the applied payments.

    Each payment is a linked batch with a fee to a sharded account; every tenth one asks for
    more money than exists and must be refused whatever the interleaving.
    """
    start = 1_000_000
    wallets = book.wallets(6, start)
    fees = book.open(AccountKind.FEE_REVENUE, shard_count=4)
    impossible = start * len(wallets) + 1

    def pay(thread: int, _barrier: threading.Barrier) -> list[Attempt]:
        rng = random.Random(thread)
        attempts = []
        for n in range(40):
            debit, credit = rng.sample(wallets, 2)
            amount = impossible if n % 10 == 9 else rng.randint(1, 300_000)
            key = book.key("pay", thread, n)
            try:
                book.post(
                    [
                        Post(key, debit, credit, amount, "payment"),
                        Post(key + ":fee", debit, fees, FEE, "fee"),
                    ]
                )
                applied = True
            except ledger.InsufficientFunds as refused:
                assert refused.account_id == debit
                applied = False
            attempts.append(Attempt(debit, credit, amount, key, applied))
        return attempts

    attempts = [a for batch in run_together(THREADS, pay) for a in batch]
    applied = [a for a in attempts if a.applied]
    assert not [a for a in applied if a.amount == impossible]
    for wallet in wallets:
        expected = (
            start
            + sum(a.amount for a in applied if a.credit == wallet)
            - sum(a.amount + FEE for a in applied if a.debit == wallet)
        )
        held = book.balance(wallet)
        assert (held.posted, held.available, held.debits_pending) == (expected, expected, 0)
        assert held.posted >= 0
    assert book.balance(fees).posted == FEE * len(applied)
    # Exactly the applied batches were written, and no wallet was ever below zero in between.
    written = book.transfers_with_keys("pay")
    assert sorted(t.idempotency_key for t in written) == sorted(
        k for a in applied for k in (a.key, a.key + ":fee")
    )
    assert all(t.debit_balance_after >= 0 for t in written)


# --- (b) Racing to post and void the same reservation ---------------------------------------------


def test_racing_post_and_void_resolve_each_reservation_once(book: Ledger) -> None:
    """8 threads post or void the same reservation at once, 50 times: one wins each time."""
    threads, count, amount = 8, 50, 10_000
    (citizen,) = book.wallets(1, count * amount)
    (drawer_side,) = book.wallets(1, 0)
    pending = [
        r.id
        for r in book.post(
            [
                Reserve(book.key("hold", n), citizen, drawer_side, amount, "withdrawal", 900)
                for n in range(count)
            ]
        )
    ]

    def resolve(thread: int, barrier: threading.Barrier) -> list[Phase | None]:
        kind = PostPending if thread % 2 == 0 else VoidPending
        won: list[Phase | None] = []
        for n, pending_id in enumerate(pending):
            barrier.wait(timeout=HANG_TIMEOUT_S)
            try:
                (result,) = book.post([kind(book.key("resolve", thread, n), pending_id)])
                won.append(result.phase)
            except ledger.PendingAlreadyResolved as refused:
                assert refused.pending_id == pending_id
                won.append(None)
        return won

    by_thread = run_together(threads, resolve)
    winners = [
        [phase for phase in rounds if phase is not None] for rounds in zip(*by_thread, strict=True)
    ]
    assert all(len(w) == 1 for w in winners), "a reservation resolved twice or not at all"
    with book.session() as session:
        stored = {
            row.pending_id: Phase(row.phase)
            for row in session.execute(
                select(Transfer.pending_id, Transfer.phase).where(Transfer.pending_id.in_(pending))
            )
        }
        still_open = session.scalar(
            select(func.count())
            .select_from(OpenReservation)
            .where(OpenReservation.pending_id.in_(pending))
        )
    assert stored == {pending_id: w[0] for pending_id, w in zip(pending, winners, strict=True)}
    assert still_open == 0
    posted = sum(amount for w in winners if w[0] == Phase.POST_PENDING)
    held = book.balance(citizen)
    assert (held.posted, held.reserved, held.debits_pending) == (count * amount - posted, 0, 0)
    assert book.balance(drawer_side).posted == posted


# --- (c) One idempotency key, many callers --------------------------------------------------------

ROUNDS = 20


@pytest.mark.parametrize("size", [1, 2, 3])
@pytest.mark.parametrize("between", ["wallets", "sharded accounts"])
def test_same_key_same_content_applies_once_and_replays(
    book: Ledger, path: str, between: str, size: int, request: pytest.FixtureRequest
) -> None:
    """16 callers send one batch at once: one applies it, the others get it back replayed.
    (A batch of one or two locks its keys without a query, of two or three probes them with
    one: see migration 0014.)"""
    if between == "wallets":
        (payer,), (payee,) = book.wallets(1, ROUNDS * 1_000 * size), book.wallets(1, 0)
    else:
        payer = book.open(AccountKind.SETTLEMENT, shard_count=4)
        payee = book.open(AccountKind.FEE_REVENUE, shard_count=4)

    def send(_thread: int, barrier: threading.Barrier) -> list[tuple[ledger.TransferResult, ...]]:
        answers = []
        for n in range(ROUNDS):
            batch = [
                Post(book.key("same", n, i), payer, payee, 1_000, "payment") for i in range(size)
            ]
            barrier.wait(timeout=HANG_TIMEOUT_S)
            answers.append(tuple(book.post(batch)))
        return answers

    by_round = list(zip(*run_together(THREADS, send), strict=True))
    for answers in by_round:
        assert len({tuple(a.id for a in batch) for batch in answers}) == 1
        assert sum(not batch[0].replayed for batch in answers) == 1
        assert all(len({a.replayed for a in batch}) == 1 for batch in answers)
    assert len(book.transfers_with_keys("same")) == ROUNDS * size
    assert book.balance(payee).posted == ROUNDS * 1_000 * size


def test_same_key_different_content_one_wins_the_rest_conflict(
    book: Ledger, path: str, request: pytest.FixtureRequest
) -> None:
    """16 callers send different amounts under one key at once: one applies, 15 conflict."""
    (payer,), (payee,) = book.wallets(1, ROUNDS * 1_000 * THREADS), book.wallets(1, 0)

    def send(thread: int, barrier: threading.Barrier) -> list[int | None]:
        amounts: list[int | None] = []
        for n in range(ROUNDS):
            barrier.wait(timeout=HANG_TIMEOUT_S)
            amount = 1_000 + thread
            key = book.key("differ", n)
            try:
                (answer,) = book.post([Post(key, payer, payee, amount, "payment")])
            except ledger.IdempotencyConflict as refused:
                assert refused.key == key
                amounts.append(None)
            else:
                assert not answer.replayed and answer.amount == amount
                amounts.append(amount)
        return amounts

    by_round = [list(r) for r in zip(*run_together(THREADS, send), strict=True)]
    winners = [[a for a in amounts if a is not None] for amounts in by_round]
    assert all(len(w) == 1 for w in winners)
    stored = {t.idempotency_key: t.amount for t in book.transfers_with_keys("differ")}
    assert stored == {book.key("differ", n): w[0] for n, w in enumerate(winners)}
    assert book.balance(payee).posted == sum(w[0] for w in winners)


# --- (d) Sweepers and posters on the same reservations --------------------------------------------


def test_sweepers_and_posters_resolve_each_reservation_once(book: Ledger) -> None:
    """4 sweepers void expired reservations while 4 tellers post or void the same ones."""
    count, amount, sweepers = 60, 5_000, 4
    (citizen,) = book.wallets(1, count * amount)
    (merchant,) = book.wallets(1, 0)
    pending = [
        r.id
        for r in book.post(
            [
                Reserve(book.key("hold", n), citizen, merchant, amount, "withdrawal", TIMEOUT_S)
                for n in range(count)
            ]
        )
    ]

    def sweep() -> int:
        swept = 0
        while True:
            with book.session() as session:
                voided = ledger.void_expired_reservations(
                    session, now=SWEEP_AT, limit=5, account_id=citizen
                )
                session.commit()
            if voided == 0:
                return swept
            swept += voided

    def teller(thread: int) -> int:
        """Tellers still see the reservations as valid: their clock says T0."""
        order = list(pending)
        random.Random(thread).shuffle(order)
        resolved = 0
        for n, pending_id in enumerate(order):
            kind = PostPending if n % 3 else VoidPending
            try:
                book.post([kind(book.key("teller", thread, n), pending_id)], now=T0)
                resolved += 1
            except ledger.PendingAlreadyResolved:
                pass
        return resolved

    def work(thread: int, _barrier: threading.Barrier) -> int:
        return sweep() if thread < sweepers else teller(thread)

    counts = run_together(2 * sweepers, work)
    swept, by_tellers = sum(counts[:sweepers]), sum(counts[sweepers:])
    assert swept + by_tellers == count
    with book.session() as session:
        resolutions = session.execute(
            select(
                Transfer.pending_id, Transfer.phase, Transfer.code, Transfer.idempotency_key
            ).where(Transfer.pending_id.in_(pending))
        ).all()
        still_open = session.scalar(
            select(func.count())
            .select_from(OpenReservation)
            .where(OpenReservation.pending_id.in_(pending))
        )
    assert still_open == 0
    assert Counter(r.pending_id for r in resolutions) == Counter(pending)
    expired = [r for r in resolutions if r.code == "expired"]
    assert len(expired) == swept
    assert all(r.idempotency_key == f"expire:{r.pending_id}" for r in expired)
    posted = amount * sum(r.phase == Phase.POST_PENDING for r in resolutions)
    held = book.balance(citizen)
    assert (held.posted, held.debits_pending) == (count * amount - posted, 0)
    assert book.balance(merchant).posted == posted


# --- (e) No deadlocks -----------------------------------------------------------------------------


def test_opposite_directions_and_overlapping_batches_never_deadlock(book: Ledger) -> None:
    """Transfers both ways between one pair, and batches over shared accounts in any order."""
    start, amount = 10**9, 1_000
    wallets = book.wallets(5, start)
    fees = book.open(AccountKind.FEE_REVENUE, shard_count=4)
    pair = wallets[:2]

    def work(thread: int, _barrier: threading.Barrier) -> list[tuple[int, int, int]]:
        """Even threads go back and forth on one pair; odd ones chain four wallets at random."""
        rng = random.Random(thread)
        done = []
        for n in range(30):
            if thread % 2 == 0:
                debit, credit = pair if (thread // 2 + n) % 2 == 0 else pair[::-1]
                legs = [(debit, credit, amount)]
            else:
                order = rng.sample(wallets, 4)
                legs = [(a, b, amount) for a, b in itertools.pairwise(order)]
                legs.append((order[-1], fees, FEE))
            book.post(
                [
                    Post(book.key("mix", thread, n, i), d, c, x, "payment")
                    for i, (d, c, x) in enumerate(legs)
                ]
            )
            done.extend(legs)
        return done

    moves = [m for legs in run_together(THREADS, work) for m in legs]
    for wallet in wallets:
        expected = (
            start
            + sum(x for _, c, x in moves if c == wallet)
            - sum(x for d, _, x in moves if d == wallet)
        )
        assert book.balance(wallet).posted == expected
    assert book.balance(fees).posted == sum(x for _, c, x in moves if c == fees)


def test_batches_resolving_overlapping_reservations_never_deadlock(book: Ledger) -> None:
    """Batches post reservations in opposite orders: no deadlock, each resolved at most once."""
    count, amount = 24, 1_000
    (citizen,) = book.wallets(1, count * amount)
    (merchant,) = book.wallets(1, 0)
    pending = [
        r.id
        for r in book.post(
            [
                Reserve(book.key("hold", n), citizen, merchant, amount, "withdrawal", 900)
                for n in range(count)
            ]
        )
    ]

    def work(thread: int, _barrier: threading.Barrier) -> list[uuid.UUID]:
        rng = random.Random(thread)
        won = []
        for n in range(12):
            chosen = rng.sample(pending, 3)
            try:
                book.post(
                    [
                        PostPending(book.key("both", thread, n, i), pending_id)
                        for i, pending_id in enumerate(chosen)
                    ]
                )
                won.extend(chosen)
            except ledger.PendingAlreadyResolved as refused:
                assert refused.pending_id in chosen
        return won

    won = [p for batch in run_together(THREADS, work) for p in batch]
    assert len(won) == len(set(won)), "a reservation was posted twice"
    with book.session() as session:
        resolved = set(
            session.scalars(select(Transfer.pending_id).where(Transfer.pending_id.in_(pending)))
        )
    assert resolved == set(won)
    assert book.balance(merchant).posted == amount * len(won)
    assert book.balance(citizen).posted == amount * (count - len(won))


# --- Reversals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payee_float",
    # Plenty: a second reversal could only be refused as a reversal. None: the payee can afford
    # each reversal once, so a loser must still hear "already reversed", not "insufficient
    # funds" (the check is made under the accounts' locks).
    [10**8, 0],
)
def test_racing_reversals_reverse_once(book: Ledger, path: str, payee_float: int) -> None:
    """16 clerks reverse the same payment at once, 20 times: one reversal each, the rest refused."""
    (payer,), (payee,) = book.wallets(1, 10**9), book.wallets(1, 0)
    if payee_float:
        book.post([Post(book.key("float"), payer, payee, payee_float, "payment")])
    payments = [
        r.id
        for r in book.post(
            [Post(book.key("paid", n), payer, payee, 1_000, "payment") for n in range(ROUNDS)]
        )
    ]

    def reverse(thread: int, barrier: threading.Barrier) -> list[bool]:
        won = []
        for n, payment in enumerate(payments):
            barrier.wait(timeout=HANG_TIMEOUT_S)
            try:
                book.post([Reverse(book.key("undo", thread, n), payment)])
                won.append(True)
            except ledger.AlreadyReversed as refused:
                assert refused.transfer_id == payment
                won.append(False)
        return won

    by_round = list(zip(*run_together(THREADS, reverse), strict=True))
    assert all(sum(r) == 1 for r in by_round)
    assert book.balance(payee).posted == payee_float
    assert book.balance(payer).posted == 10**9 - payee_float


# --- A writer that has not committed yet ----------------------------------------------------------


def _wait_for_a_lock_wait(engine: Engine) -> None:
    """Return once some backend of this database waits for a lock (the batch, on the writer)."""
    deadline = time.monotonic() + HANG_TIMEOUT_S
    with engine.connect() as probe:
        while time.monotonic() < deadline:
            waiting = probe.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            probe.rollback()
            if waiting:
                return
            time.sleep(0.02)
    pytest.fail("the batch never waited for the open writer")


def test_a_batch_checks_each_side_on_the_row_it_holds_locked(
    book: Ledger, postgres_engine: Engine
) -> None:
    """A side refused on a row that an open writer is crediting waits for that writer.

    Three wallets pay one account, each in turn, in one batch; an open transaction credits the
    two empty ones and the other. The batch's first side to meet the writer must wait for it
    and see its commit, like every later side: then everybody can pay and the batch goes
    through. (Checked on the row as its snapshot saw it, the empty wallet was refused at once,
    while a later side waited and saw the writer's money: no order of the two gives that.)
    """
    payee = book.open(AccountKind.FUNDING)  # the lowest id: its sides are updated first
    empty, full, also_empty = (book.open(AccountKind.CITIZEN_WALLET) for _ in range(3))
    source = book.open(AccountKind.FUNDING)
    book.post([Post(book.key("fund"), source, full, 1_000, "funding")])
    outcome: dict[str, object] = {}

    def pay() -> None:
        try:
            outcome["results"] = book.post(
                [
                    Post(book.key("pay", 1), full, payee, 1, "payment"),
                    Post(book.key("pay", 2), also_empty, payee, 100, "payment"),
                    Post(book.key("pay", 3), empty, payee, 100, "payment"),
                ]
            )
        except ledger.LedgerError as error:
            outcome["error"] = error

    with Session(postgres_engine) as writer:
        ledger.post_transfers(
            writer,
            [
                Post(book.key("credit", w), source, w, amount, "funding")
                for w, amount in ((empty, 100), (also_empty, 100), (full, 1))
            ],
            now=T0,
        )
        payer = threading.Thread(target=pay, daemon=True)
        payer.start()
        _wait_for_a_lock_wait(postgres_engine)
        writer.commit()
    payer.join(HANG_TIMEOUT_S)
    assert not payer.is_alive()
    assert "error" not in outcome, outcome
    assert [book.balance(w).posted for w in (empty, full, also_empty)] == [0, 1_000, 0]
