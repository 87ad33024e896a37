"""The supervisor's alerts: patterns in one post office's day that a person should look at.

Each kind is one grouped query over the day's rows of the post office (both tables are indexed
by post office and time), bounded by `ALERTS_PER_KIND_MAX`. An alert is a reason to look, not a
verdict: an agent who mistypes codes on a bad scanner trips the first one as surely as one who
tries forged codes.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import ColumnElement, case, func, or_, select
from sqlalchemy.orm import Session

from agent_portal.audit import Action
from agent_portal.models import (
    Agent,
    AuditEvent,
    CounterOperation,
    DrawerSession,
    OperationKind,
    PostOffice,
)
from kiosk.citizens.models import Citizen
from kiosk.formatting import LOCAL_ZONE, local_time, vnd

ALERTS_PER_KIND_MAX = 50
REFUSED_ATTEMPTS_MIN = 5
REFUSED_ACTIONS = (Action.SCAN_REFUSED, Action.FALLBACK_REFUSED, Action.IDENTITY_REFUSED)
# "Just below the approval threshold": within this share of it (10 %).
SPLITTING_BAND_PERCENT = 10
SPLITTING_PER_CITIZEN_MIN = 2
SPLITTING_PER_AGENT_MIN = 3
BURST_PAYOUTS_MIN = 10
BURST_WINDOW_S = 5 * 60
# Drawer top-ups, hand-backs and counts happen before opening and after closing by design;
# serving a citizen then does not.
CITIZEN_OPERATION_KINDS = (
    OperationKind.PAYOUT,
    OperationKind.BILL_COLLECTION,
    OperationKind.CASH_IN,
)
AGENT_ACTOR_PREFIX = "agent:"
SECONDS_PER_DAY = 24 * 60 * 60
# 1970-01-01 as a Julian day number, for epoch seconds on SQLite.
UNIX_EPOCH_JULIAN_DAY = 2440587.5


class AlertKind(enum.StrEnum):
    REFUSED_ATTEMPTS = "refused_attempts"
    SPLITTING_CITIZEN = "splitting_citizen"
    SPLITTING_AGENT = "splitting_agent"
    PAYOUT_BURST = "payout_burst"
    OUTSIDE_HOURS = "outside_hours"
    VARIANCE = "variance"


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    # The agent concerned; None when the pattern is a citizen's across agents.
    agent: Agent | None
    message: str
    # When it happened (the latest occurrence, or the start of a burst).
    at: dt.datetime
    # How many operations or attempts make it up.
    count: int


@dataclass(frozen=True)
class _Finding:
    """What a query found, before it is put into words for the agent it names."""

    kind: AlertKind
    agent_id: int | None
    at: dt.datetime
    count: int
    citizen: Citizen | None = None
    # A variance: counted minus expected, and whether it was the opening count.
    amount: int = 0
    opening: bool = False


@dataclass(frozen=True)
class LocalDay:
    """The post office's calendar day around ``now``, as a UTC interval [start, end)."""

    start: dt.datetime
    end: dt.datetime

    @classmethod
    def of(cls, now: dt.datetime) -> LocalDay:
        local_midnight = dt.datetime.combine(
            now.astimezone(LOCAL_ZONE).date(), dt.time(), tzinfo=LOCAL_ZONE
        )
        start = local_midnight.astimezone(dt.UTC)
        return cls(start, start + dt.timedelta(days=1))

    def minute(self, minute_of_day: int) -> dt.datetime:
        # Vietnam keeps UTC+7 all year, so a minute of the local day is a fixed UTC instant.
        return self.start + dt.timedelta(minutes=minute_of_day)


