"""Web sessions and attempt throttles."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from ledger.columns import UTCDateTime
from ledger.schema import Base


class WebSession(Base):
    """A signed-in browser. The cookie carries a random token; only its SHA-256 is stored."""

    __tablename__ = "web_sessions"
    __table_args__ = (
        CheckConstraint(
            "principal_kind IN ('citizen', 'agent', 'official')", name="principal_kind_known"
        ),
        Index("ix_web_sessions_principal", "principal_kind", "principal_id"),
    )

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    principal_kind: Mapped[str] = mapped_column(String(16))
    principal_id: Mapped[int] = mapped_column(BigInteger)
    # The principal's session_epoch when signed in; a higher epoch now means "signed out".
    epoch: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # When the user last proved a second factor in this session (step-up).
    step_up_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Throttle(Base):
    """Failed attempts against one key ("pin:0912345678", "fallback:0912345678", "ip:…")."""

    __tablename__ = "throttles"
    __table_args__ = (CheckConstraint("failures >= 0", name="failures_not_negative"),)

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
