"""Stateful property tests: random sequences of ledger operations keep every invariant.

A Hypothesis state machine drives the public API the way the kiosk and the agents do: it opens
accounts (wallets, drawers, funding, a sharded fee account), posts transfers (some of which must
fail for insufficient funds), reserves money with timeouts, posts and voids reservations (also ones
already resolved), lets a model clock run past expiries and sweeps them, reverses transfers,
replays idempotency keys with the same and with different content, and applies linked batches in
which one leg must fail. A plain Python model predicts the outcome of every call — the new totals,
or the error — and after every step the ledger must agree with it.

It runs on SQLite, on PostgreSQL through `ledger_apply`, and on the portable path on PostgreSQL.
Under CI=true each backend runs 500 examples, otherwise 60; LEDGER_PROPERTY_EXAMPLES overrides.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import os
import shutil
import sqlite3
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, bindparam, event, func, select
from sqlalchemy.orm import Session, aliased

import ledger
from ledger import (
    AccountKind,
    BalanceRule,
    Phase,
    Post,
    PostPending,
    Reserve,
    Reverse,
    TransferRequest,
    TransferResult,
    VoidPending,
    posting,
)
from ledger.database import make_engine
from ledger.schema import AccountBalance, OpenReservation, Transfer
from tests.ledger.conftest import NOW


def _examples() -> int:
    override = os.environ.get("LEDGER_PROPERTY_EXAMPLES")
    if override:
        return int(override)
    return 500 if os.environ.get("CI") == "true" else 60


SETTINGS = settings(max_examples=_examples(), stateful_step_count=20, deadline=None)


class ExampleTransferIds:
    """Transfer ids that sort the same way each time Hypothesis replays an example.

    The ledger's ids carry random bits below the millisecond, so two transfers made at the same
    model time would sort in a random order, and the sweeper, which voids the lowest ids first,
    would void different reservations on a replay: Hypothesis refuses such a test as flaky. Here
    the bits below the millisecond are a counter, then a salt of the example's, which keeps ids
    unique across the examples that share one PostgreSQL database.
    """

    def __init__(self) -> None:
        self.serial = itertools.count()
        self.salt = 0

    def start_example(self) -> None:
        self.serial = itertools.count()
        self.salt = uuid.uuid4().int & ((1 << 40) - 1)

    def __call__(self, now: dt.datetime | None = None) -> uuid.UUID:
        serial = next(self.serial)
        assert serial < 1 << 20, "more transfers in one example than the counter holds"
        # The serial in bits 40 to 59, the salt in bits 0 to 39: clear of version and variant.
        return posting.transfer_id_at(now or posting.utc_now(), (serial << 40) | self.salt)


TRANSFER_IDS = ExampleTransferIds()

ACCOUNTS_MAX = 7
# Each wallet starts with this much, so that the first transfers can succeed.
OPENING_BALANCE = 1_000_000
# Amounts of the size of the balances, so that transfers both succeed and fail; now and then a
# large one makes an account rich for the rest of the example.
AMOUNTS = st.one_of(
    st.integers(1, OPENING_BALANCE // 4), st.integers(1, 3 * OPENING_BALANCE), st.just(10**12)
)
# Short timeouts and longer clock steps, so that reservations do expire within an example.
TIMEOUTS = st.one_of(st.none(), st.integers(1, 120))
CLOCK_STEPS = st.integers(1, 300)
MEMOS = st.sampled_from(["", "chợ phiên"])

# How each phase moves (posted, pending) on both of its sides.
DELTAS = {
    Phase.POSTED: (1, 0),
    Phase.PENDING: (0, 1),
    Phase.POST_PENDING: (1, -1),
    Phase.VOID_PENDING: (0, -1),
}


# --- The model ----------------------------------------------------------------------------------


@dataclass
class ModelAccount:
    id: int
    debit_normal: bool
    rule: BalanceRule
    sharded: bool
    debits_posted: int = 0
    credits_posted: int = 0
    debits_pending: int = 0
    credits_pending: int = 0
    # Entries in the account's hash chain(s): one per transfer on either side.
    entries: int = 0

    def breaks_rule(self) -> bool:
        """A wallet's debits (posted and reserved) may not exceed its credits; a drawer mirrored."""
        if self.rule.debits_must_not_exceed_credits:
            return self.debits_posted + self.debits_pending > self.credits_posted
        if self.rule.credits_must_not_exceed_debits:
            return self.credits_posted + self.credits_pending > self.debits_posted
        return False

    def totals(self) -> tuple[int, int, int, int]:
        return (self.debits_posted, self.credits_posted, self.debits_pending, self.credits_pending)


