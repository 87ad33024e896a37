"""One withdrawal code presented at eight counters at the same instant pays out exactly once.

PostgreSQL only: SQLite has a single writer, so its transactions never interleave and there is no
race to test. Eight agents at two post offices, each with an open drawer, are released together
by a barrier, once through `agent_portal.counter.redeem` with a session per thread and once
through the pay page with a signed-in test client per agent. Exactly one pays; the seven others
are told the code is already paid; the drawers, the counter operations and the ledger agree.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

import ledger
from agent_portal import counter, drawer
from agent_portal.audit import Action
from agent_portal.counter import CodeRefused, Refusal
from agent_portal.drawer import Count
from agent_portal.fees import FeeOperation
from agent_portal.models import Agent, AuditEvent, PostOffice
from kiosk import database
from kiosk.payments.models import CodeStatus
from tests.agent_portal.conftest import app_session, make_agent, make_post_office
from tests.agent_portal.counter_support import (
    Code,
    Desk,
    assert_ledger_sound,
    cheap_passwords,
    counter_app,
    fund_drawer,
    make_citizen,
    operations_of_code,
    pay,
    posted,
    reason_of,
    scanned_and_checked,
    set_up_desk,
    the_code,
    utc_now,
    withdrawal_code,
)

__all__ = ["cheap_passwords", "counter_app"]

COUNTERS = 8
CASH_PER_DRAWER = 1_000_000
AMOUNT = 500_000
BARRIER_TIMEOUT_S = 30
JOIN_TIMEOUT_S = 60
# Held inside the payout, before its ledger batch: long enough for every counter to be inside
# `redeem` at once, so that a missing lock would let several through (rather than the first
# counter finishing before the others have started).
RACE_WINDOW_S = 0.05


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres)])
def web_backend(request: pytest.FixtureRequest) -> str:
    """PostgreSQL only (this replaces the SQLite-and-PostgreSQL fixture of tests/kiosk)."""
    name: str = request.param
    return name


@pytest.fixture(autouse=True)
def wide_race_window(monkeypatch: pytest.MonkeyPatch) -> None:
    post_transfers = ledger.post_transfers

    def slow_post_transfers(*args: Any, **kwargs: Any) -> Any:
        time.sleep(RACE_WINDOW_S)
        return post_transfers(*args, **kwargs)

    monkeypatch.setattr(ledger, "post_transfers", slow_post_transfers)


def run_together(count: int, work: Callable[[int, threading.Barrier], Any]) -> list[Any]:
    """Run ``work(i, barrier)`` in ``count`` threads; what each returned, or the exception it
    raised. ``work`` waits on the barrier just before the step that races."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        try:
            results[index] = work(index, barrier)
        except BaseException as error:  # reported by run_together's caller
            barrier.abort()
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
    assert not any(thread.is_alive() for thread in threads), "a counter is still waiting"
    errors = [result for result in results if isinstance(result, BaseException)]
    assert not errors, errors
    return results


def _post_offices(app: Flask) -> list[PostOffice]:
    return [
        make_post_office(app, name="Điểm BĐVHX Văn Miếu"),
        make_post_office(app, name="Điểm BĐVHX Quốc Tử Giám"),
    ]


def open_counters(app: Flask, count: int, cash_vnd: int) -> list[Agent]:
    """``count`` agents, alternately at two post offices of commune 00226, each with a started
    drawer holding ``cash_vnd``."""
    offices = _post_offices(app)
    agents = [make_agent(app, offices[index % 2]) for index in range(count)]
    with app_session(app) as session:
        for agent in agents:
            fund_drawer(app, agent, cash_vnd)
            fresh = session.get(Agent, agent.id)
            assert fresh is not None
            drawer.start_drawer(session, fresh, Count(cash_vnd, None), utc_now())
        session.commit()
    return agents


