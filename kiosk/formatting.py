"""How money and time are shown, "1.500.000 ₫" and times in Asia/Ho_Chi_Minh, and how a typed
amount is read back."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from flask import Flask

LOCAL_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


# CLDR's Vietnamese currency pattern joins the number and the sign with a no-break space, so
# that a narrow phone screen never leaves "₫" alone at the start of a line.
NO_BREAK_SPACE = "\N{NO-BREAK SPACE}"
MINUS_SIGN = "\N{MINUS SIGN}"
# What may follow a typed amount, compared in lower case: the sign, "đ", "d" and "VND".
_AMOUNT_SUFFIXES = ("₫", "đ", "vnd", "d")


def vnd(amount: int) -> str:
    """Vietnamese style: dots group thousands, the đồng sign follows ("1.500.000 ₫"), and a
    negative amount takes a true minus sign, as the citizen's history writes money out."""
    sign = MINUS_SIGN if amount < 0 else ""
    return f"{sign}{abs(amount):,}{NO_BREAK_SPACE}₫".replace(",", ".")


def signed_vnd(amount: int) -> str:
    """A change of money, its direction always written: "+200.000 ₫" in, a minus sign out."""
    return f"+{vnd(amount)}" if amount > 0 else vnd(amount)


# Digits alone, or groups of three after the first, all split by one kind of mark: a dot, a
# comma or a space (any space: a no-break space too, as `vnd` writes and a pasted amount carries).
_AMOUNT = re.compile(r"[0-9]+|[0-9]{1,3}(?P<mark>[.,\s])[0-9]{3}(?:(?P=mark)[0-9]{3})*")


def parse_vnd(text: str) -> int | None:
    """A typed amount in whole đồng, or None if it is not one.

    The thousands may be grouped, and "₫", "đ", "d" or "VND" may follow: "1.500.000",
    "1 500 000 ₫" and "1.500.000đ" are all 1500000. A group that is not three digits makes it
    no amount ("200.5" is not 2.005 ₫: someone meant something else), and only ASCII digits
    count.
    """
    compact = text.strip().lower()
    for suffix in _AMOUNT_SUFFIXES:
        if compact.endswith(suffix):
            compact = compact.removesuffix(suffix).rstrip()
            break
    if not _AMOUNT.fullmatch(compact):
        return None
    return int(re.sub(r"[^0-9]", "", compact))


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
    app.add_template_filter(signed_vnd, "signed_vnd")
    app.add_template_filter(local_time, "local_time")
    app.add_template_filter(local_date, "local_date")
