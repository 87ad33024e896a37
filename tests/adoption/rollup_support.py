"""Test support for the adoption roll-up and indicators: a rolled-back session on SQLite and
PostgreSQL with empty aggregates, citizens made in the database at a given time, and money moved
through the ledger with the codes the real operations use.

On PostgreSQL the adoption tests have a database of their own (`counting_postgres_engine`): the
roll-ups count every transfer and citizen in it, and other tests commit into the session's
database. Each test still works in communes of its own (`fresh_communes`) and starts from empty
aggregates inside its own transaction.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

import ledger
from kiosk.adoption.models import (
    AdoptionDenominator,
    AdoptionTarget,
    RollupState,
)
from kiosk.adoption.rollup import DERIVED_MODELS
from kiosk.citizens.models import Citizen, KycTier
from kiosk.community.models import (
    ChecklistEntry,
    ChecklistStep,
    Evidence,
    Household,
    Official,
    OfficialRole,
    Person,
    StepStatus,
    Village,
    Visit,
)
from kiosk.places.models import Commune
from ledger import AccountKind
from ledger.accounts import NO_RULE

# 10:00 in Hà Nội on 23 November 2026.
NOW = dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 11, 23)
_serial = itertools.count(random.randrange(10**6))
# Communes other tests use for their citizens (00226 is everyone's default).
BUSY_COMMUNES = frozenset({"00226"})


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def adoption_session(request: pytest.FixtureRequest) -> Iterator[Session]:
    """A session on a migrated database, rolled back after the test, with empty aggregates."""
    engine: Engine = request.getfixturevalue(
        "sqlite_engine" if request.param == "sqlite" else "counting_postgres_engine"
    )
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    for model in (*DERIVED_MODELS, RollupState, AdoptionDenominator, AdoptionTarget):
        session.execute(delete(model))
    yield session
    session.close()
    transaction.rollback()
    connection.close()


def fresh_communes(session: Session, count: int, *, province_code: str | None = None) -> list[str]:
    """Communes no other test puts citizens in, picked at random (of one province if given)."""
    query = select(Commune.code).order_by(Commune.code)
    if province_code is not None:
        query = query.where(Commune.province_code == province_code)
    codes = [code for code in session.scalars(query) if code not in BUSY_COMMUNES]
    return sorted(random.sample(codes, count))


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    """A moment of a Vietnamese day (hour in Hà Nội)."""
    return dt.datetime.combine(day, dt.time(hour), dt.timezone(dt.timedelta(hours=7)))


@dataclass
class World:
    """The accounts around the citizens: a post office drawer, a market stall, a biller, a
    welfare fund, and where withdrawals and fees go."""

    session: Session
    drawer: int
    merchant: int
    biller: int
    welfare_fund: int
    clearing: int
    fees: int

    def citizen(
        self,
        commune_code: str,
        created: dt.datetime,
        *,
        verified: dt.datetime | None = None,
    ) -> Citizen:
        serial = next(_serial)
        wallet = ledger.open_account(
            self.session,
            kind=AccountKind.CITIZEN_WALLET,
            name=f"Ví {serial}",
            owner_ref=f"adoption-test:{uuid.uuid4().hex}",
            now=created,
        )
        citizen = Citizen(
            phone=f"08{serial % 10**8:08d}",
            full_name="Lò Văn Páo",
            date_of_birth=dt.date(1970, 1, 1),
            sex="male",
            commune_code=commune_code,
            # Test data: no real ID number behind these bytes.
            citizen_id_ciphertext=secrets.token_bytes(40),
            citizen_id_lookup=secrets.token_bytes(32),
            citizen_id_last4=f"{serial % 10**4:04d}",
            kyc_tier=KycTier.VERIFIED if verified else KycTier.UNVERIFIED,
            verified_at=verified,
            verified_by="agent:test" if verified else None,
            pin_hash=None,
            consent_version="test",
            consent_at=created,
            registered_by="test",
            wallet_account_id=wallet.id,
            session_epoch=0,
            created_at=created,
        )
        self.session.add(citizen)
        self.session.flush()
        return citizen

    def verify(self, citizen: Citizen, when: dt.datetime) -> None:
        citizen.kyc_tier = KycTier.VERIFIED
        citizen.verified_at = when
        citizen.verified_by = "agent:test"
        self.session.flush()

    def _post(self, when: dt.datetime, *requests: ledger.TransferRequest) -> list[uuid.UUID]:
        return [
            result.id for result in ledger.post_transfers(self.session, list(requests), now=when)
        ]

    def cash_in(self, citizen: Citizen, amount: int, when: dt.datetime) -> None:
        self._post(
            when,
            ledger.Post(_key(), self.drawer, citizen.wallet_account_id, amount, "cash_in"),
        )

    def welfare(self, citizen: Citizen, amount: int, when: dt.datetime) -> uuid.UUID:
        (paid,) = self._post(
            when,
            ledger.Post(
                _key(), self.welfare_fund, citizen.wallet_account_id, amount, "welfare_payment"
            ),
        )
        return paid

    def pay_stall(self, citizen: Citizen, amount: int, when: dt.datetime) -> None:
        self._post(
            when,
            ledger.Post(
                _key(), citizen.wallet_account_id, self.merchant, amount, "merchant_payment"
            ),
        )

    def reserve(self, citizen: Citizen, amount: int, when: dt.datetime, *, bill: bool) -> uuid.UUID:
        """A payment code (bill) or a withdrawal code: the money is held, not paid."""
        (pending,) = self._post(
            when,
            ledger.Reserve(
                _key(),
                citizen.wallet_account_id,
                self.biller if bill else self.clearing,
                amount,
                "bill_payment" if bill else "withdrawal",
                timeout_s=7 * 24 * 3600,
            ),
        )
        return pending

    def redeem(self, pending: uuid.UUID, when: dt.datetime, *, bill: bool) -> None:
        """The agent scans the code: the hold is posted."""
        self._post(
            when,
            ledger.PostPending(_key(), pending, "bill_payment" if bill else "cash_payout"),
        )

    def cancel(self, pending: uuid.UUID, when: dt.datetime) -> None:
        self._post(when, ledger.VoidPending(_key(), pending, "cancelled"))

    def fee(self, citizen: Citizen, amount: int, when: dt.datetime) -> None:
        self._post(when, ledger.Post(_key(), citizen.wallet_account_id, self.fees, amount, "fee"))


def _key() -> str:
    return f"adoption-test:{uuid.uuid4()}"


def make_world(session: Session) -> World:
    def account(kind: AccountKind) -> int:
        return ledger.open_account(
            session,
            kind=kind,
            name=f"{kind} test",
            owner_ref=f"adoption-test:{uuid.uuid4().hex}",
            rule=NO_RULE,
            now=NOW,
        ).id

    return World(
        session=session,
        drawer=account(AccountKind.AGENT_DRAWER),
        merchant=account(AccountKind.MERCHANT),
        biller=account(AccountKind.BILLER),
        welfare_fund=account(AccountKind.WELFARE_FUND),
        clearing=account(AccountKind.SETTLEMENT),
        fees=account(AccountKind.FEE_REVENUE),
    )


@dataclass
class Team:
    """A commune's community digital team of one member, one village, and what they record."""

    session: Session
    commune_code: str
    member: Official
    village: Village

    @classmethod
    def of(cls, session: Session, commune_code: str) -> Team:
        member = Official(
            username=f"tv.{uuid.uuid4().hex[:10]}",
            full_name="Hà Văn Tổ",
            role=OfficialRole.TEAM_MEMBER.value,
            commune_code=commune_code,
            password_hash="-",
            password_changed_at=NOW,
            session_epoch=0,
            active=True,
            created_at=NOW,
            created_by="admin",
        )
        village = Village(
            commune_code=commune_code,
            name=f"Thôn {uuid.uuid4().hex[:6]}",
            created_at=NOW,
            created_by="admin",
        )
        session.add_all([member, village])
        session.flush()
        return cls(session, commune_code, member, village)

    def household(self) -> Household:
        household = Household(
            id=uuid.uuid4(),
            commune_code=self.commune_code,
            village_id=self.village.id,
            head_name="Hà Văn Chủ",
            address="",
            created_at=NOW - dt.timedelta(days=60),
            created_by=self.member.id,
        )
        self.session.add(household)
        self.session.flush()
        return household

    def person(
        self, household: Household, *, citizen_id: int | None = None, beneficiary: bool = False
    ) -> Person:
        person = Person(
            id=uuid.uuid4(),
            household_id=household.id,
            commune_code=self.commune_code,
            full_name="Hà Thị Dân",
            date_of_birth=dt.date(1960, 1, 1),
            sex="female",
            welfare_beneficiary=beneficiary,
            citizen_id=citizen_id,
            consent_at=NOW - dt.timedelta(days=60),
            created_at=NOW - dt.timedelta(days=60),
            created_by=self.member.id,
        )
        self.session.add(person)
        self.session.flush()
        return person

    def visit(self, household: Household, when: dt.datetime) -> Visit:
        visit = Visit(
            id=uuid.uuid4(),
            household_id=household.id,
            commune_code=self.commune_code,
            official_id=self.member.id,
            visited_at=when,
            received_at=when,
            note="",
            content_hash=secrets.token_bytes(32),
        )
        self.session.add(visit)
        self.session.flush()
        return visit

    def step(
        self,
        person: Person,
        step: ChecklistStep,
        status: StepStatus,
        evidence: Evidence,
        on_date: dt.date,
    ) -> None:
        self.session.add(
            ChecklistEntry(
                person_id=person.id,
                step=step.value,
                commune_code=self.commune_code,
                status=status.value,
                evidence=evidence.value,
                reason="" if status in {StepStatus.DONE, StepStatus.NOT_APPLICABLE} else "chưa",
                on_date=on_date,
                recorded_by=f"official:{self.member.id}",
                visit_id=None,
                recorded_at=NOW,
                version=1,
            )
        )
        self.session.flush()
