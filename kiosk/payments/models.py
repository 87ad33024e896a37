"""Issued codes, billers and merchants. The money itself is in the ledger; these rows say what a
reservation is for and let a scanned code be found."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ledger.columns import BigIntegerPrimaryKey, Money, UTCDateTime
from ledger.schema import Base


class CodeKind(enum.StrEnum):
    WITHDRAWAL = "withdrawal"
    PAYMENT = "payment"


class CodeStatus(enum.StrEnum):
    OPEN = "open"
    REDEEMED = "redeemed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class BillerKind(enum.StrEnum):
    ELECTRICITY = "electricity"
    WATER = "water"
    SCHOOL = "school"
    MARKET = "market"
    ENVIRONMENT = "environment"


class Biller(Base):
    __tablename__ = "billers"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('electricity', 'water', 'school', 'market', 'environment')",
            name="kind_known",
        ),
    )

    id: Mapped[int] = mapped_column(BigIntegerPrimaryKey, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20))
    # None: serves every commune (a province's electricity company).
    commune_code: Mapped[str | None] = mapped_column(ForeignKey("communes.code"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), unique=True)


class IssuedCode(Base):
    """A withdrawal or payment code and the ledger reservation behind it."""

    __tablename__ = "issued_codes"
    __table_args__ = (
        CheckConstraint("kind IN ('withdrawal', 'payment')", name="kind_known"),
        CheckConstraint(
            "status IN ('open', 'redeemed', 'cancelled', 'expired')", name="status_known"
        ),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "(kind = 'payment') = (biller_id IS NOT NULL AND bill_reference IS NOT NULL)",
            name="payment_names_bill",
        ),
        # A code is a citizen's own, or a welfare cash voucher (paid from a programme's fund).
        CheckConstraint("(citizen_id IS NULL) <> (welfare_row_id IS NULL)", name="one_holder"),
        CheckConstraint(
            "welfare_row_id IS NULL OR kind = 'withdrawal'", name="voucher_is_withdrawal"
        ),
        Index("ix_issued_codes_citizen_id_status", "citizen_id", "status"),
    )

    # The random code id carried in the signed token.
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(12), default=CodeStatus.OPEN)
    # The citizen whose code it is; None for a welfare voucher, which names its row instead.
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"))
    welfare_row_id: Mapped[int | None] = mapped_column(
        ForeignKey("welfare_beneficiaries.id"), unique=True
    )
    # Where the money is reserved: the citizen's wallet, or the programme's fund for a voucher.
    wallet_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column(Money())
    pending_transfer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("transfers.id"), unique=True)
    biller_id: Mapped[int | None] = mapped_column(ForeignKey("billers.id"))
    bill_reference: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Where it was paid out (filled by the agent portal): post office point and agent.
    redeemed_at_point: Mapped[str | None] = mapped_column(String(64))
    redeemed_by: Mapped[str | None] = mapped_column(String(64))


class Merchant(Base):
    """A market stall or shop that accepts payment by its static VietQR code."""

    __tablename__ = "merchants"
    __table_args__ = (CheckConstraint("length(stall_code) = 8", name="stall_code_length"),)

    id: Mapped[int] = mapped_column(BigIntegerPrimaryKey, primary_key=True)
    # Short code printed under the QR and typed by a citizen whose camera cannot scan it.
    stall_code: Mapped[str] = mapped_column(String(8), unique=True)
    stall_name: Mapped[str] = mapped_column(String(100))
    commune_code: Mapped[str] = mapped_column(ForeignKey("communes.code"), index=True)
    owner_citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
