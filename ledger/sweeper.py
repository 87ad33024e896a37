"""Voiding reservations whose time has run out, in bulk.

Safe to run twice or concurrently: on PostgreSQL each sweeper skips the reservations another has
locked, and every void carries the idempotency key `expire:<pending id>`; the delete of the open
reservation row lets exactly one resolution through in any case.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ledger.posting import VoidPending, post_transfers, utc_now
from ledger.schema import OpenReservation

SWEEP_BATCH_SIZE_MAX = 1_000
EXPIRY_CODE = "expired"


def void_expired_reservations(
    session: Session,
    *,
    now: dt.datetime | None = None,
    limit: int = SWEEP_BATCH_SIZE_MAX,
    account_id: int | None = None,
) -> int:
    """Void up to `limit` expired reservations (of one account, if given); return how many.

    Flushes, never commits: the caller commits each batch and calls again until it returns 0.
    """
    now = now or utc_now()
    limit = max(1, min(limit, SWEEP_BATCH_SIZE_MAX))
    query = (
        select(OpenReservation.pending_id)
        .where(OpenReservation.expires_at <= now)
        .order_by(OpenReservation.pending_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if account_id is not None:
        query = query.where(
            or_(
                OpenReservation.debit_account_id == account_id,
                OpenReservation.credit_account_id == account_id,
            )
        )
    expired = list(session.scalars(query))
    if not expired:
        return 0
    post_transfers(
        session,
        [
            VoidPending(key=f"expire:{pending_id}", pending_id=pending_id, code=EXPIRY_CODE)
            for pending_id in expired
        ],
        now=now,
    )
    return len(expired)
