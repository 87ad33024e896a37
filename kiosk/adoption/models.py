"""The adoption aggregates: each citizen's milestones, counters per commune and onboarding month,
the days-to-first-payment histogram and its medians, people by their last active day, monthly
active people, the roll-up's watermarks, and the denominators and targets entered by officials.

Everything here except denominators and targets is derived: `kiosk.adoption.rollup` maintains it
from the accounts and the ledger, and could rebuild it from scratch.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from kiosk.citizens.models import Citizen
from kiosk.community.models import ChecklistEntry, Person, Visit
from kiosk.welfare.models import BeneficiaryRow
from ledger.columns import UTCDateTime
from ledger.schema import Base

# The roll-up finds newly verified citizens without reading them all.
Index("ix_citizens_verified_at", Citizen.__table__.c.verified_at)
# The indicators count the community's and welfare's own records of a commune (or of every
# commune of a province) from these indexes alone, without reading the tables' rows.
Index(
    "ix_checklist_entries_commune_status_on_date",
    *(
        ChecklistEntry.__table__.c[name]
        for name in ("commune_code", "status", "on_date", "evidence", "step", "person_id")
    ),
)
Index(
    "ix_persons_commune_created_at",
    *(
        Person.__table__.c[name]
        for name in ("commune_code", "created_at", "welfare_beneficiary", "id")
    ),
)
Index(
    "ix_visits_commune_visited_at_household",
    *(Visit.__table__.c[name] for name in ("commune_code", "visited_at", "household_id")),
)
Index(
    "ix_welfare_beneficiaries_cycle_status_amount",
    *(BeneficiaryRow.__table__.c[name] for name in ("cycle_id", "status", "amount", "id")),
)


class CitizenMilestones(Base):
    """The days on which one citizen reached each step, each set once by the roll-up (to the
    earliest day seen, so re-reading a transfer changes nothing)."""

    __tablename__ = "adoption_milestones"

    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), primary_key=True)
    commune_code: Mapped[str] = mapped_column(ForeignKey("communes.code"))
    created_on: Mapped[dt.date] = mapped_column(Date)
    verified_on: Mapped[dt.date | None] = mapped_column(Date)
    first_money_in_on: Mapped[dt.date | None] = mapped_column(Date)
    first_payment_on: Mapped[dt.date | None] = mapped_column(Date)
    last_active_on: Mapped[dt.date | None] = mapped_column(Date)


class CohortCounts(Base):
    """Per commune and onboarding month: accounts created, and how many of those people have
    since been verified, received money, made a cashless payment (the funnel)."""

    __tablename__ = "adoption_cohorts"
    __table_args__ = (
        CheckConstraint(
            "created >= 0 AND verified >= 0 AND first_money_in >= 0 AND first_payment >= 0",
            name="counts_not_negative",
        ),
    )

    commune_code: Mapped[str] = mapped_column(ForeignKey("communes.code"), primary_key=True)
    cohort_month: Mapped[dt.date] = mapped_column(Date, primary_key=True)  # first of the month
    created: Mapped[int] = mapped_column(Integer, default=0)
    verified: Mapped[int] = mapped_column(Integer, default=0)
    first_money_in: Mapped[int] = mapped_column(Integer, default=0)
    first_payment: Mapped[int] = mapped_column(Integer, default=0)


class DaysToFirstPayment(Base):
    """How many people of a commune's onboarding month made their first cashless payment after
    so many days: the exact median without reading the people."""

    __tablename__ = "adoption_days_to_first_payment"
    __table_args__ = (CheckConstraint("days >= 0 AND people >= 0", name="counts_not_negative"),)

    commune_code: Mapped[str] = mapped_column(ForeignKey("communes.code"), primary_key=True)
    cohort_month: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    days: Mapped[int] = mapped_column(Integer, primary_key=True)
    people: Mapped[int] = mapped_column(Integer, default=0)


class MedianDaysToFirstPayment(Base):
    """The median of the days histogram over each month, quarter and year of onboarding, per
    commune: the two middle values (equal when the count is odd) and how many people paid.

    Derived from `DaysToFirstPayment` by the roll-up, for the periods whose buckets it changed, so
    that a dashboard reads one row per commune however many people have paid (the histogram
    holds a row for every distinct day)."""

    __tablename__ = "adoption_median_days"
    __table_args__ = (
        CheckConstraint("period_kind IN ('month', 'quarter', 'year')", name="period_kind_known"),
        CheckConstraint(
            "payers > 0 AND 0 <= lower_days AND lower_days <= upper_days", name="median_sound"
        ),
    )

    commune_code: Mapped[str] = mapped_column(ForeignKey("communes.code"), primary_key=True)
    period_kind: Mapped[str] = mapped_column(String(7), primary_key=True)
    period_start: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    payers: Mapped[int] = mapped_column(Integer)
    lower_days: Mapped[int] = mapped_column(Integer)
    upper_days: Mapped[int] = mapped_column(Integer)


class LastActiveDays(Base):
    """How many people of a commune did something last on each day: the people active in the
    last 30 days are the sum of at most 30 rows, however many people and transfers there are.
    A citizen's day moves forward (one person less on the old day, one more on the new)."""

    __tablename__ = "adoption_last_active_days"
    __table_args__ = (CheckConstraint("people >= 0", name="people_not_negative"),)

    commune_code: Mapped[str] = mapped_column(ForeignKey("communes.code"), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    people: Mapped[int] = mapped_column(Integer, default=0)


class MonthlyActive(Base):
    """People of a commune with at least one transaction of their own in a calendar month (for
    periods that ended: the rolling 30 days are read from LastActiveDays)."""

    __tablename__ = "adoption_monthly_active"
    __table_args__ = (CheckConstraint("people >= 0", name="people_not_negative"),)

    commune_code: Mapped[str] = mapped_column(ForeignKey("communes.code"), primary_key=True)
    month: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    people: Mapped[int] = mapped_column(Integer, default=0)


class RollupState(Base):
    """Where the roll-up has read up to, per source ("citizens", "verified", "transfers")."""

    __tablename__ = "adoption_rollup_state"

    source: Mapped[str] = mapped_column(String(20), primary_key=True)
    # The latest time read: the next run reads from OVERLAP_S before it.
    watermark_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0)


class AdoptionDenominator(Base):
    """A denominator entered by a commune official for a year, with its source and date."""

    __tablename__ = "adoption_denominators"
    __table_args__ = (
        CheckConstraint("kind IN ('adults', 'households', 'beneficiaries')", name="kind_known"),
        CheckConstraint("value > 0", name="value_positive"),
    )

    commune_code: Mapped[str] = mapped_column(ForeignKey("communes.code"), primary_key=True)
    year: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(200))
    as_of: Mapped[dt.date] = mapped_column(Date)
    entered_by: Mapped[str] = mapped_column(String(64))
    entered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AdoptionTarget(Base):
    """A commune's target for one indicator and year (80 % of adults with an account)."""

    __tablename__ = "adoption_targets"
    __table_args__ = (
        CheckConstraint(
            "rate_basis_points > 0 AND rate_basis_points <= 10000", name="rate_within_one"
        ),
    )

    commune_code: Mapped[str] = mapped_column(ForeignKey("communes.code"), primary_key=True)
    year: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    # 8000 for 80 %: exact, unlike a float column.
    rate_basis_points: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(200))
    entered_by: Mapped[str] = mapped_column(String(64))
    entered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
