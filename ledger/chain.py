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
DIGEST_PREFIX = DIGEST_VERSION + b"\x00"


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
    fee_account_id: int | None = None,
    fee_amount: int | None = None,
) -> bytes:
    """Digest of a transfer's requested content: SHA-256 of `DIGEST_VERSION`, a zero byte, and
    the fields below as text joined by `FIELD_SEPARATOR` — UUIDs as 32 hex digits, times as
    microseconds since the Unix epoch, numbers in decimal, and an absent field as nothing.

    Resolutions and reversals name their accounts and amount through the transfer they refer to
    (whose own digest covers them), so those three fields are None for them here. A fee leg adds
    its account and amount as two more fields; a transfer without one has the digest it had
    before fee legs existed.
    """
    fields: tuple[str, ...] = (
        transfer_id.hex,
        idempotency_key,
        batch_id.hex,
        phase,
        code,
        memo,
        "" if debit_account_id is None else str(debit_account_id),
        "" if credit_account_id is None else str(credit_account_id),
        "" if amount is None else str(amount),
        "" if pending_id is None else pending_id.hex,
        "" if reverses_id is None else reverses_id.hex,
        "" if expires_at is None else str(epoch_microseconds(expires_at)),
        str(epoch_microseconds(created_at)),
    )
    if fee_account_id is not None or fee_amount is not None:
        fields += (
            "" if fee_account_id is None else str(fee_account_id),
            "" if fee_amount is None else str(fee_amount),
        )
    payload = FIELD_SEPARATOR.join(fields).encode("utf-8")
    return hashlib.sha256(DIGEST_PREFIX + payload).digest()


def chain_step(previous_hash: bytes, digest: bytes) -> bytes:
    return hashlib.sha256(previous_hash + digest).digest()
