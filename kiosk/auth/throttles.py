"""Brute-force throttles shared by every worker: counters in the database, not in memory.

An attempt is counted *before* the secret is checked, in its own committed transaction, so that
neither a flood of parallel guesses nor the request's rollback can get around the limit; a correct
answer then clears the counter.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, and_, case, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from kiosk import database
from kiosk.auth.models import Throttle


@dataclass(frozen=True)
class ThrottlePolicy:
    attempts_max: int  # attempts allowed within the window before the key locks
    window_s: int
    lock_s: int


# A 6-digit PIN: 5 tries, then 15 minutes; the counter window is a day, so slow guessing
# (5 every 15 minutes) is still bounded by the daily lock below.
PIN_POLICY = ThrottlePolicy(attempts_max=5, window_s=24 * 3600, lock_s=15 * 60)
TOTP_POLICY = ThrottlePolicy(attempts_max=5, window_s=3600, lock_s=15 * 60)
FALLBACK_CODE_POLICY = ThrottlePolicy(attempts_max=5, window_s=3600, lock_s=30 * 60)


class Locked(Exception):
    def __init__(self, until: dt.datetime) -> None:
        super().__init__(f"locked until {until.isoformat()}")
        self.until = until


def count_attempt(working: Session, key: str, policy: ThrottlePolicy, now: dt.datetime) -> int:
    """Count one attempt against `key`, committed at once apart from ``working`` (the caller's
    session: on SQLite its transaction is ended first, so count before it writes, see
    `kiosk.database.apart`); raise `Locked` if over the limit. Returns how many more attempts
    the key has before it locks, should this one fail too (0: the next one locks it)."""
    with database.apart(working) as session:
        until, failures = _increment(session, key, policy, now)
    if until is not None and until > now:
        raise Locked(until)
    return max(0, policy.attempts_max - failures)


def _increment(
    session: Session, key: str, policy: ThrottlePolicy, now: dt.datetime
) -> tuple[dt.datetime | None, int]:
    window_start = now - dt.timedelta(seconds=policy.window_s)
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    table = cast(Table, Throttle.__table__)
    values = insert(table).values(key=key, failures=1, window_started_at=now, locked_until=None)
    # Counting starts afresh when the window has passed or a lock has run out, so that the
    # lock shown to the person ("until 10:15") is the whole of it.
    expired = or_(
        table.c.window_started_at < window_start,
        and_(table.c.locked_until.is_not(None), table.c.locked_until <= now),
    )
    new_failures = case((expired, 1), else_=table.c.failures + 1)
    still_locked = table.c.locked_until > now
    statement = values.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "failures": new_failures,
            "window_started_at": case((expired, now), else_=table.c.window_started_at),
            "locked_until": case(
                (still_locked, table.c.locked_until),
                (new_failures > policy.attempts_max, now + dt.timedelta(seconds=policy.lock_s)),
                else_=None,
            ),
        },
    ).returning(table.c.locked_until, table.c.failures)
    row = session.execute(statement).one()
    until: dt.datetime | None = row.locked_until
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=dt.UTC)
    return until, int(row.failures)


def lock_now(working: Session, key: str, policy: ThrottlePolicy, now: dt.datetime) -> dt.datetime:
    """Lock `key` for the policy's lock time from now, committed at once apart from ``working``
    (as `count_attempt`): for the attempt that used the key's last try and failed, so that the
    person is told of the lock then, not refused on the next try whatever they type. Returns
    until when."""
    until = now + dt.timedelta(seconds=policy.lock_s)
    with database.apart(working) as session:
        session.execute(update(Throttle).where(Throttle.key == key).values(locked_until=until))
    return until


def failed(
    working: Session, key: str, policy: ThrottlePolicy, now: dt.datetime, attempts_left: int
) -> None:
    """After a wrong answer: if it used the key's last try (``attempts_left`` from
    `count_attempt` is 0), lock the key now and raise `Locked`, so that the person is told of
    the lock with this answer rather than refused on the next whatever they type."""
    if attempts_left == 0:
        raise Locked(lock_now(working, key, policy, now))


def locked_until(session: Session, key: str, now: dt.datetime) -> dt.datetime | None:
    until = session.scalar(select(Throttle.locked_until).where(Throttle.key == key))
    return until if until is not None and until > now else None


def clear(session: Session, key: str) -> None:
    """Forget the attempts after a correct answer (in the request's own transaction)."""
    session.execute(delete(Throttle).where(Throttle.key == key))
