"""One welfare voucher paid at six counters at the same instant is paid exactly once.

PostgreSQL only (SQLite has one writer; nothing interleaves): the pattern of
tests/agent_portal/test_counter_concurrency.py, through `agent_portal.counter.redeem`.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
import uuid
from typing import Any

import pytest
from flask import Flask

import ledger
from agent_portal import counter, drawer
from agent_portal.counter import CodeRefused, Refusal
from agent_portal.drawer import Count
from agent_portal.models import Agent, PostOffice
from agent_portal.staff import create_post_office
from kiosk import database
from kiosk.welfare.models import RowStatus
from tests.agent_portal.conftest import app_session, make_agent
from tests.agent_portal.counter_support import fund_drawer, operations_of_code, posted
from tests.agent_portal.test_counter_concurrency import run_together
from tests.welfare.support import paid_cycle, person_without_account, rows, utc_now, voucher_of_row

AMOUNT = 600_000
# Held inside the payout, before its ledger batch, so that every counter is inside `redeem`.
RACE_WINDOW_S = 0.05


@pytest.fixture(autouse=True)
def wide_race_window(monkeypatch: pytest.MonkeyPatch) -> None:
    post_transfers = ledger.post_transfers

    def slow_post_transfers(*args: Any, **kwargs: Any) -> Any:
        time.sleep(RACE_WINDOW_S)
        return post_transfers(*args, **kwargs)

    monkeypatch.setattr(ledger, "post_transfers", slow_post_transfers)


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres)])
def web_backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


COUNTERS = 6


def test_six_counters_paying_one_voucher_at_once_pay_it_once(counter_app: Flask) -> None:
    app = counter_app
    person = person_without_account("Đinh Thị Lan")
    cycle_id = paid_cycle(app, [(person, AMOUNT)])
    [row] = rows(app, cycle_id)
    record = voucher_of_row(app, row.id)
    post_offices = []
    with app_session(app) as session:
        for _index in range(2):
            office = create_post_office(
                session,
                code="T" + secrets.token_hex(4).upper(),
                name="Điểm BĐVHX Văn Miếu",
                commune_code="00226",
            )
            post_offices.append(office)
        session.commit()
        for office in post_offices:
            session.expunge(office)
    agents = [make_agent(app, post_offices[index % 2]) for index in range(COUNTERS)]
    with app_session(app) as session:
        for agent in agents:
            fund_drawer(app, agent, 1_000_000)
            fresh = session.get(Agent, agent.id)
            assert fresh is not None
            drawer.start_drawer(session, fresh, Count(1_000_000, None), utc_now())
        session.commit()

    def redeem_at_counter(index: int, barrier: threading.Barrier) -> uuid.UUID | Refusal:
        with app.test_request_context(), database.database().sessions() as session:
            agent = session.get(Agent, agents[index].id)
            assert agent is not None
            office = session.get(PostOffice, agent.post_office_id)
            assert office is not None
            drawer_session = drawer.open_drawer(session, agent)
            session.commit()
            barrier.wait(30)
            try:
                paid = counter.redeem(
                    session,
                    record.id,
                    agent=agent,
                    post_office=office,
                    drawer=drawer_session,
                    last4=person.number[-4:],
                    face_matched=True,
                    stepped_up=False,
                    fees=app.config["FEE_SCHEDULE"],
                    approval_above_vnd=app.config["PAYOUT_APPROVAL_ABOVE_VND"],
                    now=dt.datetime.now(dt.UTC),
                )
            except CodeRefused as refused:
                session.rollback()
                return refused.reason
            session.commit()
            return paid.operation.id

    results = run_together(COUNTERS, redeem_at_counter)

    assert sum(isinstance(result, uuid.UUID) for result in results) == 1, results
    assert [r for r in results if not isinstance(r, uuid.UUID)] == [Refusal.ALREADY_PAID] * (
        COUNTERS - 1
    )
    assert sum(posted(app, agent.drawer_account_id) for agent in agents) == (
        COUNTERS * 1_000_000 - AMOUNT
    )
    [row] = rows(app, cycle_id)
    assert row.status == RowStatus.VOUCHER_PAID
    assert len(operations_of_code(app, record.id)) == 1
