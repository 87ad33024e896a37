"""Post office points, their agents, cash drawer sessions, counter operations, approvals and the
audit log. The money itself is in the ledger; these rows say who moved it, where, and why."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from ledger.columns import BigIntegerPrimaryKey, Money, UTCDateTime
from ledger.schema import Base, unique_where

MINUTES_PER_DAY = 24 * 60


class Role(enum.StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"


class DrawerStatus(enum.StrEnum):
    OPEN = "open"
    # Counted at closing with a variance above the threshold: waits for a supervisor.
    AWAITING_SIGN_OFF = "awaiting_sign_off"
    CLOSED = "closed"


class OperationKind(enum.StrEnum):
    PAYOUT = "payout"  # a withdrawal code paid out in cash
    BILL_COLLECTION = "bill_collection"  # a payment code collected (wallet → biller)
    CASH_IN = "cash_in"  # cash counted in, money into a wallet
    TOP_UP = "top_up"  # float from the district office into the drawer
    HAND_BACK = "hand_back"  # cash from the drawer back to the district office
    VARIANCE = "variance"  # counted minus expected, posted to cash variance


class ApprovalKind(enum.StrEnum):
    PAYOUT = "payout"
    VARIANCE = "variance"
    TOP_UP = "top_up"
    HAND_BACK = "hand_back"


class ApprovalStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    # An approved payout, top-up or hand-back that has been carried out.
    USED = "used"


def _known(column: str, values: type[enum.StrEnum]) -> str:
    listed = ", ".join(f"'{value.value}'" for value in values)
    return f"{column} IN ({listed})"


class PostOffice(Base):
    """A commune post office point (điểm bưu điện văn hóa xã) where agents serve citizens."""

    __tablename__ = "post_offices"
    __table_args__ = (
        CheckConstraint(
            f"opens_minute >= 0 AND opens_minute < closes_minute "
            f"AND closes_minute <= {MINUTES_PER_DAY}",
            name="opening_hours_ordered",
        ),
        CheckConstraint("payout_max_vnd > 0", name="payout_max_positive"),
    )

    id: Mapped[int] = mapped_column(BigIntegerPrimaryKey, primary_key=True)
    # Short code printed on receipts ("BD00226").
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    commune_code: Mapped[str] = mapped_column(ForeignKey("communes.code"), index=True)
    # The district office's side of float top-ups and hand-backs.
    district_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), unique=True)
    # Where agent commissions of this point accrue.
    commission_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), unique=True)
    # Opening hours, minutes after local midnight (Asia/Ho_Chi_Minh).
    opens_minute: Mapped[int] = mapped_column(SmallInteger, default=7 * 60)
    closes_minute: Mapped[int] = mapped_column(SmallInteger, default=17 * 60)
    # The most this point pays out in one withdrawal (its cash delivery and insurance limits).
    payout_max_vnd: Mapped[int] = mapped_column(Money(), default=20_000_000)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Agent(Base):
    """A person who works a counter (agent) or oversees one post office point (supervisor)."""

    __tablename__ = "agents"
    __table_args__ = (
        CheckConstraint(_known("role", Role), name="role_known"),
        CheckConstraint(
            "totp_enrolled_at IS NULL OR totp_secret_ciphertext IS NOT NULL",
            name="enrolled_has_secret",
        ),
    )

    id: Mapped[int] = mapped_column(BigIntegerPrimaryKey, primary_key=True)
    post_office_id: Mapped[int] = mapped_column(ForeignKey("post_offices.id"), index=True)
    # Lower-case login name ("lan.nguyen").
    username: Mapped[str] = mapped_column(String(40), unique=True)
    full_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(12))
    password_hash: Mapped[str] = mapped_column(String(200))
    password_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # Encrypted TOTP secret; set at first sign-in, confirmed (enrolled) by the first code.
    totp_secret_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary(128))
    totp_enrolled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # Raised on sign-out everywhere, password or TOTP change and deactivation.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The agent's cash drawer in the ledger.
    drawer_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # "admin" (the command line) or "agent:7" (a supervisor's page).
    created_by: Mapped[str] = mapped_column(String(64))

    @property
    def principal(self) -> str:
        return f"agent:{self.id}"

    @property
    def is_supervisor(self) -> bool:
        return self.role == Role.SUPERVISOR


class DrawerSession(Base):
    """One agent's working session with a counted cash drawer, from opening to closing."""

    __tablename__ = "drawer_sessions"
    __table_args__ = (
        CheckConstraint(_known("status", DrawerStatus), name="status_known"),
        CheckConstraint("opening_counted >= 0", name="opening_counted_not_negative"),
        CheckConstraint(
            "(status = 'open') = (closing_counted IS NULL)", name="closing_counted_when_closing"
        ),
        CheckConstraint(
            "(status = 'closed') = (closed_at IS NOT NULL)", name="closed_at_when_closed"
        ),
        # One session not yet closed per agent: a second "open" is refused by the database.
        unique_where("uq_drawer_sessions_agent_id_unclosed", "agent_id", "status <> 'closed'"),
    )

    id: Mapped[int] = mapped_column(BigIntegerPrimaryKey, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    post_office_id: Mapped[int] = mapped_column(ForeignKey("post_offices.id"), index=True)
    drawer_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    status: Mapped[str] = mapped_column(String(20), default=DrawerStatus.OPEN)
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # What the ledger said was in the drawer, and what the agent counted.
    opening_expected: Mapped[int] = mapped_column(Money())
    opening_counted: Mapped[int] = mapped_column(Money())
    # The count of each banknote ("500000:4,200000:3"), when counted by note.
    opening_notes: Mapped[str | None] = mapped_column(String(200))
    closing_expected: Mapped[int | None] = mapped_column(Money())
    closing_counted: Mapped[int | None] = mapped_column(Money())
    closing_notes: Mapped[str | None] = mapped_column(String(200))
    counted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    signed_off_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))


