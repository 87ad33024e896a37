"""The citizen record. Personal data is stored encrypted or hashed, never in clear."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from kiosk.citizen_id import Sex
from ledger.columns import BigIntegerPrimaryKey, UTCDateTime
from ledger.schema import Base


class KycTier(enum.IntEnum):
    # Can receive money (welfare, transfers) but not withdraw or pay.
    UNVERIFIED = 0
    # An agent or team member saw the ID card in person.
    VERIFIED = 1


__all__ = ["Citizen", "KycTier", "Sex"]


class Citizen(Base):
    __tablename__ = "citizens"
    __table_args__ = (
        CheckConstraint("kyc_tier IN (0, 1)", name="kyc_tier_known"),
        CheckConstraint("sex IN ('male', 'female')", name="sex_known"),
        CheckConstraint("length(citizen_id_last4) = 4", name="last4_four_digits"),
        CheckConstraint(
            "kyc_tier = 0 OR (verified_at IS NOT NULL AND verified_by IS NOT NULL)",
            name="verified_says_by_whom",
        ),
    )

    id: Mapped[int] = mapped_column(BigIntegerPrimaryKey, primary_key=True)
    # Normalised Vietnamese mobile number, 10 digits starting with 0 ("0912345678").
    phone: Mapped[str] = mapped_column(String(15), unique=True)
    full_name: Mapped[str] = mapped_column(String(100))
    date_of_birth: Mapped[dt.date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(6))
    commune_code: Mapped[str] = mapped_column(ForeignKey("communes.code"), index=True)
    # The 12-digit ID number: AES-GCM ciphertext, an HMAC for lookups, and the last 4 digits
    # (shown masked, and checked by the agent against the card presented).
    citizen_id_ciphertext: Mapped[bytes] = mapped_column(LargeBinary(64))
    citizen_id_lookup: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    citizen_id_last4: Mapped[str] = mapped_column(String(4))
    kyc_tier: Mapped[int] = mapped_column(SmallInteger, default=KycTier.UNVERIFIED)
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    verified_by: Mapped[str | None] = mapped_column(String(64))
    # Argon2id hash; None while an account made on the citizen's behalf waits for its PIN.
    pin_hash: Mapped[str | None] = mapped_column(String(200))
    pin_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # The one-time code with which the citizen sets that first PIN on their own phone: only a
    # keyed hash is kept, cleared once used (see kiosk/citizens/pin_setup.py).
    pin_setup_code_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    pin_setup_code_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Optional second factor: encrypted secret, and the last time step accepted (each once).
    totp_secret_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary(128))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    consent_version: Mapped[str] = mapped_column(String(20))
    consent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # "self", or who registered the citizen on their behalf ("agent:12", "team:7").
    registered_by: Mapped[str] = mapped_column(String(64))
    wallet_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), unique=True)
    # Raised on PIN change and "sign out everywhere": older sessions stop working at once.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
