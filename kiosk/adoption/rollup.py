"""The adoption roll-up: reads only what is new since its watermarks — citizens created, citizens
verified, transfers — and keeps each citizen's milestones and the counters per commune up to date,
so that no indicator ever reads the ledger.

How a transfer counts, for a citizen's wallet (posted transfers and posted reservations only: a
withdrawal or bill code counts when it is paid, never while it is held):
- money in: any credit to the wallet (cash-in, welfare, money from another account), except a
  reversal, which gives back money that was already the citizen's;
- a cashless payment: a debit of the wallet paying a market stall or a bill;
- activity (active in the last 30 days): anything the citizen did — a debit of the wallet other
  than a fee or a reversal, or a cash-in at the counter. Welfare arriving in the wallet is not the
  citizen's doing.

Transactions commit out of order (a transfer stamped 10:00:00 may commit after one stamped
10:00:05), so each run re-reads OVERLAP_S behind its watermark. Re-reading is harmless: every
milestone is a minimum (or, for the last activity, a maximum) of days, set once, and each counter
moves only when a milestone changes. A transfer that commits more than OVERLAP_S after its time
is missed until `rebuild` — far longer than any request or batch takes.

The work is set-based: a page of new rows is one query, the milestones of its citizens one more;
the milestones are compared in memory, and the run writes them and the counters back with one
upsert per table (INSERT … ON CONFLICT DO UPDATE), whatever the communes and months it touched.

Days are Vietnam's (UTC+7 all year, no daylight saving since 1975).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Row,
    Select,
    Table,
    any_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from kiosk.adoption.models import (
    CitizenMilestones,
    CohortCounts,
    DaysToFirstPayment,
    LastActiveDays,
    MedianDaysToFirstPayment,
    MonthlyActive,
    RollupState,
)
from kiosk.citizens.models import Citizen
from kiosk.community.checklist import tick_from_system
from kiosk.community.models import ChecklistStep, Person
from kiosk.wallet.kinds import KINDS_BY_KEY
from ledger.schema import Base, Phase, Transfer

# Longer than any transaction that writes citizens or transfers takes to commit.
OVERLAP_S = 300
# New rows read per source in one run; a backlog beyond it is read by the next runs.
BATCH_LIMIT_ROWS = 50_000
PAGE_ROWS = 1_000
LOCAL_OFFSET = dt.timedelta(hours=7)
# Any number, the same for every roll-up: two runs at once (the scheduler and a hand-run
# command) would count the same milestone twice.
ROLLUP_LOCK_KEY = 5_207_001

COUNTED_PHASES = (Phase.POSTED.value, Phase.POST_PENDING.value)
CASHLESS_PAYMENT_CODES = frozenset({"merchant_payment", "bill_payment"})
NOT_MONEY_IN_CODES = frozenset({"reversal"})
# Debits that the citizen did not choose to make.
NOT_ACTIVE_DEBIT_CODES = frozenset({"fee", "reversal"})
# Credits that the citizen came to make.
ACTIVE_CREDIT_CODES = frozenset({"cash_in"})
# Welfare paid into the wallet: the checklist's "account registered for welfare" step.
WELFARE_CODES = KINDS_BY_KEY["welfare"].codes

SOURCE_CITIZENS = "citizens"
SOURCE_VERIFIED = "verified"
SOURCE_TRANSFERS = "transfers"
SOURCES = (SOURCE_CITIZENS, SOURCE_VERIFIED, SOURCE_TRANSFERS)


@dataclass(frozen=True)
class RollupResult:
    citizens_read: int
    verifications_read: int
    transfers_read: int
    milestones_set: int  # checklist ticks asked for: milestones reached (or found earlier)
    caught_up: bool  # False when batch_limit stopped a source: the next run goes on
    finished_at: dt.datetime


def local_day(moment: dt.datetime) -> dt.date:
    return (moment.astimezone(dt.UTC) + LOCAL_OFFSET).date()


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


def milestones_of(session: Session, citizen_id: int) -> CitizenMilestones | None:
    """A citizen's milestones as the roll-up last saw them, or None before its first look."""
    return session.get(CitizenMilestones, citizen_id)