def alerts_for(
    session: Session, post_office: PostOffice, now: dt.datetime, config: Mapping[str, Any]
) -> list[Alert]:
    """Today's alerts for the post office (its local day): kinds in the order a supervisor
    should read them, the most recent first within each kind."""
    day = LocalDay.of(now)
    approval_above_vnd = int(config["PAYOUT_APPROVAL_ABOVE_VND"])
    findings = [
        *_refused_attempts(session, post_office, day),
        *_splitting(session, post_office, day, approval_above_vnd),
        *_bursts(session, post_office, day),
        *_outside_hours(session, post_office, day),
        *_variances(session, post_office, day, int(config["DRAWER_VARIANCE_SIGN_OFF_ABOVE_VND"])),
    ]
    agents = _agents(session, post_office, {f.agent_id for f in findings if f.agent_id})
    alerts = []
    for finding in findings:
        agent = None if finding.agent_id is None else agents.get(finding.agent_id)
        if finding.agent_id is not None and agent is None:
            continue  # not (or no longer) of this post office
        message = _message(finding, agent, post_office, approval_above_vnd)
        alerts.append(Alert(finding.kind, agent, message, finding.at, finding.count))
    return alerts


def _message(
    finding: _Finding, agent: Agent | None, post_office: PostOffice, approval_above_vnd: int
) -> str:
    name = "" if agent is None else agent.full_name
    text: str
    if finding.kind is AlertKind.REFUSED_ATTEMPTS:
        text = _(
            "%(name)s có %(count)d lần quét mã, nhập mã số hoặc đối chiếu căn cước bị từ chối "
            "hôm nay.",
            name=name,
            count=finding.count,
        )
    elif finding.kind is AlertKind.SPLITTING_CITIZEN:
        citizen = finding.citizen
        assert citizen is not None
        text = _(
            "%(name)s (căn cước ••••%(last4)s) đã rút %(count)d lần hôm nay, mỗi lần sát dưới "
            "mức cần phê duyệt %(limit)s: có thể đang chia nhỏ một khoản rút lớn.",
            name=citizen.full_name,
            last4=citizen.citizen_id_last4,
            count=finding.count,
            limit=vnd(approval_above_vnd),
        )
    elif finding.kind is AlertKind.SPLITTING_AGENT:
        text = _(
            "%(name)s đã chi %(count)d khoản sát dưới mức cần phê duyệt %(limit)s hôm nay.",
            name=name,
            count=finding.count,
            limit=vnd(approval_above_vnd),
        )
    elif finding.kind is AlertKind.PAYOUT_BURST:
        text = _(
            "%(name)s đã chi %(count)d khoản trong vòng %(minutes)d phút, từ %(time)s.",
            name=name,
            count=finding.count,
            minutes=BURST_WINDOW_S // 60,
            time=local_time(finding.at, "%H:%M"),
        )
    elif finding.kind is AlertKind.OUTSIDE_HOURS:
        text = _(
            "%(name)s có %(count)d giao dịch với người dân ngoài giờ mở cửa "
            "(từ %(opens)s đến %(closes)s), lần gần nhất lúc %(time)s.",
            name=name,
            count=finding.count,
            opens=_clock(post_office.opens_minute),
            closes=_clock(post_office.closes_minute),
            time=local_time(finding.at, "%H:%M"),
        )
    elif finding.opening:
        text = _(
            "Két tiền của %(name)s lệch %(amount)s khi đếm đầu ca lúc %(time)s.",
            name=name,
            amount=_signed(finding.amount),
            time=local_time(finding.at, "%H:%M"),
        )
    else:
        text = _(
            "Két tiền của %(name)s lệch %(amount)s khi đếm cuối ca lúc %(time)s.",
            name=name,
            amount=_signed(finding.amount),
            time=local_time(finding.at, "%H:%M"),
        )
    return text


def _clock(minute_of_day: int) -> str:
    return f"{minute_of_day // 60:02d}:{minute_of_day % 60:02d}"


def _signed(amount: int) -> str:
    return f"+{vnd(amount)}" if amount > 0 else vnd(amount)


