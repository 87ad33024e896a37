"""Demo data for a first run: a commune post office's ledger, villagers who can sign in, billers
and a market stall, in Phường Văn Miếu - Quốc Tử Giám (commune 00226, Hà Nội).

Safe to load twice: people are found by phone, accounts by owner and transfers carry fixed
idempotency keys. Refused in production by the command that calls it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

import ledger
from agent_portal import staff
from agent_portal.drawer import Count, start_drawer
from agent_portal.models import Agent, DrawerSession, PostOffice, Role
from kiosk.auth.staff import enrol_known_secret
from kiosk.citizens.limits import verify_in_person
from kiosk.citizens.models import Citizen
from kiosk.citizens.registration import CONSENT_GIVEN, Field, register_citizen
from kiosk.payments.models import Biller, BillerKind, Merchant
from ledger import AccountKind, Post

DEMO_COMMUNE = "00226"
DEMO_PROVINCE = "01"
# Shown in the README so that a newcomer can sign in at once. Demo only.
DEMO_PIN = "468024"
DEMO_CITIZENS = [
    # phone, citizen ID, name, date of birth, sex, cash deposited at the counter
    ("0912345678", "001158012345", "Hoàng Thị Mai", dt.date(1958, 4, 12), "female", 1_500_000),
    ("0987654321", "001076054321", "Nông Văn Bình", dt.date(1976, 9, 2), "male", 800_000),
    ("0356789012", "001301067890", "Lương Thị Hoa", dt.date(2001, 1, 30), "female", 2_000_000),
]
DEMO_BILLERS = [
    ("Điện lực Hà Nội (demo)", BillerKind.ELECTRICITY),
    ("Nước sạch Hà Nội (demo)", BillerKind.WATER),
    ("Trường Tiểu học Văn Miếu (demo)", BillerKind.SCHOOL),
]
DEMO_STALL = ("DEMXCH23", "Rau sạch bà Mai (demo)")
OPENING_FLOAT_VND = 20_000_000
DEMO_POST_OFFICE = ("BD00226", "Bưu điện văn hóa xã Văn Miếu (demo)")
# Counter staff. Demo only: the password and the TOTP secret are published in the README, so
# that a newcomer can sign in at once (any authenticator app, or pyotp, makes the codes).
DEMO_STAFF_PASSWORD = "quay-demo-2026"  # noqa: S105 - published demo credential
DEMO_TOTP_SECRET = "SOFTATMDEMOQUAYSOFTATMDEMOQUAY23"  # noqa: S105 - published, demo only
DEMO_STAFF = [
    ("demo.agent", "Trần Thị Lan (demo)", Role.AGENT),
    ("demo.supervisor", "Phạm Văn Minh (demo)", Role.SUPERVISOR),
]


def _account(
    session: Session,
    kind: AccountKind,
    owner_ref: str,
    name: str,
    *,
    shard_count: int = 1,
) -> int:
    existing = ledger.find_account(session, kind, owner_ref)
    if existing is not None:
        return existing.id
    return ledger.open_account(
        session, kind=kind, name=name, owner_ref=owner_ref, shard_count=shard_count
    ).id


def _citizen(
    session: Session, person: tuple[str, str, str, dt.date, str, int], now: dt.datetime
) -> Citizen:
    phone, citizen_id, name, born, sex, _deposit = person
    existing = session.scalar(select(Citizen).where(Citizen.phone == phone))
    if existing is not None:
        return existing
    citizen = register_citizen(
        session,
        {
            Field.PHONE: phone,
            Field.CITIZEN_ID: citizen_id,
            Field.FULL_NAME: name,
            Field.BIRTH_DAY: str(born.day),
            Field.BIRTH_MONTH: str(born.month),
            Field.BIRTH_YEAR: str(born.year),
            Field.SEX: sex,
            Field.PROVINCE: DEMO_PROVINCE,
            Field.COMMUNE: DEMO_COMMUNE,
            Field.PIN: DEMO_PIN,
            Field.PIN_AGAIN: DEMO_PIN,
            Field.CONSENT: CONSENT_GIVEN,
        },
        registered_by="self",
        now=now,
    )
    verify_in_person(session, citizen, "agent:1", now)
    return citizen


def _post_office_and_staff(session: Session, now: dt.datetime) -> list[Agent]:
    code, name = DEMO_POST_OFFICE
    post_office = session.scalar(select(PostOffice).where(PostOffice.code == code))
    if post_office is None:
        post_office = staff.create_post_office(
            session, code=code, name=name, commune_code=DEMO_COMMUNE, now=now
        )
    agents = []
    for username, full_name, role in DEMO_STAFF:
        agent = session.scalar(select(Agent).where(Agent.username == username))
        if agent is None:
            agent = staff.create_agent(
                session,
                post_office=post_office,
                username=username,
                full_name=full_name,
                password=DEMO_STAFF_PASSWORD,
                role=role,
                created_by="admin",
                now=now,
            )
            enrol_known_secret(agent, DEMO_TOTP_SECRET, now)
        agents.append(agent)
    session.flush()
    return agents


def load(session: Session) -> None:
    """Create the demo people, accounts and money movements; flushes, the caller commits."""
    now = dt.datetime.now(dt.UTC)
    treasury = _account(session, AccountKind.SETTLEMENT, "demo:settlement", "Kho bạc huyện (demo)")
    counter_agent = _post_office_and_staff(session, now)[0]
    drawer = counter_agent.drawer_account_id
    _account(session, AccountKind.FEE_REVENUE, "demo:fees", "Doanh thu phí", shard_count=8)
    ledger.post_transfer(
        session, Post("demo:opening-float", drawer, treasury, OPENING_FLOAT_VND, "opening_float")
    )
    citizens = []
    for person in DEMO_CITIZENS:
        phone, deposit = person[0], person[-1]
        citizen = _citizen(session, person, now)
        citizens.append(citizen)
        # A cash-in at the counter: cash into the drawer, money into the wallet.
        ledger.post_transfer(
            session,
            Post(f"demo:cash-in:{phone}", drawer, citizen.wallet_account_id, deposit, "cash_in"),
        )
    for name, kind in DEMO_BILLERS:
        if session.scalar(select(Biller).where(Biller.name == name)) is None:
            account = _account(session, AccountKind.BILLER, f"demo:biller:{kind}", name)
            session.add(Biller(name=name, kind=kind.value, account_id=account))
    stall_code, stall_name = DEMO_STALL
    if session.scalar(select(Merchant).where(Merchant.stall_code == stall_code)) is None:
        account = _account(session, AccountKind.MERCHANT, f"demo:stall:{stall_code}", stall_name)
        session.add(
            Merchant(
                stall_code=stall_code,
                stall_name=stall_name,
                commune_code=DEMO_COMMUNE,
                owner_citizen_id=citizens[0].id,
                account_id=account,
                created_at=now,
            )
        )
    session.flush()
    # The demo agent's shift has begun: the drawer is counted and open.
    if (
        session.scalar(select(DrawerSession.id).where(DrawerSession.agent_id == counter_agent.id))
        is None
    ):
        expected = ledger.balance(session, drawer, now=now).posted
        start_drawer(session, counter_agent, Count(expected, None), now)
    # The commune's side: officials and the community team, households with their checklists,
    # a welfare programme with a paid cycle, then the denominators, targets and a roll-up of
    # everything above into the indicators (last, so that it counts the rest).
    from kiosk.adoption import demo as adoption_demo  # noqa: PLC0415
    from kiosk.community import demo as community_demo  # noqa: PLC0415
    from kiosk.community.households import seed_demo_households  # noqa: PLC0415
    from kiosk.welfare import demo as welfare_demo  # noqa: PLC0415

    community_demo.seed_demo(session, now)
    seed_demo_households(session, now)
    welfare_demo.seed_demo(session, now)
    adoption_demo.seed_demo(session, now)
