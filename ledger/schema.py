"""The ledger's tables: accounts, their running totals, transfers and open reservations.

`Base` is shared by every model of Soft ATM so that one Alembic history covers them all.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Callable
from typing import Any, Literal, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ledger.columns import BigIntegerPrimaryKey, Money, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

HASH_BYTES = 32
GENESIS_HASH = bytes(HASH_BYTES)
IDEMPOTENCY_KEY_LENGTH_MAX = 128
MEMO_LENGTH_MAX = 200
SHARD_COUNT_MAX = 64


# The model's foreign keys that PostgreSQL does without, and verify_ledger checks instead
# (migration 0013): a key is checked again, with a locking read, on every write after the first
# to a row in one transaction.
FOREIGN_KEYS_VERIFIED_ON_POSTGRESQL = frozenset({"fk_account_balances_account_id_accounts"})


def include_in_migrated_schema(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Alembic's `include_object` for `dialect`: every object of the models is in the migrated
    schema but, on PostgreSQL, the foreign keys above."""

    def include_object(
        _object: Any, name: str | None, type_: str, _reflected: bool, _compare_to: Any
    ) -> bool:
        return not (
            dialect == "postgresql"
            and type_ == "foreign_key_constraint"
            and name in FOREIGN_KEYS_VERIFIED_ON_POSTGRESQL
        )

    return include_object


def unique_where(name: str, columns: str | tuple[str, ...], condition: str) -> Index:
    """A unique index over the rows that meet `condition`, on PostgreSQL and SQLite alike."""
    where = text(condition)
    names = (columns,) if isinstance(columns, str) else columns
    return Index(name, *names, unique=True, postgresql_where=where, sqlite_where=where)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class AccountKind(enum.StrEnum):
    CITIZEN_WALLET = "citizen_wallet"
    AGENT_DRAWER = "agent_drawer"
    DISTRICT_CASH = "district_cash"
    BILLER = "biller"
    MERCHANT = "merchant"
    WELFARE_FUND = "welfare_fund"
    FEE_REVENUE = "fee_revenue"
    AGENT_COMMISSION = "agent_commission"
    CASH_VARIANCE = "cash_variance"
    SETTLEMENT = "settlement"
    FUNDING = "funding"


class Phase(enum.StrEnum):
    """What a transfer does to the totals of its two accounts."""

    POSTED = "posted"  # moves posted totals at once
    PENDING = "pending"  # reserves: moves pending totals until posted, voided or expired
    POST_PENDING = "post_pending"  # turns a reservation into posted totals
    VOID_PENDING = "void_pending"  # releases a reservation (cancelled, or expired)


# How each phase moves the (posted, pending) totals of each side it touches, per đồng.
PHASE_DELTAS: dict[Phase, tuple[int, int]] = {
    Phase.POSTED: (1, 0),
    Phase.PENDING: (0, 1),
    Phase.POST_PENDING: (1, -1),
    Phase.VOID_PENDING: (0, -1),
}


Side = Literal["debit", "credit", "fee"]
SIDES: tuple[Side, ...] = ("debit", "credit", "fee")


def side_movement(
    side: Side, phase: str, amount: int, fee_amount: int | None, reversal: bool
) -> tuple[bool, int, int]:
    """How a transfer moves the totals of the account on its `side`: whether on that account's
    debits (else its credits), and by how much posted and pending.

    The debit account pays the amount and the fee, the credit account receives the amount and
    the fee account the fee. A reversal mirrors its original, fee leg included: its debit
    account (the original's credit) pays the amount back, its credit account (the original's
    payer) receives the amount and the fee, and the fee account pays the fee back.
    """
    # (A phase that does not exist moves nothing; verification names such a row.)
    posted, pending = PHASE_DELTAS.get(phase, (0, 0))  # type: ignore[call-overload]
    fee = fee_amount or 0
    if side == "fee":
        return reversal, posted * fee, 0
    moved = amount + (fee if (side == "debit") != reversal else 0)
    return side == "debit", posted * moved, pending * moved


