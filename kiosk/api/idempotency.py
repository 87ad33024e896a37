"""The ``Idempotency-Key`` of money-moving POSTs, kept in the database for every worker.

1. Claim: insert an ``in_progress`` record for (credential, key) in a transaction of its own,
   committed at once (INSERT … ON CONFLICT DO NOTHING, so two workers racing on one key cannot
   both win). If the key is there already: a different fingerprint → 422; a completed record →
   its stored answer again; still in progress → 409 (a record whose attempt started more than
   IN_PROGRESS_STALE_S ago belongs to a crashed worker and is taken over).
2. The work runs in the request's transaction, and `complete` writes the answer in that same
   transaction: the money and its stored answer commit together, or neither does.
3. A refusal (4xx) rolls the work back and stores the refusal apart, so that a retry gets the
   same answer; a 429 or a server error releases the key instead, so that a retry runs again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Table, delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from kiosk import database
from kiosk.api.models import (
    IDEMPOTENCY_KEY_LENGTH_MAX_CHARS,
    IdempotencyRecord,
    IdempotencyState,
)

# Longer than any request can run (gunicorn's worker timeout is 30 s): an attempt this old was
# cut off with its worker, and its transaction rolled back.
IN_PROGRESS_STALE_S = 5 * 60
# Records older than this may be pruned (`prune`); a retry after that is a new request.
RETENTION_S = 7 * 24 * 3600
PRUNE_BATCH_ROWS_MAX = 10_000


class KeyInvalid(ValueError):
    pass


@dataclass(frozen=True)
class Claimed:
    record_id: int


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict[str, Any]


class InProgress(Exception):
    pass


class KeyReused(Exception):
    pass


def check_key(raw: str) -> str:
    """A key is 1 to 255 visible ASCII characters (a UUID is the usual choice)."""
    if not 1 <= len(raw) <= IDEMPOTENCY_KEY_LENGTH_MAX_CHARS or not all(
        33 <= ord(character) <= 126 for character in raw
    ):
        raise KeyInvalid(raw)
    return raw


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(secret_key: str, *, method: str, path: str, credential_id: str, body: Any) -> bytes:
    message = b"\n".join(
        [method.encode(), path.encode(), credential_id.encode(), canonical_json(body)]
    )
    return hmac.new(secret_key.encode(), message, hashlib.sha256).digest()


def claim(
    working: Session, credential_id: str, key: str, print_: bytes, now: dt.datetime
) -> Claimed | Replay:
    """Claim ``key`` for this request (committed apart), or say what the key already holds.
    Raises `KeyReused` or `InProgress`."""
    table = cast(Table, IdempotencyRecord.__table__)
    with database.apart(working) as session:
        insert = (
            postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        )
        inserted = session.execute(
            insert(table)
            .values(
                credential_id=credential_id,
                key=key,
                fingerprint=print_,
                state=IdempotencyState.IN_PROGRESS.value,
                created_at=now,
                started_at=now,
            )
            .on_conflict_do_nothing(index_elements=[table.c.credential_id, table.c.key])
            .returning(table.c.id)
        ).scalar_one_or_none()
        if inserted is not None:
            return Claimed(inserted)
        found = session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.credential_id == credential_id, IdempotencyRecord.key == key
            )
        )
        assert found is not None, "an idempotency record is never deleted while in use"
        if not hmac.compare_digest(found.fingerprint, print_):
            raise KeyReused
        if found.state == IdempotencyState.COMPLETED:
            assert found.response_status is not None and found.response_body is not None
            return Replay(found.response_status, json.loads(found.response_body))
        stale_before = now - dt.timedelta(seconds=IN_PROGRESS_STALE_S)
        if found.started_at >= stale_before:
            raise InProgress
        # Take over a crashed attempt; of two takers, the one whose UPDATE matches wins.
        taken = cast(
            CursorResult[Any],
            session.execute(
                update(IdempotencyRecord)
                .where(
                    IdempotencyRecord.id == found.id,
                    IdempotencyRecord.state == IdempotencyState.IN_PROGRESS.value,
                    IdempotencyRecord.started_at == found.started_at,
                )
                .values(started_at=now)
            ),
        ).rowcount
        if taken != 1:
            raise InProgress
        return Claimed(found.id)


def _store(
    session: Session, record_id: int, status: int, body: dict[str, Any], now: dt.datetime
) -> None:
    session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == record_id)
        .values(
            state=IdempotencyState.COMPLETED.value,
            response_status=status,
            response_body=json.dumps(body, ensure_ascii=False),
            completed_at=now,
        )
    )


def complete(
    session: Session, record_id: int, status: int, body: dict[str, Any], now: dt.datetime
) -> None:
    """Store the answer in the request's transaction (it commits with the work)."""
    _store(session, record_id, status, body, now)
    session.flush()


def complete_apart(
    working: Session, record_id: int, status: int, body: dict[str, Any], now: dt.datetime
) -> None:
    """Store a refusal after the request's work was rolled back."""
    working.rollback()
    with database.apart(working) as session:
        _store(session, record_id, status, body, now)


def release(working: Session, record_id: int) -> None:
    """Forget the claim (a retry runs the request again)."""
    working.rollback()
    with database.apart(working) as session:
        session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.id == record_id,
                IdempotencyRecord.state == IdempotencyState.IN_PROGRESS.value,
            )
        )


def prune(session: Session, now: dt.datetime) -> int:
    """Delete completed records older than RETENTION_S (at most PRUNE_BATCH_ROWS_MAX a call)."""
    before = now - dt.timedelta(seconds=RETENTION_S)
    ids = (
        select(IdempotencyRecord.id)
        .where(
            IdempotencyRecord.created_at < before,
            IdempotencyRecord.state == IdempotencyState.COMPLETED.value,
        )
        .limit(PRUNE_BATCH_ROWS_MAX)
    )
    result = cast(
        CursorResult[Any],
        session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(ids))),
    )
    return int(result.rowcount or 0)
