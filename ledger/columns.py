"""Reusable column types: money in whole đồng and timestamps that are always UTC."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Integer
from sqlalchemy.types import TypeDecorator

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigIntegerPrimaryKey = BigInteger().with_variant(Integer(), "sqlite")


class Money(TypeDecorator[int]):
    """An amount in whole Vietnamese đồng. The đồng has no minor unit, so money is an integer."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"money must be an int of đồng, got {type(value).__name__}")
        return value


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores timestamptz; SQLite has no time zones, so the value is stored as naive UTC
    and made aware again on the way out. Naive datetimes are refused on the way in: a time without
    a zone is a bug waiting for a server in another zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise TypeError("timestamps must be timezone-aware datetimes")
        utc: dt.datetime = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return utc.replace(tzinfo=None)
        return utc

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        aware: dt.datetime = value
        if aware.tzinfo is None:
            return aware.replace(tzinfo=dt.UTC)
        return aware.astimezone(dt.UTC)
