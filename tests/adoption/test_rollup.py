"""The adoption roll-up: milestones from what really happened, counted once, read incrementally."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.adoption import rollup
from kiosk.adoption.models import (
    CitizenMilestones,
    CohortCounts,
    DaysToFirstPayment,
    LastActiveDays,
    MedianDaysToFirstPayment,
    MonthlyActive,
    RollupState,
)
from kiosk.adoption.rollup import milestones_of, rebuild, roll_up
from kiosk.community.models import ChecklistEntry, ChecklistStep, Evidence
from tests.adoption.rollup_support import (  # the session fixture, and the world around it
    NOW,
    Team,
    World,
    adoption_session,
    at,
    fresh_communes,
    make_world,
)

__all__ = ["adoption_session"]

OCT = dt.date(2026, 10, 1)
TODAY_LOCAL = dt.date(2026, 11, 23)


def snapshot(session: Session, communes: list[str]) -> dict[str, Any]:
    """Every derived row of these communes, as plain values."""
    session.flush()
    return {
        "milestones": sorted(
            (
                m.citizen_id,
                m.created_on,
                m.verified_on,
                m.first_money_in_on,
                m.first_payment_on,
                m.last_active_on,
            )
            for m in session.scalars(
                select(CitizenMilestones).where(CitizenMilestones.commune_code.in_(communes))
            )
        ),
        "cohorts": sorted(
            (
                c.commune_code,
                c.cohort_month,
                c.created,
                c.verified,
                c.first_money_in,
                c.first_payment,
            )
            for c in session.scalars(
                select(CohortCounts).where(CohortCounts.commune_code.in_(communes))
            )
        ),
        "days": sorted(
            (d.commune_code, d.cohort_month, d.days, d.people)
            for d in session.scalars(
                select(DaysToFirstPayment).where(DaysToFirstPayment.commune_code.in_(communes))
            )
            if d.people
        ),
        "medians": sorted(
            (m.commune_code, m.period_kind, m.period_start, m.payers, m.lower_days, m.upper_days)
            for m in session.scalars(
                select(MedianDaysToFirstPayment).where(
                    MedianDaysToFirstPayment.commune_code.in_(communes)
                )
            )
        ),
        "active": sorted(
            (a.commune_code, a.month, a.people)
            for a in session.scalars(
                select(MonthlyActive).where(MonthlyActive.commune_code.in_(communes))
            )
        ),
        "last_active_days": last_active_days(session, communes),
    }


def last_active_days(session: Session, communes: list[str]) -> dict[tuple[str, dt.date], int]:
    """The histogram of people by their last active day (empty buckets left out)."""
    session.flush()
    return {
        (code, day): people
        for code, day, people in session.execute(
            select(LastActiveDays.commune_code, LastActiveDays.day, LastActiveDays.people).where(
                LastActiveDays.commune_code.in_(communes)
            )
        )
        if people
    }


def last_active_days_of_milestones(
    session: Session, communes: list[str]
) -> dict[tuple[str, dt.date], int]:
    """The same histogram counted from each citizen's milestones."""
    return dict(
        Counter(
            (code, day)
            for code, day in session.execute(
                select(CitizenMilestones.commune_code, CitizenMilestones.last_active_on).where(
                    CitizenMilestones.commune_code.in_(communes),
                    CitizenMilestones.last_active_on.is_not(None),
                )
            )
        )
    )


def story(world: World, commune: str) -> list[int]:
    """Four citizens of one commune, onboarded in October 2026, and what each did."""
    # Verified at once, cash-in, then a bill paid by payment code three days later.
    an = world.citizen(commune, at(dt.date(2026, 10, 5)), verified=at(dt.date(2026, 10, 5), 11))
    world.cash_in(an, 500_000, at(dt.date(2026, 10, 6)))
    code = world.reserve(an, 100_000, at(dt.date(2026, 10, 7)), bill=True)
    world.redeem(code, at(dt.date(2026, 10, 8)), bill=True)
    # Welfare into the wallet, a stall paid a month later, a withdrawal in November.
    binh = world.citizen(commune, at(dt.date(2026, 10, 10)))
    world.welfare(binh, 1_000_000, at(dt.date(2026, 10, 15)))
    world.verify(binh, at(dt.date(2026, 10, 20)))
    world.pay_stall(binh, 20_000, at(dt.date(2026, 11, 9)))
    cash = world.reserve(binh, 200_000, at(dt.date(2026, 11, 20)), bill=False)
    world.redeem(cash, at(dt.date(2026, 11, 21)), bill=False)
    # Money held by codes that were never paid, and a fee: no payment, no activity.
    chi = world.citizen(commune, at(dt.date(2026, 10, 12)))
    world.welfare(chi, 300_000, at(dt.date(2026, 10, 15)))
    world.cancel(
        world.reserve(chi, 50_000, at(dt.date(2026, 10, 16)), bill=True), at(dt.date(2026, 10, 16))
    )
    world.reserve(chi, 50_000, at(dt.date(2026, 10, 17)), bill=False)
    world.fee(chi, 1_000, at(dt.date(2026, 10, 18)))
    # Nothing at all after opening the account.
    dung = world.citizen(commune, at(dt.date(2026, 10, 31), 23))
    return [an.id, binh.id, chi.id, dung.id]


