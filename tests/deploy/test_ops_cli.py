"""`softatm ops drawer-report`: one local day's drawer sessions as CSV, read-only and repeatable."""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
import uuid
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import select

import ledger
from agent_portal.models import Agent, CounterOperation, DrawerSession, DrawerStatus, OperationKind
from kiosk import database, demo
from kiosk.cli import main
from kiosk.formatting import LOCAL_ZONE
from kiosk.ops_cli import COLUMNS, parse_report_date
from ledger import AccountKind, Post
from tests.deploy.conftest import AppFactory

# A past day, so that the demo's session (opened now) is not on it.
DAY = dt.date(2026, 3, 10)


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=LOCAL_ZONE).astimezone(dt.UTC)


@pytest.fixture
def report_app(make_app: AppFactory, sqlite_template: Path, tmp_path: Path) -> Flask:
    """Demo data, plus the demo agent's sessions on DAY: one closed short of 20.000 đ after a
    cash-in, one opened late on the evening before and closed after midnight."""
    path = tmp_path / "ops.sqlite3"
    shutil.copyfile(sqlite_template, path)
    app = make_app(f"sqlite:///{path}")
    with app.app_context():
        session = database.get_session()
        demo.load(session)
        agent = session.scalars(select(Agent).where(Agent.username == "demo.agent")).one()
        # The demo's own open session is today's; move it aside so DAY's can be added.
        today = session.scalars(select(DrawerSession).where(DrawerSession.agent_id == agent.id))
        for drawer in today:
            drawer.status = DrawerStatus.CLOSED.value
            drawer.closing_expected = drawer.closing_counted = drawer.opening_counted
            drawer.closed_at = drawer.counted_at = dt.datetime.now(dt.UTC)
        evening = _session(agent, local(DAY - dt.timedelta(days=1), 22, 30), 1_000_000)
        evening.status = DrawerStatus.CLOSED.value
        evening.closing_expected = evening.closing_counted = 1_000_000
        evening.counted_at = evening.closed_at = local(DAY, 0, 30)
        day = _session(agent, local(DAY, 7, 55), 2_000_000)
        day.status = DrawerStatus.CLOSED.value
        day.closing_expected, day.closing_counted = 2_500_000, 2_480_000
        day.counted_at = day.closed_at = local(DAY, 17, 5)
        session.add_all([evening, day])
        session.flush()
        wallet = ledger.find_account(session, AccountKind.CITIZEN_WALLET, "citizen:1")
        assert wallet is not None
        transfer = ledger.post_transfer(
            session,
            Post("ops-test:cash-in", agent.drawer_account_id, wallet.id, 500_000, "cash_in"),
        )
        session.add(
            CounterOperation(
                id=uuid.uuid4(),
                kind=OperationKind.CASH_IN.value,
                drawer_session_id=day.id,
                agent_id=agent.id,
                post_office_id=agent.post_office_id,
                amount=500_000,
                cash_delta=500_000,
                citizen_id=1,
                transfer_id=transfer.id,
                created_at=local(DAY, 9),
            )
        )
        session.commit()
    return app


def _session(agent: Agent, opened_at: dt.datetime, counted: int) -> DrawerSession:
    return DrawerSession(
        agent_id=agent.id,
        post_office_id=agent.post_office_id,
        drawer_account_id=agent.drawer_account_id,
        status=DrawerStatus.OPEN.value,
        opened_at=opened_at,
        opening_expected=counted,
        opening_counted=counted,
    )


def report(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(main, ["ops", "drawer-report", *args])


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_one_day_of_drawer_sessions(report_app: Flask) -> None:
    result = report(report_app, "--date", DAY.isoformat())
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == ",".join(COLUMNS)
    evening, day = rows(result.stdout)
    # The session that crossed midnight belongs to both days.
    assert evening["opened_at"] == f"{DAY - dt.timedelta(days=1)}T22:30:00+07:00"
    assert evening["closed_at"] == f"{DAY}T00:30:00+07:00"
    assert evening["closing_variance"] == "0" and evening["operations"] == "0"
    assert day == {
        "date": DAY.isoformat(),
        "post_office_code": "BD00226",
        "post_office_name": day["post_office_name"],
        "agent_username": "demo.agent",
        "agent_name": day["agent_name"],
        "drawer_session_id": day["drawer_session_id"],
        "status": "closed",
        "opened_at": f"{DAY}T07:55:00+07:00",
        "closed_at": f"{DAY}T17:05:00+07:00",
        "opening_expected": "2000000",
        "opening_counted": "2000000",
        "opening_variance": "0",
        "closing_expected": "2500000",
        "closing_counted": "2480000",
        "closing_variance": "-20000",
        "signed_off_by": "",
        "operations": "1",
    }
    assert result.stderr.strip() == (
        f"Drawer report {DAY}: sessions 2, post offices 1, not closed 0, closing variance "
        "total -20000 đồng; written to stdout."
    )
    # The day before holds only the evening session; the day after, nothing.
    before = report(report_app, "--date", (DAY - dt.timedelta(days=1)).isoformat())
    assert [row["opened_at"][11:16] for row in rows(before.stdout)] == ["22:30"]
    after = report(report_app, "--date", (DAY + dt.timedelta(days=1)).isoformat())
    assert after.exit_code == 0 and rows(after.stdout) == []


def test_an_open_drawer_shows_until_it_is_closed(report_app: Flask) -> None:
    with report_app.app_context():
        session = database.get_session()
        agent = session.scalars(select(Agent).where(Agent.username == "demo.supervisor")).one()
        session.add(_session(agent, local(DAY, 8), 300_000))
        session.commit()
    for day in (DAY, DAY + dt.timedelta(days=3)):
        result = report(report_app, "--date", day.isoformat())
        open_rows = [row for row in rows(result.stdout) if row["status"] == "open"]
        assert [row["agent_username"] for row in open_rows] == ["demo.supervisor"]
        assert open_rows[0]["closed_at"] == open_rows[0]["closing_variance"] == ""
        assert "not closed 1," in result.stderr


def test_output_to_a_folder_is_repeatable(report_app: Flask, tmp_path: Path) -> None:
    first = report(report_app, "--date", DAY.isoformat(), "--output", str(tmp_path))
    assert first.exit_code == 0 and first.stdout == ""
    path = tmp_path / f"drawer-report-{DAY}.csv"
    assert f"written to {path}." in first.stderr
    content = path.read_bytes()
    assert len(rows(content.decode())) == 2
    # Run again (as a retried timer would): the same file, and no temporary left behind.
    assert report(report_app, "--date", DAY.isoformat(), "--output", str(tmp_path)).exit_code == 0
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".drawer")) == []
    named = tmp_path / "named.csv"
    assert report(report_app, "--date", DAY.isoformat(), "--output", str(named)).exit_code == 0
    assert named.read_bytes() == content


def test_bad_date_is_refused(report_app: Flask) -> None:
    result = report(report_app, "--date", "10/03/2026")
    assert result.exit_code == 2
    assert "Invalid value for '--date': expected YYYY-MM-DD, today or yesterday" in result.output


def test_today_and_yesterday_are_local_days() -> None:
    # 18:30 UTC is already the next day in Vietnam (UTC+7).
    now = dt.datetime(2026, 3, 9, 18, 30, tzinfo=dt.UTC)
    assert parse_report_date("today", now) == DAY
    assert parse_report_date("yesterday", now) == DAY - dt.timedelta(days=1)
    assert parse_report_date("2026-01-31", now) == dt.date(2026, 1, 31)
