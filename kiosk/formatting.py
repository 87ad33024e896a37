"""How money and time are shown: "1.500.000 ₫" and times in Asia/Ho_Chi_Minh."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Flask

LOCAL_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def vnd(amount: int) -> str:
    """Vietnamese style: dots group thousands, the đồng sign follows ("1.500.000 ₫")."""
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount):,} ₫".replace(",", ".")


def local_time(value: dt.datetime, pattern: str = "%H:%M %d/%m/%Y") -> str:
    return value.astimezone(LOCAL_ZONE).strftime(pattern)


def local_date(value: dt.datetime | dt.date) -> str:
    if isinstance(value, dt.datetime):
        value = value.astimezone(LOCAL_ZONE).date()
    return value.strftime("%d/%m/%Y")


def local_today(now: dt.datetime) -> dt.date:
    return now.astimezone(LOCAL_ZONE).date()


def init_app(app: Flask) -> None:
    app.add_template_filter(vnd, "vnd")
    app.add_template_filter(local_time, "local_time")
    app.add_template_filter(local_date, "local_date")