def test_milestones_are_the_days_things_really_happened(adoption_session: Session) -> None:
    (commune,) = fresh_communes(adoption_session, 1)
    an, binh, chi, dung = story(make_world(adoption_session), commune)

    roll_up(adoption_session, NOW)

    def days(citizen_id: int) -> tuple[Any, ...]:
        row = milestones_of(adoption_session, citizen_id)
        assert row is not None and row.commune_code == commune
        return (
            row.created_on,
            row.verified_on,
            row.first_money_in_on,
            row.first_payment_on,
            row.last_active_on,
        )

    d = dt.date
    assert days(an) == (
        d(2026, 10, 5),
        d(2026, 10, 5),
        d(2026, 10, 6),
        d(2026, 10, 8),
        d(2026, 10, 8),
    )
    # Welfare is money in but not the citizen's own doing; the withdrawal paid out is activity.
    assert days(binh) == (
        d(2026, 10, 10),
        d(2026, 10, 20),
        d(2026, 10, 15),
        d(2026, 11, 9),
        d(2026, 11, 21),
    )
    # A cancelled bill code, an unpaid withdrawal code and a fee are neither payment nor activity.
    assert days(chi) == (d(2026, 10, 12), None, d(2026, 10, 15), None, None)
    # 23:00 in Hà Nội on 31 October is 16:00 UTC: still an October account.
    assert days(dung) == (d(2026, 10, 31), None, None, None, None)
    assert snapshot(adoption_session, [commune])["cohorts"] == [(commune, OCT, 4, 2, 3, 2)]
    assert snapshot(adoption_session, [commune])["days"] == [
        (commune, OCT, 3, 1),
        (commune, OCT, 30, 1),
    ]
    assert snapshot(adoption_session, [commune])["active"] == [
        (commune, OCT, 1),
        (commune, dt.date(2026, 11, 1), 1),
    ]


def test_milestones_of_a_citizen_not_rolled_up_yet_is_none(adoption_session: Session) -> None:
    (commune,) = fresh_communes(adoption_session, 1)
    citizen = make_world(adoption_session).citizen(commune, at(dt.date(2026, 11, 1)))
    assert milestones_of(adoption_session, citizen.id) is None


def test_a_second_run_with_nothing_new_changes_nothing(adoption_session: Session) -> None:
    (commune,) = fresh_communes(adoption_session, 1)
    story(make_world(adoption_session), commune)
    roll_up(adoption_session, NOW)
    before = snapshot(adoption_session, [commune])

    again = roll_up(adoption_session, NOW + dt.timedelta(minutes=1))

    assert snapshot(adoption_session, [commune]) == before
    assert again.milestones_set == 0


def test_only_what_is_new_is_counted_by_the_next_run(adoption_session: Session) -> None:
    (commune,) = fresh_communes(adoption_session, 1)
    world = make_world(adoption_session)
    story(world, commune)
    roll_up(adoption_session, NOW)

    later = NOW + dt.timedelta(minutes=30)
    newcomer = world.citizen(commune, later)
    world.cash_in(newcomer, 100_000, later)
    world.pay_stall(newcomer, 10_000, later)
    result = roll_up(adoption_session, later + dt.timedelta(minutes=1))

    # The next run reads only the new rows and those of its overlap behind the watermark (the
    # latest row read before), not the October history.
    assert (result.citizens_read, result.verifications_read, result.transfers_read) == (2, 1, 3)
    cohorts = snapshot(adoption_session, [commune])["cohorts"]
    assert cohorts == [(commune, OCT, 4, 2, 3, 2), (commune, dt.date(2026, 11, 1), 1, 0, 1, 1)]


