"""The welfare demo: a funded programme in 00226 with a paid cycle, loaded twice, made once."""

from __future__ import annotations

import datetime as dt

from flask import Flask
from sqlalchemy import func, select

from kiosk import demo
from kiosk.welfare import cycles
from kiosk.welfare.demo import DEMO_PROGRAMME, seed_demo
from kiosk.welfare.models import BeneficiaryRow, PayCycle, RowStatus, WelfareProgramme
from tests.agent_portal.conftest import app_session


def test_the_demo_pays_two_citizens_and_issues_one_voucher_once(web_app: Flask) -> None:
    app = web_app
    now = dt.datetime.now(dt.UTC)
    with app.test_request_context(), app_session(app) as session:
        demo.load(session)
        first = seed_demo(session, now)
        again = seed_demo(session, now)
        session.commit()
        assert first.id == again.id
        assert (
            session.scalar(
                select(func.count())
                .select_from(WelfareProgramme)
                .where(WelfareProgramme.name == DEMO_PROGRAMME)
            )
            == 1
        )
        [cycle] = session.scalars(select(PayCycle).where(PayCycle.programme_id == first.id))
        statuses = sorted(
            session.scalars(
                select(BeneficiaryRow.status).where(BeneficiaryRow.cycle_id == cycle.id)
            )
        )
        assert statuses == sorted(
            [RowStatus.PAID_TO_ACCOUNT, RowStatus.PAID_TO_ACCOUNT, RowStatus.VOUCHER_ISSUED]
        )
        assert cycles.reconcile(session, cycle, now).ok