def _sql_list(values: type[enum.StrEnum]) -> str:
    return ", ".join(f"'{v.value}'" for v in values)


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_sql_list(AccountKind)})", name="kind_known"),
        CheckConstraint("currency = 'VND'", name="currency_vnd"),
        CheckConstraint(
            "NOT (debits_must_not_exceed_credits AND credits_must_not_exceed_debits)",
            name="one_balance_rule",
        ),
        # A limit needs one row to lock; a sharded (hot) account cannot have one.
        CheckConstraint(
            f"shard_count = 1 OR (shard_count BETWEEN 2 AND {SHARD_COUNT_MAX} "
            "AND NOT debits_must_not_exceed_credits AND NOT credits_must_not_exceed_debits)",
            name="shards_without_rules",
        ),
        UniqueConstraint("kind", "owner_ref"),
    )

    id: Mapped[int] = mapped_column(BigIntegerPrimaryKey, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    owner_ref: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="VND")
    debits_must_not_exceed_credits: Mapped[bool] = mapped_column(Boolean, default=False)
    credits_must_not_exceed_debits: Mapped[bool] = mapped_column(Boolean, default=False)
    shard_count: Mapped[int] = mapped_column(SmallInteger, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AccountBalance(Base):
    """Running totals and the hash-chain head of one account (or of one shard of a hot account).

    The balance rules are copied here from the account so that a CHECK constraint on this row, the
    row every writer locks, enforces them in the database as well as in the code; the shard count
    too, so that a writer finds its shard on the row it locks.
    """

    __tablename__ = "account_balances"
    __table_args__ = (
        # On PostgreSQL migration 0012 drops this one and entry_count_not_negative (each write
        # paid to rebuild them); ledger_apply keeps them true and verify_ledger reports a row
        # that is not. The two balance rules stay constraints everywhere.
        CheckConstraint(
            "debits_posted >= 0 AND credits_posted >= 0 "
            "AND debits_pending >= 0 AND credits_pending >= 0",
            name="totals_not_negative",
        ),
        CheckConstraint(
            "NOT debits_must_not_exceed_credits "
            "OR debits_posted + debits_pending <= credits_posted",
            name="debits_within_credits",
        ),
        CheckConstraint(
            "NOT credits_must_not_exceed_debits "
            "OR credits_posted + credits_pending <= debits_posted",
            name="credits_within_debits",
        ),
        CheckConstraint("entry_count >= 0", name="entry_count_not_negative"),
    )

    # A foreign key on SQLite only: PostgreSQL checks it with a locking read whenever a
    # transaction writes the row twice (a payment and its fee from one wallet), so there
    # migration 0013 drops it and verify_ledger checks it instead.
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    debits_posted: Mapped[int] = mapped_column(Money(), default=0)
    credits_posted: Mapped[int] = mapped_column(Money(), default=0)
    debits_pending: Mapped[int] = mapped_column(Money(), default=0)
    credits_pending: Mapped[int] = mapped_column(Money(), default=0)
    debits_must_not_exceed_credits: Mapped[bool] = mapped_column(Boolean, default=False)
    credits_must_not_exceed_debits: Mapped[bool] = mapped_column(Boolean, default=False)
    # The account's, so that a writer finds its shard (slot % shard_count) on the row it locks.
    shard_count: Mapped[int] = mapped_column(SmallInteger, default=1)
    entry_count: Mapped[int] = mapped_column(BigInteger, default=0)
    head_hash: Mapped[bytes] = mapped_column(LargeBinary(HASH_BYTES), default=GENESIS_HASH)


class Transfer(Base):
    """One immutable movement of money from a debit account to a credit account.

    Every row balances by construction (one amount, two sides). Linked transfers are applied in one
    call and one database transaction; `batch_id` records which ones went together.
    """

    __tablename__ = "transfers"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="accounts_differ"),
        # The shape of a row by phase, below down to seq_positive, and of its fee leg
        # (fee_leg_whole, fee_leg_posted): constraints on SQLite only. On PostgreSQL migration
        # 0012 drops the first (see there why) and 0016 does not add the others; ledger_apply
        # writes only rows of this shape, and verify_ledger reports any row that is not.
        CheckConstraint(f"phase IN ({_sql_list(Phase)})", name="phase_known"),
        CheckConstraint(
            "(phase IN ('post_pending', 'void_pending')) = (pending_id IS NOT NULL)",
            name="resolution_names_pending",
        ),
        CheckConstraint("expires_at IS NULL OR phase = 'pending'", name="only_pending_expires"),
        CheckConstraint("reverses_id IS NULL OR phase = 'posted'", name="reversal_is_posted"),
        CheckConstraint("debit_seq > 0 AND credit_seq > 0", name="seq_positive"),
        CheckConstraint(
            "(fee_account_id IS NULL) = (fee_shard IS NULL) "
            "AND (fee_account_id IS NULL) = (fee_amount IS NULL) "
            "AND (fee_account_id IS NULL) = (fee_seq IS NULL) "
            "AND (fee_account_id IS NULL) = (fee_hash IS NULL) "
            "AND (fee_account_id IS NULL) = (fee_balance_after IS NULL)",
            name="fee_leg_whole",
        ),
        CheckConstraint(
            "fee_account_id IS NULL OR (phase = 'posted' AND fee_seq > 0)", name="fee_leg_posted"
        ),
        # A money rule, kept on PostgreSQL too: a fee leg moves a positive amount to or from a
        # third account.
        CheckConstraint(
            "fee_account_id IS NULL OR (fee_amount > 0 AND fee_account_id <> debit_account_id "
            "AND fee_account_id <> credit_account_id)",
            name="fee_leg_valid",
        ),
        # At most one resolution per reservation and one reversal per transfer, whatever races.
        # Partial: most transfers resolve and reverse nothing, and add no entry to either index.
        unique_where("uq_transfers_pending_id", "pending_id", "pending_id IS NOT NULL"),
        unique_where("uq_transfers_reverses_id", "reverses_id", "reverses_id IS NOT NULL"),
        UniqueConstraint("idempotency_key"),
        UniqueConstraint("debit_account_id", "debit_shard", "debit_seq"),
        UniqueConstraint("credit_account_id", "credit_shard", "credit_seq"),
        # A fee account's chain; partial, so that a transfer without a fee leg adds no entry.
        unique_where(
            "uq_transfers_fee_account_id_fee_shard_fee_seq",
            ("fee_account_id", "fee_shard", "fee_seq"),
            "fee_account_id IS NOT NULL",
        ),
        Index("ix_transfers_created_at", "created_at"),
        # Money sent by an account in a period (daily and monthly limits) without its history.
        Index("ix_transfers_debit_account_id_created_at", "debit_account_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_LENGTH_MAX))
    batch_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    phase: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(32))
    memo: Mapped[str] = mapped_column(String(MEMO_LENGTH_MAX), default="")
    # No foreign keys to the accounts: a transfer updates its accounts' balance rows (which
    # reference them) in its own transaction, and verification reports any transfer on an
    # account without one. A key would cost a locking lookup of each account row per transfer.
    debit_account_id: Mapped[int] = mapped_column(BigIntegerPrimaryKey)
    debit_shard: Mapped[int] = mapped_column(SmallInteger)
    credit_account_id: Mapped[int] = mapped_column(BigIntegerPrimaryKey)
    credit_shard: Mapped[int] = mapped_column(SmallInteger)
    amount: Mapped[int] = mapped_column(Money())
    pending_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("transfers.id"))
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("transfers.id"))
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # Where this transfer stands in each account's hash chain, and that account's posted
    # credit-minus-debit balance right after it (for statements with a running balance).
    debit_seq: Mapped[int] = mapped_column(BigInteger)
    debit_hash: Mapped[bytes] = mapped_column(LargeBinary(HASH_BYTES))
    debit_balance_after: Mapped[int] = mapped_column(BigInteger)
    credit_seq: Mapped[int] = mapped_column(BigInteger)
    credit_hash: Mapped[bytes] = mapped_column(LargeBinary(HASH_BYTES))
    credit_balance_after: Mapped[int] = mapped_column(BigInteger)
    # The fee leg, on a posted transfer only: `fee_amount` more leaves the debit account and
    # goes to the fee account, in the same row, chain step and commit as the payment. In a
    # reversal the fee goes back: from the fee account to the credit account (the original
    # payer). See `side_movement`.
    fee_account_id: Mapped[int | None] = mapped_column(BigInteger)
    fee_shard: Mapped[int | None] = mapped_column(SmallInteger)
    fee_amount: Mapped[int | None] = mapped_column(Money())
    fee_seq: Mapped[int | None] = mapped_column(BigInteger)
    fee_hash: Mapped[bytes | None] = mapped_column(LargeBinary(HASH_BYTES))
    fee_balance_after: Mapped[int | None] = mapped_column(BigInteger)


