"""Factories for the ledger tests: accounts with money in them, and a fixed clock."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

import ledger
from ledger import AccountKind

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
_owners = itertools.count(1)


@pytest.fixture
def open_account(db_session: Session) -> Callable[..., int]:
    def make(kind: AccountKind = AccountKind.CITIZEN_WALLET, **options: object) -> int:
        owner = f"test:{next(_owners)}:{uuid.uuid4().hex[:12]}"
        account = ledger.open_account(
            db_session,
            kind=kind,
            name=f"{kind} {owner}",
            owner_ref=owner,
            **options,  # type: ignore[arg-type]
        )
        return account.id

    return make


@pytest.fixture
def funding(open_account: Callable[..., int]) -> int:
    """An external source of money with no balance rule (e.g. the state budget)."""
    return open_account(AccountKind.FUNDING)


@pytest.fixture
def wallet_with(
    db_session: Session, open_account: Callable[..., int], funding: int
) -> Callable[[int], int]:
    """A citizen wallet holding `amount` đồng."""
    keys = itertools.count(1)

    def make(amount: int) -> int:
        wallet = open_account(AccountKind.CITIZEN_WALLET)
        if amount:
            ledger.post_transfer(
                db_session,
                ledger.Post(
                    key=f"fund:{wallet}:{next(keys)}:{uuid.uuid4()}",
                    debit_account_id=funding,
                    credit_account_id=wallet,
                    amount=amount,
                    code="funding",
                ),
                now=NOW,
            )
        return wallet

    return make


def disable_append_only(session: Session, backend: str) -> None:
    """Let the test forge a row, as an attacker with database access could."""
    if backend == "sqlite":
        session.execute(text("DROP TRIGGER transfers_no_update"))
    else:
        session.execute(text("SET LOCAL session_replication_role = replica"))


def forged_row(debit: int, credit: int, **columns: object) -> dict[str, object]:
    """A transfer row as a write around ledger_apply would insert it."""
    return {
        "id": uuid.uuid4(),
        "idempotency_key": f"forged:{uuid.uuid4()}",
        "batch_id": uuid.uuid4(),
        "phase": "posted",
        "code": "forged",
        "memo": "",
        "debit_account_id": debit,
        "debit_shard": 0,
        "credit_account_id": credit,
        "credit_shard": 0,
        "amount": 5,
        "created_at": NOW,
        "debit_hash": bytes(32),
        "debit_balance_after": 0,
        "credit_hash": bytes(32),
        "credit_balance_after": 0,
    } | columns