def redeem_at_counter(
    app: Flask, agent_id: int, code_id: uuid.UUID, last4: str, barrier: threading.Barrier
) -> uuid.UUID | Refusal:
    """Pay code ``code_id`` out at the agent's counter once every counter has reached the
    barrier: the operation's id, or the refusal's reason."""
    with app.test_request_context(), database.database().sessions() as session:
        agent = session.get(Agent, agent_id)
        assert agent is not None
        post_office = session.get(PostOffice, agent.post_office_id)
        assert post_office is not None
        drawer_session = drawer.open_drawer(session, agent)
        assert drawer_session is not None
        session.commit()  # nothing held while waiting for the others
        barrier.wait(BARRIER_TIMEOUT_S)
        try:
            paid = counter.redeem(
                session,
                code_id,
                agent=agent,
                post_office=post_office,
                drawer=drawer_session,
                last4=last4,
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


def _drawer_total(app: Flask, agents: list[Agent]) -> int:
    return sum(posted(app, agent.drawer_account_id) for agent in agents)


def _check_one_payout(
    app: Flask, code: Code, agents: list[Agent], winner: Agent, wallet_before: int
) -> None:
    fee = app.config["FEE_SCHEDULE"].charge(FeeOperation.WITHDRAWAL, AMOUNT).fee
    for agent in agents:
        expected = CASH_PER_DRAWER - (AMOUNT if agent.id == winner.id else 0)
        assert posted(app, agent.drawer_account_id) == expected, agent.id
    assert _drawer_total(app, agents) == COUNTERS * CASH_PER_DRAWER - AMOUNT
    assert posted(app, code.citizen.wallet_account_id) == wallet_before - AMOUNT - fee
    [operation] = operations_of_code(app, code.id)
    assert (operation.agent_id, operation.cash_delta) == (winner.id, -AMOUNT)
    record = the_code(app, code.id)
    assert record.status == CodeStatus.REDEEMED
    with app_session(app) as session:
        post_office = session.get(PostOffice, winner.post_office_id)
        assert post_office is not None
        assert record.redeemed_at_point == post_office.code
        paid_out = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == Action.PAID_OUT, AuditEvent.subject == f"code:{code.id}"
            )
        ).all()
        assert len(paid_out) == 1
    assert_ledger_sound(app)


def test_eight_counters_redeeming_one_code_at_once_pay_it_once(counter_app: Flask) -> None:
    app = counter_app
    agents = open_counters(app, COUNTERS, CASH_PER_DRAWER)
    citizen = make_citizen(app, balance_vnd=1_000_000)
    code = withdrawal_code(app, citizen, AMOUNT)
    wallet_before = posted(app, citizen.wallet_account_id)

    results = run_together(
        COUNTERS,
        lambda index, barrier: redeem_at_counter(
            app, agents[index].id, code.id, citizen.citizen_id_last4, barrier
        ),
    )

    paid = [index for index, result in enumerate(results) if isinstance(result, uuid.UUID)]
    assert len(paid) == 1, results
    refused = [result for result in results if not isinstance(result, uuid.UUID)]
    assert refused == [Refusal.ALREADY_PAID] * (COUNTERS - 1)
    _check_one_payout(app, code, agents, agents[paid[0]], wallet_before)


def test_eight_counters_pressing_pay_at_once_pay_it_once(counter_app: Flask) -> None:
    app = counter_app
    offices = _post_offices(app)
    desks: list[Desk] = [
        set_up_desk(app, post_office=offices[index % 2], cash=CASH_PER_DRAWER)
        for index in range(COUNTERS)
    ]
    citizen = make_citizen(app, balance_vnd=1_000_000)
    code = withdrawal_code(app, citizen, AMOUNT)
    wallet_before = posted(app, citizen.wallet_account_id)
    # Each agent has scanned the code and checked the ID card; now all press "pay" at once.
    tickets = [scanned_and_checked(desk, code.token, citizen) for desk in desks]

    def press_pay(index: int, barrier: threading.Barrier) -> tuple[int, str | None, str]:
        barrier.wait(BARRIER_TIMEOUT_S)
        response = pay(desks[index].client, tickets[index], citizen.citizen_id_last4)
        return response.status_code, reason_of(response), response.headers.get("Location", "")

    results = run_together(COUNTERS, press_pay)

    winners = [index for index, (status, _r, _l) in enumerate(results) if status == 303]
    assert len(winners) == 1, results
    losers = [(status, reason) for status, reason, _l in results if status != 303]
    assert losers == [(422, Refusal.ALREADY_PAID.value)] * (COUNTERS - 1)
    winner = desks[winners[0]]
    receipt = winner.client.get(results[winners[0]][2])
    assert receipt.status_code == 200
    assert "500.000\u00a0₫" in receipt.text
    _check_one_payout(app, code, [desk.agent for desk in desks], winner.agent, wallet_before)