def _agents(session: Session, post_office: PostOffice, ids: set[int]) -> dict[int, Agent]:
    if not ids:
        return {}
    return {
        agent.id: agent
        for agent in session.scalars(
            select(Agent).where(Agent.id.in_(ids), Agent.post_office_id == post_office.id)
        )
    }


def _todays_operations(post_office: PostOffice, day: LocalDay) -> list[ColumnElement[bool]]:
    return [
        CounterOperation.post_office_id == post_office.id,
        CounterOperation.created_at >= day.start,
        CounterOperation.created_at < day.end,
    ]


# (a) Refused scans, numeric fallbacks and identity checks ---------------------------------------


def _refused_attempts(session: Session, post_office: PostOffice, day: LocalDay) -> list[_Finding]:
    count = func.count()
    last_at = func.max(AuditEvent.at)
    rows = session.execute(
        select(AuditEvent.actor, count, last_at)
        .where(
            AuditEvent.post_office_id == post_office.id,
            AuditEvent.action.in_(REFUSED_ACTIONS),
            AuditEvent.at >= day.start,
            AuditEvent.at < day.end,
            AuditEvent.actor.startswith(AGENT_ACTOR_PREFIX),
        )
        .group_by(AuditEvent.actor)
        .having(count >= REFUSED_ATTEMPTS_MIN)
        .order_by(last_at.desc())
        .limit(ALERTS_PER_KIND_MAX)
    )
    findings = []
    for actor, attempts, at in rows:
        number = actor.removeprefix(AGENT_ACTOR_PREFIX)
        if number.isascii() and number.isdigit():
            findings.append(_Finding(AlertKind.REFUSED_ATTEMPTS, int(number), at, attempts))
    return findings


# (b) Possible splitting: payouts just below the approval threshold -----------------------------


def splitting_band(approval_above_vnd: int) -> tuple[int, int]:
    """The payout amounts, inclusive, that count as "just below" the approval threshold."""
    return (
        approval_above_vnd - approval_above_vnd * SPLITTING_BAND_PERCENT // 100,
        approval_above_vnd,
    )


def _splitting(
    session: Session, post_office: PostOffice, day: LocalDay, approval_above_vnd: int
) -> list[_Finding]:
    low, high = splitting_band(approval_above_vnd)
    near_threshold = [
        *_todays_operations(post_office, day),
        CounterOperation.kind == OperationKind.PAYOUT,
        CounterOperation.amount.between(low, high),
    ]
    count = func.count()
    last_at = func.max(CounterOperation.created_at)
    per_citizen = (
        select(CounterOperation.citizen_id, count.label("payouts"), last_at.label("last_at"))
        .where(*near_threshold, CounterOperation.citizen_id.is_not(None))
        .group_by(CounterOperation.citizen_id)
        .having(count >= SPLITTING_PER_CITIZEN_MIN)
        .order_by(last_at.desc())
        .limit(ALERTS_PER_KIND_MAX)
        .subquery()
    )
    findings = [
        _Finding(AlertKind.SPLITTING_CITIZEN, None, at, payouts, citizen=citizen)
        for citizen, payouts, at in session.execute(
            select(Citizen, per_citizen.c.payouts, per_citizen.c.last_at)
            .join(per_citizen, per_citizen.c.citizen_id == Citizen.id)
            .order_by(per_citizen.c.last_at.desc())
        )
    ]
    findings += [
        _Finding(AlertKind.SPLITTING_AGENT, agent_id, at, payouts)
        for agent_id, payouts, at in session.execute(
            select(CounterOperation.agent_id, count, last_at)
            .where(*near_threshold)
            .group_by(CounterOperation.agent_id)
            .having(count >= SPLITTING_PER_AGENT_MIN)
            .order_by(last_at.desc())
            .limit(ALERTS_PER_KIND_MAX)
        )
    ]
    return findings


# (c) Bursts of payouts --------------------------------------------------------------------------


