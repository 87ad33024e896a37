"""Demo data for the adoption dashboards: the demo commune's denominators and targets (as its
officials would enter them, with their source), then a roll-up of whatever the other demo data
did, so that the dashboards show figures at once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from kiosk.adoption.denominators import DenominatorKind, set_denominator, set_target
from kiosk.adoption.rollup import roll_up
from kiosk.formatting import local_today

DEMO_COMMUNE = "00226"  # Phường Văn Miếu - Quốc Tử Giám, Hà Nội
DEMO_BY = "demo"
# Round, plausible figures for a central Hà Nội ward; the source says where such numbers come from.
DEMO_DENOMINATORS = (
    (DenominatorKind.ADULTS, 21_400, "Công an phường, số liệu dân cư 01/2026"),
    (DenominatorKind.HOUSEHOLDS, 7_850, "Công an phường, số liệu dân cư 01/2026"),
    (DenominatorKind.BENEFICIARIES, 312, "Phòng Văn hóa - Xã hội phường, 01/2026"),
)
DEMO_TARGETS = (
    ("adults_with_account", 0.8),
    ("first_payment_of_created", 0.6),
    ("welfare_cashless_of_paid_count", 0.9),
    ("households_visited", 0.7),
)
DEMO_TARGET_SOURCE = "Kế hoạch chuyển đổi số của phường năm {year}"


def seed_demo(session: Session, now: dt.datetime) -> None:
    """Denominators and targets of the demo commune for this year, and a roll-up."""
    today = local_today(now)
    for kind, value, source in DEMO_DENOMINATORS:
        set_denominator(
            session,
            commune_code=DEMO_COMMUNE,
            year=today.year,
            kind=kind,
            value=value,
            source=source,
            as_of=dt.date(today.year, 1, 1),
            by=DEMO_BY,
            now=now,
        )
    for key, rate in DEMO_TARGETS:
        set_target(
            session,
            commune_code=DEMO_COMMUNE,
            year=today.year,
            key=key,
            rate=rate,
            source=DEMO_TARGET_SOURCE.format(year=today.year),
            by=DEMO_BY,
            now=now,
        )
    roll_up(session, now)
