"""Which shard of a hot account a connection writes: its slot's, distinct among open connections.

PostgreSQL only (SQLite has one writer and picks shards by transfer id). Each test has a database
of its own, so that no connection of another test holds a slot there.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, NullPool, text
from sqlalchemy.orm import Session

import ledger
from ledger import AccountKind, Post
from ledger.database import make_engine
from ledger.schema import Transfer
from migrations.sql.ledger_0015 import SLOT_LOCK_CLASS

pytestmark = pytest.mark.postgres

SHARDS = 4


@pytest.fixture
def slot_engine(unanalysed_postgres_url: str) -> Iterator[Engine]:
    # No pool: a connection closed here ends its backend, and with it the backend's slot.
    engine = make_engine(unanalysed_postgres_url, poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def accounts(slot_engine: Engine) -> tuple[int, int]:
    """A funded wallet and a fee account of SHARDS shards, opened without calling ledger_apply."""
    with Session(slot_engine) as session:
        wallet = ledger.open_account(
            session, kind=AccountKind.CITIZEN_WALLET, name="payer", owner_ref="payer"
        ).id
        fees = ledger.open_account(
            session, kind=AccountKind.FEE_REVENUE, name="fees", owner_ref="fees", shard_count=SHARDS
        ).id
        session.commit()
    with Session(slot_engine) as session:
        funding = ledger.open_account(
            session, kind=AccountKind.FUNDING, name="funding", owner_ref="funding"
        ).id
        session.commit()
        ledger.post_transfers(
            session, [Post("fund", funding, wallet, 10_000_000, code="funding")], backend="portable"
        )
        session.commit()
    return wallet, fees


def slot_of(connection: Connection) -> int:
    slot = connection.scalar(text("SELECT ledger_shard_slot()"))
    connection.commit()
    assert isinstance(slot, int)
    return slot


def pay_fee(connection: Connection, wallet: int, fees: int, key: str) -> int:
    """Post a fee on this connection; the fee account's shard it was written to."""
    with Session(bind=connection) as session:
        [result] = ledger.post_transfers(session, [Post(key, wallet, fees, 1_000, code="fee")])
        session.commit()
        shard = session.scalar(
            text("SELECT credit_shard FROM transfers WHERE id = :id"), {"id": result.id}
        )
    assert isinstance(shard, int)
    return shard


def test_connections_open_at_once_hold_the_lowest_free_slots_each_its_own(
    slot_engine: Engine,
) -> None:
    connections = [slot_engine.connect() for _ in range(6)]
    try:
        slots = [slot_of(connection) for connection in connections]
        assert sorted(slots) == list(range(6))
        # Read again, each keeps its own.
        assert [slot_of(connection) for connection in connections] == slots
    finally:
        for connection in connections:
            connection.close()


def test_connections_writing_at_once_use_every_shard_of_a_hot_account(
    slot_engine: Engine, accounts: tuple[int, int]
) -> None:
    wallet, fees = accounts
    connections = [slot_engine.connect() for _ in range(SHARDS)]
    try:
        shards = [
            pay_fee(connection, wallet, fees, f"fee-{n}")
            for n, connection in enumerate(connections)
        ]
        assert sorted(shards) == list(range(SHARDS))
        for connection, shard in zip(connections, shards, strict=True):
            assert shard == slot_of(connection) % SHARDS
            # The same connection keeps writing its shard.
            assert pay_fee(connection, wallet, fees, f"again-{shard}") == shard
    finally:
        for connection in connections:
            connection.close()
    with Session(slot_engine) as session:
        assert ledger.verify_ledger(session).problems == []
        assert session.query(Transfer).filter(Transfer.credit_account_id == fees).count() == 8


def test_a_refused_call_rolled_back_keeps_the_connections_slot(
    slot_engine: Engine, accounts: tuple[int, int]
) -> None:
    wallet, fees = accounts
    with slot_engine.connect() as other, slot_engine.connect() as connection:
        slot_of(other)  # slot 0 is taken: the connection below claims 1
        with Session(bind=connection) as session:
            with pytest.raises(ledger.InsufficientFunds):
                ledger.post_transfers(session, [Post("too-much", wallet, fees, 10**12, code="fee")])
            session.rollback()
        # The rollback undid the setting, not the advisory lock: the claim finds the same slot.
        assert slot_of(connection) == 1
        assert pay_fee(connection, wallet, fees, "after") == 1


def test_a_closed_connections_slot_is_free_again(slot_engine: Engine) -> None:
    with slot_engine.connect() as first:
        slot = slot_of(first)
    # The backend ends a moment after its connection closes; then its lock is gone.
    with slot_engine.connect() as probe:
        for _ in range(100):
            if probe.scalar(
                text("SELECT pg_try_advisory_lock(:class, :slot)"),
                {"class": SLOT_LOCK_CLASS, "slot": slot},
            ):
                break
            probe.rollback()
            time.sleep(0.02)
        else:
            pytest.fail(f"slot {slot} still held after its connection closed")
        probe.execute(text("SELECT pg_advisory_unlock_all()"))
        probe.commit()
