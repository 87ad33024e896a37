"""Test support for the counter's tests: a signed-in agent with an open drawer, citizens' codes,
the counter's pages, and what the ledger and the audit log say afterwards.

People come from the directory's conftest (`make_post_office`, `make_agent`, the real sign-in
pages); money is put in place with ledger posts (a settlement account fills a drawer, a funding
account a wallet), and codes are made with the citizen app's own operations. Password hashing is
made cheap here (`cheap_passwords`): Argon2 at its production cost takes half a second a hash,
and these tests make many agents.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

import ledger
from agent_portal.counter import FEE_REVENUE_OWNER
from agent_portal.drawer import CASH_VARIANCE_OWNER
from agent_portal.models import (
    Agent,
    AuditEvent,
    CounterOperation,
    DrawerSession,
    PostOffice,
    Role,
)
from kiosk.auth import staff, totp  # staff: the password hasher of agents and officials
from kiosk.citizens.models import Citizen
from kiosk.payments import codes
from kiosk.payments.models import Biller, BillerKind, IssuedCode
from ledger import AccountKind, Post
from tests.agent_portal.conftest import (
    TOTP_SECRET,
    app_session,
    csrf_token,
    make_agent,
    make_post_office,
    sign_in_directly,
    sign_in_through_pages,
)
from tests.kiosk import citizen_support

HOME = "/quay/"
SCAN = "/quay/quet"
FALLBACK = "/quay/ma-so"
UPLOAD = "/quay/anh"
CASH_IN = "/quay/nap-tien"
DRAWER = "/quay/ket-tien"
OPEN_DRAWER = "/quay/ket-tien/mo"
CLOSE_DRAWER = "/quay/ket-tien/dong"
FLOAT = "/quay/ket-tien/tien-quy"
RECEIPT_PREFIX = "/quay/bien-nhan/"

# The verification page posts to …/doi-chieu, or to …/xin-duyet while a large payout waits.
_TICKET = re.compile(r"/quay/ma/([A-Za-z0-9_.\-]+)/(?:doi-chieu|xin-duyet)")
_REASON = re.compile(r'data-reason="([a-z_]*)"')
_RECEIPT = re.compile(r"^/quay/bien-nhan/([0-9a-f-]{36})$")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- Fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id at its smallest cost, for the agents these tests make and sign in."""
    monkeypatch.setattr(
        staff, "PASSWORD_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
def counter_app(web_app: Flask, cheap_passwords: None) -> Flask:
    """The web app over SQLite or PostgreSQL, without CSRF tokens (tested on their own)."""
    web_app.config["WTF_CSRF_ENABLED"] = False
    return web_app


# --- People, money and the drawer -----------------------------------------------------------------


@dataclass(frozen=True)
class Desk:
    """An agent signed in on ``client`` (and, unless asked otherwise, with an open drawer)."""

    app: Flask
    client: FlaskClient
    agent: Agent
    post_office: PostOffice

    @property
    def drawer_account_id(self) -> int:
        return self.agent.drawer_account_id


def fund_drawer(app: Flask, agent: Agent, amount: int) -> None:
    """Cash from a settlement account of the test's own into the agent's drawer."""
    with app_session(app) as session:
        source = ledger.open_account(
            session,
            kind=AccountKind.SETTLEMENT,
            name="test float source",
            owner_ref=f"test-float:{uuid.uuid4()}",
        )
        ledger.post_transfer(
            session,
            Post(
                f"test-float:{uuid.uuid4()}",
                agent.drawer_account_id,
                source.id,
                amount,
                "float_top_up",
            ),
            now=utc_now(),
        )
        session.commit()


def sign_in(app: Flask, client: FlaskClient, agent: Agent) -> None:
    """Through the real pages (password, then a TOTP code), or directly if no step is free."""
    if not sign_in_through_pages(app, client, agent):
        sign_in_directly(app, client, agent)


def form(app: Flask, client: FlaskClient, data: dict[str, str], page: str = HOME) -> dict[str, str]:
    """``data`` with the CSRF token of ``page`` when the app checks CSRF tokens."""
    if not app.config.get("WTF_CSRF_ENABLED", True):
        return data
    return {**data, "csrf_token": csrf_token(client, page)}


def open_drawer(app: Flask, client: FlaskClient, total: int) -> None:
    response = client.post(OPEN_DRAWER, data=form(app, client, {"total": str(total)}, DRAWER))
    assert response.status_code == 303, response.get_data(as_text=True)


def set_up_desk(
    app: Flask,
    *,
    post_office: PostOffice | None = None,
    cash: int = 20_000_000,
    opened: bool = True,
    role: Role = Role.AGENT,
    full_name: str = "Nguyễn Thị Lan",
) -> Desk:
    """A new agent at ``post_office`` (a new one by default), ``cash`` in the drawer, signed in
    on a new test client, the drawer opened with a count equal to that cash."""
    post_office = post_office or make_post_office(app)
    agent = make_agent(app, post_office, role=role, full_name=full_name)
    if cash:
        fund_drawer(app, agent, cash)
    client = app.test_client()
    sign_in(app, client, agent)
    if opened:
        open_drawer(app, client, cash)
    return Desk(app, client, agent, post_office)


def set_payout_max(app: Flask, post_office: PostOffice, amount: int) -> None:
    with app_session(app) as session:
        found = session.get(PostOffice, post_office.id)
        assert found is not None
        found.payout_max_vnd = amount
        session.commit()


def step_up_code(app: Flask, agent: Agent, now: dt.datetime | None = None) -> str:
    """A TOTP code the agent has not used yet and that is valid at ``now``."""
    now = now or utc_now()
    with app_session(app) as session:
        fresh = session.get(Agent, agent.id)
        assert fresh is not None
        last_step = fresh.totp_last_step
    current = totp.step_at(now)
    step = current if last_step is None else max(current - 1, last_step + 1)
    assert step <= current + 1, "no unused TOTP step left at this instant"
    return pyotp.TOTP(TOTP_SECRET).generate_otp(step)


def make_citizen(app: Flask, **options: Any) -> Citizen:
    return citizen_support.make_citizen(app, **options)


def wrong_last4(citizen: Citizen) -> str:
    return f"{(int(citizen.citizen_id_last4) + 1) % 10_000:04d}"


# --- Codes ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Code:
    id: uuid.UUID
    token: str
    fallback: str
    amount: int
    citizen: Citizen
    made_at: dt.datetime


def withdrawal_code(
    app: Flask, citizen: Citizen, amount: int, *, now: dt.datetime | None = None
) -> Code:
    """A withdrawal code made by the citizen app's operation (the money is reserved)."""
    now = now or utc_now()
    with app_session(app) as session:
        holder = session.get(Citizen, citizen.id)
        assert holder is not None
        shown = codes.create_withdrawal_code(session, holder, amount, now)
        session.commit()
        return Code(shown.record.id, shown.token, shown.fallback_digits, amount, citizen, now)


def make_biller(app: Flask, name: str = "Điện lực Hà Nội") -> Biller:
    with app_session(app) as session:
        account = ledger.open_account(
            session, kind=AccountKind.BILLER, name=name, owner_ref=f"biller:{uuid.uuid4()}"
        )
        biller = Biller(name=name, kind=BillerKind.ELECTRICITY, account_id=account.id)
        session.add(biller)
        session.commit()
        session.expunge(biller)
    return biller


def payment_code(
    app: Flask,
    citizen: Citizen,
    biller: Biller,
    amount: int,
    *,
    reference: str = "PE0123456",
    now: dt.datetime | None = None,
) -> Code:
    now = now or utc_now()
    with app_session(app) as session:
        holder = session.get(Citizen, citizen.id)
        assert holder is not None
        shown = codes.create_payment_code(
            session, holder, biller_id=biller.id, bill_reference=reference, amount=amount, now=now
        )
        session.commit()
        return Code(shown.record.id, shown.token, shown.fallback_digits, amount, citizen, now)


def fresh_token(app: Flask, code_id: uuid.UUID, now: dt.datetime | None = None) -> str:
    """The token the citizen's page shows now (re-signed with a fresh issue time)."""
    with app_session(app) as session:
        record = session.get(IssuedCode, code_id)
        assert record is not None
        return codes.show_code(session, record, now or utc_now()).token


def the_code(app: Flask, code_id: uuid.UUID) -> IssuedCode:
    with app_session(app) as session:
        record = session.get(IssuedCode, code_id)
        assert record is not None
        session.expunge(record)
        return record


# --- The counter's pages --------------------------------------------------------------------------


def scan(client: FlaskClient, text: str) -> TestResponse:
    return client.post(SCAN, data={"ma": text})


def ticket_of(response: TestResponse) -> str:
    found = _TICKET.search(response.get_data(as_text=True))
    assert found is not None, f"no scan ticket in the page ({response.status_code})"
    return found.group(1)


def reason_of(response: TestResponse) -> str | None:
    found = _REASON.search(response.get_data(as_text=True))
    return None if found is None else found.group(1)


def check_last4(client: FlaskClient, ticket: str, last4: str) -> TestResponse:
    return client.post(f"/quay/ma/{ticket}/doi-chieu", data={"bon_so_cuoi": last4})


def pay(
    client: FlaskClient,
    ticket: str,
    last4: str,
    *,
    face: bool = True,
    totp_code: str | None = None,
) -> TestResponse:
    data = {"bon_so_cuoi": last4}
    if face:
        data["khop_khuon_mat"] = "co"
    if totp_code is not None:
        data["ma_xac_thuc"] = totp_code
    return client.post(f"/quay/ma/{ticket}/chi-tra", data=data)


def scanned_and_checked(desk: Desk, token: str, citizen: Citizen) -> str:
    """Scan ``token`` and type the right last 4 digits; the scan ticket."""
    page = scan(desk.client, token)
    assert page.status_code == 200, page.get_data(as_text=True)
    ticket = ticket_of(page)
    confirm = check_last4(desk.client, ticket, citizen.citizen_id_last4)
    assert confirm.status_code == 200, confirm.get_data(as_text=True)
    return ticket


def operation_of_receipt(response: TestResponse) -> uuid.UUID:
    """The counter operation a 303 to its receipt names."""
    assert response.status_code == 303, response.get_data(as_text=True)
    found = _RECEIPT.match(response.headers["Location"])
    assert found is not None, response.headers["Location"]
    return uuid.UUID(found.group(1))


# --- What the database says -----------------------------------------------------------------------


def balance(app: Flask, account_id: int) -> ledger.Balance:
    with app_session(app) as session:
        return ledger.balance(session, account_id)


def posted(app: Flask, account_id: int) -> int:
    return balance(app, account_id).posted


def system_posted(app: Flask, kind: AccountKind, owner_ref: str) -> int:
    """A system account's posted balance; 0 while nothing has opened it yet."""
    with app_session(app) as session:
        account = ledger.find_account(session, kind, owner_ref)
        return 0 if account is None else ledger.balance(session, account.id).posted


def fee_revenue(app: Flask) -> int:
    return system_posted(app, AccountKind.FEE_REVENUE, FEE_REVENUE_OWNER)


def cash_variance(app: Flask) -> int:
    return system_posted(app, AccountKind.CASH_VARIANCE, CASH_VARIANCE_OWNER)


def assert_ledger_sound(app: Flask) -> None:
    with app_session(app) as session:
        report = ledger.verify_ledger(session)
    assert report.ok, report.problems[:10]


def audit_events(app: Flask, post_office_id: int) -> list[AuditEvent]:
    with app_session(app) as session:
        events = list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.post_office_id == post_office_id)
                .order_by(AuditEvent.id)
            )
        )
        session.expunge_all()
    return events


