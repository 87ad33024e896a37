"""The double-entry ledger of Soft ATM: plain Python and SQLAlchemy, no web framework.

Design
------
Money is an integer number of đồng. Every movement is a *transfer* from one debit account to one
credit account for one positive amount, so each row balances by construction (the model of
TigerBeetle). A posted transfer may carry a third leg, a *fee leg*: the debit account then pays
the amount and a fee, the credit account receives the amount and a fee account the fee — three
legs that sum to zero, in one row with one idempotency key, so that a payment with its fee costs
one transfer, not two. A business operation of several transfers — a payout, the fee on it and
the agent's commission out of that fee — is a *batch* of linked transfers applied by one call, all
or nothing.

Each account has running totals in a balance row: debits and credits, posted and pending. Balance
rules are flags on the account (a wallet's debits may not exceed its credits; a drawer's credits may
not exceed its debits), copied to the balance row and enforced twice: by the code on the locked row,
and by a named CHECK constraint in the database. A hot account that every operation touches (fee
revenue, settlement) is split into shards, each its own row, so writers do not queue on one lock; a
sharded account has no balance rule, since a limit needs one row to check.

A *pending* transfer reserves money (a withdrawal code). It is resolved at most once: posted,
voided, or voided on expiry. The open reservation's row is deleted by the resolution, and a UNIQUE
constraint on `transfers.pending_id` backs that up; an expired reservation never counts against the
available balance that `balance()` reports, and the sweeper voids expired ones in bulk. A posting
is checked against the stored totals, where an expired reservation stays until it is voided: a
caller about to spend from an account first voids that account's expired reservations
(`void_expired_reservations(account_id=...)`), as the citizen app does before every payment.

Nothing is updated or deleted in `transfers` (a trigger refuses it); a mistake is corrected by a
reversing transfer that names the original. Every transfer carries a caller-chosen idempotency key:
the same key with the same content returns the original, with different content it is refused.

Tamper evidence: each transfer's digest is chained into the hash chain of each account it touches
(per account, whose row is locked anyway — a single global chain would serialise every writer). The
verification command replays every chain and recomputes every total from the transfers.

Locks are always taken in the same order — the batch's idempotency keys (PostgreSQL advisory
locks), reservations by id, then balance rows by (account, shard) — so concurrent calls cannot
deadlock, and a second call with a key in flight waits for the first and then replays it.
On PostgreSQL a whole batch is one round trip to the `ledger_apply` function; elsewhere a
portable path does the same in a few statements.

Calls flush but never commit: the caller's unit of work commits, or rolls back after an error.
The one exception is `commit_transfers`, for callers with nothing else to write in the same
transaction: its call is a transaction of its own — on PostgreSQL one round trip outside any
transaction, which the server commits before it answers.
"""

from ledger.accounts import BalanceRule, find_account, get_account, open_account
from ledger.errors import (
    AccountNotFound,
    AlreadyReversed,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidTransfer,
    LedgerError,
    NotReversible,
    PendingAlreadyResolved,
    PendingExpired,
    PendingNotFound,
    TransferNotFound,
)
from ledger.posting import (
    Post,
    PostPending,
    Reserve,
    Reverse,
    TransferRequest,
    TransferResult,
    VoidPending,
    commit_transfer,
    commit_transfers,
    post_transfer,
    post_transfers,
    resolution_of,
)
from ledger.reads import Balance, balance, balance_as_of, statement, trial_balance
from ledger.schema import Account, AccountKind, Base, Phase, Transfer
from ledger.sweeper import void_expired_reservations
from ledger.verify import VerificationReport, verify_ledger

__all__ = [
    "Account",
    "AccountKind",
    "AccountNotFound",
    "AlreadyReversed",
    "Balance",
    "BalanceRule",
    "Base",
    "IdempotencyConflict",
    "InsufficientFunds",
    "InvalidTransfer",
    "LedgerError",
    "NotReversible",
    "PendingAlreadyResolved",
    "PendingExpired",
    "PendingNotFound",
    "Phase",
    "Post",
    "PostPending",
    "Reserve",
    "Reverse",
    "Transfer",
    "TransferNotFound",
    "TransferRequest",
    "TransferResult",
    "VerificationReport",
    "VoidPending",
    "balance",
    "balance_as_of",
    "commit_transfer",
    "commit_transfers",
    "find_account",
    "get_account",
    "open_account",
    "post_transfer",
    "post_transfers",
    "resolution_of",
    "statement",
    "trial_balance",
    "verify_ledger",
    "void_expired_reservations",
]