def last_run_at(session: Session) -> dt.datetime | None:
    """When the roll-up last finished a run."""
    moment: dt.datetime | None = session.scalar(select(func.max(RollupState.last_run_at)))
    return moment


@dataclass(slots=True)
class _Citizen:
    """One citizen's milestones as a run holds them: read once, changed in memory, written back
    in one statement with the others."""

    citizen_id: int
    commune_code: str
    created_on: dt.date
    verified_on: dt.date | None = None
    first_money_in_on: dt.date | None = None
    first_payment_on: dt.date | None = None
    last_active_on: dt.date | None = None
    changed: bool = False


@dataclass
class _Changes:
    """What one run changed: counter deltas, and the milestones to tick in checklists."""

    cohorts: defaultdict[tuple[str, dt.date], defaultdict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    days: defaultdict[tuple[str, dt.date, int], int] = field(
        default_factory=lambda: defaultdict(int)
    )
    active: defaultdict[tuple[str, dt.date], int] = field(default_factory=lambda: defaultdict(int))
    last_active: defaultdict[tuple[str, dt.date], int] = field(
        default_factory=lambda: defaultdict(int)
    )
    ticks: list[tuple[int, ChecklistStep, dt.date]] = field(default_factory=list)


def _among(session: Session, column: Any, ids: Iterable[int]) -> ColumnElement[bool]:
    """`column IN ids`: on PostgreSQL one array parameter (`= ANY`), quicker to send and plan
    than a thousand parameters."""
    wanted = sorted(ids)
    if session.get_bind().dialect.name == "postgresql":
        condition: ColumnElement[bool] = column == any_(
            bindparam("ids", wanted, type_=postgresql.ARRAY(BigInteger))
        )
        return condition
    within: ColumnElement[bool] = column.in_(wanted)
    return within


def _table_of(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


_MILESTONE_COLUMNS = (
    "verified_on",
    "first_money_in_on",
    "first_payment_on",
    "last_active_on",
)


class _Milestones:
    """The milestones of the citizens a run touches: loaded with one query per page of rows,
    changed in memory, written back with one statement per run (`save`)."""

    def __init__(self, session: Session, changes: _Changes) -> None:
        self.session = session
        self.changes = changes
        self.rows: dict[int, _Citizen] = {}

    def prefetch(self, citizen_ids: Iterable[int]) -> set[int]:
        """Load the rows of these citizens; returns the ids that have none yet."""
        wanted = {citizen_id for citizen_id in citizen_ids if citizen_id not in self.rows}
        if wanted:
            table = _table_of(CitizenMilestones)
            for row in self.session.execute(
                select(
                    table.c.citizen_id,
                    table.c.commune_code,
                    table.c.created_on,
                    *(table.c[name] for name in _MILESTONE_COLUMNS),
                ).where(_among(self.session, table.c.citizen_id, wanted))
            ):
                self.rows[row.citizen_id] = _Citizen(*row)
        return wanted - self.rows.keys()

    def load(self, citizen_ids: Iterable[int]) -> None:
        """Load (or create from `citizens`) the rows of these citizens."""
        missing = self.prefetch(citizen_ids)
        if missing:
            citizens = self.session.execute(
                select(
                    Citizen.id,
                    Citizen.commune_code,
                    Citizen.wallet_account_id,
                    Citizen.created_at,
                    Citizen.verified_at,
                ).where(_among(self.session, Citizen.id, missing))
            )
            for citizen in citizens:
                self.see_citizen(citizen)

    def see_citizen(self, citizen: Row[*tuple[Any, ...]]) -> _Citizen:
        """The row of a citizen read from `citizens` (id, commune, wallet, created, verified)."""
        row = self.rows.get(citizen.id)
        if row is None:
            created_on = local_day(citizen.created_at)
            row = _Citizen(citizen.id, citizen.commune_code, created_on, changed=True)
            self.rows[citizen.id] = row
            self.changes.cohorts[(row.commune_code, month_of(created_on))]["created"] += 1
            self.changes.ticks.append((row.citizen_id, ChecklistStep.ACCOUNT_CREATED, created_on))
        if citizen.verified_at is not None:
            self.reach(row, "verified", local_day(citizen.verified_at))
        return row

    def reach(self, row: _Citizen, milestone: str, day: dt.date) -> None:
        """The citizen reached a milestone on `day`: kept if it is the earliest seen."""
        attribute = _MILESTONE_ATTRIBUTES[milestone]
        earlier: dt.date | None = getattr(row, attribute)
        if earlier is not None and earlier <= day:
            return
        setattr(row, attribute, day)
        row.changed = True
        cohort = (row.commune_code, month_of(row.created_on))
        if milestone == "first_payment":
            if earlier is not None:
                self.changes.days[(*cohort, max(0, (earlier - row.created_on).days))] -= 1
            self.changes.days[(*cohort, max(0, (day - row.created_on).days))] += 1
        if earlier is None:
            self.changes.cohorts[cohort][milestone] += 1
            self.changes.ticks.append((row.citizen_id, _MILESTONE_STEPS[milestone], day))

    def act(self, row: _Citizen, day: dt.date) -> None:
        """The citizen did something on `day`: the latest activity, and the month's count."""
        latest = row.last_active_on
        if latest is not None and latest >= day:
            return
        row.last_active_on = day
        row.changed = True
        if latest is not None:
            self.changes.last_active[(row.commune_code, latest)] -= 1
        self.changes.last_active[(row.commune_code, day)] += 1
        if latest is None or month_of(latest) != month_of(day):
            self.changes.active[(row.commune_code, month_of(day))] += 1

    def save(self) -> int:
        """Write the new and changed rows: one upsert. Returns how many."""
        changed = [
            {
                "citizen_id": row.citizen_id,
                "commune_code": row.commune_code,
                "created_on": row.created_on,
                **{name: getattr(row, name) for name in _MILESTONE_COLUMNS},
            }
            for row in self.rows.values()
            if row.changed
        ]
        _upsert(
            self.session,
            _table_of(CitizenMilestones),
            changed,
            keys=("citizen_id",),
            replace=_MILESTONE_COLUMNS,
        )
        return len(changed)


_MILESTONE_ATTRIBUTES = {
    "verified": "verified_on",
    "first_money_in": "first_money_in_on",
    "first_payment": "first_payment_on",
}
_MILESTONE_STEPS = {
    "verified": ChecklistStep.ACCOUNT_VERIFIED,
    "first_money_in": ChecklistStep.FIRST_MONEY_IN,
    "first_payment": ChecklistStep.FIRST_CASHLESS_PAYMENT,
}


def roll_up(
    session: Session, now: dt.datetime, *, batch_limit: int = BATCH_LIMIT_ROWS
) -> RollupResult:
    """Read what is new since the last run and bring the aggregates up to date. Flushes, never
    commits; runs one at a time (a lock held until the caller's commit)."""
    _lock(session)
    states = _states(session)
    changes = _Changes()
    milestones = _Milestones(session, changes)
    caught_up = True

    citizen_columns = (
        Citizen.id,
        Citizen.commune_code,
        Citizen.wallet_account_id,
        Citizen.created_at,
        Citizen.verified_at,
    )

    def see_citizens(rows: Sequence[Row[*tuple[Any, ...]]]) -> None:
        milestones.prefetch(row.id for row in rows)
        for row in rows:
            milestones.see_citizen(row)

    citizens_read, done = _read_since(
        session,
        states[SOURCE_CITIZENS],
        select(*citizen_columns),
        time_column=Citizen.created_at,
        id_column=Citizen.id,
        handle=see_citizens,
        batch_limit=batch_limit,
    )
    caught_up &= done
    verifications_read, done = _read_since(
        session,
        states[SOURCE_VERIFIED],
        select(*citizen_columns).where(Citizen.verified_at.is_not(None)),
        time_column=Citizen.verified_at,
        id_column=Citizen.id,
        handle=see_citizens,
        batch_limit=batch_limit,
    )
    caught_up &= done

    payer = aliased(Citizen)
    payee = aliased(Citizen)
    transfers = (
        select(
            Transfer.id,
            Transfer.created_at,
            Transfer.code,
            payer.id.label("payer_id"),
            payee.id.label("payee_id"),
        )
        .outerjoin(payer, payer.wallet_account_id == Transfer.debit_account_id)
        .outerjoin(payee, payee.wallet_account_id == Transfer.credit_account_id)
        .where(
            Transfer.phase.in_(COUNTED_PHASES),
            or_(payer.id.is_not(None), payee.id.is_not(None)),
        )
    )

    def see_transfers(rows: Sequence[Row[*tuple[Any, ...]]]) -> None:
        milestones.load(
            citizen_id
            for row in rows
            for citizen_id in (row.payer_id, row.payee_id)
            if citizen_id is not None
        )
        for row in rows:
            day = local_day(row.created_at)
            if row.payee_id is not None:
                payee_row = milestones.rows[row.payee_id]
                if row.code not in NOT_MONEY_IN_CODES:
                    milestones.reach(payee_row, "first_money_in", day)
                if row.code in ACTIVE_CREDIT_CODES:
                    milestones.act(payee_row, day)
                if row.code in WELFARE_CODES:
                    changes.ticks.append((row.payee_id, ChecklistStep.WELFARE_ACCOUNT, day))
            if row.payer_id is not None:
                payer_row = milestones.rows[row.payer_id]
                if row.code in CASHLESS_PAYMENT_CODES:
                    milestones.reach(payer_row, "first_payment", day)
                if row.code not in NOT_ACTIVE_DEBIT_CODES:
                    milestones.act(payer_row, day)

    transfers_read, done = _read_since(
        session,
        states[SOURCE_TRANSFERS],
        transfers,
        time_column=Transfer.created_at,
        id_column=Transfer.id,
        handle=see_transfers,
        batch_limit=batch_limit,
    )
    caught_up &= done

    milestones.save()
    _apply(session, changes)
    _forget_loaded_aggregates(session)
    _tick(session, changes.ticks, now)
    for state in states.values():
        state.last_run_at = now
    session.flush()
    return RollupResult(
        citizens_read=citizens_read,
        verifications_read=verifications_read,
        transfers_read=transfers_read,
        milestones_set=len(changes.ticks),
        caught_up=caught_up,
        finished_at=now,
    )


def _lock(session: Session) -> None:
    # SQLite begins every transaction IMMEDIATE (ledger.database): writers are one at a time.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ROLLUP_LOCK_KEY})


def _states(session: Session) -> dict[str, RollupState]:
    states = {state.source: state for state in session.scalars(select(RollupState))}
    for source in SOURCES:
        if source not in states:
            states[source] = RollupState(source=source, rows_read=0)
            session.add(states[source])
    return states


def _read_since(
    session: Session,
    state: RollupState,
    query: Select[*tuple[Any, ...]],
    *,
    time_column: Any,
    id_column: Any,
    handle: Callable[[Sequence[Row[*tuple[Any, ...]]]], None],
    batch_limit: int,
) -> tuple[int, bool]:
    """Hand `handle` the rows from OVERLAP_S before the watermark on, page by page in (time, id)
    order, until batch_limit rows after the watermark were read. Moves the watermark to the
    latest time read. Returns the rows read and whether it read to the end."""
    watermark = state.watermark_at
    ordered = query.order_by(time_column, id_column).limit(PAGE_ROWS)
    after: tuple[dt.datetime, Any] | None = None
    read = new = 0
    at = _time_index(query, time_column)
    # The watermark moves in memory page by page; written once, at the end of the run.
    with session.no_autoflush:
        while True:
            if after is not None:
                page_query = ordered.where(tuple_(time_column, id_column) > tuple_(*after))
            elif watermark is not None:
                page_query = ordered.where(
                    time_column >= watermark - dt.timedelta(seconds=OVERLAP_S)
                )
            else:
                page_query = ordered
            rows = session.execute(page_query).all()
            if not rows:
                return read, True
            handle(rows)
            read += len(rows)
            last = rows[-1]
            after = (last[at], last[0])
            if watermark is None:
                new += len(rows)
            else:
                new += sum(1 for row in rows if row[at] > watermark)
            if state.watermark_at is None or after[0] > state.watermark_at:
                state.watermark_at = after[0]
            state.rows_read = (state.rows_read or 0) + len(rows)
            if len(rows) < PAGE_ROWS:
                return read, True
            if new >= batch_limit:
                return read, False


def _time_index(query: Select[*tuple[Any, ...]], time_column: Any) -> int:
    for index, column in enumerate(query.selected_columns):
        if column.name == time_column.name:
            return index
    raise AssertionError(f"{time_column.name} is not selected")


def _upsert(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    keys: Sequence[str],
    replace: Sequence[str] = (),
    add: Sequence[str] = (),
) -> None:
    """INSERT the rows, or for those whose `keys` exist already, set the `replace` columns and
    add to the `add` columns: one statement for all the rows (PostgreSQL and SQLite)."""
    if not rows:
        return
    names = list(rows[0])
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # The rows as one array per column, unnested: two statements' worth of parameters
        # whatever the rows, where a VALUES list would be slow to build and to parse.
        statement: Any = postgresql.insert(table)
        source = (
            func.unnest(
                *(
                    bindparam(
                        f"rows_{name}",
                        [row[name] for row in rows],
                        type_=postgresql.ARRAY(table.c[name].type),
                    )
                    for name in names
                )
            )
            .table_valued(*names)
            .render_derived()
        )
        statement = statement.from_select(names, select(*(source.c[name] for name in names)))
        parameters: list[dict[str, Any]] | None = None
    elif dialect == "sqlite":
        # In-process: executemany costs no round trips.
        statement = sqlite.insert(table)
        parameters = list(rows)
    else:  # pragma: no cover - the application runs on these two
        raise NotImplementedError(f"no upsert on {dialect}")
    new_values = {name: statement.excluded[name] for name in replace}
    new_values.update({name: table.c[name] + statement.excluded[name] for name in add})
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c[name] for name in keys], set_=new_values
        ),
        parameters,
    )