def audit_actions(app: Flask, post_office_id: int) -> list[tuple[str, str | None, str | None]]:
    return [
        (event.action, event.subject, event.detail) for event in audit_events(app, post_office_id)
    ]


def operations_of_code(app: Flask, code_id: uuid.UUID) -> list[CounterOperation]:
    with app_session(app) as session:
        found = list(
            session.scalars(select(CounterOperation).where(CounterOperation.code_id == code_id))
        )
        session.expunge_all()
    return found


def operation(app: Flask, operation_id: uuid.UUID) -> CounterOperation:
    with app_session(app) as session:
        found = session.get(CounterOperation, operation_id)
        assert found is not None
        session.expunge(found)
    return found


def drawer_sessions(app: Flask, agent: Agent) -> list[DrawerSession]:
    with app_session(app) as session:
        found = list(
            session.scalars(
                select(DrawerSession)
                .where(DrawerSession.agent_id == agent.id)
                .order_by(DrawerSession.id)
            )
        )
        session.expunge_all()
    return found


def count_rows(app: Flask, model: Any, *where: Any) -> int:
    with app_session(app) as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def unique_reference() -> str:
    return "HD" + secrets.token_hex(4).upper()


@dataclass(frozen=True)
class Snapshot:
    """Balances of a citizen's wallet and an agent's drawer at one moment."""

    wallet: ledger.Balance
    drawer: ledger.Balance


def snapshot(app: Flask, wallet_account_id: int, drawer_account_id: int) -> Snapshot:
    return Snapshot(balance(app, wallet_account_id), balance(app, drawer_account_id))
