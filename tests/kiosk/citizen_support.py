"""Test support: citizens made directly in the database, with money, signed in to a test client.

Tests of pages that need a signed-in citizen use this instead of going through registration, so
that each area's tests stand on their own. Phones and ID numbers are unique per call, because the
PostgreSQL test database is shared by the whole run.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import secrets
import uuid

from flask import Flask
from flask.testing import FlaskClient

import ledger
from kiosk import database
from kiosk.auth.models import WebSession
from kiosk.auth.sessions import CITIZEN_POLICY, COOKIE_FIELD, SessionPolicy, token_hash
from kiosk.citizens.models import Citizen, KycTier, Sex
from kiosk.pii import vault
from ledger import AccountKind

_serial = itertools.count(random.randrange(10**6))
DEFAULT_COMMUNE = "00226"  # Phường Văn Miếu - Quốc Tử Giám, Hà Nội


def unique_phone() -> str:
    return f"09{next(_serial) % 10**8:08d}"


def unique_citizen_id(date_of_birth: dt.date, sex: Sex) -> str:
    century_digit = (0 if date_of_birth.year < 2000 else 2) + (1 if sex is Sex.FEMALE else 0)
    return f"001{century_digit}{date_of_birth.year % 100:02d}{next(_serial) % 10**6:06d}"


def make_citizen(
    app: Flask,
    *,
    balance_vnd: int = 0,
    verified: bool = True,
    full_name: str = "Hoàng Thị Mai",
    commune_code: str = DEFAULT_COMMUNE,
    date_of_birth: dt.date = dt.date(1958, 4, 12),
    sex: Sex = Sex.FEMALE,
    citizen_id: str | None = None,
    now: dt.datetime | None = None,
) -> Citizen:
    """A committed citizen with a wallet holding `balance_vnd` (funded from a test account);
    ``citizen_id`` is the ID number (a unique one when None), ``now`` when the account was
    opened, verified and funded (the present when None)."""
    now = now or dt.datetime.now(dt.UTC)
    with app.app_context():
        db = database.database().sessions()
        with db:
            wallet = ledger.open_account(
                db, kind=AccountKind.CITIZEN_WALLET, name=f"Ví — {full_name}", now=now
            )
            number = citizen_id or unique_citizen_id(date_of_birth, sex)
            citizen = Citizen(
                phone=unique_phone(),
                full_name=full_name,
                date_of_birth=date_of_birth,
                sex=sex.value,
                commune_code=commune_code,
                citizen_id_ciphertext=vault().encrypt(number, purpose="citizen_id"),
                citizen_id_lookup=vault().lookup_hash(number, purpose="citizen_id"),
                citizen_id_last4=number[-4:],
                kyc_tier=KycTier.VERIFIED if verified else KycTier.UNVERIFIED,
                verified_at=now if verified else None,
                verified_by="agent:test" if verified else None,
                pin_hash=None,
                consent_version="test",
                consent_at=now,
                registered_by="test",
                wallet_account_id=wallet.id,
                session_epoch=0,
                created_at=now,
            )
            db.add(citizen)
            db.flush()
            wallet.owner_ref = f"citizen:{citizen.id}"
            if balance_vnd:
                funding = ledger.open_account(
                    db, kind=AccountKind.FUNDING, name="test funding", owner_ref=str(uuid.uuid4())
                )
                ledger.post_transfer(
                    db,
                    ledger.Post(
                        f"test-fund:{uuid.uuid4()}", funding.id, wallet.id, balance_vnd, "cash_in"
                    ),
                    now=now,
                )
            db.commit()
            db.expunge(citizen)
    return citizen


def sign_in(client: FlaskClient, app: Flask, citizen: Citizen) -> None:
    """Give the client a live citizen session, as the sign-in page would."""
    sign_in_as(client, app, citizen.id, citizen.session_epoch)


def sign_in_as(
    client: FlaskClient,
    app: Flask,
    citizen_id: int,
    epoch: int = 0,
    *,
    principal_kind: str = "citizen",
    policy: SessionPolicy = CITIZEN_POLICY,
) -> None:
    """A live session for the citizen with this id (or the staff member of ``principal_kind``
    and session ``policy``): a random token in the cookie, its SHA-256 in `web_sessions` (what
    `kiosk.auth.sessions.sign_in` leaves)."""
    token = secrets.token_urlsafe(32)
    now = dt.datetime.now(dt.UTC)
    with app.app_context():
        db = database.database().sessions()
        with db:
            db.add(
                WebSession(
                    token_hash=token_hash(token),
                    principal_kind=principal_kind,
                    principal_id=citizen_id,
                    epoch=epoch,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + dt.timedelta(seconds=policy.absolute_s),
                )
            )
            db.commit()
    with client.session_transaction() as cookie:
        cookie[COOKIE_FIELD] = token
