"""Welfare programmes, their pay cycles and the beneficiary rows of each cycle's list.

The money is in the ledger: each programme has a fund account (a welfare fund, which cannot go
negative); a row paid into a wallet names its transfer, and a cash voucher is an `IssuedCode`
whose reservation is held on the fund (the code names its row). Citizen ID numbers are kept as
an HMAC for lookups and the last four digits only, never in clear.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ledger.columns import BigIntegerPrimaryKey, Money, UTCDateTime
from ledger.schema import Base

PROGRAMME_NAME_LENGTH_MAX_CHARS = 120
CYCLE_LABEL_LENGTH_MAX_CHARS = 60
VOUCHER_VALIDITY_DAYS_MIN = 1
VOUCHER_VALIDITY_DAYS_MAX = 90
REASON_LENGTH_MAX_CHARS = 200


class CycleStatus(enum.StrEnum):
    DRAFT = "draft"  # no list yet, or the last upload had problems
    VALIDATED = "validated"  # a list whose every row is valid and whose total matches the fund
    AWAITING_APPROVAL = "awaiting_approval"  # sent to a second official
    PAID = "paid"  # approved: wallets paid and vouchers issued, in one transaction
    CLOSED = "closed"  # every voucher paid or expired; nothing moves any more


class RowStatus(enum.StrEnum):
    PENDING = "pending"  # on a list not approved yet
    PAID_TO_ACCOUNT = "paid_to_account"
    VOUCHER_ISSUED = "voucher_issued"
    VOUCHER_PAID = "voucher_paid"
    EXPIRED = "expired"  # the voucher ran out; its money went back to the fund
    FAILED = "failed"


def _known(column: str, values: type[enum.StrEnum]) -> str:
    listed = ", ".join(f"'{value.value}'" for value in values)
    return f"{column} IN ({listed})"


class WelfareProgramme(Base):
    """A commune's welfare programme and the ledger account that holds its fund."""

    __tablename__ = "welfare_programmes"
    __table_args__ = (UniqueConstraint("commune_code", "name"),)

    id: Mapped[int] = mapped_column(BigIntegerPrimaryKey, primary_key=True)
    commune_code: Mapped[str] = mapped_column(ForeignKey("communes.code"))
    name: Mapped[str] = mapped_column(String(PROGRAMME_NAME_LENGTH_MAX_CHARS))
    fund_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # "official:7", or "demo" / "admin" for the command line.
    created_by: Mapped[str] = mapped_column(String(64))


class PayCycle(Base):
    """One payment round of a programme ("Tháng 12/2026") and where its list stands."""

    __tablename__ = "welfare_pay_cycles"
    __table_args__ = (
        UniqueConstraint("programme_id", "label"),
        CheckConstraint(_known("status", CycleStatus), name="status_known"),
        CheckConstraint(
            f"voucher_validity_days BETWEEN {VOUCHER_VALIDITY_DAYS_MIN} "
            f"AND {VOUCHER_VALIDITY_DAYS_MAX}",
            name="validity_days_in_range",
        ),
        CheckConstraint("row_count >= 0 AND total_amount >= 0", name="totals_not_negative"),
        CheckConstraint(
            "(status IN ('paid', 'closed')) = "
            "(approved_at IS NOT NULL AND approved_by IS NOT NULL)",
            name="paid_when_approved",
        ),
        # Four eyes: the official who uploaded (or sent) the list never approves it.
        CheckConstraint(
            "approved_by IS NULL OR (uploaded_by IS NOT NULL AND approved_by <> uploaded_by "
            "AND (submitted_by IS NULL OR approved_by <> submitted_by))",
            name="not_approved_by_uploader",
        ),
        Index("ix_welfare_pay_cycles_approved_at", "approved_at"),
    )

    id: Mapped[int] = mapped_column(BigIntegerPrimaryKey, primary_key=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("welfare_programmes.id"), index=True)
    label: Mapped[str] = mapped_column(String(CYCLE_LABEL_LENGTH_MAX_CHARS))
    voucher_validity_days: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(20), default=CycleStatus.DRAFT)
    # The current list: how many rows and their total (0 while there is none).
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    total_amount: Mapped[int] = mapped_column(Money(), default=0)
    uploaded_by: Mapped[str | None] = mapped_column(String(64))
    uploaded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    submitted_by: Mapped[str | None] = mapped_column(String(64))
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Why the approver sent the list back (empty otherwise).
    returned_note: Mapped[str] = mapped_column(String(REASON_LENGTH_MAX_CHARS), default="")
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(64))


class BeneficiaryRow(Base):
    """One person on a cycle's list, and what became of their payment."""

    __tablename__ = "welfare_beneficiaries"
    __table_args__ = (
        UniqueConstraint("cycle_id", "row_number"),
        # A person is on a cycle's list once: the upload refuses duplicates, and so does this.
        UniqueConstraint("cycle_id", "citizen_id_lookup"),
        CheckConstraint(_known("status", RowStatus), name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("row_number > 0", name="row_number_positive"),
        CheckConstraint("length(citizen_id_last4) = 4", name="last4_four_digits"),
        CheckConstraint(
            "status <> 'paid_to_account' OR (transfer_id IS NOT NULL AND citizen_id IS NOT NULL)",
            name="paid_to_account_names_transfer",
        ),
        CheckConstraint("status <> 'failed' OR reason <> ''", name="failed_has_reason"),
        CheckConstraint(
            "(status = 'pending') = (paid_at IS NULL AND closed_at IS NULL)",
            name="pending_until_disbursed",
        ),
        Index("ix_welfare_beneficiaries_cycle_status", "cycle_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigIntegerPrimaryKey, primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("welfare_pay_cycles.id"))
    # The line of the uploaded file (the header is line 1), so officials find it in their file.
    row_number: Mapped[int] = mapped_column(Integer)
    citizen_id_lookup: Mapped[bytes] = mapped_column(LargeBinary(32))
    citizen_id_last4: Mapped[str] = mapped_column(String(4))
    full_name: Mapped[str] = mapped_column(String(100))
    amount: Mapped[int] = mapped_column(Money())
    # Normalised mobile number, when the list gave one.
    phone: Mapped[str | None] = mapped_column(String(15))
    status: Mapped[str] = mapped_column(String(20), default=RowStatus.PENDING)
    # Why a row got a voucher rather than a wallet payment, or why it failed.
    reason: Mapped[str] = mapped_column(String(REASON_LENGTH_MAX_CHARS), default="")
    # The citizen account of this person in the commune, when there is one.
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    # The transfer that paid the wallet (paid_to_account).
    transfer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("transfers.id"), unique=True)
    # When the cycle was disbursed (wallet paid or voucher issued).
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # When the voucher was paid out or expired.
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
