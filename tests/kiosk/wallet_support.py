"""Test support for the wallet pages: citizens made directly in the database, money moved by the
ledger, and a signed-in test client, without the registration or sign-in pages.

Everything is committed (the pages read it in their own request), so phones, ID numbers and
idempotency keys are unique per call: the PostgreSQL test database is shared by the whole run.
"""

from __future__ import annotations

import datetime as dt
import re
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
from ledger import AccountKind
from tests.kiosk import citizen_support

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


def make_citizen(
    app: Flask, *, full_name: str = "Hoàng Thị Mai", verified: bool = False
) -> WalletOwner:
    citizen = citizen_support.make_citizen(app, full_name=full_name, verified=verified)
    return WalletOwner(citizen.id, citizen.wallet_account_id, citizen.phone, full_name)


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
    """Give the client a live citizen session, as the sign-in page would."""
    citizen_support.sign_in_as(client, app, owner.citizen_id)


def text_of(html: str) -> str:
    """The page's words, tags removed and spaces collapsed, for phrase checks. A no-break space
    stays one: "500.000\u00a0₫" is checked as the page writes it."""
    return re.sub(r"[^\S\u00a0]+", " ", re.sub(r"<[^>]+>", " ", html))