_COHORT_COUNTERS = ("created", "verified", "first_money_in", "first_payment")


def _apply(session: Session, changes: _Changes) -> None:
    """Add the run's deltas to the counters, rows created on first use: a few statements per run,
    however many communes and months it touched."""
    _upsert(
        session,
        _table_of(CohortCounts),
        [
            {
                "commune_code": commune_code,
                "cohort_month": month,
                **{name: deltas.get(name, 0) for name in _COHORT_COUNTERS},
            }
            for (commune_code, month), deltas in changes.cohorts.items()
        ],
        keys=("commune_code", "cohort_month"),
        add=_COHORT_COUNTERS,
    )
    # A citizen moved to an earlier day leaves one bucket for another (and a citizen active
    # again, from one last day to a later one). Buckets that gain go in by upsert; those that
    # lose (they exist: the citizen was counted there) by UPDATE, since an INSERT of a negative
    # count would break the CHECK before ON CONFLICT is considered.
    _move_people(
        session,
        _table_of(DaysToFirstPayment),
        ("commune_code", "cohort_month", "days"),
        changes.days,
    )
    refresh_medians(session, {(code, month) for code, month, _days in changes.days})
    _move_people(session, _table_of(LastActiveDays), ("commune_code", "day"), changes.last_active)
    _upsert(
        session,
        _table_of(MonthlyActive),
        [
            {"commune_code": commune_code, "month": month, "people": delta}
            for (commune_code, month), delta in changes.active.items()
            if delta
        ],
        keys=("commune_code", "month"),
        add=("people",),
    )


