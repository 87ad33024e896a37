"""The ``softatm ops …`` command group: scheduled operations reports.

``softatm ops drawer-report`` lists one local day's cash drawer sessions (Asia/Ho_Chi_Minh), per
post office and agent, as CSV. It only reads, from one consistent snapshot, and writes its file
atomically, so it is safe to run twice or concurrently with the service and with itself.
Registered by `kiosk.cli`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from agent_portal.models import (
    Agent,
    CounterOperation,
    DrawerSession,
    DrawerStatus,
    OperationKind,
    PostOffice,
)
from kiosk import database
from kiosk.formatting import LOCAL_ZONE

# An AppGroup (a click.Group) runs each command inside the app context.
ops_group = AppGroup("ops", help="Scheduled operations reports.")

# Far above a national day (about 10,000 post office points with one or two agents each); a day
# with more sessions than this is a bug, and the report says so rather than reading without end.
DRAWER_REPORT_SESSIONS_MAX = 200_000
STREAM_BATCH_SIZE = 1_000
REPORT_FILE_PATTERN = "drawer-report-{date}.csv"

COLUMNS = (
    "date",
    "post_office_code",
    "post_office_name",
    "agent_username",
    "agent_name",
    "drawer_session_id",
    "status",
    "opened_at",
    "closed_at",
    "opening_expected",
    "opening_counted",
    "opening_variance",
    "closing_expected",
    "closing_counted",
    "closing_variance",
    "signed_off_by",
    "operations",
)


@dataclass(frozen=True)
class DrawerReportLine:
    """One drawer session as the report shows it; amounts in đồng, times in local time."""

    post_office_code: str
    post_office_name: str
    agent_username: str
    agent_name: str
    drawer_session_id: int
    status: str
    opened_at: dt.datetime
    closed_at: dt.datetime | None
    opening_expected: int
    opening_counted: int
    closing_expected: int | None
    closing_counted: int | None
    signed_off_by: str | None
    # Counter operations in the session, not counting the variance postings of the counts.
    operations: int

    @property
    def closing_variance(self) -> int | None:
        if self.closing_counted is None or self.closing_expected is None:
            return None
        return self.closing_counted - self.closing_expected


def local_day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants at which a local day starts and the next one starts."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=LOCAL_ZONE)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=LOCAL_ZONE)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def drawer_report(session: Session, day: dt.date) -> Iterator[DrawerReportLine]:
    """Every drawer session that was open at some time during the local day ``day``: opened
    before the day ended and not closed before it began (so a drawer left open shows on each day
    until it is closed). Ordered by post office, agent and opening time."""
    start, end = local_day_bounds(day)
    signer = aliased(Agent)
    operations = (
        select(func.count())
        .where(
            CounterOperation.drawer_session_id == DrawerSession.id,
            CounterOperation.kind != OperationKind.VARIANCE.value,
        )
        .correlate(DrawerSession)
        .scalar_subquery()
    )
    query = (
        select(DrawerSession, PostOffice, Agent, signer.username, operations)
        .join(PostOffice, PostOffice.id == DrawerSession.post_office_id)
        .join(Agent, Agent.id == DrawerSession.agent_id)
        .outerjoin(signer, signer.id == DrawerSession.signed_off_by)
        .where(
            DrawerSession.opened_at < end,
            or_(DrawerSession.closed_at.is_(None), DrawerSession.closed_at >= start),
        )
        .order_by(PostOffice.code, Agent.username, DrawerSession.opened_at, DrawerSession.id)
        .limit(DRAWER_REPORT_SESSIONS_MAX + 1)
        .execution_options(yield_per=STREAM_BATCH_SIZE)
    )
    for index, (drawer, post_office, agent, signer_name, count) in enumerate(
        session.execute(query)
    ):
        if index == DRAWER_REPORT_SESSIONS_MAX:
            raise click.ClickException(
                f"more than {DRAWER_REPORT_SESSIONS_MAX} drawer sessions on {day}: not reported"
            )
        yield DrawerReportLine(
            post_office_code=post_office.code,
            post_office_name=post_office.name,
            agent_username=agent.username,
            agent_name=agent.full_name,
            drawer_session_id=drawer.id,
            status=drawer.status,
            opened_at=drawer.opened_at,
            closed_at=drawer.closed_at,
            opening_expected=drawer.opening_expected,
            opening_counted=drawer.opening_counted,
            closing_expected=drawer.closing_expected,
            closing_counted=drawer.closing_counted,
            signed_off_by=signer_name,
            operations=count,
        )


def _local(value: dt.datetime | None) -> str:
    return "" if value is None else value.astimezone(LOCAL_ZONE).isoformat(timespec="seconds")


def _blank(value: object) -> object:
    return "" if value is None else value


def csv_row(day: dt.date, line: DrawerReportLine) -> Sequence[object]:
    return (
        day.isoformat(),
        line.post_office_code,
        line.post_office_name,
        line.agent_username,
        line.agent_name,
        line.drawer_session_id,
        line.status,
        _local(line.opened_at),
        _local(line.closed_at),
        line.opening_expected,
        line.opening_counted,
        line.opening_counted - line.opening_expected,
        _blank(line.closing_expected),
        _blank(line.closing_counted),
        _blank(line.closing_variance),
        _blank(line.signed_off_by),
        line.operations,
    )


def parse_report_date(raw: str, now: dt.datetime) -> dt.date:
    """``YYYY-MM-DD``, ``today`` or ``yesterday`` (local days)."""
    today = now.astimezone(LOCAL_ZONE).date()
    if raw == "today":
        return today
    if raw == "yesterday":
        return today - dt.timedelta(days=1)
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise click.BadParameter("expected YYYY-MM-DD, today or yesterday") from None


def _report_date(_context: click.Context, _parameter: click.Parameter, raw: str) -> dt.date:
    return parse_report_date(raw, dt.datetime.now(dt.UTC))


def _read_only_session() -> Session:
    """A session that reads one consistent snapshot and cannot write."""
    db = database.database()
    session = db.sessions()
    if db.engine.dialect.name == "postgresql":
        session.connection(
            execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        )
    return session


def _write_atomically(path: Path, text: str) -> None:
    """Readers (and a concurrent run) see the old file or the whole new one, never a part."""
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@ops_group.command("drawer-report")
@click.option(
    "--date",
    "day",
    default="today",
    callback=_report_date,
    show_default=True,
    metavar="YYYY-MM-DD",
    help="The local day (Asia/Ho_Chi_Minh); also 'today' or 'yesterday'.",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=True),
    help=f"Write the CSV here instead of to stdout; a folder gets {REPORT_FILE_PATTERN}.",
)
def drawer_report_command(day: dt.date, output: Path | None) -> None:
    """Each cash drawer session of one day, per post office and agent, as CSV.

    Columns: opening and closing times, the counted and expected cash, the variances (counted
    minus expected, in đồng) and the number of counter operations. A summary goes to stderr.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    sessions = unclosed = 0
    post_offices: set[str] = set()
    variance_total = 0
    with _read_only_session() as session:
        for line in drawer_report(session, day):
            writer.writerow(csv_row(day, line))
            sessions += 1
            post_offices.add(line.post_office_code)
            unclosed += line.status != DrawerStatus.CLOSED.value
            variance_total += line.closing_variance or 0
        session.rollback()
    if output is None:
        click.echo(buffer.getvalue(), nl=False)
        where = "stdout"
    else:
        path = (
            output / REPORT_FILE_PATTERN.format(date=day.isoformat()) if output.is_dir() else output
        )
        _write_atomically(path, buffer.getvalue())
        where = str(path)
    click.echo(
        f"Drawer report {day.isoformat()}: sessions {sessions}, post offices "
        f"{len(post_offices)}, not closed {unclosed}, closing variance total {variance_total} "
        f"đồng; written to {where}.",
        err=True,
    )
