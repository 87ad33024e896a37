"""How money and time are shown, "1.500.000 ₫" and times in Asia/Ho_Chi_Minh, and how a typed
amount is read back."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Flask

LOCAL_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


# CLDR's Vietnamese currency pattern joins the number and the sign with a no-break space, so
# that a narrow phone screen never leaves "₫" alone at the start of a line.
NO_BREAK_SPACE = "\N{NO-BREAK SPACE}"
# What may follow a typed amount, compared in lower case: the sign, "đ", "d" and "VND".
_AMOUNT_SUFFIXES = ("₫", "đ", "vnd", "d")


def vnd(amount: int) -> str:
    """Vietnamese style: dots group thousands, the đồng sign follows ("1.500.000 ₫")."""
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount):,}{NO_BREAK_SPACE}₫".replace(",", ".")


def parse_vnd(text: str) -> int | None:
    """A typed amount in whole đồng, or None if it is not one.

    Dots, commas and any spaces (a no-break space too, as `vnd` writes and a pasted amount
    carries) may group the thousands, and "₫", "đ", "d" or "VND" may follow: "1.500.000",
    "1 500 000 ₫" and "1.500.000đ" are all 1500000. Only ASCII digits count.
    """
    compact = "".join(text.split()).replace(".", "").replace(",", "").lower()
    for suffix in _AMOUNT_SUFFIXES:
        if compact.endswith(suffix):
            compact = compact.removesuffix(suffix)
            break
    if not compact or not (compact.isascii() and compact.isdigit()):
        return None
    return int(compact)


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