def _move_people(
    session: Session,
    table: Table,
    keys: Sequence[str],
    deltas: Mapping[tuple[Any, ...], int],
) -> None:
    """Add the deltas to the `people` of a histogram's buckets: one upsert for the gains, one
    UPDATE (executemany) for the losses."""
    gains = []
    losses = []
    for bucket, delta in deltas.items():
        if delta > 0:
            gains.append({**dict(zip(keys, bucket, strict=True)), "people": delta})
        elif delta < 0:
            losses.append(
                {
                    **{f"b_{name}": value for name, value in zip(keys, bucket, strict=True)},
                    "b_delta": delta,
                }
            )
    _upsert(session, table, gains, keys=keys, add=("people",))
    if losses:
        session.execute(
            update(table)
            .where(*(table.c[name] == bindparam(f"b_{name}") for name in keys))
            .values(people=table.c.people + bindparam("b_delta")),
            losses,
        )


# --- Medians of the days to the first payment -------------------------------------------------

# The kinds of period a median is stored for, and how many months each spans.
_MONTHS_IN = {"month": 1, "quarter": 3, "year": 12}
MEDIAN_PERIOD_KINDS = tuple(_MONTHS_IN)


def _period_start(kind: str, month: dt.date) -> dt.date:
    """The first day of the month, quarter or year of onboarding that `month` belongs to."""
    size = _MONTHS_IN[kind]
    return dt.date(month.year, (month.month - 1) // size * size + 1, 1)


def _months_of(kind: str, start: dt.date) -> list[dt.date]:
    return [start.replace(month=start.month + index) for index in range(_MONTHS_IN[kind])]


def refresh_medians(session: Session, cohorts: Iterable[tuple[str, dt.date]] | None) -> None:
    """Recompute the stored medians of the periods holding these (commune, onboarding month)
    cohorts: a DELETE and an INSERT … SELECT per kind of period, whatever the communes. With
    `cohorts` None, every period's median goes into the table, which must be empty (a rebuild
    has emptied it; the migration that made it fills it so)."""
    histogram = _table_of(DaysToFirstPayment)
    if cohorts is None:
        months = list(session.scalars(select(histogram.c.cohort_month).distinct()))
        for kind in MEDIAN_PERIOD_KINDS:
            _refresh_kind(session, kind, {m: _period_start(kind, m) for m in months}, None)
        return
    wanted = set(cohorts)
    for kind in MEDIAN_PERIOD_KINDS:
        keys = sorted({(code, _period_start(kind, month)) for code, month in wanted})
        starts = {
            month: start
            for start in {start for _code, start in keys}
            for month in _months_of(kind, start)
        }
        _refresh_kind(session, kind, starts, keys)


def _refresh_kind(
    session: Session,
    kind: str,
    starts: Mapping[dt.date, dt.date],
    keys: Sequence[tuple[str, dt.date]] | None,
) -> None:
    """The medians of one kind of period, from the histogram's months (`starts` maps each month
    to its period), for the (commune, period start) `keys` or for all. The median is read off
    the running count of people over the days: the value at a 0-based position is the first day
    whose running count passes it."""
    if not starts:
        return
    medians = _table_of(MedianDaysToFirstPayment)
    histogram = _table_of(DaysToFirstPayment)
    start = case(dict(starts), value=histogram.c.cohort_month)
    buckets = select(
        histogram.c.commune_code.label("code"),
        start.label("start"),
        histogram.c.days,
        func.sum(histogram.c.people).label("people"),
    ).where(histogram.c.people > 0, histogram.c.cohort_month.in_(sorted(starts)))
    if keys is not None:
        buckets = buckets.where(tuple_(histogram.c.commune_code, start).in_(keys))
        session.execute(
            delete(medians).where(
                medians.c.period_kind == kind,
                tuple_(medians.c.commune_code, medians.c.period_start).in_(keys),
            )
        )
    grouped = buckets.group_by(histogram.c.commune_code, start, histogram.c.days).subquery()
    period = (grouped.c.code, grouped.c.start)
    running = select(
        grouped.c.code,
        grouped.c.start,
        grouped.c.days,
        func.sum(grouped.c.people)
        .over(partition_by=period, order_by=grouped.c.days, rows=(None, 0))
        .label("seen"),
        func.sum(grouped.c.people).over(partition_by=period).label("total"),
    ).subquery()
    total = running.c.total
    lower, upper = (
        func.min(case((running.c.seen > position, running.c.days)))
        for position in ((total - 1) // 2, total // 2)
    )
    session.execute(
        insert(medians).from_select(
            ["commune_code", "period_kind", "period_start", "payers", "lower_days", "upper_days"],
            select(running.c.code, literal(kind), running.c.start, total, lower, upper).group_by(
                running.c.code, running.c.start, total
            ),
        )
    )


# Everything the roll-up maintains (and `rebuild` empties and fills again).
DERIVED_MODELS = (
    CitizenMilestones,
    CohortCounts,
    DaysToFirstPayment,
    MedianDaysToFirstPayment,
    LastActiveDays,
    MonthlyActive,
)


def _forget_loaded_aggregates(session: Session) -> None:
    """The rows were written around the ORM: objects of them that the session holds are expired,
    so that they are read again when next used."""
    for instance in list(session.identity_map.values()):
        if isinstance(instance, DERIVED_MODELS):
            session.expire(instance)


def _tick(
    session: Session, ticks: Sequence[tuple[int, ChecklistStep, dt.date]], now: dt.datetime
) -> None:
    """Tick in the community checklists the steps that the system saw happen, for the citizens
    that a team member registered (one query finds them; the others have no checklist)."""
    citizen_ids = sorted({citizen_id for citizen_id, _step, _day in ticks})
    registered: set[int | None] = set()
    for start in range(0, len(citizen_ids), PAGE_ROWS):
        registered.update(
            session.scalars(
                select(Person.citizen_id).where(
                    _among(session, Person.citizen_id, citizen_ids[start : start + PAGE_ROWS])
                )
            )
        )
    for citizen_id, step, on_date in ticks:
        if citizen_id in registered:
            tick_from_system(session, citizen_id=citizen_id, step=step, on_date=on_date, now=now)


# --- Rebuild: the same aggregates from scratch, in a few set-based statements ---------------------


def rebuild(session: Session, now: dt.datetime) -> None:
    """Recompute every derived aggregate from the citizens and the ledger, set-based (for a first
    deployment, a repair, or a benchmark's data set); the watermarks move to the latest rows, so
    the next `roll_up` goes on from there. Checklists are not ticked: that is the roll-up's job.
    """
    _lock(session)
    dialect = session.get_bind().dialect.name
    # Days between two days, never fewer than 0, as the incremental roll-up counts them: a first
    # payment dated before the account's opening (a wallet that had money moved before its
    # holder's record was made, a clock put right) counts as day 0.
    if dialect == "postgresql":
        local_date = "(({col}) AT TIME ZONE 'Asia/Ho_Chi_Minh')::date"
        month = "date_trunc('month', {col})::date"
        days_between = "greatest(({late}) - ({early}), 0)"
    else:
        local_date = "date({col}, '+7 hours')"
        month = "date({col}, 'start of month')"
        days_between = "max(CAST(julianday({late}) - julianday({early}) AS INTEGER), 0)"

    def fill(template: str, **parts: str) -> str:
        return template.format(
            **parts,
            phases=", ".join(f"'{phase}'" for phase in COUNTED_PHASES),
            cashless=", ".join(f"'{code}'" for code in sorted(CASHLESS_PAYMENT_CODES)),
            not_money_in=", ".join(f"'{code}'" for code in sorted(NOT_MONEY_IN_CODES)),
            not_active_debit=", ".join(f"'{code}'" for code in sorted(NOT_ACTIVE_DEBIT_CODES)),
            active_credit=", ".join(f"'{code}'" for code in sorted(ACTIVE_CREDIT_CODES)),
        )

    for model in DERIVED_MODELS:
        session.execute(delete(model))
    # Activity per wallet and day, then per citizen: the first money in, the first payment, and
    # the days with activity (kept for the monthly counts).
    session.execute(
        text(
            fill(
                """
        INSERT INTO adoption_milestones (citizen_id, commune_code, created_on, verified_on,
            first_money_in_on, first_payment_on, last_active_on)
        SELECT c.id, c.commune_code, {created}, {verified},
            money_in.first_at_day, payment.first_at_day, active.last_at_day
        FROM citizens c
        LEFT JOIN (
            SELECT t.credit_account_id AS account_id, MIN({t_day}) AS first_at_day
            FROM transfers t JOIN citizens w ON w.wallet_account_id = t.credit_account_id
            WHERE t.phase IN ({phases}) AND t.code NOT IN ({not_money_in})
            GROUP BY t.credit_account_id
        ) money_in ON money_in.account_id = c.wallet_account_id
        LEFT JOIN (
            SELECT t.debit_account_id AS account_id, MIN({t_day}) AS first_at_day
            FROM transfers t JOIN citizens w ON w.wallet_account_id = t.debit_account_id
            WHERE t.phase IN ({phases}) AND t.code IN ({cashless})
            GROUP BY t.debit_account_id
        ) payment ON payment.account_id = c.wallet_account_id
        LEFT JOIN (
            SELECT account_id, MAX(day) AS last_at_day FROM {activity} activity
            GROUP BY account_id
        ) active ON active.account_id = c.wallet_account_id
        """,
                created=local_date.format(col="c.created_at"),
                verified=local_date.format(col="c.verified_at"),
                t_day=local_date.format(col="t.created_at"),
                activity=_activity_days_sql(fill, local_date),
            )
        )
    )
    cohort_month = month.format(col="created_on")
    days = days_between.format(late="first_payment_on", early="created_on")
    active_month = month.format(col="activity.day")
    session.execute(
        text(
            fill(
                """
        INSERT INTO adoption_cohorts (commune_code, cohort_month, created, verified,
            first_money_in, first_payment)
        SELECT commune_code, {cohort_month}, COUNT(*), COUNT(verified_on),
            COUNT(first_money_in_on), COUNT(first_payment_on)
        FROM adoption_milestones
        GROUP BY commune_code, {cohort_month}
        """,
                cohort_month=cohort_month,
            )
        )
    )
    session.execute(
        text(
            fill(
                """
        INSERT INTO adoption_days_to_first_payment (commune_code, cohort_month, days, people)
        SELECT commune_code, {cohort_month}, {days}, COUNT(*)
        FROM adoption_milestones
        WHERE first_payment_on IS NOT NULL
        GROUP BY commune_code, {cohort_month}, {days}
        """,
                cohort_month=cohort_month,
                days=days,
            )
        )
    )
    refresh_medians(session, None)
    session.execute(
        text(
            """
        INSERT INTO adoption_last_active_days (commune_code, day, people)
        SELECT commune_code, last_active_on, COUNT(*)
        FROM adoption_milestones
        WHERE last_active_on IS NOT NULL
        GROUP BY commune_code, last_active_on
        """
        )
    )
    session.execute(
        text(
            fill(
                """
        INSERT INTO adoption_monthly_active (commune_code, month, people)
        SELECT c.commune_code, {active_month}, COUNT(DISTINCT c.id)
        FROM {activity} activity
        JOIN citizens c ON c.wallet_account_id = activity.account_id
        GROUP BY c.commune_code, {active_month}
        """,
                active_month=active_month,
                activity=_activity_days_sql(fill, local_date),
            )
        )
    )
    states = _states(session)
    latest = {
        SOURCE_CITIZENS: session.scalar(select(func.max(Citizen.created_at))),
        SOURCE_VERIFIED: session.scalar(select(func.max(Citizen.verified_at))),
        SOURCE_TRANSFERS: session.scalar(select(func.max(Transfer.created_at))),
    }
    for source, state in states.items():
        state.watermark_at = latest[source]
        state.last_run_at = now
    session.flush()


def _activity_days_sql(fill: Callable[..., str], local_date: str) -> str:
    """The (wallet, day) pairs on which a citizen did something, as a derived table."""
    return fill(
        """(
            SELECT t.debit_account_id AS account_id, {t_day} AS day
            FROM transfers t JOIN citizens w ON w.wallet_account_id = t.debit_account_id
            WHERE t.phase IN ({phases}) AND t.code NOT IN ({not_active_debit})
            UNION
            SELECT t.credit_account_id AS account_id, {t_day} AS day
            FROM transfers t JOIN citizens w ON w.wallet_account_id = t.credit_account_id
            WHERE t.phase IN ({phases}) AND t.code IN ({active_credit})
        )""",
        t_day=local_date.format(col="t.created_at"),
    )


__all__ = [
    "DERIVED_MODELS",
    "OVERLAP_S",
    "RollupResult",
    "last_run_at",
    "local_day",
    "milestones_of",
    "rebuild",
    "refresh_medians",
    "roll_up",
]
