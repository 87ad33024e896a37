"""Welfare figures for the adoption indicators: per commune and cycle, how many beneficiaries were
paid and how many of them cashless (into their account), by count and by value.

"Paid" = paid to account + voucher paid at the post office; "cashless" = paid to account. A cycle
belongs to the period of its approval date (in Vietnam's time zone). Rates are the caller's to
compute from these summed counts (185 paid cashless of 200 paid is 92.5%).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from kiosk.formatting import LOCAL_ZONE
from kiosk.welfare.models import BeneficiaryRow, CycleStatus, PayCycle, RowStatus, WelfareProgramme

CYCLES_MAX = 10_000


@dataclass(frozen=True)
class CycleFigures:
    cycle_id: int
    programme_name: str
    cycle_label: str
    beneficiaries: int
    paid_count: int
    cashless_count: int
    paid_value: int
    cashless_value: int


def _local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), LOCAL_ZONE).astimezone(dt.UTC)


def cycle_figures(
    session: Session,
    commune_codes: Select[tuple[str]] | list[str],
    start: dt.date,
    end: dt.date,
) -> dict[str, list[CycleFigures]]:
    """The approved cycles of these communes approved on a local date in [start, end) (`end`
    exclusive, like the adoption periods), keyed by commune code, oldest first."""
    paid = BeneficiaryRow.status.in_((RowStatus.PAID_TO_ACCOUNT, RowStatus.VOUCHER_PAID))
    cashless = BeneficiaryRow.status == RowStatus.PAID_TO_ACCOUNT
    query = (
        select(
            WelfareProgramme.commune_code,
            PayCycle.id,
            WelfareProgramme.name,
            PayCycle.label,
            func.count(BeneficiaryRow.id),
            func.sum(case((paid, 1), else_=0)),
            func.sum(case((cashless, 1), else_=0)),
            func.sum(case((paid, BeneficiaryRow.amount), else_=0)),
            func.sum(case((cashless, BeneficiaryRow.amount), else_=0)),
        )
        .join(WelfareProgramme, WelfareProgramme.id == PayCycle.programme_id)
        .join(BeneficiaryRow, BeneficiaryRow.cycle_id == PayCycle.id)
        .where(
            WelfareProgramme.commune_code.in_(commune_codes),
            PayCycle.status.in_((CycleStatus.PAID, CycleStatus.CLOSED)),
            PayCycle.approved_at >= _local_midnight(start),
            PayCycle.approved_at < _local_midnight(end),
        )
        .group_by(WelfareProgramme.commune_code, PayCycle.id, WelfareProgramme.name, PayCycle.label)
        .order_by(PayCycle.approved_at, PayCycle.id)
        .limit(CYCLES_MAX)
    )
    figures: dict[str, list[CycleFigures]] = {}
    for row in session.execute(query):
        code, cycle_id, name, label, count, paid_n, cashless_n, paid_v, cashless_v = row
        figures.setdefault(code, []).append(
            CycleFigures(
                cycle_id=int(cycle_id),
                programme_name=name,
                cycle_label=label,
                beneficiaries=int(count),
                paid_count=int(paid_n or 0),
                cashless_count=int(cashless_n or 0),
                paid_value=int(paid_v or 0),
                cashless_value=int(cashless_v or 0),
            )
        )
    return figures
