"""Denominators (adults 15+, households, welfare beneficiaries) and targets, entered per commune
and year by its officials with their source and date. No package carries commune populations, so
these numbers are typed in; every figure that uses one shows where it came from."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.adoption.models import AdoptionDenominator, AdoptionTarget
from kiosk.places.models import Commune

YEAR_MIN = 2020
YEAR_MAX = 2100
# A commune (the largest wards) has a few hundred thousand people; a typo adds digits.
DENOMINATOR_VALUE_MAX = 2_000_000
SOURCE_LENGTH_MAX = 200
BASIS_POINTS_PER_UNIT = 10_000
# Indicators that are a share of people, so that a target says how many more people are needed
# (the keys of kiosk.adoption.indicators, in their order).
TARGET_KEYS: tuple[str, ...] = (
    "adults_with_account",
    "verified_of_created",
    "first_money_in_of_created",
    "first_payment_of_created",
    "active_30_days_of_adults",
    "welfare_cashless_of_paid_count",
    "households_visited",
)


class DenominatorKind(enum.StrEnum):
    ADULTS = "adults"  # người từ 15 tuổi trở lên
    HOUSEHOLDS = "households"  # số hộ gia đình
    BENEFICIARIES = "beneficiaries"  # người hưởng trợ cấp xã hội


class InvalidEntry(ValueError):
    """A denominator or target that cannot be saved: `field` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class DenominatorEntry:
    commune_code: str
    year: int
    kind: DenominatorKind
    value: int
    source: str  # "Công an xã, 01/2026"
    as_of: dt.date  # the date the source counted
    entered_by: str
    entered_at: dt.datetime


@dataclass(frozen=True)
class TargetEntry:
    commune_code: str
    year: int
    key: str  # an indicator key (kiosk.adoption.indicators.INDICATOR_KEYS)
    rate: float  # 0.8 for 80 %
    source: str  # "Nghị quyết HĐND xã số 12/2026"
    entered_by: str
    entered_at: dt.datetime

    @property
    def entered_on(self) -> dt.date:
        return self.entered_at.date()


def _check_common(session: Session, commune_code: str, year: int, source: str, by: str) -> str:
    if session.get(Commune, commune_code) is None:
        raise InvalidEntry("commune_code", _("Không có xã, phường nào mang mã này."))
    if not YEAR_MIN <= year <= YEAR_MAX:
        raise InvalidEntry(
            "year", _("Năm phải từ %(first)s đến %(last)s.", first=YEAR_MIN, last=YEAR_MAX)
        )
    cleaned = " ".join(source.split())
    if not cleaned:
        raise InvalidEntry(
            "source", _("Ghi rõ nguồn số liệu, ví dụ: Công an xã, số liệu tháng 01/2026.")
        )
    if len(cleaned) > SOURCE_LENGTH_MAX:
        raise InvalidEntry(
            "source", _("Nguồn số liệu dài tối đa %(max)s ký tự.", max=SOURCE_LENGTH_MAX)
        )
    assert by, "who entered it is always known"
    return cleaned


def set_denominator(
    session: Session,
    *,
    commune_code: str,
    year: int,
    kind: DenominatorKind | str,
    value: int,
    source: str,
    as_of: dt.date,
    by: str,
    now: dt.datetime,
) -> None:
    """Enter or replace one denominator of a commune for a year."""
    try:
        known_kind = DenominatorKind(kind)
    except ValueError:
        raise InvalidEntry("kind", _("Loại mẫu số không đúng.")) from None
    cleaned = _check_common(session, commune_code, year, source, by)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidEntry("value", _("Nhập một số nguyên lớn hơn 0."))
    if value > DENOMINATOR_VALUE_MAX:
        raise InvalidEntry(
            "value",
            _(
                "Số quá lớn cho một xã (tối đa %(max)s).",
                max=f"{DENOMINATOR_VALUE_MAX:,}".replace(",", "."),
            ),
        )
    if as_of > now.date() + dt.timedelta(days=1):
        raise InvalidEntry("as_of", _("Ngày của số liệu không thể ở tương lai."))
    row = session.get(AdoptionDenominator, (commune_code, year, known_kind.value))
    if row is None:
        row = AdoptionDenominator(commune_code=commune_code, year=year, kind=known_kind.value)
        session.add(row)
    row.value = value
    row.source = cleaned
    row.as_of = as_of
    row.entered_by = by
    row.entered_at = now
    session.flush()


def set_target(
    session: Session,
    *,
    commune_code: str,
    year: int,
    key: str,
    rate: float,
    source: str,
    by: str,
    now: dt.datetime,
) -> None:
    """Enter or replace a commune's target for one indicator and year (rate 0 < rate ≤ 1)."""
    if key not in TARGET_KEYS:
        raise InvalidEntry("key", _("Chỉ tiêu này không đặt được mục tiêu."))
    cleaned = _check_common(session, commune_code, year, source, by)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1:
        raise InvalidEntry("rate", _("Mục tiêu là một tỷ lệ lớn hơn 0% và không quá 100%."))
    basis_points = round(rate * BASIS_POINTS_PER_UNIT)
    if basis_points <= 0:
        raise InvalidEntry("rate", _("Mục tiêu là một tỷ lệ lớn hơn 0% và không quá 100%."))
    row = session.get(AdoptionTarget, (commune_code, year, key))
    if row is None:
        row = AdoptionTarget(commune_code=commune_code, year=year, key=key)
        session.add(row)
    row.rate_basis_points = basis_points
    row.source = cleaned
    row.entered_by = by
    row.entered_at = now
    session.flush()


def denominators_of(session: Session, commune_code: str, year: int) -> list[DenominatorEntry]:
    """The commune's denominators for the year, in DenominatorKind order."""
    rows = session.scalars(
        select(AdoptionDenominator).where(
            AdoptionDenominator.commune_code == commune_code, AdoptionDenominator.year == year
        )
    )
    order = list(DenominatorKind)
    entries = [
        DenominatorEntry(
            commune_code=row.commune_code,
            year=row.year,
            kind=DenominatorKind(row.kind),
            value=row.value,
            source=row.source,
            as_of=row.as_of,
            entered_by=row.entered_by,
            entered_at=row.entered_at,
        )
        for row in rows
    ]
    return sorted(entries, key=lambda entry: order.index(entry.kind))


def targets_of(session: Session, commune_code: str, year: int) -> list[TargetEntry]:
    """The commune's targets for the year, in indicator order."""
    rows = session.scalars(
        select(AdoptionTarget).where(
            AdoptionTarget.commune_code == commune_code, AdoptionTarget.year == year
        )
    )
    entries = [
        TargetEntry(
            commune_code=row.commune_code,
            year=row.year,
            key=row.key,
            rate=row.rate_basis_points / BASIS_POINTS_PER_UNIT,
            source=row.source,
            entered_by=row.entered_by,
            entered_at=row.entered_at,
        )
        for row in rows
        if row.key in TARGET_KEYS
    ]
    return sorted(entries, key=lambda entry: TARGET_KEYS.index(entry.key))
