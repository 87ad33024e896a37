"""Expected failures of ledger operations, as a small typed hierarchy.

Bugs are assertions; these are the answers a caller must handle. Each carries a stable `code` that
the web layer maps to a message in the user's language. After any `LedgerError` raised by a call
that writes, the caller's transaction must be rolled back: nothing of that call is kept, and on
PostgreSQL the transaction cannot continue anyway.
"""

from __future__ import annotations

import uuid


class LedgerError(Exception):
    code = "ledger_error"


class InvalidTransfer(LedgerError):
    """The request itself is malformed (amount, accounts, key, memo, timeout)."""

    code = "invalid_transfer"


class AccountNotFound(LedgerError):
    code = "account_not_found"

    def __init__(self, account_id: int) -> None:
        super().__init__(f"account {account_id} does not exist")
        self.account_id = account_id


class InsufficientFunds(LedgerError):
    """A balance rule of the account would be broken (a wallet below zero, a drawer below empty)."""

    code = "insufficient_funds"

    def __init__(self, account_id: int) -> None:
        super().__init__(f"account {account_id} has insufficient funds for this transfer")
        self.account_id = account_id


class IdempotencyConflict(LedgerError):
    """The idempotency key was used before for a transfer with different content."""

    code = "idempotency_conflict"

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was already used for a different transfer")
        self.key = key


class TransferNotFound(LedgerError):
    code = "transfer_not_found"

    def __init__(self, transfer_id: uuid.UUID) -> None:
        super().__init__(f"transfer {transfer_id} does not exist")
        self.transfer_id = transfer_id


class PendingNotFound(TransferNotFound):
    """The id given as a reservation is not a pending transfer."""

    code = "pending_not_found"


class PendingAlreadyResolved(LedgerError):
    """The reservation was already posted, voided or expired: it resolves at most once."""

    code = "pending_already_resolved"

    def __init__(self, pending_id: uuid.UUID) -> None:
        super().__init__(f"reservation {pending_id} was already posted, voided or expired")
        self.pending_id = pending_id


class PendingExpired(LedgerError):
    """The reservation's time ran out before it was posted; it can only be voided now."""

    code = "pending_expired"

    def __init__(self, pending_id: uuid.UUID) -> None:
        super().__init__(f"reservation {pending_id} has expired")
        self.pending_id = pending_id


class AlreadyReversed(LedgerError):
    code = "already_reversed"

    def __init__(self, transfer_id: uuid.UUID) -> None:
        super().__init__(f"transfer {transfer_id} was already reversed")
        self.transfer_id = transfer_id


class NotReversible(LedgerError):
    """Only posted money can be reversed; a reservation is voided instead."""

    code = "not_reversible"

    def __init__(self, transfer_id: uuid.UUID) -> None:
        super().__init__(f"transfer {transfer_id} is not a posted transfer and cannot be reversed")
        self.transfer_id = transfer_id
