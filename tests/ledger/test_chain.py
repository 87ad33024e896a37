"""The transfer digest's format is frozen: every stored chain was computed with it."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

from ledger.chain import chain_step, transfer_digest
from ledger.schema import Phase

NOW = dt.datetime(2026, 11, 23, 8, 30, 15, 123456, tzinfo=dt.UTC)
NOW_US = 1_795_422_615_123_456
TRANSFER = uuid.UUID("0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b")
BATCH = uuid.UUID("0193a1b2-c3d4-7e5f-9a6b-7c8d9e0f1a2c")


def _expected(*fields: str) -> bytes:
    payload = "\x1f".join(fields).encode("utf-8")
    return hashlib.sha256(b"softatm-ledger-transfer-v1\x00" + payload).digest()


def test_the_digest_of_a_reservation_is_its_fields_as_text() -> None:
    digest = transfer_digest(
        transfer_id=TRANSFER,
        idempotency_key="rút:0912345678:1",
        batch_id=BATCH,
        phase=Phase.PENDING,
        code="withdrawal",
        memo="Bưu điện xã",
        debit_account_id=12,
        credit_account_id=34,
        amount=500_000,
        pending_id=None,
        reverses_id=None,
        expires_at=NOW + dt.timedelta(minutes=15),
        created_at=NOW,
    )
    assert digest == _expected(
        TRANSFER.hex,
        "rút:0912345678:1",
        BATCH.hex,
        "pending",
        "withdrawal",
        "Bưu điện xã",
        "12",
        "34",
        "500000",
        "",
        "",
        str(NOW_US + 15 * 60 * 1_000_000),
        str(NOW_US),
    )
    # The value every stored chain agrees with (computed when the format was first set).
    assert digest.hex() == "e2f404b7a58cd6643dead87dac66f2cbc6ae92fd255427a8ef1fce181b48d2df"


def test_the_digest_of_a_resolution_leaves_accounts_and_amount_out() -> None:
    digest = transfer_digest(
        transfer_id=TRANSFER,
        idempotency_key="k",
        batch_id=BATCH,
        phase=Phase.POST_PENDING,
        code="post_pending",
        memo="",
        debit_account_id=None,
        credit_account_id=None,
        amount=None,
        pending_id=BATCH,
        reverses_id=None,
        expires_at=None,
        created_at=NOW,
    )
    assert digest == _expected(
        TRANSFER.hex,
        "k",
        BATCH.hex,
        "post_pending",
        "post_pending",
        "",
        "",
        "",
        "",
        BATCH.hex,
        "",
        "",
        str(NOW_US),
    )
    assert digest.hex() == "d87db2b73f7c15b650df87a8ba7349f50fe424c5242a01d6dbc374edd2c23a00"


def test_a_chain_step_hashes_the_previous_hash_then_the_digest() -> None:
    previous, digest = bytes(range(32)), bytes(range(32, 64))
    assert chain_step(previous, digest) == hashlib.sha256(previous + digest).digest()
