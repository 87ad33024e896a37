"""Content digests and the per-account hash chain that make tampering evident.

Every transfer has a digest of the fields its caller chose. Each account (each shard of a hot
account) keeps a chain: the transfer's hash on that account is SHA-256(previous hash ‖ digest), and
the account's balance row holds the head. Chains are per account because that row is locked by the
writer anyway; one global chain would serialise every writer in the system.

The chain step is computed by PostgreSQL's `sha256()` in the fast path and by `hashlib` in the
portable path and in verification; both are plain SHA-256 over the same bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

DIGEST_VERSION = b"softatm-ledger-transfer-v1"
FIELD_SEPARATOR = "\x1f"


def epoch_microseconds(value: dt.datetime) -> int:
    assert value.tzinfo is not None
    delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def transfer_digest(
    *,
    transfer_id: uuid.UUID,
    idempotency_key: str,
    batch_id: uuid.UUID,
    phase: str,
    code: str,
    memo: str,
    debit_account_id: int | None,
    credit_account_id: int | None,
    amount: int | None,
    pending_id: uuid.UUID | None,
    reverses_id: uuid.UUID | None,
    expires_at: dt.datetime | None,
    created_at: dt.datetime,
) -> bytes:
    """Digest of a transfer's requested content.

    Resolutions and reversals name their accounts and amount through the transfer they refer to
    (whose own digest covers them), so those three fields are None for them here.
    """

    def text(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, uuid.UUID):
            return value.hex
        if isinstance(value, dt.datetime):
            return str(epoch_microseconds(value))
        return str(value)

    fields = (
        transfer_id,
        idempotency_key,
        batch_id,
        phase,
        code,
        memo,
        debit_account_id,
        credit_account_id,
        amount,
        pending_id,
        reverses_id,
        expires_at,
        created_at,
    )
    payload = FIELD_SEPARATOR.join(text(field) for field in fields).encode("utf-8")
    return hashlib.sha256(DIGEST_VERSION + b"\x00" + payload).digest()


def chain_step(previous_hash: bytes, digest: bytes) -> bytes:
    return hashlib.sha256(previous_hash + digest).digest()