@dataclass
class ModelReservation:
    debit: int
    credit: int
    amount: int
    expires_at: dt.datetime | None
    resolution: Phase | None = None
    resolution_code: str | None = None

    def expired(self, now: dt.datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass
class ModelTransfer:
    phase: Phase
    debit: int
    credit: int
    amount: int
    fee: int | None = None
    fee_amount: int | None = None
    reversed: bool = False


@dataclass(frozen=True)
class Leg:
    """What the model expects one request of a batch to write."""

    phase: Phase
    debit: int
    credit: int
    amount: int
    pending_id: uuid.UUID | None = None
    reverses_id: uuid.UUID | None = None
    expires_at: dt.datetime | None = None
    # A fee leg: paid by the debit account to `fee`, or in a reversal by `fee` to the credit
    # account.
    fee: int | None = None
    fee_amount: int | None = None
    # Posted credit-minus-debit balance after the leg, for accounts that are not sharded.
    debit_after: int | None = None
    credit_after: int | None = None
    fee_after: int | None = None


@dataclass
class Plan:
    """The model's prediction for a batch that the ledger must accept."""

    legs: list[Leg] = field(default_factory=list)
    accounts: dict[int, ModelAccount] = field(default_factory=dict)
    replayed: list[TransferResult] | None = None


class Refusal(Exception):
    """The model's prediction that the ledger must refuse a batch with one of these errors."""

    def __init__(self, options: list[tuple[type[ledger.LedgerError], object]]) -> None:
        super().__init__(options)
        self.options = options

    def allows(self, error: ledger.LedgerError) -> bool:
        return any(type(error) is kind and _detail(error) == d for kind, d in self.options)


def _detail(error: ledger.LedgerError) -> object:
    for attribute in ("account_id", "pending_id", "transfer_id", "key"):
        if hasattr(error, attribute):
            return getattr(error, attribute)
    return None


class LedgerModel:
    """What the ledger should hold, in plain Python: totals, reservations, transfers, keys."""

    def __init__(self) -> None:
        self.accounts: dict[int, ModelAccount] = {}
        self.reservations: dict[uuid.UUID, ModelReservation] = {}
        self.transfers: dict[uuid.UUID, ModelTransfer] = {}
        self.requests_by_key: dict[str, TransferRequest] = {}
        self.results_by_key: dict[str, TransferResult] = {}
        self.batches: list[list[TransferRequest]] = []

    def plan(self, requests: Sequence[TransferRequest], now: dt.datetime) -> Plan:
        """Predict a batch: a Plan if the ledger must apply it, else raise Refusal."""
        keys = [r.key for r in requests]
        referenced = [r.pending_id for r in requests if isinstance(r, PostPending | VoidPending)]
        referenced += [r.transfer_id for r in requests if isinstance(r, Reverse)]
        if len(set(keys)) != len(keys) or len(set(referenced)) != len(referenced):
            raise Refusal([(ledger.InvalidTransfer, None)])
        if any(k in self.requests_by_key for k in keys):
            conflicts = [r.key for r in requests if self.requests_by_key.get(r.key) != r]
            if conflicts:
                raise Refusal([(ledger.IdempotencyConflict, k) for k in conflicts])
            return Plan(replayed=[self.results_by_key[k] for k in keys])
        # Every bad reference is refused before any money moves; either path may name any of them.
        problems = [p for r in requests for p in self._reference_problems(r, now)]
        if problems:
            raise Refusal(problems)
        accounts = {i: dataclasses.replace(a) for i, a in self.accounts.items()}
        legs = []
        for request in requests:
            leg = self._leg(request, now)
            debit, credit = accounts[leg.debit], accounts[leg.credit]
            posted, pending = DELTAS[leg.phase]
            debit.debits_posted += posted * leg.amount
            debit.debits_pending += pending * leg.amount
            credit.credits_posted += posted * leg.amount
            credit.credits_pending += pending * leg.amount
            debit.entries += 1
            credit.entries += 1
            sides = [debit, credit]
            fee = None
            if leg.fee is not None and leg.fee_amount is not None:
                fee = accounts[leg.fee]
                fee.entries += 1
                sides.append(fee)
                if leg.reverses_id is None:
                    debit.debits_posted += leg.fee_amount
                    fee.credits_posted += leg.fee_amount
                else:
                    fee.debits_posted += leg.fee_amount
                    credit.credits_posted += leg.fee_amount
            for side in sides:
                if side.breaks_rule():
                    raise Refusal([(ledger.InsufficientFunds, side.id)])

            def after(account: ModelAccount | None) -> int | None:
                if account is None or account.sharded:
                    return None
                return account.credits_posted - account.debits_posted

            legs.append(
                dataclasses.replace(
                    leg, debit_after=after(debit), credit_after=after(credit), fee_after=after(fee)
                )
            )
        return Plan(legs=legs, accounts=accounts)

    def _reference_problems(
        self, request: TransferRequest, now: dt.datetime
    ) -> list[tuple[type[ledger.LedgerError], object]]:
        if isinstance(request, PostPending | VoidPending):
            reservation = self.reservations.get(request.pending_id)
            if reservation is None:
                return [(ledger.PendingNotFound, request.pending_id)]
            if reservation.resolution is not None:
                return [(ledger.PendingAlreadyResolved, request.pending_id)]
            if isinstance(request, PostPending) and reservation.expired(now):
                return [(ledger.PendingExpired, request.pending_id)]
        if isinstance(request, Reverse):
            original = self.transfers.get(request.transfer_id)
            if original is None:
                return [(ledger.TransferNotFound, request.transfer_id)]
            if original.phase not in (Phase.POSTED, Phase.POST_PENDING):
                return [(ledger.NotReversible, request.transfer_id)]
            if original.reversed:
                return [(ledger.AlreadyReversed, request.transfer_id)]
        return []

    def _leg(self, request: TransferRequest, now: dt.datetime) -> Leg:
        if isinstance(request, Post):
            return Leg(Phase.POSTED, request.debit_account_id, request.credit_account_id,
                       request.amount, fee=request.fee_account_id,
                       fee_amount=request.fee_amount)  # fmt: skip
        if isinstance(request, Reserve):
            expires_at = (
                None if request.timeout_s is None else now + dt.timedelta(seconds=request.timeout_s)
            )
            return Leg(Phase.PENDING, request.debit_account_id, request.credit_account_id,
                       request.amount, expires_at=expires_at)  # fmt: skip
        if isinstance(request, PostPending | VoidPending):
            phase = Phase.POST_PENDING if isinstance(request, PostPending) else Phase.VOID_PENDING
            held = self.reservations[request.pending_id]
            return Leg(phase, held.debit, held.credit, held.amount, pending_id=request.pending_id)
        original = self.transfers[request.transfer_id]
        return Leg(Phase.POSTED, original.credit, original.debit, original.amount,
                   reverses_id=request.transfer_id, fee=original.fee,
                   fee_amount=original.fee_amount)  # fmt: skip

    def apply(
        self, plan: Plan, requests: Sequence[TransferRequest], results: Sequence[TransferResult]
    ) -> None:
        """Record a batch the ledger applied as planned, under the ids it chose."""
        for request, leg, result in zip(requests, plan.legs, results, strict=True):
            self.transfers[result.id] = ModelTransfer(
                leg.phase, leg.debit, leg.credit, leg.amount, leg.fee, leg.fee_amount
            )
            if leg.phase == Phase.PENDING:
                self.reservations[result.id] = ModelReservation(
                    leg.debit, leg.credit, leg.amount, leg.expires_at
                )
            if leg.pending_id is not None:
                reservation = self.reservations[leg.pending_id]
                reservation.resolution, reservation.resolution_code = leg.phase, request.code
            if leg.reverses_id is not None:
                self.transfers[leg.reverses_id].reversed = True
            self.requests_by_key[request.key] = request
            self.results_by_key[request.key] = result
        self.accounts = plan.accounts
        self.batches.append(list(requests))

    def open_reservations(self) -> dict[uuid.UUID, ModelReservation]:
        return {i: r for i, r in self.reservations.items() if r.resolution is None}

    def expired_amounts(self, account_id: int, now: dt.datetime) -> tuple[int, int]:
        """Reserved amounts past their expiry: (debit side, credit side) of the account."""
        expired = [r for r in self.open_reservations().values() if r.expired(now)]
        return (
            sum(r.amount for r in expired if r.debit == account_id),
            sum(r.amount for r in expired if r.credit == account_id),
        )


# --- What the invariants read (built once: building statements costs more than running them) ---

# Totals of each account, summed over its shards, and its number of chain entries.
TOTALS = (
    select(
        AccountBalance.account_id,
        func.sum(AccountBalance.debits_posted),
        func.sum(AccountBalance.credits_posted),
        func.sum(AccountBalance.debits_pending),
        func.sum(AccountBalance.credits_pending),
        func.sum(AccountBalance.entry_count),
    )
    .where(AccountBalance.account_id.in_(bindparam("ids", expanding=True)))
    .group_by(AccountBalance.account_id)
)

_resolution = aliased(Transfer)
# Each reservation with its resolution (one row each, if any) and its open row (if still open).
RESERVATIONS = (
    select(
        Transfer.id,
        _resolution.phase,
        _resolution.code,
        OpenReservation.debit_account_id,
        OpenReservation.credit_account_id,
        OpenReservation.amount,
        OpenReservation.expires_at,
    )
    .select_from(Transfer)
    .outerjoin(_resolution, _resolution.pending_id == Transfer.id)
    .outerjoin(OpenReservation, OpenReservation.pending_id == Transfer.id)
    .where(Transfer.id.in_(bindparam("ids", expanding=True)))
)

KEYS_WRITTEN = select(Transfer.idempotency_key).where(
    Transfer.idempotency_key.in_(bindparam("keys", expanding=True))
)


# --- The state machine --------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a machine runs: a database for each example, and the posting path to use."""

    backend: str
    engine: Engine
    # True when each example has a database of its own, so teardown can verify all of it.
    fresh_database: bool
    start_example: Callable[[], None]
    end_example: Callable[[], None]


WALLET_RULE = BalanceRule(debits_must_not_exceed_credits=True)
DRAWER_RULE = BalanceRule(credits_must_not_exceed_debits=True)


@dataclass(frozen=True)
class AccountSpec:
    kind: AccountKind
    rule: BalanceRule
    debit_normal: bool = False
    shard_count: int = 1


ACCOUNT_KINDS = {
    "wallet": AccountSpec(AccountKind.CITIZEN_WALLET, WALLET_RULE),
    "drawer": AccountSpec(AccountKind.AGENT_DRAWER, DRAWER_RULE, debit_normal=True),
    "funding": AccountSpec(AccountKind.FUNDING, BalanceRule()),
    "fees": AccountSpec(AccountKind.FEE_REVENUE, BalanceRule(), shard_count=3),
}
CHANGES = ["none", "memo", "amount", "fee", "kind", "extra_leg"]


class LedgerMachine(RuleBasedStateMachine):
    """Random ledger operations, each checked against the model; invariants after every step."""

    target: ClassVar[Target]

    def __init__(self) -> None:
        super().__init__()
        self.target.start_example()
        TRANSFER_IDS.start_example()
        self.session = Session(self.target.engine, expire_on_commit=False)
        if self.target.backend == "postgresql-portable":
            self.session.info["ledger_backend"] = "portable"
        self.model = LedgerModel()
        self.now = NOW
        # Keys and owners unique to this example: examples share one PostgreSQL database.
        self.tag = uuid.uuid4().hex[:12]
        self.serial = itertools.count(1)
        self.funding = 0
        # Ruled accounts that may have come closer to zero, or whose reservations expired, since
        # the invariants last ran: the ones `balances_read_as_modelled` reads.
        self.touched: set[int] = set()

    def _key(self) -> str:
        return f"prop:{self.tag}:{next(self.serial)}"

    def _open(self, name: str) -> int:
        """Open an account of the kind with its default rule; the caller commits."""
        spec = ACCOUNT_KINDS[name]
        owner = self._key()
        account = ledger.open_account(
            self.session, kind=spec.kind, name=f"{name} {owner}", owner_ref=owner,
            shard_count=spec.shard_count, now=self.now,
        )  # fmt: skip
        assert (
            account.debits_must_not_exceed_credits,
            account.credits_must_not_exceed_debits,
        ) == (spec.rule.debits_must_not_exceed_credits, spec.rule.credits_must_not_exceed_debits)
        self.model.accounts[account.id] = ModelAccount(
            account.id, spec.debit_normal, spec.rule, sharded=spec.shard_count > 1
        )
        return account.id

    def _two_accounts(self, data: st.DataObject) -> tuple[int, int]:
        ids = list(self.model.accounts)
        debit = data.draw(st.sampled_from(ids), label="debit")
        credit = data.draw(st.sampled_from([i for i in ids if i != debit]), label="credit")
        return debit, credit

    def _touch(self, legs: list[Leg]) -> None:
        """Note the ruled sides that can come closer to zero: wallets debited, drawers credited."""
        for leg in legs:
            if self.model.accounts[leg.debit].rule.debits_must_not_exceed_credits:
                self.touched.add(leg.debit)
            if self.model.accounts[leg.credit].rule.credits_must_not_exceed_debits:
                self.touched.add(leg.credit)
            if leg.fee is not None and self.model.accounts[leg.fee].rule != BalanceRule():
                self.touched.add(leg.fee)

    def _keys_written(self, keys: list[str]) -> set[str]:
        return set(self.session.scalars(KEYS_WRITTEN, {"keys": keys}))

    def _execute(self, requests: list[TransferRequest]) -> None:
        """Post a batch; the ledger must do exactly what the model predicts."""
        try:
            plan = self.model.plan(requests, self.now)
        except Refusal as refusal:
            try:
                ledger.post_transfers(self.session, requests, now=self.now)
            except ledger.LedgerError as error:
                self.session.rollback()
                assert refusal.allows(error), f"raised {error!r}, expected {refusal.options}"
            else:
                raise AssertionError(f"applied a batch that must be refused: {refusal.options}")
            # Nothing of the call is kept: no transfer under its keys but the earlier originals,
            # and the invariants after this step find every total and reservation unchanged.
            keys = [r.key for r in requests]
            assert self._keys_written(keys) == {k for k in keys if k in self.model.requests_by_key}
            return
        results = ledger.post_transfers(self.session, requests, now=self.now)
        self.session.commit()
        self._touch(plan.legs)
        if plan.replayed is not None:
            assert results == [dataclasses.replace(r, replayed=True) for r in plan.replayed]
            return
        assert len({r.batch_id for r in results}) == 1
        for request, leg, result in zip(requests, plan.legs, results, strict=True):
            assert not result.replayed
            assert (result.idempotency_key, result.code, result.memo) == (
                request.key,
                request.code,
                request.memo,
            )
            assert (
                result.phase,
                result.debit_account_id,
                result.credit_account_id,
                result.amount,
                result.pending_id,
                result.reverses_id,
                result.expires_at,
                result.created_at,
                result.fee_account_id,
                result.fee_amount,
            ) == (
                leg.phase,
                leg.debit,
                leg.credit,
                leg.amount,
                leg.pending_id,
                leg.reverses_id,
                leg.expires_at,
                self.now,
                leg.fee,
                leg.fee_amount,
            )
            if leg.debit_after is not None:
                assert result.debit_balance_after == leg.debit_after
            if leg.credit_after is not None:
                assert result.credit_balance_after == leg.credit_after
            if leg.fee_after is not None:
                assert result.fee_balance_after == leg.fee_after
        self.model.apply(plan, requests, results)

    # --- Rules ----------------------------------------------------------------------------------

    @initialize()
    def open_first_accounts(self) -> None:
        """A source of money and two wallets with money in them."""
        self.funding = self._open("funding")
        wallets = [self._open("wallet"), self._open("wallet")]
        self.session.commit()
        self._execute(
            [Post(self._key(), self.funding, w, OPENING_BALANCE, "funding") for w in wallets]
        )

    @precondition(lambda self: len(self.model.accounts) < ACCOUNTS_MAX)
    @rule(kind=st.sampled_from(list(ACCOUNT_KINDS)))
    def open_account(self, kind: str) -> None:
        """Open a wallet, a drawer, a funding account or a sharded fee account."""
        self._open(kind)
        self.session.commit()

    @rule(data=st.data(), amount=AMOUNTS, memo=MEMOS)
    def transfer(self, data: st.DataObject, amount: int, memo: str) -> None:
        """Move money between any two accounts, with a fee to a third or not; refused when it
        would overdraw a ruled one."""
        debit, credit = self._two_accounts(data)
        fee_account, fee = self._fee_leg(data, debit, credit)
        self._execute([Post(self._key(), debit, credit, amount, "payment", memo, fee_account, fee)])

    def _fee_leg(
        self, data: st.DataObject, debit: int, credit: int
    ) -> tuple[int | None, int | None]:
        """Now and then a fee leg to a third account (a fee account, sharded or not, or any)."""
        others = [i for i in self.model.accounts if i not in (debit, credit)]
        if not others or not data.draw(st.booleans(), label="with_fee"):
            return None, None
        fee_account = data.draw(st.sampled_from(others), label="fee_account")
        return fee_account, data.draw(st.integers(1, OPENING_BALANCE // 10), label="fee")

    @rule(data=st.data(), extra=st.sampled_from([0, 1]))
    def spend_everything(self, data: st.DataObject, extra: int) -> None:
        """Exactly what a ruled account can give (must pass), or one đồng more (must fail)."""
        ruled = [a for a in self.model.accounts.values() if a.rule != BalanceRule()]
        account = data.draw(st.sampled_from(ruled), label="account")
        other = data.draw(
            st.sampled_from([i for i in self.model.accounts if i != account.id]), label="other"
        )
        if account.rule.debits_must_not_exceed_credits:
            spendable = account.credits_posted - account.debits_posted - account.debits_pending
            debit, credit = account.id, other
        else:
            spendable = account.debits_posted - account.credits_posted - account.credits_pending
            debit, credit = other, account.id
        if spendable + extra > 0:
            self._execute([Post(self._key(), debit, credit, spendable + extra, "payment")])

    @rule(data=st.data())
    def reserve(self, data: st.DataObject) -> None:
        """Reserve money, one call per copy (several withdrawal codes on one wallet)."""
        debit, credit = self._two_accounts(data)
        amount = data.draw(AMOUNTS, label="amount")
        timeout = data.draw(TIMEOUTS, label="timeout")
        for _ in range(data.draw(st.integers(1, 3), label="copies")):
            self._execute([Reserve(self._key(), debit, credit, amount, "withdrawal", timeout)])

    @precondition(lambda self: self.model.reservations)
    @rule(data=st.data(), post=st.booleans())
    def resolve(self, data: st.DataObject, post: bool) -> None:
        """Post or void a reservation, open or expired; or refused: resolved, not a reservation."""
        targets = st.sampled_from(list(self.model.transfers))
        open_ids = list(self.model.open_reservations())
        if open_ids:
            targets = st.sampled_from(open_ids) | targets
        pending_id = data.draw(targets, label="pending_id")
        request = (PostPending if post else VoidPending)(self._key(), pending_id)
        self._execute([request])

    @precondition(lambda self: self._future_expiries())
    @rule(data=st.data())
    def redeem_at_the_deadline(self, data: st.DataObject) -> None:
        """Post a reservation a second before (passes), at or after (refused) its expiry."""
        pending_id = data.draw(st.sampled_from(self._future_expiries()), label="pending_id")
        expires_at = self.model.reservations[pending_id].expires_at
        assert expires_at is not None
        offset = dt.timedelta(seconds=data.draw(st.sampled_from([0, -1, 1]), label="offset"))
        self._advance_clock(max(self.now, expires_at + offset))
        self._execute([PostPending(self._key(), pending_id)])

    def _future_expiries(self) -> list[uuid.UUID]:
        """Open reservations that will expire but have not yet."""
        return [
            pending_id
            for pending_id, r in self.model.open_reservations().items()
            if r.expires_at is not None and r.expires_at > self.now
        ]

    @rule(data=st.data())
    def let_time_pass(self, data: st.DataObject) -> None:
        """Move the clock on, or to a second before, at, or after a reservation's expiry."""
        expiries = sorted(
            expires_at
            for pending_id in self._future_expiries()
            if (expires_at := self.model.reservations[pending_id].expires_at) is not None
        )
        to_an_expiry: bool = bool(expiries) and data.draw(st.booleans(), label="to an expiry")
        if to_an_expiry:
            expiry = data.draw(st.sampled_from(expiries), label="expiry")
            offset = dt.timedelta(seconds=data.draw(st.sampled_from([0, -1, 1]), label="offset"))
            self._advance_clock(max(self.now, expiry + offset))
        else:
            seconds = data.draw(CLOCK_STEPS, label="seconds")
            self._advance_clock(self.now + dt.timedelta(seconds=seconds))

    def _advance_clock(self, later: dt.datetime) -> None:
        for r in self.model.open_reservations().values():
            if r.expires_at is not None and self.now < r.expires_at <= later:
                self.touched.update((r.debit, r.credit))
        self.now = later

    @rule(data=st.data())
    def sweep(self, data: st.DataObject) -> None:
        """The sweeper voids the account's expired reservations, lowest ids first, up to limit."""
        expired = {i: r for i, r in self.model.open_reservations().items() if r.expired(self.now)}
        holding = {a for r in expired.values() for a in (r.debit, r.credit)}
        account_id = data.draw(
            st.sampled_from(sorted(holding) or list(self.model.accounts)), label="account_id"
        )
        due = sorted(
            (i for i, r in expired.items() if account_id in (r.debit, r.credit)),
            key=lambda pending_id: pending_id.int,
        )
        limit = data.draw(st.integers(1, len(due) + 1), label="limit")
        due = due[:limit]
        requests: list[TransferRequest] = [
            VoidPending(f"expire:{pending_id}", pending_id, "expired") for pending_id in due
        ]
        plan = self.model.plan(requests, self.now) if requests else Plan()
        swept = ledger.void_expired_reservations(
            self.session, now=self.now, limit=limit, account_id=account_id
        )
        self.session.commit()
        assert swept == len(due)
        results = [ledger.resolution_of(self.session, pending_id) for pending_id in due]
        resolved = [r for r in results if r is not None]
        assert len(resolved) == len(due)
        assert [(r.idempotency_key, r.phase, r.code) for r in resolved] == [
            (request.key, Phase.VOID_PENDING, "expired") for request in requests
        ]
        if requests:
            self.model.apply(plan, requests, resolved)
            self.touched.update(a for leg in plan.legs for a in (leg.debit, leg.credit))

    @precondition(lambda self: self.model.transfers)
    @rule(data=st.data(), memo=MEMOS)
    def reverse(self, data: st.DataObject, memo: str) -> None:
        """Reverse any transfer: posted ones once, the rest refused."""
        transfer_id = data.draw(st.sampled_from(list(self.model.transfers)), label="transfer_id")
        self._execute([Reverse(self._key(), transfer_id, memo=memo)])

    @precondition(lambda self: self.model.batches)
    @rule(data=st.data(), change=st.sampled_from(CHANGES))
    def replay(self, data: st.DataObject, change: str) -> None:
        """Send an applied batch again: as it was (the originals come back) or changed (refused)."""
        requests = list(data.draw(st.sampled_from(self.model.batches), label="batch"))
        if change == "extra_leg":
            wallet = next(i for i in self.model.accounts if i != self.funding)
            requests.append(Post(self._key(), self.funding, wallet, 1, "payment"))
        elif change != "none":
            index = data.draw(st.integers(0, len(requests) - 1), label="leg")
            requests[index] = _changed(requests[index], change)
        self._execute(requests)

    @rule(data=st.data(), size=st.integers(2, 4), failing_leg=st.booleans())
    def linked_batch(self, data: st.DataObject, size: int, failing_leg: bool) -> None:
        """Several legs at once; with failing_leg one of them breaks a balance rule."""
        requests: list[TransferRequest] = []
        referenced: set[uuid.UUID] = set()
        for _ in range(size):
            requests.append(self._draw_leg(data, referenced))
        if failing_leg:
            position = data.draw(st.integers(0, len(requests)), label="position")
            requests.insert(position, self._breaking_leg(data, requests[:position]))
            with pytest.raises(Refusal):  # the test's own check: this batch cannot pass
                self.model.plan(requests, self.now)
        self._execute(requests)

    def _draw_leg(self, data: st.DataObject, referenced: set[uuid.UUID]) -> TransferRequest:
        choice = data.draw(st.sampled_from(["post", "reserve", "resolve", "reverse"]), label="leg")
        open_ids = [i for i in self.model.open_reservations() if i not in referenced]
        posted_ids = [
            i
            for i, t in self.model.transfers.items()
            if t.phase in (Phase.POSTED, Phase.POST_PENDING) and i not in referenced
        ]
        if choice == "resolve" and open_ids:
            pending_id = data.draw(st.sampled_from(open_ids), label="pending_id")
            referenced.add(pending_id)
            post = data.draw(st.booleans(), label="post")
            return (PostPending if post else VoidPending)(self._key(), pending_id)
        if choice == "reverse" and posted_ids:
            transfer_id = data.draw(st.sampled_from(posted_ids), label="transfer_id")
            referenced.add(transfer_id)
            return Reverse(self._key(), transfer_id)
        debit, credit = self._two_accounts(data)
        amount = data.draw(AMOUNTS, label="amount")
        if choice == "reserve":
            timeout = data.draw(TIMEOUTS, label="timeout")
            return Reserve(self._key(), debit, credit, amount, "withdrawal", timeout)
        fee_account, fee = self._fee_leg(data, debit, credit)
        return Post(self._key(), debit, credit, amount, "payment", "", fee_account, fee)

    def _breaking_leg(self, data: st.DataObject, before: list[TransferRequest]) -> Post:
        """A transfer that takes one đồng more than a ruled account has after `before`."""
        try:
            accounts = self.model.plan(before, self.now).accounts if before else self.model.accounts
        except Refusal:
            accounts = self.model.accounts  # the batch fails anyway
        ruled = [a for a in accounts.values() if a.rule != BalanceRule()]
        account = data.draw(st.sampled_from(ruled), label="breaks")
        if account.rule.debits_must_not_exceed_credits:
            spendable = account.credits_posted - account.debits_posted - account.debits_pending
            return Post(self._key(), account.id, self.funding, spendable + 1, "payment")
        cash = account.debits_posted - account.credits_posted - account.credits_pending
        return Post(self._key(), self.funding, account.id, cash + 1, "payout")

    # --- Invariants -----------------------------------------------------------------------------

    @invariant()
    def totals_agree_with_the_model(self) -> None:
        """Each account's totals as modelled; debits equal credits; no ruled account overdrawn."""
        rows = self.session.execute(TOTALS, {"ids": list(self.model.accounts)}).all()
        stored = {row[0]: tuple(int(total) for total in row[1:]) for row in rows}
        assert stored == {a.id: (*a.totals(), a.entries) for a in self.model.accounts.values()}
        # The example's accounts only trade with each other, so they balance among themselves.
        columns = list(zip(*stored.values(), strict=True))
        debits_posted, credits_posted, debits_pending, credits_pending = map(sum, columns[:4])
        assert debits_posted == credits_posted
        assert debits_pending == credits_pending
        for account in self.model.accounts.values():
            d_posted, c_posted, d_pending, c_pending, _ = stored[account.id]
            if account.rule.debits_must_not_exceed_credits:
                assert d_posted + d_pending <= c_posted, f"account {account.id} overdrawn"
            if account.rule.credits_must_not_exceed_debits:
                assert c_posted + c_pending <= d_posted, f"account {account.id} overdrawn"

    @invariant()
    def balances_read_as_modelled(self) -> None:
        """`ledger.balance` of each ruled account at risk: totals, expiries, not below zero.

        The totals invariant covers every account after every step; reading all of them through
        `ledger.balance` too would double the run time for little.
        """
        for account_id in sorted(self.touched):
            account = self.model.accounts[account_id]
            if account.rule == BalanceRule():
                continue
            held = ledger.balance(self.session, account_id, now=self.now)
            assert held.debit_normal == account.debit_normal
            assert (
                held.debits_posted,
                held.credits_posted,
                held.debits_pending,
                held.credits_pending,
            ) == account.totals()
            assert (held.debits_pending_expired, held.credits_pending_expired) == (
                self.model.expired_amounts(account_id, self.now)
            )
            assert held.posted >= 0, f"account {account_id} is below zero"
            assert held.available >= 0, f"account {account_id} has less than nothing"
        self.touched.clear()

    @invariant()
    def reservations_agree_with_the_model(self) -> None:
        """Each reservation is open as modelled, or has exactly the one resolution modelled."""
        if not self.model.reservations:
            return
        rows = self.session.execute(RESERVATIONS, {"ids": list(self.model.reservations)}).all()
        resolutions = Counter(row[0] for row in rows)
        assert all(count == 1 for count in resolutions.values()), "a reservation resolved twice"
        stored = {
            pending_id: (
                None if phase is None else Phase(phase),
                code,
                None if debit is None else (debit, credit, amount, expires_at),
            )
            for pending_id, phase, code, debit, credit, amount, expires_at in rows
        }
        assert stored == {
            pending_id: (
                r.resolution,
                r.resolution_code,
                (r.debit, r.credit, r.amount, r.expires_at) if r.resolution is None else None,
            )
            for pending_id, r in self.model.reservations.items()
        }

    def teardown(self) -> None:
        # When a step has failed, only clean up: a second error here would hide the first.
        step_failed = sys.exc_info()[1] is not None
        try:
            self.session.rollback()
            if not step_failed:
                if self.target.fresh_database:
                    report = ledger.verify_ledger(self.session)
                    assert report.ok, report.problems
                    assert ledger.trial_balance(self.session).balanced
                else:
                    assert_whole_ledger_balances(self.session)
        finally:
            self.session.close()
            self.target.end_example()


def _changed(request: TransferRequest, change: str) -> TransferRequest:
    """The same idempotency key with different content."""
    if change == "amount" and isinstance(request, Post | Reserve):
        return dataclasses.replace(request, amount=request.amount + 1)
    if change == "fee" and isinstance(request, Post) and request.fee_amount is not None:
        return dataclasses.replace(request, fee_amount=request.fee_amount + 1)
    if change == "kind":
        if isinstance(request, Post):
            return Reserve(request.key, request.debit_account_id, request.credit_account_id,
                           request.amount, request.code, 60, request.memo)  # fmt: skip
        if isinstance(request, Reserve):
            return Post(request.key, request.debit_account_id, request.credit_account_id,
                        request.amount, request.code, request.memo)  # fmt: skip
        if isinstance(request, PostPending):
            return VoidPending(request.key, request.pending_id, request.code, request.memo)
        if isinstance(request, VoidPending):
            return PostPending(request.key, request.pending_id, request.code, request.memo)
    return dataclasses.replace(request, memo="khác" if request.memo == "" else "")


def assert_whole_ledger_balances(session: Session) -> None:
    """All accounts of the database together: posted debits = credits, pending likewise."""
    debits_posted, credits_posted, debits_pending, credits_pending = session.execute(
        select(
            func.coalesce(func.sum(AccountBalance.debits_posted), 0),
            func.coalesce(func.sum(AccountBalance.credits_posted), 0),
            func.coalesce(func.sum(AccountBalance.debits_pending), 0),
            func.coalesce(func.sum(AccountBalance.credits_pending), 0),
        )
    ).one()
    assert debits_posted == credits_posted
    assert debits_pending == credits_pending


# --- The test -----------------------------------------------------------------------------------


class SqliteExamples:
    """A fresh copy of the migrated template database for every example, behind one engine.

    One engine for all examples keeps SQLAlchemy's statement cache warm; its connections open
    whichever file is current. Commits skip fsync: durability is not what these tests are about.
    """

    def __init__(self, template: Path, folder: Path) -> None:
        self.template = template
        self.folder = folder
        self.numbers = itertools.count(1)
        self.path = folder / "example-0.sqlite3"
        self.engine = make_engine(f"sqlite:///{self.path}", creator=self._connect)
        event.listen(self.engine, "connect", _skip_fsync)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path)

    def start(self) -> None:
        self.path = self.folder / f"example-{next(self.numbers)}.sqlite3"
        shutil.copyfile(self.template, self.path)

    def end(self) -> None:
        self.engine.dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)


def _skip_fsync(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    dbapi_connection.execute("PRAGMA synchronous = OFF")


def _no_op() -> None:
    pass


def test_random_operations_keep_the_ledger_invariants(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any sequence of operations leaves balances as modelled, balanced and verifiable."""
    monkeypatch.setattr(posting, "new_transfer_id", TRANSFER_IDS)
    if backend == "sqlite":
        examples = SqliteExamples(request.getfixturevalue("sqlite_template"), tmp_path)
        target = Target(backend, examples.engine, True, examples.start, examples.end)
    else:
        # Commits skip the wait for the WAL flush: durability is not what these tests are about.
        url: str = request.getfixturevalue("postgres_url")
        engine = make_engine(url, connect_args={"options": "-c synchronous_commit=off"})
        target = Target(backend, engine, False, _no_op, _no_op)
    machine = type(
        f"LedgerMachine_{backend.replace('-', '_')}", (LedgerMachine,), {"target": target}
    )
    try:
        run_state_machine_as_test(machine, settings=SETTINGS)
        if not target.fresh_database:
            # The examples share this database with every other test: all of it must verify.
            with Session(target.engine) as session:
                report = ledger.verify_ledger(session)
                assert report.ok, report.problems
    finally:
        target.engine.dispose()
