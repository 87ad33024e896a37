"""The adoption indicators of a commune, computed from the roll-up's aggregates (never from the
ledger itself), with their definitions, denominators, intervals and targets.

Every rate is a summed numerator over a summed denominator: a province's or a quarter's rate is
never an average of its communes' or months' rates. A figure without its denominator has no rate
and says why, rather than showing a number nobody entered.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from flask_babel import gettext as _  # type: ignore[import-untyped]
from flask_babel import lazy_gettext
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    String,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from kiosk.adoption import rollup
from kiosk.adoption.denominators import DenominatorKind, targets_of
from kiosk.adoption.models import (
    AdoptionDenominator,
    CohortCounts,
    LastActiveDays,
    MedianDaysToFirstPayment,
    MonthlyActive,
)
from kiosk.community.models import (
    ChecklistEntry,
    ChecklistStep,
    Evidence,
    Official,
    OfficialRole,
    Person,
    StepStatus,
    Visit,
)
from kiosk.formatting import LOCAL_ZONE
from kiosk.places.models import Commune
from kiosk.welfare.indicators import cycle_figures

# Below this many people in the denominator a rate moves a lot with one person: flagged.
SMALL_DENOMINATOR_MAX = 30
# z for a two-sided 95 % interval.
WILSON_Z = 1.959963984540054
RANKING_LIMIT_MAX = 500
TREND_MONTHS_MAX = 36
FUNNEL_MONTHS_MAX = 36
ACTIVE_WINDOW_DAYS = 30


@dataclass(frozen=True)
class Period:
    kind: str  # "month" | "quarter" | "ytd" | "year"
    year: int
    number: int  # month 1-12, quarter 1-4, for ytd the month reached, for year 0
    start: dt.date
    end: dt.date  # exclusive
    label: str  # "Tháng 11/2026", "Quý 4/2026", "Từ đầu năm 2026 đến 23/11", "Năm 2026"


@dataclass(frozen=True)
class Definition:
    key: str
    label: str
    numerator_label: str
    denominator_label: str
    text: str  # how it is computed, in plain Vietnamese
    evidence: str  # "system" | "self_reported" | "mixed"
    per_1000: bool  # also shown per 1,000 adults


@dataclass(frozen=True)
class Figure:
    key: str
    numerator: int  # a summed count (đồng for *_value, days for the median)
    denominator: int | None  # None when not applicable or not entered (then rate is None)
    rate: float | None  # numerator / denominator from the sums, never averaged
    per_1000: float | None  # numerator per 1,000 adults, when the definition asks for it
    interval: tuple[float, float] | None  # Wilson 95 % interval of the rate
    small_denominator: bool  # denominator < SMALL_DENOMINATOR_MAX
    missing: str | None  # why there is no rate, else None
    # Extra detail, shown next to the figure: the exact median (may end in .5), a note on how a
    # past period was counted, and the numerator split by evidence ("system", "seen_on_phone",
    # "self_reported") for the checklist.
    value: float | None = None
    note: str | None = None
    breakdown: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class RankingRow:
    rank: int
    commune_code: str
    commune_name: str
    figure: Figure


@dataclass(frozen=True)
class FunnelRow:
    month: dt.date  # first day of the onboarding month
    created: int
    verified: int
    first_money_in: int
    first_payment: int


@dataclass(frozen=True)
class TargetProgress:
    key: str
    year: int
    target_rate: float
    numerator: int
    denominator: int
    people_still_needed: int
    months_left: int  # months of the year left, the current one included
    monthly_pace_needed: int  # people per month
    source: str
    entered_on: dt.date


INDICATOR_KEYS = (
    "accounts_created",
    "adults_with_account",
    "verified_of_created",
    "first_money_in_of_created",
    "first_payment_of_created",
    "median_days_to_first_payment",
    "active_30_days_of_adults",
    "welfare_cashless_of_paid_count",
    "welfare_cashless_of_paid_value",
    "checklist_completion",
    "households_visited",
    "team_visits_per_member_week",
)


def _definition(
    key: str,
    label: str,
    numerator_label: str,
    denominator_label: str,
    text: str,
    *,
    evidence: str = "system",
    per_1000: bool = False,
) -> Definition:
    return Definition(key, label, numerator_label, denominator_label, text, evidence, per_1000)


# In the order of INDICATOR_KEYS. Lazy strings: translated when shown.
DEFINITIONS: dict[str, Definition] = {
    definition.key: definition
    for definition in (
        _definition(
            "accounts_created",
            lazy_gettext("Tài khoản mở mới"),
            lazy_gettext("Tài khoản mở trong kỳ"),
            lazy_gettext("Số người từ 15 tuổi trở lên"),
            lazy_gettext(
                "Số tài khoản ví của người dân cư trú tại xã được mở trong kỳ (theo ngày mở "
                "tài khoản trong hệ thống). Kèm theo số tài khoản trên 1.000 người từ 15 tuổi "
                "trở lên, theo số người lớn xã đã nhập cho năm đó."
            ),
            per_1000=True,
        ),
        _definition(
            "adults_with_account",
            lazy_gettext("Người lớn có tài khoản"),
            lazy_gettext("Người dân có tài khoản (tính đến cuối kỳ)"),
            lazy_gettext("Số người từ 15 tuổi trở lên"),
            lazy_gettext(
                "Tổng số tài khoản ví của người dân cư trú tại xã đã mở từ trước đến cuối kỳ, "
                "chia cho số người từ 15 tuổi trở lên mà xã đã nhập cho năm đó (kèm nguồn số "
                "liệu). Mỗi người chỉ có một tài khoản."
            ),
            per_1000=True,
        ),
        _definition(
            "verified_of_created",
            lazy_gettext("Tài khoản đã xác minh"),
            lazy_gettext("Tài khoản mở trong kỳ đã được xác minh"),
            lazy_gettext("Tài khoản mở trong kỳ"),
            lazy_gettext(
                "Trong số tài khoản mở trong kỳ, số tài khoản đã được giao dịch viên hoặc tổ "
                "công nghệ số xác minh trực tiếp bằng thẻ căn cước (tính đến hôm nay)."
            ),
        ),
        _definition(
            "first_money_in_of_created",
            lazy_gettext("Đã nạp hoặc nhận tiền lần đầu"),
            lazy_gettext("Tài khoản mở trong kỳ đã có tiền vào"),
            lazy_gettext("Tài khoản mở trong kỳ"),
            lazy_gettext(
                "Trong số tài khoản mở trong kỳ, số tài khoản đã có tiền vào ví ít nhất một "
                "lần: nạp tiền tại bưu điện, nhận trợ cấp hoặc nhận tiền khác (không tính "
                "tiền hoàn lại)."
            ),
        ),
        _definition(
            "first_payment_of_created",
            lazy_gettext("Đã thanh toán không dùng tiền mặt"),
            lazy_gettext("Tài khoản mở trong kỳ đã thanh toán không dùng tiền mặt"),
            lazy_gettext("Tài khoản mở trong kỳ"),
            lazy_gettext(
                "Trong số tài khoản mở trong kỳ, số tài khoản đã trả tiền không dùng tiền "
                "mặt ít nhất một lần: trả tiền ở chợ, cửa hàng bằng mã QR, hoặc trả hóa đơn "
                "bằng mã thanh toán. Chỉ tính khoản đã trả xong, không tính mã còn chờ."
            ),
        ),
        _definition(
            "median_days_to_first_payment",
            lazy_gettext("Số ngày từ mở tài khoản đến lần thanh toán đầu"),
            lazy_gettext("Số ngày (trung vị)"),
            lazy_gettext("Số người đã thanh toán"),
            lazy_gettext(
                "Trong số tài khoản mở trong kỳ đã thanh toán không dùng tiền mặt, số ngày "
                "từ ngày mở tài khoản đến lần thanh toán đầu tiên của người ở giữa (trung "
                "vị): một nửa số người nhanh hơn, một nửa chậm hơn."
            ),
        ),
        _definition(
            "active_30_days_of_adults",
            lazy_gettext("Người dùng thường xuyên (30 ngày)"),
            lazy_gettext("Người có giao dịch trong 30 ngày gần nhất"),
            lazy_gettext("Số người từ 15 tuổi trở lên"),
            lazy_gettext(
                "Số người dân của xã có ít nhất một giao dịch của chính mình (nạp tiền, rút "
                "tiền, thanh toán) trong 30 ngày gần nhất, chia cho số người từ 15 tuổi trở "
                "lên. Với kỳ đã qua: số người có giao dịch trong tháng cuối của kỳ. Tiền trợ "
                "cấp chuyển vào ví không tính là giao dịch của người dân."
            ),
            per_1000=True,
        ),
        _definition(
            "welfare_cashless_of_paid_count",
            lazy_gettext("Trợ cấp chi trả không dùng tiền mặt (số người)"),
            lazy_gettext("Lượt chi trả vào tài khoản"),
            lazy_gettext("Lượt đã chi trả"),
            lazy_gettext(
                "Cộng tất cả các đợt chi trả trợ cấp của xã trong kỳ: số lượt được chuyển "
                "thẳng vào ví, chia cho số lượt đã chi trả (vào ví hoặc bằng phiếu nhận tiền "
                "mặt đã nhận). Ví dụ 185 trên 200 người là 92,5%."
            ),
        ),
        _definition(
            "welfare_cashless_of_paid_value",
            lazy_gettext("Trợ cấp chi trả không dùng tiền mặt (số tiền)"),
            lazy_gettext("Số tiền chuyển vào tài khoản (đồng)"),
            lazy_gettext("Số tiền đã chi trả (đồng)"),
            lazy_gettext(
                "Cộng tất cả các đợt chi trả trợ cấp của xã trong kỳ: số tiền được chuyển "
                "thẳng vào ví, chia cho tổng số tiền đã chi trả (vào ví hoặc bằng tiền mặt)."
            ),
        ),
        _definition(
            "checklist_completion",
            lazy_gettext("Hoàn thành danh mục hướng dẫn"),
            lazy_gettext("Bước đã hoàn thành"),
            lazy_gettext("Bước cần làm"),
            lazy_gettext(
                "Cộng mọi người dân tổ công nghệ số đã đăng ký đến cuối kỳ: số bước trong "
                "danh mục đã làm xong, chia cho số bước cần làm (9 bước với người hưởng trợ "
                "cấp, 8 bước với người khác, trừ các bước ghi là không áp dụng). Có bước do "
                "hệ thống xác nhận, có bước do người dân tự khai hoặc tổ viên xem trên điện "
                "thoại: số bước mỗi loại được ghi rõ bên cạnh."
            ),
            evidence="mixed",
        ),
        _definition(
            "households_visited",
            lazy_gettext("Hộ gia đình đã được đến thăm"),
            lazy_gettext("Hộ đã được đến thăm (tính đến cuối kỳ)"),
            lazy_gettext("Số hộ gia đình của xã"),
            lazy_gettext(
                "Số hộ gia đình tổ công nghệ số đã đến thăm ít nhất một lần từ trước đến cuối "
                "kỳ, chia cho số hộ gia đình của xã mà xã đã nhập cho năm đó (kèm nguồn)."
            ),
        ),
        _definition(
            "team_visits_per_member_week",
            lazy_gettext("Lượt thăm hộ mỗi tổ viên mỗi tuần"),
            lazy_gettext("Lượt thăm hộ trong kỳ"),
            lazy_gettext("Số tổ viên đang hoạt động"),
            lazy_gettext(
                "Số lượt đến thăm hộ gia đình trong kỳ, chia cho số tổ viên tổ công nghệ số "
                "của xã, rồi chia cho số tuần của kỳ (tính đến hôm nay nếu kỳ chưa hết)."
            ),
        ),
    )
}
assert tuple(DEFINITIONS) == INDICATOR_KEYS


_MONTH = re.compile(r"(\d{4})-(\d{1,2})")
_QUARTER = re.compile(r"(\d{4})-[Qq]([1-4])")
_YEAR_TO_DATE = re.compile(r"(\d{4})-ytd")
_YEAR = re.compile(r"(\d{4})")
PERIOD_YEAR_MIN = 2020
PERIOD_YEAR_MAX = 2100


def _add_months(month: dt.date, count: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def parse_period(raw: str, today: dt.date) -> Period:
    """ "2026-11" (month), "2026-Q4" (quarter), "2026-ytd" (year to date), "2026" (year).
    ValueError for anything else, and for a year to date of a year not begun."""
    text = raw.strip()
    for pattern in (_MONTH, _QUARTER, _YEAR_TO_DATE, _YEAR):
        match = pattern.fullmatch(text)
        if match is not None:
            break
    else:
        raise ValueError(f"not a period: {raw!r}")
    year = int(match.group(1))
    if not PERIOD_YEAR_MIN <= year <= PERIOD_YEAR_MAX:
        raise ValueError(f"year out of range: {raw!r}")
    if pattern is _MONTH:
        number = int(match.group(2))
        if not 1 <= number <= 12:
            raise ValueError(f"no such month: {raw!r}")
        start = dt.date(year, number, 1)
        return Period(
            "month",
            year,
            number,
            start,
            _add_months(start, 1),
            _("Tháng %(month)s/%(year)s", month=f"{number:02d}", year=year),
        )
    if pattern is _QUARTER:
        number = int(match.group(2))
        start = dt.date(year, 3 * number - 2, 1)
        return Period(
            "quarter",
            year,
            number,
            start,
            _add_months(start, 3),
            _("Quý %(quarter)s/%(year)s", quarter=number, year=year),
        )
    start = dt.date(year, 1, 1)
    if pattern is _YEAR:
        return Period("year", year, 0, start, dt.date(year + 1, 1, 1), _("Năm %(year)s", year=year))
    if year > today.year:
        raise ValueError(f"the year has not begun: {raw!r}")
    last = today if year == today.year else dt.date(year, 12, 31)
    return Period(
        "ytd",
        year,
        last.month,
        start,
        last + dt.timedelta(days=1),
        _(
            "Từ đầu năm %(year)s đến %(day)s",
            year=year,
            day=f"{last.day:02d}/{last.month:02d}",
        ),
    )


def period_key(period: Period) -> str:
    """The inverse of parse_period."""
    if period.kind == "month":
        return f"{period.year}-{period.number:02d}"
    if period.kind == "quarter":
        return f"{period.year}-Q{period.number}"
    if period.kind == "ytd":
        return f"{period.year}-ytd"
    return f"{period.year}"


def month_period(month: dt.date) -> Period:
    """The period of one calendar month."""
    return parse_period(f"{month.year}-{month.month:02d}", month)


# --- Arithmetic -----------------------------------------------------------------------------------


def wilson_interval(successes: int, trials: int, z: float = WILSON_Z) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95 % by default); None when it has no sense."""
    if trials <= 0 or not 0 <= successes <= trials:
        return None
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _per_1000(numerator: int, adults: int | None) -> float | None:
    if not adults:
        return None
    return numerator * 1000 / adults


