"""Test data for exercising /api/v1 from outside (the schemathesis harness, manual trials).

`seed_for_fuzzing` makes, in commune 00226: a post office, an agent with a funded, open drawer,
two verified citizens with money and a known PIN, a withdrawal code and a payment code, and two
credentials — a system one with every scope and no place limit, and one bound to the agent —
then returns their tokens and ids. It flushes; the caller commits. Never for production data.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from typing import Any

import ledger
from agent_portal import drawer, staff
from agent_portal.models import Role
from kiosk.api import credentials
from kiosk.citizens.credentials import hash_pin
from kiosk.citizens.models import Citizen, KycTier
from kiosk.payments import codes
from kiosk.payments.models import Biller, BillerKind
from kiosk.pii import vault
from ledger import AccountKind, Post

FUZZ_COMMUNE = "00226"
FUZZ_PIN = "246810"
FUZZ_FLOAT_VND = 50_000_000
FUZZ_WALLET_VND = 20_000_000


def _citizen(session: Any, name: str, now: dt.datetime, funding_id: int) -> Citizen:
    number = f"0011580{secrets.randbelow(10**5):05d}"
    wallet = ledger.open_account(
        session, kind=AccountKind.CITIZEN_WALLET, name=f"Ví — {name}", now=now
    )
    citizen = Citizen(
        phone=f"09{secrets.randbelow(10**8):08d}",
        full_name=name,
        date_of_birth=dt.date(1958, 4, 12),
        sex="female",
        commune_code=FUZZ_COMMUNE,
        citizen_id_ciphertext=vault().encrypt(number, purpose="citizen_id"),
        citizen_id_lookup=vault().lookup_hash(number, purpose="citizen_id"),
        citizen_id_last4=number[-4:],
        kyc_tier=KycTier.VERIFIED,
        verified_at=now,
        verified_by="agent:fuzz",
        pin_hash=hash_pin(FUZZ_PIN),
        pin_changed_at=now,
        consent_version="fuzz",
        consent_at=now,
        registered_by="fuzz",
        wallet_account_id=wallet.id,
        session_epoch=0,
        created_at=now,
    )
    session.add(citizen)
    session.flush()
    wallet.owner_ref = f"citizen:{citizen.id}"
    ledger.post_transfer(
        session,
        Post(f"fuzz-fund:{uuid.uuid4()}", funding_id, wallet.id, FUZZ_WALLET_VND, "cash_in"),
        now=now,
    )
    return citizen


def seed_for_fuzzing(session: Any, now: dt.datetime | None = None) -> dict[str, Any]:
    """Make the data described above (inside an app context) and say how to use it."""
    now = now or dt.datetime.now(dt.UTC)
    tag = secrets.token_hex(3).upper()
    post_office = staff.create_post_office(
        session, code=f"FZ-{tag}", name="Điểm thử API", commune_code=FUZZ_COMMUNE, now=now
    )
    agent = staff.create_agent(
        session,
        post_office=post_office,
        username=f"fuzz.{tag.lower()}",
        full_name="Nhân viên thử",
        password=secrets.token_urlsafe(16),
        role=Role.AGENT,
        created_by="admin",
        now=now,
    )
    funding = ledger.open_account(
        session, kind=AccountKind.FUNDING, name="fuzz funding", owner_ref=f"fuzz:{tag}"
    )
    ledger.post_transfer(
        session,
        Post(
            f"fuzz-float:{tag}", agent.drawer_account_id, funding.id, FUZZ_FLOAT_VND, "float_top_up"
        ),
        now=now,
    )
    drawer.start_drawer(session, agent, drawer.Count(total=FUZZ_FLOAT_VND, notes=None), now)
    citizens = [
        _citizen(session, "Hoàng Thị Mai", now, funding.id),
        _citizen(session, "Lò Văn Páo", now, funding.id),
    ]
    biller_account = ledger.open_account(
        session, kind=AccountKind.BILLER, name="Điện lực thử", owner_ref=f"fuzz-biller:{tag}"
    )
    biller = Biller(name="Điện lực thử", kind=BillerKind.ELECTRICITY, account_id=biller_account.id)
    session.add(biller)
    session.flush()
    withdrawal = codes.create_withdrawal_code(session, citizens[0], 500_000, now)
    payment = codes.create_payment_code(
        session, citizens[0], biller_id=biller.id, bill_reference="PE0001", amount=150_000, now=now
    )
    system, system_token = credentials.create_for_system(
        session,
        f"fuzz-{tag.lower()}",
        scopes=[scope.value for scope in credentials.Scope],
        created_by="admin",
        now=now,
    )
    agent_credential, agent_token = credentials.create_for_agent(
        session, agent, name="fuzz agent", created_by="admin", now=now
    )
    session.flush()
    return {
        "token": system_token,
        "system_token": system_token,
        "system_credential_id": system.id,
        "agent_token": agent_token,
        "agent_credential_id": agent_credential.id,
        "agent_id": agent.id,
        "post_office_id": post_office.id,
        "commune_code": FUZZ_COMMUNE,
        "citizen_ids": [citizen.id for citizen in citizens],
        "citizen_phones": [citizen.phone for citizen in citizens],
        "citizen_last4": [citizen.citizen_id_last4 for citizen in citizens],
        "pin": FUZZ_PIN,
        "biller_id": biller.id,
        "withdrawal_code_token": withdrawal.token,
        "withdrawal_code_id": str(withdrawal.record.id),
        "payment_code_token": payment.token,
        "payment_code_id": str(payment.record.id),
    }
