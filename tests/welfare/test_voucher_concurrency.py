"""One welfare voucher paid at six counters at the same instant is paid exactly once.

PostgreSQL only (SQLite has one writer; nothing interleaves). The counters, the race and its
fixtures are tests/agent_portal/test_counter_concurrency.py's, through
`agent_portal.counter.redeem`.
"""

from __future__ import annotations

import uuid

from flask import Flask

from agent_portal.counter import Refusal
from kiosk.welfare.models import RowStatus
from tests.agent_portal.counter_support import operations_of_code, posted
from tests.agent_portal.test_counter_concurrency import (  # its fixtures: PostgreSQL, slow posting
    open_counters,
    redeem_at_counter,
    run_together,
    web_backend,
    wide_race_window,
)
from tests.welfare.support import paid_cycle, person_without_account, rows, voucher_of_row

__all__ = ["web_backend", "wide_race_window"]

AMOUNT = 600_000
CASH_PER_DRAWER = 1_000_000
COUNTERS = 6


def test_six_counters_paying_one_voucher_at_once_pay_it_once(counter_app: Flask) -> None:
    app = counter_app
    person = person_without_account("Đinh Thị Lan")
    cycle_id = paid_cycle(app, [(person, AMOUNT)])
    [row] = rows(app, cycle_id)
    record = voucher_of_row(app, row.id)
    agents = open_counters(app, COUNTERS, CASH_PER_DRAWER)

    results = run_together(
        COUNTERS,
        lambda index, barrier: redeem_at_counter(
            app, agents[index].id, record.id, person.number[-4:], barrier
        ),
    )

    assert sum(isinstance(result, uuid.UUID) for result in results) == 1, results
    assert [r for r in results if not isinstance(r, uuid.UUID)] == [Refusal.ALREADY_PAID] * (
        COUNTERS - 1
    )
    assert sum(posted(app, agent.drawer_account_id) for agent in agents) == (
        COUNTERS * CASH_PER_DRAWER - AMOUNT
    )
    [row] = rows(app, cycle_id)
    assert row.status == RowStatus.VOUCHER_PAID
    assert len(operations_of_code(app, record.id)) == 1