def _share(
    key: str,
    numerator: int,
    denominator: int | None,
    *,
    missing: str | None,
    adults: int | None = None,
    interval: bool = True,
    note: str | None = None,
    breakdown: tuple[tuple[str, int], ...] = (),
) -> Figure:
    """A figure numerator / denominator, with its interval and flags."""
    per_1000 = _per_1000(numerator, adults) if DEFINITIONS[key].per_1000 else None
    if denominator is None or denominator <= 0:
        return Figure(
            key,
            numerator,
            denominator,
            None,
            per_1000,
            None,
            denominator is not None,
            missing,
            note=note,
            breakdown=breakdown,
        )
    return Figure(
        key,
        numerator,
        denominator,
        numerator / denominator,
        per_1000,
        wilson_interval(numerator, denominator) if interval else None,
        denominator < SMALL_DENOMINATOR_MAX,
        None,
        note=note,
        breakdown=breakdown,
    )


# --- Reading the aggregates -----------------------------------------------------------------------


def _local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), LOCAL_ZONE).astimezone(dt.UTC)


@dataclass(frozen=True)
class _Scope:
    """One commune, or every commune of a province: the same queries, filtered either way."""

    commune_code: str | None = None
    province_code: str | None = None


@dataclass
class _Counts:
    """Everything the figures of one commune need, read from the aggregates."""

    adults: int | None = None
    households: int | None = None
    created: int = 0
    verified: int = 0
    first_money_in: int = 0
    first_payment: int = 0
    created_to_end: int = 0
    first_payers: int = 0
    median_days: float | None = None
    active: int = 0
    welfare_paid: int = 0
    welfare_cashless: int = 0
    welfare_paid_value: int = 0
    welfare_cashless_value: int = 0
    welfare_cycles: int = 0
    steps_done: dict[str, int] = field(default_factory=dict)  # by evidence
    steps_not_applicable: int = 0
    persons: int = 0
    beneficiaries: int = 0
    households_visited: int = 0
    visits: int = 0
    team_members: int = 0