class CounterOperation(Base):
    """A movement made at a counter, with what the agent checked; the statement lists these."""

    __tablename__ = "counter_operations"
    __table_args__ = (
        CheckConstraint(_known("kind", OperationKind), name="kind_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("fee >= 0 AND commission >= 0", name="fee_commission_not_negative"),
        CheckConstraint(
            "kind NOT IN ('payout', 'bill_collection') OR "
            "(code_id IS NOT NULL AND id_last4_checked AND face_matched)",
            name="code_operation_checked_identity",
        ),
        Index("ix_counter_operations_session", "drawer_session_id", "created_at"),
        Index("ix_counter_operations_post_office", "post_office_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    drawer_session_id: Mapped[int | None] = mapped_column(ForeignKey("drawer_sessions.id"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), index=True)
    post_office_id: Mapped[int] = mapped_column(ForeignKey("post_offices.id"))
    amount: Mapped[int] = mapped_column(Money())
    fee: Mapped[int] = mapped_column(Money(), default=0)
    commission: Mapped[int] = mapped_column(Money(), default=0)
    # What this operation did to the cash in the drawer (payout < 0, cash-in > 0, variance ±).
    cash_delta: Mapped[int] = mapped_column(BigInteger)
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    # A code is paid out at most once: the database refuses a second operation naming it.
    code_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("issued_codes.id"), unique=True)
    # The ledger transfer that moved the money (the payout's drawer transfer).
    transfer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("transfers.id"), unique=True)
    id_last4_checked: Mapped[bool] = mapped_column(Boolean, default=False)
    face_matched: Mapped[bool] = mapped_column(Boolean, default=False)
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Approval(Base):
    """A supervisor's decision on something an agent may not do alone."""

    __tablename__ = "approvals"
    __table_args__ = (
        CheckConstraint(_known("kind", ApprovalKind), name="kind_known"),
        CheckConstraint(_known("status", ApprovalStatus), name="status_known"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        # Four eyes: nobody approves their own request.
        CheckConstraint(
            "decided_by IS NULL OR decided_by <> requested_by", name="not_self_approved"
        ),
        CheckConstraint(
            "(status = 'pending') = (decided_at IS NULL)", name="decided_when_not_pending"
        ),
        Index("ix_approvals_post_office_status", "post_office_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(12), default=ApprovalStatus.PENDING)
    post_office_id: Mapped[int] = mapped_column(ForeignKey("post_offices.id"))
    requested_by: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    amount: Mapped[int] = mapped_column(Money())
    # What is approved: a code id (payout) or a drawer session id (variance).
    subject: Mapped[str | None] = mapped_column(String(64), index=True)
    note: Mapped[str | None] = mapped_column(String(200))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AuditEvent(Base):
    """Who did what, when and from where. Append-only: the database refuses changes."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_post_office_at", "post_office_id", "at"),
        Index("ix_audit_events_actor_at", "actor", "at"),
    )

    id: Mapped[int] = mapped_column(BigIntegerPrimaryKey, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    post_office_id: Mapped[int | None] = mapped_column(ForeignKey("post_offices.id"))
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str | None] = mapped_column(String(80))
    detail: Mapped[str | None] = mapped_column(String(500))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
