"""The JSON API's tables: per-device credentials, and the stored answers of idempotent requests.

A credential's secret is never stored: only its SHA-256 (the secret is 256 random bits, so a
slow password hash would add nothing but latency to every request). An idempotency record is
written before the work starts (state ``in_progress``, committed apart) and completed in the
same transaction as the work, so a stored answer exists exactly when the work was done.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ledger.columns import BigIntegerPrimaryKey, UTCDateTime
from ledger.schema import Base

CREDENTIAL_ID_LENGTH_CHARS = 20
CREDENTIAL_NAME_LENGTH_MAX_CHARS = 100
SCOPES_LENGTH_MAX_CHARS = 200
IDEMPOTENCY_KEY_LENGTH_MAX_CHARS = 255


class IdempotencyState(enum.StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


class ApiCredential(Base):
    """One device's or system's key to /api/v1: bound to an agent, or to a named system."""

    __tablename__ = "api_credentials"
    __table_args__ = (
        CheckConstraint("(agent_id IS NULL) <> (system_name IS NULL)", name="agent_or_system"),
        CheckConstraint("commune_code IS NULL OR province_code IS NULL", name="one_place_at_most"),
        CheckConstraint(
            "agent_id IS NULL OR (scopes = '' AND commune_code IS NULL AND province_code IS NULL)",
            name="agent_scoped_by_agent",
        ),
    )

    # Public, sent with every request before the dot ("sa_3f9c…"); the secret follows it.
    id: Mapped[str] = mapped_column(String(CREDENTIAL_ID_LENGTH_CHARS), primary_key=True)
    name: Mapped[str] = mapped_column(String(CREDENTIAL_NAME_LENGTH_MAX_CHARS))
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), index=True)
    system_name: Mapped[str | None] = mapped_column(String(64))
    # A system's scopes, space-separated ("indicators:read welfare:read"); empty for an agent.
    scopes: Mapped[str] = mapped_column(String(SCOPES_LENGTH_MAX_CHARS), default="")
    # A system's reach for reads: one commune, one province, or (both empty) the whole country.
    commune_code: Mapped[str | None] = mapped_column(ForeignKey("communes.code"))
    province_code: Mapped[str | None] = mapped_column(ForeignKey("provinces.code"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    @property
    def principal(self) -> str:
        return f"api:{self.id}"


class IdempotencyRecord(Base):
    """One (credential, Idempotency-Key): the request's fingerprint and, once done, its answer."""

    __tablename__ = "api_idempotency_records"
    __table_args__ = (
        UniqueConstraint("credential_id", "key"),
        CheckConstraint("state IN ('in_progress', 'completed')", name="state_known"),
        CheckConstraint(
            "(state = 'completed') = (response_status IS NOT NULL AND response_body IS NOT NULL)",
            name="completed_has_response",
        ),
    )

    id: Mapped[int] = mapped_column(BigIntegerPrimaryKey, primary_key=True)
    credential_id: Mapped[str] = mapped_column(ForeignKey("api_credentials.id"))
    key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_LENGTH_MAX_CHARS))
    # HMAC-SHA256 (under the app's secret key) of method, path, credential and canonical body:
    # a PIN in the body cannot be guessed back from it.
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    state: Mapped[str] = mapped_column(String(12))
    response_status: Mapped[int | None] = mapped_column(Integer)
    # The JSON answer, with secrets (a code's token) left out: those are made again on replay.
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    # When the current attempt started (a crashed attempt's record is taken over after a while).
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