_NEEDS = {
    "accounts_created": {"denominators", "cohorts"},
    "adults_with_account": {"denominators", "cohorts"},
    "verified_of_created": {"cohorts"},
    "first_money_in_of_created": {"cohorts"},
    "first_payment_of_created": {"cohorts"},
    "median_days_to_first_payment": {"days"},
    "active_30_days_of_adults": {"denominators", "active"},
    "welfare_cashless_of_paid_count": {"welfare"},
    "welfare_cashless_of_paid_value": {"welfare"},
    "checklist_completion": {"checklist"},
    "households_visited": {"denominators", "visited"},
    "team_visits_per_member_week": {"visits"},
}


def _read_counts(
    session: Session,
    scope: _Scope,
    *,
    commune_codes: Sequence[str],
    period: Period,
    today: dt.date,
    keys: Iterable[str],
) -> dict[str, _Counts]:
    """The counts behind the figures of `keys`, for every commune of the scope: one statement
    (each count a branch of a UNION ALL, all read from aggregates or from covering indexes), and
    one for the welfare cycles — whatever the communes and the transfers."""
    needs: set[str] = set().union(*(_NEEDS[key] for key in keys))
    counts: dict[str, _Counts] = {code: _Counts() for code in commune_codes}

    def of(code: str) -> _Counts:
        return counts.setdefault(code, _Counts())

    counted = tuple(need for need in _BRANCHES if need in needs)
    if counted:
        statement = _statement(counted, scope.province_code is not None, period.end <= today)
        parameters = {
            "scope_code": scope.commune_code or scope.province_code,
            "year": period.year,
            "start": period.start,
            "end": period.end,
            "start_at": _local_midnight(period.start),
            "end_at": _local_midnight(period.end),
            "visits_end_at": _local_midnight(_visits_end(period, today)),
            "since": today - dt.timedelta(days=ACTIVE_WINDOW_DAYS - 1),
            "last_month": _last_month(period),
            "median_kind": _MEDIAN_KINDS[period.kind],
        }
        for code, tag, detail, n1, n2, n3, n4, n5 in session.execute(statement, parameters):
            entry = of(code)
            if tag == "denominator":
                if detail == DenominatorKind.ADULTS:
                    entry.adults = int(n1)
                else:
                    entry.households = int(n1)
            elif tag == "cohorts":
                entry.created, entry.verified = int(n1), int(n2)
                entry.first_money_in, entry.first_payment = int(n3), int(n4)
                entry.created_to_end = int(n5)
            elif tag == "days":
                # A stored median has at least one payer (a CHECK constraint says so).
                entry.first_payers, entry.median_days = int(n1), (int(n2) + int(n3)) / 2
            elif tag == "active":
                entry.active = int(n1)
            elif tag == "steps":
                if n1:
                    entry.steps_done[detail] = entry.steps_done.get(detail, 0) + int(n1)
                entry.steps_not_applicable += int(n2)
            elif tag == "persons":
                entry.persons, entry.beneficiaries = int(n1), int(n2)
            elif tag == "visited":
                entry.households_visited = int(n1)
            elif tag == "visits":
                entry.visits = int(n1)
            else:
                assert tag == "members", tag
                entry.team_members = int(n1)
    if "welfare" in needs:
        figures = cycle_figures(session, list(commune_codes), period.start, period.end)
        for code, cycles in figures.items():
            entry = of(code)
            for cycle in cycles:
                entry.welfare_cycles += 1
                entry.welfare_paid += cycle.paid_count
                entry.welfare_cashless += cycle.cashless_count
                entry.welfare_paid_value += cycle.paid_value
                entry.welfare_cashless_value += cycle.cashless_value
    return counts