def test_a_transfer_committed_late_inside_the_overlap_is_counted_once(
    adoption_session: Session,
) -> None:
    (commune,) = fresh_communes(adoption_session, 1)
    world = make_world(adoption_session)
    citizen = world.citizen(commune, NOW - dt.timedelta(days=2))
    world.cash_in(citizen, 100_000, NOW)
    roll_up(adoption_session, NOW + dt.timedelta(seconds=5))

    # A payment stamped before the watermark, committed after the run had read past it.
    world.pay_stall(citizen, 10_000, NOW - dt.timedelta(seconds=rollup.OVERLAP_S - 60))
    roll_up(adoption_session, NOW + dt.timedelta(minutes=1))
    roll_up(adoption_session, NOW + dt.timedelta(minutes=2))

    row = milestones_of(adoption_session, citizen.id)
    assert row is not None and row.first_payment_on == NOW.date()
    month = NOW.date().replace(day=1)
    assert snapshot(adoption_session, [commune])["cohorts"] == [
        (commune, dt.date(2026, 11, 1), 1, 0, 1, 1)
    ]
    assert snapshot(adoption_session, [commune])["days"] == [(commune, month, 2, 1)]


def test_a_late_payment_of_an_earlier_day_moves_the_citizen_in_the_histogram(
    adoption_session: Session,
) -> None:
    (commune,) = fresh_communes(adoption_session, 1)
    world = make_world(adoption_session)
    citizen = world.citizen(commune, at(dt.date(2026, 11, 1)))
    world.cash_in(citizen, 100_000, at(dt.date(2026, 11, 1)))
    midnight = at(dt.date(2026, 11, 11), 0)
    world.pay_stall(citizen, 10_000, midnight + dt.timedelta(minutes=1))
    roll_up(adoption_session, midnight + dt.timedelta(minutes=2))

    world.pay_stall(citizen, 10_000, midnight - dt.timedelta(minutes=1))
    roll_up(adoption_session, midnight + dt.timedelta(minutes=3))

    row = milestones_of(adoption_session, citizen.id)
    assert row is not None and row.first_payment_on == dt.date(2026, 11, 10)
    november = dt.date(2026, 11, 1)
    assert snapshot(adoption_session, [commune])["days"] == [(commune, november, 9, 1)]
    assert snapshot(adoption_session, [commune])["cohorts"] == [(commune, november, 1, 0, 1, 1)]