def _epoch_seconds(session: Session, column: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "sqlite":
        # Stored as naive UTC text ("2026-01-02 03:04:05.678901"), which julianday() reads.
        return (func.julianday(column) - UNIX_EPOCH_JULIAN_DAY) * SECONDS_PER_DAY
    return func.extract("epoch", column)


def _bursts(session: Session, post_office: PostOffice, day: LocalDay) -> list[_Finding]:
    """Agents with `BURST_PAYOUTS_MIN` payouts or more within `BURST_WINDOW_S` seconds.

    For each payout a window function counts the same agent's payouts from it to
    `BURST_WINDOW_S` seconds later. The busiest window of the day can always be slid to start at
    a payout, so the largest of these counts is the most payouts in any such window.
    """
    epoch = _epoch_seconds(session, CounterOperation.created_at)
    windows = (
        select(
            CounterOperation.agent_id,
            CounterOperation.created_at,
            func.count()
            .over(
                partition_by=CounterOperation.agent_id,
                order_by=epoch,
                range_=(0, BURST_WINDOW_S),
            )
            .label("in_window"),
        )
        .where(
            *_todays_operations(post_office, day),
            CounterOperation.kind == OperationKind.PAYOUT,
        )
        .subquery()
    )
    busiest = func.max(windows.c.in_window)
    first_burst_at = func.min(
        case((windows.c.in_window >= BURST_PAYOUTS_MIN, windows.c.created_at))
    )
    rows = session.execute(
        select(windows.c.agent_id, busiest, first_burst_at)
        .group_by(windows.c.agent_id)
        .having(busiest >= BURST_PAYOUTS_MIN)
        .order_by(first_burst_at.desc())
        .limit(ALERTS_PER_KIND_MAX)
    )
    return [
        _Finding(AlertKind.PAYOUT_BURST, agent_id, _utc(at), payouts)
        for agent_id, payouts, at in rows
    ]


def _utc(value: Any) -> dt.datetime:
    """A timestamp computed by an aggregate (so not passed through `UTCDateTime`)."""
    if isinstance(value, str):  # SQLite returns min(CASE …) as its stored text
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# (d) Serving citizens outside opening hours -----------------------------------------------------


def _outside_hours(session: Session, post_office: PostOffice, day: LocalDay) -> list[_Finding]:
    opens_at = day.minute(post_office.opens_minute)
    closes_at = day.minute(post_office.closes_minute)
    count = func.count()
    last_at = func.max(CounterOperation.created_at)
    rows = session.execute(
        select(CounterOperation.agent_id, count, last_at)
        .where(
            *_todays_operations(post_office, day),
            CounterOperation.kind.in_(CITIZEN_OPERATION_KINDS),
            or_(CounterOperation.created_at < opens_at, CounterOperation.created_at >= closes_at),
        )
        .group_by(CounterOperation.agent_id)
        .order_by(last_at.desc())
        .limit(ALERTS_PER_KIND_MAX)
    )
    return [
        _Finding(AlertKind.OUTSIDE_HOURS, agent_id, at, operations)
        for agent_id, operations, at in rows
    ]


# (e) Large opening and closing variances --------------------------------------------------------


def _variances(
    session: Session, post_office: PostOffice, day: LocalDay, sign_off_above_vnd: int
) -> list[_Finding]:
    rows = session.execute(
        select(CounterOperation, DrawerSession.opened_at)
        .join(DrawerSession, DrawerSession.id == CounterOperation.drawer_session_id)
        .where(
            *_todays_operations(post_office, day),
            CounterOperation.kind == OperationKind.VARIANCE,
            CounterOperation.amount > sign_off_above_vnd,
        )
        .order_by(CounterOperation.created_at.desc())
        .limit(ALERTS_PER_KIND_MAX)
    )
    return [
        _Finding(
            AlertKind.VARIANCE,
            operation.agent_id,
            operation.created_at,
            1,
            amount=operation.cash_delta,
            # The opening variance is posted in the same instant the session opens.
            opening=operation.created_at == opened_at,
        )
        for operation, opened_at in rows
    ]