# Each count is a branch of one UNION ALL with the same columns: the commune, what is counted
# (`tag`), a text detail, and up to five numbers (0 where unused).
_NUMBERS = 5
# One instance of each type: a type made afresh on each call costs its cache key every time.
_TEXT = String()
_COUNT = BigInteger()


def _row(code: Any, tag: str, detail: Any = None, *numbers: Any) -> list[Any]:
    columns: list[Any] = [
        code.label("code"),
        literal_column(f"'{tag}'", _TEXT).label("tag"),
        (cast(null(), _TEXT) if detail is None else cast(detail, _TEXT)).label("detail"),
    ]
    for index in range(_NUMBERS):
        number = numbers[index] if index < len(numbers) else literal_column("0")
        columns.append(cast(number, _COUNT).label(f"n{index + 1}"))
    return columns


def _count_if(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _denominators_branch(in_scope: _InScope, past: bool) -> Select[Any]:
    return select(
        *_row(
            AdoptionDenominator.commune_code,
            "denominator",
            AdoptionDenominator.kind,
            AdoptionDenominator.value,
        )
    ).where(
        in_scope(AdoptionDenominator.commune_code),
        AdoptionDenominator.year == bindparam("year"),
        AdoptionDenominator.kind.in_(
            (DenominatorKind.ADULTS.value, DenominatorKind.HOUSEHOLDS.value)
        ),
    )


def _cohorts_branch(in_scope: _InScope, past: bool) -> Select[Any]:
    in_period = CohortCounts.cohort_month >= bindparam("start")

    def within(column: Any) -> Any:
        return func.coalesce(func.sum(case((in_period, column), else_=0)), 0)

    return (
        select(
            *_row(
                CohortCounts.commune_code,
                "cohorts",
                None,
                within(CohortCounts.created),
                within(CohortCounts.verified),
                within(CohortCounts.first_money_in),
                within(CohortCounts.first_payment),
                func.coalesce(func.sum(CohortCounts.created), 0),
            )
        )
        .where(in_scope(CohortCounts.commune_code), CohortCounts.cohort_month < bindparam("end"))
        .group_by(CohortCounts.commune_code)
    )


def _days_branch(in_scope: _InScope, past: bool) -> Select[Any]:
    """Per commune: how many people of the period's cohorts made a first cashless payment, and
    the two middle values of their days to it, as the roll-up stored them for the period."""
    median = MedianDaysToFirstPayment
    return select(
        *_row(
            median.commune_code, "days", None, median.payers, median.lower_days, median.upper_days
        )
    ).where(
        in_scope(median.commune_code),
        median.period_kind == bindparam("median_kind"),
        median.period_start == bindparam("start"),
    )


def _active_branch(in_scope: _InScope, past: bool) -> Select[Any]:
    """A period not over: people active in the last 30 days (at most 30 days of the histogram
    of last active days per commune); a period over: people active in its last month."""
    if past:
        return select(
            *_row(MonthlyActive.commune_code, "active", None, MonthlyActive.people)
        ).where(
            in_scope(MonthlyActive.commune_code),
            MonthlyActive.month == bindparam("last_month"),
        )
    return (
        select(*_row(LastActiveDays.commune_code, "active", None, func.sum(LastActiveDays.people)))
        .where(
            in_scope(LastActiveDays.commune_code),
            LastActiveDays.day >= bindparam("since"),
        )
        .group_by(LastActiveDays.commune_code)
    )


def _steps_branch(in_scope: _InScope, past: bool) -> Select[Any]:
    """Steps done (by evidence) and not applicable, of the persons registered by the end of
    the period; the welfare step counts for beneficiaries only. An entry's commune is its
    person's: both sides are read from their commune's covering index."""
    counted_step = or_(
        ChecklistEntry.step != ChecklistStep.WELFARE_ACCOUNT.value, Person.welfare_beneficiary
    )
    return (
        select(
            *_row(
                ChecklistEntry.commune_code,
                "steps",
                ChecklistEntry.evidence,
                _count_if(ChecklistEntry.status == StepStatus.DONE.value),
                _count_if(ChecklistEntry.status == StepStatus.NOT_APPLICABLE.value),
            )
        )
        .join(Person, Person.id == ChecklistEntry.person_id)
        .where(
            in_scope(ChecklistEntry.commune_code),
            in_scope(Person.commune_code),
            ChecklistEntry.status.in_((StepStatus.DONE.value, StepStatus.NOT_APPLICABLE.value)),
            ChecklistEntry.on_date < bindparam("end"),
            Person.created_at < bindparam("end_at"),
            counted_step,
        )
        .group_by(ChecklistEntry.commune_code, ChecklistEntry.evidence)
    )


def _persons_branch(in_scope: _InScope, past: bool) -> Select[Any]:
    return (
        select(
            *_row(
                Person.commune_code,
                "persons",
                None,
                func.count(),
                _count_if(Person.welfare_beneficiary),
            )
        )
        .where(in_scope(Person.commune_code), Person.created_at < bindparam("end_at"))
        .group_by(Person.commune_code)
    )


def _visited_branch(in_scope: _InScope, past: bool) -> Select[Any]:
    return (
        select(
            *_row(
                Visit.commune_code, "visited", None, func.count(func.distinct(Visit.household_id))
            )
        )
        .where(in_scope(Visit.commune_code), Visit.visited_at < bindparam("end_at"))
        .group_by(Visit.commune_code)
    )


def _visits_branch(in_scope: _InScope, past: bool) -> Select[Any]:
    return (
        select(*_row(Visit.commune_code, "visits", None, func.count()))
        .where(
            in_scope(Visit.commune_code),
            Visit.visited_at >= bindparam("start_at"),
            Visit.visited_at < bindparam("visits_end_at"),
        )
        .group_by(Visit.commune_code)
    )


def _members_branch(in_scope: _InScope, past: bool) -> Select[Any]:
    return (
        select(*_row(Official.commune_code, "members", None, func.count()))
        .where(
            in_scope(Official.commune_code),
            Official.role == OfficialRole.TEAM_MEMBER.value,
            Official.active,
        )
        .group_by(Official.commune_code)
    )


_InScope = Callable[[Any], ColumnElement[bool]]
_Branch = Callable[[_InScope, bool], Select[Any]]
_BRANCHES: dict[str, tuple[_Branch, ...]] = {
    "denominators": (_denominators_branch,),
    "cohorts": (_cohorts_branch,),
    "days": (_days_branch,),
    "active": (_active_branch,),
    "checklist": (_steps_branch, _persons_branch),
    "visited": (_visited_branch,),
    "visits": (_visits_branch, _members_branch),
}


# The stored median that answers each kind of period: a year to date holds every cohort of the
# year so far, which is all the year's cohorts there are.
_MEDIAN_KINDS = {"month": "month", "quarter": "quarter", "ytd": "year", "year": "year"}


def _last_month(period: Period) -> dt.date:
    return (period.end - dt.timedelta(days=1)).replace(day=1)


def _visits_end(period: Period, today: dt.date) -> dt.date:
    return min(period.end, today + dt.timedelta(days=1))


def _figure(key: str, counts: _Counts, period: Period, today: dt.date) -> Figure:
    """One indicator from its counts."""
    adults = counts.adults
    no_adults = _("Chưa nhập số người từ 15 tuổi trở lên của năm %(year)s.", year=period.year)
    nobody_created = _("Chưa có tài khoản nào mở trong kỳ.")
    if key == "accounts_created":
        return Figure(
            key,
            counts.created,
            None,
            None,
            _per_1000(counts.created, adults),
            None,
            False,
            None if adults else no_adults,
        )
    if key == "adults_with_account":
        return _share(key, counts.created_to_end, adults, missing=no_adults, adults=adults)
    if key in {"verified_of_created", "first_money_in_of_created", "first_payment_of_created"}:
        numerator = {
            "verified_of_created": counts.verified,
            "first_money_in_of_created": counts.first_money_in,
            "first_payment_of_created": counts.first_payment,
        }[key]
        return _share(key, numerator, counts.created, missing=nobody_created)
    if key == "median_days_to_first_payment":
        median, paid = counts.median_days, counts.first_payers
        if median is None:
            return Figure(
                key, 0, paid, None, None, None, False, _("Chưa có ai thanh toán lần đầu.")
            )
        return Figure(
            key,
            math.floor(median + 0.5),
            paid,
            None,
            None,
            None,
            paid < SMALL_DENOMINATOR_MAX,
            None,
            value=median,
        )
    if key == "active_30_days_of_adults":
        note = None
        if period.end <= today:
            last = _last_month(period)
            note = _(
                "Kỳ đã qua: người có giao dịch trong tháng %(month)s/%(year)s.",
                month=f"{last.month:02d}",
                year=last.year,
            )
        return _share(key, counts.active, adults, missing=no_adults, adults=adults, note=note)
    if key in {"welfare_cashless_of_paid_count", "welfare_cashless_of_paid_value"}:
        no_cycle = _("Chưa có đợt chi trả trợ cấp nào trong kỳ.")
        if key == "welfare_cashless_of_paid_count":
            return _share(key, counts.welfare_cashless, counts.welfare_paid, missing=no_cycle)
        figure = _share(
            key,
            counts.welfare_cashless_value,
            counts.welfare_paid_value,
            missing=no_cycle,
            interval=False,
        )
        # Small when few people were paid, whatever the amounts.
        return replace(
            figure,
            small_denominator=figure.rate is not None
            and counts.welfare_paid < SMALL_DENOMINATOR_MAX,
        )
    if key == "checklist_completion":
        # 8 steps for everyone, the welfare step too for beneficiaries, less those not applicable.
        steps = (
            counts.persons * (len(ChecklistStep) - 1)
            + counts.beneficiaries
            - counts.steps_not_applicable
        )
        breakdown = tuple(
            (evidence.value, counts.steps_done.get(evidence.value, 0)) for evidence in Evidence
        )
        return _share(
            key,
            sum(counts.steps_done.values()),
            steps if counts.persons else 0,
            missing=_("Tổ công nghệ số chưa đăng ký người dân nào."),
            breakdown=breakdown,
        )
    if key == "households_visited":
        return _share(
            key,
            counts.households_visited,
            counts.households,
            missing=_("Chưa nhập số hộ gia đình của năm %(year)s.", year=period.year),
        )
    assert key == "team_visits_per_member_week", key
    days = (_visits_end(period, today) - period.start).days
    members = counts.team_members
    if days <= 0:
        return Figure(key, 0, members, None, None, None, False, _("Kỳ này chưa bắt đầu."))
    if members == 0:
        return Figure(key, counts.visits, 0, None, None, None, False, _("Xã chưa có tổ viên nào."))
    return Figure(
        key, counts.visits, members, counts.visits / members / (days / 7), None, None, False, None
    )


def _figures(
    session: Session,
    scope: _Scope,
    *,
    commune_codes: Sequence[str],
    period: Period,
    today: dt.date,
    keys: Sequence[str],
) -> dict[str, list[Figure]]:
    counts = _read_counts(
        session, scope, commune_codes=commune_codes, period=period, today=today, keys=keys
    )
    return {
        code: [_figure(key, counts[code], period, today) for key in keys] for code in commune_codes
    }


def _commune_figures(
    session: Session, commune_code: str, period: Period, today: dt.date, keys: Sequence[str]
) -> list[Figure]:
    return _figures(
        session,
        _Scope(commune_code=commune_code),
        commune_codes=[commune_code],
        period=period,
        today=today,
        keys=keys,
    )[commune_code]


# --- What the pages call --------------------------------------------------------------------------


def commune_indicators(
    session: Session, commune_code: str, period: Period, today: dt.date
) -> list[Figure]:
    """All indicators of one commune for a period, in INDICATOR_KEYS order."""
    return _commune_figures(session, commune_code, period, today, INDICATOR_KEYS)


# Indicators where fewer is better.
_LOWER_IS_BETTER = frozenset({"median_days_to_first_payment"})


def province_ranking(
    session: Session,
    province_code: str,
    period: Period,
    key: str,
    today: dt.date,
    *,
    limit: int = 200,
) -> list[RankingRow]:
    """The province's communes ranked on one indicator: by rate when it has a denominator, else
    by count (the median: fewest days first); communes without a rate come last, by count. Equal
    values share a rank."""
    if key not in DEFINITIONS:
        raise ValueError(f"unknown indicator {key!r}")
    communes = session.execute(
        select(Commune.code, Commune.name)
        .where(Commune.province_code == province_code)
        .order_by(Commune.code)
    ).all()
    names = {code: name for code, name in communes}
    figures = _figures(
        session,
        _Scope(province_code=province_code),
        commune_codes=list(names),
        period=period,
        today=today,
        keys=(key,),
    )

    def sort_value(figure: Figure) -> tuple[int, float, float]:
        if key in _LOWER_IS_BETTER:
            value = figure.value
            return (0, value, 0.0) if value is not None else (1, 0.0, 0.0)
        if figure.rate is not None:
            return (0, -figure.rate, -figure.numerator)
        if figure.denominator is None and key == "accounts_created":
            return (0, -figure.numerator, 0.0)
        return (1, -figure.numerator, 0.0)

    ordered = sorted(
        ((code, figures[code][0]) for code in names),
        key=lambda item: (sort_value(item[1]), item[0]),
    )
    rows: list[RankingRow] = []
    previous: tuple[int, float, float] | None = None
    rank = 0
    for position, (code, figure) in enumerate(ordered[: min(limit, RANKING_LIMIT_MAX)], start=1):
        value = sort_value(figure)
        if value != previous:
            rank, previous = position, value
        rows.append(RankingRow(rank, code, names[code], figure))
    return rows


def funnel(
    session: Session, commune_code: str, first_month: dt.date, months: int
) -> list[FunnelRow]:
    """Created → verified → first money in → first payment, per onboarding month (each month's
    people, followed to today)."""
    first = first_month.replace(day=1)
    months = max(0, min(months, FUNNEL_MONTHS_MAX))
    found = {
        row.cohort_month: row
        for row in session.scalars(
            select(CohortCounts).where(
                CohortCounts.commune_code == commune_code,
                CohortCounts.cohort_month >= first,
                CohortCounts.cohort_month < _add_months(first, months),
            )
        )
    }
    rows = []
    for index in range(months):
        month = _add_months(first, index)
        cohort = found.get(month)
        if cohort is None:
            rows.append(FunnelRow(month, 0, 0, 0, 0))
        else:
            rows.append(
                FunnelRow(
                    month,
                    cohort.created,
                    cohort.verified,
                    cohort.first_money_in,
                    cohort.first_payment,
                )
            )
    return rows


def trend(
    session: Session, commune_code: str, key: str, last_month: dt.date, months: int
) -> list[tuple[dt.date, Figure]]:
    """One indicator month by month, oldest first, ending with last_month. The active people of
    a past month are those active in that month."""
    if key not in DEFINITIONS:
        raise ValueError(f"unknown indicator {key!r}")
    months = max(0, min(months, TREND_MONTHS_MAX))
    last = last_month.replace(day=1)
    today = _add_months(last, 1) - dt.timedelta(days=1)
    points = []
    for index in range(months - 1, -1, -1):
        month = _add_months(last, -index)
        period = month_period(month)
        figure = _commune_figures(session, commune_code, period, today, (key,))[0]
        points.append((month, figure))
    return points


def target_progress(
    session: Session, commune_code: str, year: int, today: dt.date
) -> list[TargetProgress]:
    """Progress towards each of the commune's targets for the year, measured on the year to
    date (or the whole year once it is over); targets whose denominator is missing are left out
    (the indicator says what is missing)."""
    targets = targets_of(session, commune_code, year)
    if not targets or year > today.year:
        return []
    period = parse_period(f"{year}-ytd", today)
    keys = tuple(target.key for target in targets)
    figures = _commune_figures(session, commune_code, period, today, keys)
    months_left = 12 - today.month + 1 if year == today.year else 0
    progress = []
    for target, figure in zip(targets, figures, strict=True):
        if figure.denominator is None:
            continue
        needed = max(0, math.ceil(target.rate * figure.denominator - 1e-9) - figure.numerator)
        pace = math.ceil(needed / months_left) if months_left else needed
        progress.append(
            TargetProgress(
                key=target.key,
                year=year,
                target_rate=target.rate,
                numerator=figure.numerator,
                denominator=figure.denominator,
                people_still_needed=needed,
                months_left=months_left,
                monthly_pace_needed=pace,
                source=target.source,
                entered_on=target.entered_on,
            )
        )
    return progress


def last_rollup_at(session: Session) -> dt.datetime | None:
    """When the roll-up last finished: "figures as of …"."""
    return rollup.last_run_at(session)


def _commune_in_scope(column: Any) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = column == bindparam("scope_code")
    return condition


def _province_in_scope(column: Any) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = column.in_(
        select(Commune.code).where(Commune.province_code == bindparam("scope_code"))
    )
    return condition


@functools.cache
def _statement(needs: tuple[str, ...], province: bool, past: bool) -> Any:
    """The UNION ALL of the counts of `needs`, for a commune or a province, for a period over or
    not: built once (the values are bound parameters), not built and hashed on every page view."""
    in_scope = _province_in_scope if province else _commune_in_scope
    branches = [branch(in_scope, past) for need in needs for branch in _BRANCHES[need]]
    return branches[0] if len(branches) == 1 else union_all(*branches)