class OpenReservation(Base):
    """A pending transfer that is neither posted, voided nor expired yet.

    Not the record of money (that is `transfers`): an index of what is still open, so that the
    expiry sweeper and available-balance reads never scan history. Resolving a reservation deletes
    its row, and that delete is also the lock that lets exactly one resolution through.
    """

    __tablename__ = "open_reservations"
    __table_args__ = (
        Index("ix_open_reservations_expires_at", "expires_at"),
        Index("ix_open_reservations_debit_account_id", "debit_account_id"),
        Index("ix_open_reservations_credit_account_id", "credit_account_id"),
    )

    pending_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("transfers.id"), primary_key=True)
    debit_account_id: Mapped[int] = mapped_column(BigInteger)
    debit_shard: Mapped[int] = mapped_column(SmallInteger)
    credit_account_id: Mapped[int] = mapped_column(BigInteger)
    credit_shard: Mapped[int] = mapped_column(SmallInteger)
    amount: Mapped[int] = mapped_column(Money())
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


# The Core tables, typed, for the bulk statements of the posting path.
accounts_table = cast(Table, Account.__table__)
balances_table = cast(Table, AccountBalance.__table__)
transfers_table = cast(Table, Transfer.__table__)
reservations_table = cast(Table, OpenReservation.__table__)
