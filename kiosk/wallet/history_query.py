"""The history page's query string: parsed and validated into a `HistoryQuery`, or refused.

Parameters (all optional, each at most once; an empty value means "not set", as a GET form sends
for a field left blank):

    direction  all | in | out
    kind       a key of `kiosk.wallet.kinds.KINDS` ("cash_in", "withdrawal", ...)
    from, to   a local date (Asia/Ho_Chi_Minh), inclusive: 2025-06-30 (what a date field sends)
               or 30/06/2025 (what a person types where the phone has no date picker)
    before     the keyset cursor of the next page: a positive whole number

Anything else is refused with `InvalidHistoryQuery`, whose message tells the person in plain
Vietnamese what to fix. Links on the page are built from `HistoryQuery.link_args`, so a page's
own links always parse.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from flask_babel import lazy_gettext  # type: ignore[import-untyped]
from werkzeug.datastructures import MultiDict

from kiosk.formatting import LOCAL_ZONE
from kiosk.wallet.kinds import KINDS_BY_KEY

QUERY_VALUE_LENGTH_MAX_CHARS = 32
QUERY_PARAMETERS_MAX = 10
CURSOR_MAX = 2**63 - 1
DATE_YEAR_MIN = 2000
DATE_YEAR_MAX = 2099
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_LOCAL_DATE = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})")

# What each parameter is called on the page, for messages.
PARAMETER_LABELS: dict[str, str] = {
    "direction": lazy_gettext("Chiều tiền"),
    "kind": lazy_gettext("Loại giao dịch"),
    "from": lazy_gettext("Từ ngày"),
    "to": lazy_gettext("Đến ngày"),
    "before": lazy_gettext("Trang"),
}


class InvalidHistoryQuery(ValueError):
    """A query parameter the history page cannot use; `message` is for the citizen."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Direction(enum.StrEnum):
    ALL = "all"
    IN = "in"  # money into the wallet
    OUT = "out"  # money out of the wallet (and reservations on it)


DIRECTION_LABELS: dict[Direction, str] = {
    Direction.ALL: lazy_gettext("Tất cả"),
    Direction.IN: lazy_gettext("Tiền vào"),
    Direction.OUT: lazy_gettext("Tiền ra"),
}


@dataclass(frozen=True)
class HistoryQuery:
    direction: Direction = Direction.ALL
    kind: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    before: int | None = None

    @property
    def filtered(self) -> bool:
        return (
            self.direction is not Direction.ALL
            or self.kind is not None
            or self.date_from is not None
            or self.date_to is not None
        )

    @property
    def created_from(self) -> dt.datetime | None:
        """The first instant of `date_from` in local time, as an aware datetime."""
        if self.date_from is None:
            return None
        return dt.datetime.combine(self.date_from, dt.time(), tzinfo=LOCAL_ZONE)

    @property
    def created_until(self) -> dt.datetime | None:
        """The first instant after `date_to` in local time (the range excludes it)."""
        if self.date_to is None:
            return None
        return dt.datetime.combine(
            self.date_to + dt.timedelta(days=1), dt.time(), tzinfo=LOCAL_ZONE
        )

    def link_args(self, *, before: int | None = None) -> dict[str, str]:
        """Query arguments for a link to this view (filters kept), at cursor `before`."""
        args: dict[str, str] = {}
        if self.direction is not Direction.ALL:
            args["direction"] = self.direction.value
        if self.kind is not None:
            args["kind"] = self.kind
        if self.date_from is not None:
            args["from"] = self.date_from.isoformat()
        if self.date_to is not None:
            args["to"] = self.date_to.isoformat()
        if before is not None:
            args["before"] = str(before)
        return args

    def first_page(self) -> HistoryQuery:
        return replace(self, before=None)


def parse_history_query(args: MultiDict[str, str] | Mapping[str, str]) -> HistoryQuery:
    """Validate the history page's query string; raise `InvalidHistoryQuery` on anything off."""
    values = args if isinstance(args, MultiDict) else MultiDict(args)
    if len(values) > QUERY_PARAMETERS_MAX:
        raise InvalidHistoryQuery(lazy_gettext("Địa chỉ trang có quá nhiều thông tin."))
    single: dict[str, str] = {}
    for name in values:
        if name not in PARAMETER_LABELS:
            raise InvalidHistoryQuery(
                lazy_gettext(
                    "Địa chỉ trang có thông tin không dùng được. "
                    "Hãy mở lại trang Lịch sử từ trang chính."
                )
            )
        found = values.getlist(name)
        if len(found) != 1:
            raise InvalidHistoryQuery(
                lazy_gettext(
                    "Mục “%(field)s” có nhiều hơn một giá trị. Hãy chọn lại rồi bấm “Xem”.",
                    field=PARAMETER_LABELS[name],
                )
            )
        value = found[0].strip()
        if len(value) > QUERY_VALUE_LENGTH_MAX_CHARS:
            raise _bad_value(name)
        if value:
            single[name] = value

    direction = Direction.ALL
    if "direction" in single:
        try:
            direction = Direction(single["direction"])
        except ValueError:
            raise _bad_value("direction") from None
    kind = single.get("kind")
    if kind is not None and kind not in KINDS_BY_KEY:
        raise _bad_value("kind")
    date_from = _parse_date("from", single.get("from"))
    date_to = _parse_date("to", single.get("to"))
    if date_from is not None and date_to is not None and date_from > date_to:
        raise InvalidHistoryQuery(
            lazy_gettext("“Từ ngày” phải là trước hoặc cùng ngày với “Đến ngày”.")
        )
    before = _parse_cursor(single.get("before"))
    return HistoryQuery(direction, kind, date_from, date_to, before)


def _bad_value(name: str) -> InvalidHistoryQuery:
    messages: dict[str, str] = {
        "direction": lazy_gettext(
            "“Chiều tiền” không đúng. Hãy chọn “Tất cả”, “Tiền vào” hoặc “Tiền ra”."
        ),
        "kind": lazy_gettext("“Loại giao dịch” không đúng. Hãy chọn một loại trong danh sách."),
        "from": lazy_gettext(
            "“Từ ngày” không phải là một ngày đúng. Hãy ghi theo kiểu ngày/tháng/năm, "
            "ví dụ 25/12/2025."
        ),
        "to": lazy_gettext(
            "“Đến ngày” không phải là một ngày đúng. Hãy ghi theo kiểu ngày/tháng/năm, "
            "ví dụ 25/12/2025."
        ),
        "before": lazy_gettext(
            "Địa chỉ trang lịch sử không đúng. Hãy mở lại trang Lịch sử từ đầu."
        ),
    }
    return InvalidHistoryQuery(messages[name])


def _parse_date(name: str, value: str | None) -> dt.date | None:
    if value is None:
        return None
    iso = _ISO_DATE.fullmatch(value)
    local = _LOCAL_DATE.fullmatch(value)
    if iso is not None:
        year, month, day = (int(part) for part in iso.groups())
    elif local is not None:
        day, month, year = (int(part) for part in local.groups())
    else:
        raise _bad_value(name)
    if not DATE_YEAR_MIN <= year <= DATE_YEAR_MAX:
        raise _bad_value(name)
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise _bad_value(name) from None


def _parse_cursor(value: str | None) -> int | None:
    if value is None:
        return None
    # isdigit() alone accepts other scripts' digits ("١٢"); the cursor is ASCII only.
    if not (value.isascii() and value.isdigit()) or value.startswith("0"):
        raise _bad_value("before")
    cursor = int(value)
    if cursor > CURSOR_MAX:
        raise _bad_value("before")
    return cursor
