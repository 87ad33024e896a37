"""The indicators, against hand-computed fixtures: numerators, denominators, rates from sums,
intervals, medians, targets, and a dashboard whose cost does not grow with the transfers."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from kiosk.adoption.denominators import DenominatorKind, set_denominator, set_target
from kiosk.adoption.indicators import (
    DEFINITIONS,
    INDICATOR_KEYS,
    SMALL_DENOMINATOR_MAX,
    Figure,
    FunnelRow,
    commune_indicators,
    funnel,
    last_rollup_at,
    parse_period,
    period_key,
    province_ranking,
    target_progress,
    trend,
    wilson_interval,
)
from kiosk.adoption.models import DaysToFirstPayment
from kiosk.adoption.rollup import refresh_medians, roll_up
from kiosk.community.models import ChecklistStep, Evidence, StepStatus
from kiosk.places.models import Commune
from kiosk.welfare.models import (
    BeneficiaryRow,
    CycleStatus,
    PayCycle,
    RowStatus,
    WelfareProgramme,
)
from tests.adoption.rollup_support import (  # the session fixture, and the world around it
    NOW,
    TODAY,
    Team,
    World,
    adoption_session,
    at,
    fresh_communes,
    make_world,
)

__all__ = ["adoption_session"]

d = dt.date


def by_key(figures: list[Figure]) -> dict[str, Figure]:
    assert [figure.key for figure in figures] == list(INDICATOR_KEYS)
    return {figure.key: figure for figure in figures}


def adults(session: Session, commune: str, value: int, year: int = 2026) -> None:
    set_denominator(
        session,
        commune_code=commune,
        year=year,
        kind=DenominatorKind.ADULTS,
        value=value,
        source="Công an xã, 01/2026",
        as_of=d(2026, 1, 15),
        by="official:1",
        now=NOW,
    )


def october_story(world: World, commune: str) -> None:
    """One September account, and five October accounts followed to 23 November."""
    world.citizen(commune, at(d(2026, 9, 15)))
    c1 = world.citizen(commune, at(d(2026, 10, 1)), verified=at(d(2026, 10, 1)))
    world.cash_in(c1, 200_000, at(d(2026, 10, 2)))
    world.pay_stall(c1, 10_000, at(d(2026, 10, 4)))  # 3 days after opening
    world.pay_stall(c1, 10_000, at(d(2026, 11, 10)))  # active in the last 30 days
    c2 = world.citizen(commune, at(d(2026, 10, 3)), verified=at(d(2026, 10, 5)))
    world.welfare(c2, 500_000, at(d(2026, 10, 6)))
    world.pay_stall(c2, 10_000, at(d(2026, 10, 11)))  # 8 days
    c3 = world.citizen(commune, at(d(2026, 10, 10)), verified=at(d(2026, 10, 10)))
    world.cash_in(c3, 100_000, at(d(2026, 10, 11)))
    c4 = world.citizen(commune, at(d(2026, 10, 20)))
    world.welfare(c4, 500_000, at(d(2026, 10, 21)))
    world.citizen(commune, at(d(2026, 10, 25)))


def test_october_figures_match_the_hand_count(adoption_session: Session) -> None:
    (commune,) = fresh_communes(adoption_session, 1)
    october_story(make_world(adoption_session), commune)
    adults(adoption_session, commune, 1000)
    roll_up(adoption_session, NOW)

    figures = by_key(
        commune_indicators(adoption_session, commune, parse_period("2026-10", TODAY), TODAY)
    )

    created = figures["accounts_created"]
    assert (created.numerator, created.denominator, created.rate) == (5, None, None)
    assert created.per_1000 == pytest.approx(5.0)
    with_account = figures["adults_with_account"]
    assert (with_account.numerator, with_account.denominator) == (6, 1000)
    assert with_account.rate == pytest.approx(0.006)
    assert with_account.per_1000 == pytest.approx(6.0)
    verified = figures["verified_of_created"]
    assert (verified.numerator, verified.denominator, verified.rate) == (3, 5, 0.6)
    assert verified.interval == pytest.approx((0.2307, 0.8824), abs=1e-4)
    assert verified.small_denominator
    assert (
        figures["first_money_in_of_created"].numerator,
        figures["first_money_in_of_created"].denominator,
    ) == (4, 5)
    assert (
        figures["first_payment_of_created"].numerator,
        figures["first_payment_of_created"].denominator,
    ) == (2, 5)
    median = figures["median_days_to_first_payment"]
    # Paid after 3 and 8 days: the median is 5.5 days (shown rounded, 6).
    assert (median.value, median.numerator, median.denominator) == (5.5, 6, 2)
    # October is over: the people who did something themselves in October (welfare received
    # by the fourth does not count).
    active = figures["active_30_days_of_adults"]
    assert (active.numerator, active.denominator) == (3, 1000)
    assert active.note is not None


def test_active_in_the_current_period_counts_the_last_30_days(adoption_session: Session) -> None:
    (commune,) = fresh_communes(adoption_session, 1)
    october_story(make_world(adoption_session), commune)
    adults(adoption_session, commune, 1000)
    roll_up(adoption_session, NOW)

    figures = by_key(
        commune_indicators(adoption_session, commune, parse_period("2026-11", TODAY), TODAY)
    )

    # Since 25 October, only the first citizen's November payment.
    active = figures["active_30_days_of_adults"]
    assert (active.numerator, active.denominator, active.note) == (1, 1000, None)
    assert active.per_1000 == pytest.approx(1.0)
    # Nobody opened an account in November: no rate, and it says why.
    verified = figures["verified_of_created"]
    assert (verified.numerator, verified.denominator, verified.rate) == (0, 0, None)
    assert verified.missing


def test_a_missing_denominator_gives_no_rate_and_says_why(adoption_session: Session) -> None:
    (commune,) = fresh_communes(adoption_session, 1)
    october_story(make_world(adoption_session), commune)
    roll_up(adoption_session, NOW)

    figures = by_key(
        commune_indicators(adoption_session, commune, parse_period("2026-10", TODAY), TODAY)
    )

    for key in ("adults_with_account", "active_30_days_of_adults", "households_visited"):
        figure = figures[key]
        assert figure.denominator is None and figure.rate is None and figure.interval is None
        assert figure.missing and "2026" in figure.missing
    assert figures["adults_with_account"].numerator == 6
    assert figures["accounts_created"].per_1000 is None
    assert figures["accounts_created"].missing


def test_a_quarter_rate_is_summed_counts_never_an_average_of_months(
    adoption_session: Session,
) -> None:
    (commune,) = fresh_communes(adoption_session, 1)
    world = make_world(adoption_session)
    world.citizen(commune, at(d(2026, 10, 5)), verified=at(d(2026, 10, 5)))
    world.citizen(commune, at(d(2026, 11, 2)), verified=at(d(2026, 11, 2)))
    for day in range(3, 11):
        world.citizen(commune, at(d(2026, 11, day)))
    roll_up(adoption_session, NOW)

    def verified(period: str) -> Figure:
        return by_key(
            commune_indicators(adoption_session, commune, parse_period(period, TODAY), TODAY)
        )["verified_of_created"]

    assert verified("2026-10").rate == 1.0
    assert verified("2026-11").rate == pytest.approx(1 / 9)
    quarter = verified("2026-Q4")
    # 2 of 10, not the mean of 100% and 11%.
    assert (quarter.numerator, quarter.denominator, quarter.rate) == (2, 10, 0.2)


def test_province_ranking_uses_each_communes_own_sums(adoption_session: Session) -> None:
    province = adoption_session.scalar(
        select(Commune.province_code).where(Commune.province_code != "01").limit(1)
    )
    assert province is not None
    small, large = fresh_communes(adoption_session, 2, province_code=province)
    world = make_world(adoption_session)
    for _ in range(10):
        world.citizen(small, at(d(2026, 10, 1)))
    for _ in range(50):
        world.citizen(large, at(d(2026, 10, 1)))
    adults(adoption_session, small, 100)
    adults(adoption_session, large, 1000)
    roll_up(adoption_session, NOW)
    year = parse_period("2026", TODAY)

    shares = province_ranking(adoption_session, province, year, "adults_with_account", TODAY)
    ranked = {row.commune_code: row for row in shares}
    # 10 of 100 adults beats 50 of 1,000, whatever the sizes.
    assert (ranked[small].rank, ranked[large].rank) == (1, 2)
    assert ranked[small].figure.rate == pytest.approx(0.1)
    assert ranked[large].figure.rate == pytest.approx(0.05)
    assert ranked[small].commune_name
    # Communes without a rate come after those with one.
    assert all(row.figure.rate is None for row in shares[2:])
    assert len(shares) == len(
        adoption_session.scalars(
            select(Commune.code).where(Commune.province_code == province)
        ).all()
    )

    counts = province_ranking(adoption_session, province, year, "accounts_created", TODAY)
    ranked = {row.commune_code: row for row in counts}
    # By count, the large commune leads; per 1,000 adults is shown beside it.
    assert ranked[large].rank < ranked[small].rank
    assert ranked[large].figure.per_1000 == pytest.approx(50.0)
    assert ranked[small].figure.per_1000 == pytest.approx(100.0)


def test_equal_figures_share_a_rank(adoption_session: Session) -> None:
    province = adoption_session.scalar(
        select(Commune.province_code).where(Commune.province_code != "01").limit(1)
    )
    assert province is not None
    first, second = fresh_communes(adoption_session, 2, province_code=province)
    world = make_world(adoption_session)
    for commune in (first, second):
        world.citizen(commune, at(d(2026, 10, 1)))
        adults(adoption_session, commune, 10)
    roll_up(adoption_session, NOW)

    rows = province_ranking(
        adoption_session, province, parse_period("2026", TODAY), "adults_with_account", TODAY
    )

    assert [(row.rank, row.commune_code) for row in rows[:2]] == [(1, first), (1, second)]
    assert rows[2].rank == 3


def test_welfare_paid_cashless_is_summed_over_the_cycles(adoption_session: Session) -> None:
    (commune,) = fresh_communes(adoption_session, 1)
    world = make_world(adoption_session)
    approved = at(d(2026, 11, 5))
    programme = WelfareProgramme(
        commune_code=commune,
        name="Trợ cấp xã hội hằng tháng",
        fund_account_id=world.welfare_fund,
        created_at=NOW,
        created_by="official:1",
    )
    adoption_session.add(programme)
    adoption_session.flush()
    # The seeds' example: 185 of 200 beneficiaries paid into their account.
    cycle = PayCycle(
        programme_id=programme.id,
        label="Tháng 11/2026",
        voucher_validity_days=30,
        status=CycleStatus.PAID.value,
        row_count=200,
        total_amount=185 * 500_000 + 15 * 600_000,
        uploaded_by="official:1",
        uploaded_at=approved,
        approved_by="official:2",
        approved_at=approved,
        created_at=approved,
        created_by="official:1",
    )
    adoption_session.add(cycle)
    adoption_session.flush()
    for number in range(1, 201):
        cashless = number <= 185
        citizen = world.citizen(commune, at(d(2026, 10, 1))) if cashless else None
        transfer = world.welfare(citizen, 500_000, approved) if citizen is not None else None
        adoption_session.add(
            BeneficiaryRow(
                cycle_id=cycle.id,
                row_number=number,
                citizen_id_lookup=uuid.uuid4().bytes * 2,
                citizen_id_last4=f"{number:04d}",
                full_name="Người hưởng",
                amount=500_000 if cashless else 600_000,
                status=(RowStatus.PAID_TO_ACCOUNT if cashless else RowStatus.VOUCHER_PAID).value,
                citizen_id=None if citizen is None else citizen.id,
                transfer_id=transfer,
                paid_at=approved,
                created_at=approved,
            )
        )
    adoption_session.flush()

    figures = by_key(
        commune_indicators(adoption_session, commune, parse_period("2026-11", TODAY), TODAY)
    )

    count = figures["welfare_cashless_of_paid_count"]
    assert (count.numerator, count.denominator, count.rate) == (185, 200, 0.925)
    assert count.interval is not None and count.interval[0] < 0.925 < count.interval[1]
    value = figures["welfare_cashless_of_paid_value"]
    assert (value.numerator, value.denominator) == (92_500_000, 101_500_000)
    assert value.rate == pytest.approx(92_500_000 / 101_500_000)
    # October had no cycle: no rate.
    october = by_key(
        commune_indicators(adoption_session, commune, parse_period("2026-10", TODAY), TODAY)
    )
    assert october["welfare_cashless_of_paid_count"].rate is None
    assert october["welfare_cashless_of_paid_count"].missing


def test_checklist_visits_and_households_from_the_team_records(adoption_session: Session) -> None:
    (commune,) = fresh_communes(adoption_session, 1)
    set_denominator(
        adoption_session,
        commune_code=commune,
        year=2026,
        kind=DenominatorKind.HOUSEHOLDS,
        value=10,
        source="Thống kê xã, 12/2025",
        as_of=d(2025, 12, 31),
        by="official:1",
        now=NOW,
    )
    team = Team.of(adoption_session, commune)
    first, second = team.household(), team.household()
    team.visit(first, at(d(2026, 11, 2)))
    team.visit(first, at(d(2026, 11, 9)))
    team.visit(second, at(d(2026, 10, 20)))
    beneficiary = team.person(first, beneficiary=True)
    other = team.person(second)
    done, skip = StepStatus.DONE, StepStatus.NOT_APPLICABLE
    team.step(beneficiary, ChecklistStep.ACCOUNT_CREATED, done, Evidence.SYSTEM, d(2026, 11, 2))
    team.step(beneficiary, ChecklistStep.SMARTPHONE, done, Evidence.SELF_REPORTED, d(2026, 11, 2))
    team.step(beneficiary, ChecklistStep.VNEID_LEVEL2, skip, Evidence.SELF_REPORTED, d(2026, 11, 2))
    team.step(
        beneficiary, ChecklistStep.WELFARE_ACCOUNT, done, Evidence.SEEN_ON_PHONE, d(2026, 11, 2)
    )
    team.step(other, ChecklistStep.WELFARE_ACCOUNT, skip, Evidence.SELF_REPORTED, d(2026, 10, 20))
    team.step(
        other, ChecklistStep.ANTI_FRAUD_BRIEFING, done, Evidence.SELF_REPORTED, d(2026, 10, 20)
    )
    team.step(
        other, ChecklistStep.SMARTPHONE, StepStatus.REFUSED, Evidence.SELF_REPORTED, d(2026, 10, 20)
    )

    figures = by_key(
        commune_indicators(adoption_session, commune, parse_period("2026-11", TODAY), TODAY)
    )

    checklist = figures["checklist_completion"]
    # 8 steps each, plus the welfare step of the beneficiary, less her VNeID step: 16 to do;
    # 4 done, of which 1 confirmed by the system.
    assert (checklist.numerator, checklist.denominator, checklist.rate) == (4, 16, 0.25)
    assert dict(checklist.breakdown) == {"system": 1, "seen_on_phone": 1, "self_reported": 2}
    assert DEFINITIONS["checklist_completion"].evidence == "mixed"
    visited = figures["households_visited"]
    assert (visited.numerator, visited.denominator, visited.rate) == (2, 10, 0.2)
    visits = figures["team_visits_per_member_week"]
    # Two visits by one member in the 23 days of November so far.
    assert (visits.numerator, visits.denominator) == (2, 1)
    assert visits.rate == pytest.approx(2 / (23 / 7))


def test_target_progress_says_how_many_people_are_still_needed(adoption_session: Session) -> None:
    (commune,) = fresh_communes(adoption_session, 1)
    october_story(make_world(adoption_session), commune)
    adults(adoption_session, commune, 1000)
    for key, rate in (
        ("adults_with_account", 0.8),
        ("verified_of_created", 0.9),
        ("households_visited", 0.5),
    ):
        set_target(
            adoption_session,
            commune_code=commune,
            year=2026,
            key=key,
            rate=rate,
            source="Nghị quyết HĐND xã",
            by="official:1",
            now=NOW,
        )
    roll_up(adoption_session, NOW)

    progress = {row.key: row for row in target_progress(adoption_session, commune, 2026, TODAY)}

    # No households entered: that target waits for its denominator.
    assert set(progress) == {"adults_with_account", "verified_of_created"}
    accounts = progress["adults_with_account"]
    assert (accounts.numerator, accounts.denominator) == (6, 1000)
    assert (accounts.people_still_needed, accounts.months_left) == (794, 2)
    assert accounts.monthly_pace_needed == 397
    assert accounts.target_rate == 0.8 and accounts.source == "Nghị quyết HĐND xã"
    assert accounts.entered_on == NOW.date()
    verified = progress["verified_of_created"]
    # 90% of 6 is 5.4, so 6 people: 3 more, 2 a month.
    assert (verified.people_still_needed, verified.monthly_pace_needed) == (3, 2)


def test_funnel_and_trend_by_month(adoption_session: Session) -> None:
    (commune,) = fresh_communes(adoption_session, 1)
    october_story(make_world(adoption_session), commune)
    roll_up(adoption_session, NOW)

    assert funnel(adoption_session, commune, d(2026, 9, 1), 3) == [
        FunnelRow(d(2026, 9, 1), 1, 0, 0, 0),
        FunnelRow(d(2026, 10, 1), 5, 3, 4, 2),
        FunnelRow(d(2026, 11, 1), 0, 0, 0, 0),
    ]
    points = trend(adoption_session, commune, "accounts_created", d(2026, 11, 1), 3)
    assert [(month, figure.numerator) for month, figure in points] == [
        (d(2026, 9, 1), 1),
        (d(2026, 10, 1), 5),
        (d(2026, 11, 1), 0),
    ]


def test_last_rollup_at_is_when_the_figures_were_computed(adoption_session: Session) -> None:
    assert last_rollup_at(adoption_session) is None
    roll_up(adoption_session, NOW)
    assert last_rollup_at(adoption_session) == NOW


@contextmanager
def counting_statements(session: Session) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = session.get_bind()

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_dashboard_queries_do_not_grow_with_the_transfers(adoption_session: Session) -> None:
    (commune,) = fresh_communes(adoption_session, 1)
    province = adoption_session.get(Commune, commune).province_code  # type: ignore[union-attr]
    world = make_world(adoption_session)
    adults(adoption_session, commune, 1000)
    citizens = [world.citizen(commune, at(d(2026, 10, 1))) for _ in range(5)]
    period = parse_period("2026-ytd", TODAY)

    def dashboard_statements(transfers: int) -> tuple[int, int]:
        for number in range(transfers):
            world.cash_in(citizens[number % 5], 10_000, at(d(2026, 10, 2 + number % 20)))
        roll_up(adoption_session, NOW)
        adoption_session.expire_all()
        with counting_statements(adoption_session) as statements:
            commune_indicators(adoption_session, commune, period, TODAY)
        commune_count = len(statements)
        with counting_statements(adoption_session) as statements:
            province_ranking(adoption_session, province, period, "adults_with_account", TODAY)
            province_ranking(adoption_session, province, period, "active_30_days_of_adults", TODAY)
        return commune_count, len(statements)

    few = dashboard_statements(10)
    many = dashboard_statements(190)

    assert few == many


def test_wilson_interval_values() -> None:
    assert wilson_interval(3, 5) == pytest.approx((0.2307, 0.8824), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    low, high = wilson_interval(185, 200)  # type: ignore[misc]
    assert low == pytest.approx(0.8800, abs=1e-4) and high == pytest.approx(0.9540, abs=1e-4)
    assert wilson_interval(1, 0) is None
    assert wilson_interval(5, 3) is None


@pytest.mark.parametrize(
    ("buckets", "median"),
    [
        ([], None),
        ([(4, 1)], 4),
        ([(8, 1), (3, 1)], 5.5),
        # 1,1,1,2,9 -> 1; an empty bucket counts for nothing.
        ([(9, 1), (1, 3), (2, 1), (5, 0)], 1),
        ([(0, 2), (10, 2)], 5),
        ([(5, 0)], None),
    ],
)
def test_median_days_is_stored_per_period_from_the_histogram(
    adoption_session: Session, buckets: list[tuple[int, int]], median: float | None
) -> None:
    """The roll-up stores each period's median from the histogram's running count; a cohort
    month outside the period, however large, does not move it, and the quarter and the year
    hold every month of theirs."""
    (commune,) = fresh_communes(adoption_session, 1)
    october, september = d(2026, 10, 1), d(2026, 9, 1)
    rows = [DaysToFirstPayment(commune_code=commune, cohort_month=september, days=0, people=50)]
    rows += [
        DaysToFirstPayment(commune_code=commune, cohort_month=october, days=days, people=people)
        for days, people in buckets
    ]
    adoption_session.add_all(rows)
    adoption_session.flush()
    refresh_medians(adoption_session, [(commune, october), (commune, september)])

    def median_of(period: str) -> Figure:
        figures = commune_indicators(adoption_session, commune, parse_period(period, TODAY), TODAY)
        return by_key(figures)["median_days_to_first_payment"]

    paid = sum(people for _days, people in buckets)
    assert (median_of("2026-10").value, median_of("2026-10").denominator) == (median, paid)
    # September's fifty people paid the day they opened their account.
    for period in ("2026-Q4", "2026-Q3", "2026", "2026-ytd"):
        expected = {"2026-Q4": paid, "2026-Q3": 50}.get(period, 50 + paid)
        assert median_of(period).denominator == expected, period
    assert median_of("2026-Q3").value == 0
    assert median_of("2025").denominator == 0


@pytest.mark.parametrize(
    ("raw", "kind", "start", "end"),
    [
        ("2026-11", "month", d(2026, 11, 1), d(2026, 12, 1)),
        ("2026-12", "month", d(2026, 12, 1), d(2027, 1, 1)),
        ("2026-Q4", "quarter", d(2026, 10, 1), d(2027, 1, 1)),
        ("2026-q1", "quarter", d(2026, 1, 1), d(2026, 4, 1)),
        ("2026-ytd", "ytd", d(2026, 1, 1), d(2026, 11, 24)),
        ("2025-ytd", "ytd", d(2025, 1, 1), d(2026, 1, 1)),
        ("2026", "year", d(2026, 1, 1), d(2027, 1, 1)),
    ],
)
def test_periods_parse_and_print_back(raw: str, kind: str, start: dt.date, end: dt.date) -> None:
    period = parse_period(raw, TODAY)
    assert (period.kind, period.start, period.end) == (kind, start, end)
    assert parse_period(period_key(period), TODAY) == period
    assert period.label


def test_period_labels_are_plain_vietnamese() -> None:
    assert parse_period("2026-11", TODAY).label == "Tháng 11/2026"
    assert parse_period("2026-Q4", TODAY).label == "Quý 4/2026"
    assert parse_period("2026-ytd", TODAY).label == "Từ đầu năm 2026 đến 23/11"


@pytest.mark.parametrize(
    "raw", ["", "2026-13", "2026-00", "2026-Q5", "26-11", "2027-ytd", "x", "1999"]
)
def test_bad_periods_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_period(raw, TODAY)


def test_every_indicator_has_a_definition() -> None:
    assert tuple(DEFINITIONS) == INDICATOR_KEYS
    for definition in DEFINITIONS.values():
        assert definition.text and definition.numerator_label and definition.denominator_label
        assert definition.evidence in {"system", "self_reported", "mixed"}
    assert SMALL_DENOMINATOR_MAX == 30
    assert math.isclose(0.925, 185 / 200)
