"""Test support for the wallet pages: citizens made directly in the database, money moved by the
ledger, and a signed-in test client, without the registration or sign-in pages.

Everything is committed (the pages read it in their own request), so phones, ID numbers and
idempotency keys are unique per call: the PostgreSQL test database is shared by the whole run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

import ledger
from kiosk import database
from kiosk.auth.models import WebSession
from kiosk.auth.sessions import CITIZEN_POLICY, COOKIE_FIELD
from kiosk.citizens.models import Citizen, KycTier
from kiosk.pii import vault
from ledger import AccountKind

DEFAULT_COMMUNE = "00226"  # Phường Văn Miếu - Quốc Tử Giám, Hà Nội (seeded by the migration)
T = TypeVar("T")


@dataclass(frozen=True)
class WalletOwner:
    citizen_id: int
    wallet_account_id: int
    phone: str
    full_name: str


@contextmanager
def app_session(app: Flask) -> Iterator[Session]:
    """A session of the app's database that commits when the block ends without an error."""
    with app.app_context():
        session = database.database().sessions()
        with session:
            yield session
            session.commit()


def run(app: Flask, work: Callable[[Session], T]) -> T:
    with app_session(app) as session:
        return work(session)


def unique_phone() -> str:
    return "09" + "".join(secrets.choice("0123456789") for _ in range(8))


def unique_citizen_id() -> str:
    # 001 (Hà Nội), 1 (female, born 1900s), 58 (1958), then six random digits.
    return "001158" + "".join(secrets.choice("0123456789") for _ in range(6))


def make_citizen(
    app: Flask, *, full_name: str = "Hoàng Thị Mai", verified: bool = False
) -> WalletOwner:
    now = dt.datetime.now(dt.UTC)
    with app_session(app) as session:
        wallet = ledger.open_account(
            session,
            kind=AccountKind.CITIZEN_WALLET,
            name=f"Ví — {full_name}",
            owner_ref=f"wallet-test:{uuid.uuid4()}",
            now=now,
        )
        number = unique_citizen_id()
        citizen = Citizen(
            phone=unique_phone(),
            full_name=full_name,
            date_of_birth=dt.date(1958, 4, 12),
            sex="female",
            commune_code=DEFAULT_COMMUNE,
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
        session.add(citizen)
        session.flush()
        return WalletOwner(citizen.id, wallet.id, citizen.phone, full_name)


def open_account(app: Flask, kind: AccountKind, name: str) -> int:
    def work(session: Session) -> int:
        return ledger.open_account(
            session, kind=kind, name=name, owner_ref=f"wallet-test:{uuid.uuid4()}"
        ).id

    return run(app, work)


def post(
    app: Flask, request: ledger.TransferRequest, *, at: dt.datetime | None = None
) -> uuid.UUID:
    """Apply one transfer request and commit; returns the transfer's id."""
    return run(app, lambda session: ledger.post_transfer(session, request, now=at).id)


def key() -> str:
    return f"wallet-test:{uuid.uuid4()}"


def sign_in(client: FlaskClient, app: Flask, owner: WalletOwner) -> None:
    """Give the client a live citizen session, as the sign-in page would: a random token in the
    cookie, its SHA-256 in `web_sessions`."""
    token = secrets.token_urlsafe(32)
    now = dt.datetime.now(dt.UTC)
    with app_session(app) as session:
        session.add(
            WebSession(
                token_hash=hashlib.sha256(token.encode("ascii")).digest(),
                principal_kind="citizen",
                principal_id=owner.citizen_id,
                epoch=0,
                created_at=now,
                last_seen_at=now,
                expires_at=now + dt.timedelta(seconds=CITIZEN_POLICY.absolute_s),
            )
        )
    with client.session_transaction() as cookie:
        cookie[COOKIE_FIELD] = token


def ensure_sign_in_page(app: Flask) -> None:
    """Stand in for `citizens.sign_in` until the sign-in page exists: signed-out visitors are
    redirected there, and building that URL needs the endpoint. Call before the first request."""
    if "citizens.sign_in" not in app.view_functions:
        app.add_url_rule(
            "/test-sign-in", endpoint="citizens.sign_in", view_func=lambda: "sign in here"
        )