def test_a_backlog_is_read_over_several_runs_and_counted_once(
    adoption_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    (commune,) = fresh_communes(adoption_session, 1)
    story(make_world(adoption_session), commune)
    monkeypatch.setattr(rollup, "PAGE_ROWS", 2)

    runs = 0
    while True:
        runs += 1
        result = roll_up(adoption_session, NOW + dt.timedelta(minutes=runs), batch_limit=3)
        if result.caught_up:
            break
        assert runs < 1000
    assert runs > 1
    in_pieces = snapshot(adoption_session, [commune])

    rebuild(adoption_session, NOW)
    assert snapshot(adoption_session, [commune]) == in_pieces


def test_rebuild_agrees_with_the_incremental_roll_up(adoption_session: Session) -> None:
    communes = fresh_communes(adoption_session, 2)
    world = make_world(adoption_session)
    story(world, communes[0])
    story(world, communes[1])
    extra = world.citizen(communes[1], at(dt.date(2026, 9, 30)), verified=at(dt.date(2026, 10, 2)))
    world.cash_in(extra, 50_000, at(dt.date(2026, 11, 2)))
    world.pay_stall(extra, 5_000, at(dt.date(2026, 11, 2)))
    roll_up(adoption_session, NOW)
    incremental = snapshot(adoption_session, communes)

    rebuild(adoption_session, NOW)

    assert snapshot(adoption_session, communes) == incremental
    # The watermarks moved: the next run only re-reads its overlap and counts nothing twice.
    states = {state.source: state for state in adoption_session.scalars(select(RollupState))}
    assert states["transfers"].watermark_at is not None
    roll_up(adoption_session, NOW + dt.timedelta(minutes=1))
    assert snapshot(adoption_session, communes) == incremental


def test_a_payment_dated_before_the_account_counts_as_day_0_in_both_runs(
    adoption_session: Session,
) -> None:
    commune = fresh_communes(adoption_session, 1)[0]
    world = make_world(adoption_session)
    early = world.citizen(commune, at(dt.date(2026, 11, 20)))
    world.cash_in(early, 50_000, at(dt.date(2026, 11, 1)))
    world.pay_stall(early, 5_000, at(dt.date(2026, 11, 2)))
    roll_up(adoption_session, NOW)
    incremental = snapshot(adoption_session, [commune])
    days = select(DaysToFirstPayment.days, DaysToFirstPayment.people).where(
        DaysToFirstPayment.commune_code == commune
    )
    assert adoption_session.execute(days).all() == [(0, 1)]

    rebuild(adoption_session, NOW)

    assert snapshot(adoption_session, [commune]) == incremental


def test_last_rollup_time_is_the_last_run(adoption_session: Session) -> None:
    assert rollup.last_run_at(adoption_session) is None
    roll_up(adoption_session, NOW)
    assert rollup.last_run_at(adoption_session) == NOW


def test_checklist_steps_the_system_saw_are_ticked_with_evidence_system(
    adoption_session: Session,
) -> None:
    (commune,) = fresh_communes(adoption_session, 1)
    world = make_world(adoption_session)
    citizen = world.citizen(commune, at(dt.date(2026, 11, 2)), verified=at(dt.date(2026, 11, 3)))
    world.welfare(citizen, 500_000, at(dt.date(2026, 11, 4)))
    world.pay_stall(citizen, 10_000, at(dt.date(2026, 11, 5)))
    team = Team.of(adoption_session, commune)
    person = team.person(team.household(), citizen_id=citizen.id)

    roll_up(adoption_session, NOW)

    entries = {
        entry.step: (entry.on_date, entry.evidence)
        for entry in adoption_session.scalars(
            select(ChecklistEntry).where(ChecklistEntry.person_id == person.id)
        )
    }
    system = Evidence.SYSTEM.value
    assert entries == {
        ChecklistStep.ACCOUNT_CREATED.value: (dt.date(2026, 11, 2), system),
        ChecklistStep.ACCOUNT_VERIFIED.value: (dt.date(2026, 11, 3), system),
        ChecklistStep.FIRST_MONEY_IN.value: (dt.date(2026, 11, 4), system),
        ChecklistStep.WELFARE_ACCOUNT.value: (dt.date(2026, 11, 4), system),
        ChecklistStep.FIRST_CASHLESS_PAYMENT.value: (dt.date(2026, 11, 5), system),
    }


def test_rows_the_session_already_holds_show_what_a_later_run_counted(
    adoption_session: Session,
) -> None:
    # The roll-up writes the aggregates in bulk, around the ORM: objects loaded before it ran
    # must not keep the old figures.
    (commune,) = fresh_communes(adoption_session, 1)
    world = make_world(adoption_session)
    citizen = world.citizen(commune, at(dt.date(2026, 11, 1)))
    roll_up(adoption_session, NOW)
    held = milestones_of(adoption_session, citizen.id)
    cohort = adoption_session.get(CohortCounts, (commune, dt.date(2026, 11, 1)))
    assert held is not None and held.first_money_in_on is None
    assert cohort is not None and cohort.first_money_in == 0

    later = NOW + dt.timedelta(minutes=30)
    world.cash_in(citizen, 100_000, later)
    roll_up(adoption_session, later + dt.timedelta(minutes=1))

    assert held.first_money_in_on == TODAY_LOCAL
    assert cohort.first_money_in == 1
    assert milestones_of(adoption_session, citizen.id) is held


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_the_last_active_day_histogram_agrees_with_the_milestones_run_after_run(
    adoption_session: Session, seed: int
) -> None:
    chooser = random.Random(seed)
    communes = fresh_communes(adoption_session, 2)
    world = make_world(adoption_session)
    start = at(dt.date(2026, 9, 1))
    citizens = [world.citizen(chooser.choice(communes), start) for _ in range(8)]
    # Money to spend, without activity of the citizen's own.
    for citizen in citizens:
        world.welfare(citizen, 10_000_000, start + dt.timedelta(minutes=1))
    moment = start + dt.timedelta(hours=1)
    expected: dict[tuple[str, dt.date], int] = {}
    for run in range(8):
        # Transfers of the next few days, posted in random order, read by one run.
        window = dt.timedelta(days=chooser.randint(0, 9), hours=chooser.randint(1, 20))
        times = sorted(moment + window * chooser.random() for _ in range(chooser.randint(0, 12)))
        chooser.shuffle(times)
        for when in times:
            citizen = chooser.choice(citizens)
            action = chooser.choice((world.cash_in, world.pay_stall, world.fee, world.welfare))
            action(citizen, 1_000, when)
        moment += window
        roll_up(adoption_session, moment + dt.timedelta(seconds=1 + run))

        expected = last_active_days_of_milestones(adoption_session, communes)
        assert last_active_days(adoption_session, communes) == expected
    # Run again with nothing new (the overlap re-read), and rebuilt: the same histogram.
    roll_up(adoption_session, moment + dt.timedelta(minutes=1))
    assert last_active_days(adoption_session, communes) == expected
    rebuild(adoption_session, moment + dt.timedelta(minutes=2))
    assert last_active_days(adoption_session, communes) == expected
    assert last_active_days_of_milestones(adoption_session, communes) == expected
