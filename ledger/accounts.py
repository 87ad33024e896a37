"""Opening accounts: a kind, an owner, balance rules and (for hot accounts) shards."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.schema import (
    GENESIS_HASH,
    SHARD_COUNT_MAX,
    Account,
    AccountBalance,
    AccountKind,
)

# Which side an account's balance normally sits on. Wallets, funds and revenue are money the
# system owes or earned (credit-normal); cash in drawers and vaults is money it holds
# (debit-normal).
DEBIT_NORMAL_KINDS = frozenset(
    {AccountKind.AGENT_DRAWER, AccountKind.DISTRICT_CASH, AccountKind.CASH_VARIANCE}
)


@dataclass(frozen=True, slots=True)
class BalanceRule:
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False


NO_RULE = BalanceRule()
# A wallet or a fund cannot pay out more than it holds; a drawer cannot hand out more cash than
# it has.
CANNOT_OVERDRAW_CREDIT_BALANCE = BalanceRule(debits_must_not_exceed_credits=True)
CANNOT_OVERDRAW_DEBIT_BALANCE = BalanceRule(credits_must_not_exceed_debits=True)

DEFAULT_RULES: dict[AccountKind, BalanceRule] = {
    AccountKind.CITIZEN_WALLET: CANNOT_OVERDRAW_CREDIT_BALANCE,
    AccountKind.MERCHANT: CANNOT_OVERDRAW_CREDIT_BALANCE,
    AccountKind.BILLER: CANNOT_OVERDRAW_CREDIT_BALANCE,
    AccountKind.WELFARE_FUND: CANNOT_OVERDRAW_CREDIT_BALANCE,
    AccountKind.AGENT_COMMISSION: CANNOT_OVERDRAW_CREDIT_BALANCE,
    AccountKind.AGENT_DRAWER: CANNOT_OVERDRAW_DEBIT_BALANCE,
    AccountKind.DISTRICT_CASH: CANNOT_OVERDRAW_DEBIT_BALANCE,
    AccountKind.FEE_REVENUE: NO_RULE,
    AccountKind.CASH_VARIANCE: NO_RULE,
    AccountKind.SETTLEMENT: NO_RULE,
    AccountKind.FUNDING: NO_RULE,
}


def open_account(
    session: Session,
    *,
    kind: AccountKind,
    name: str,
    owner_ref: str | None = None,
    rule: BalanceRule | None = None,
    shard_count: int = 1,
    now: dt.datetime | None = None,
) -> Account:
    """Open an account with its balance row(s); flushes, never commits.

    `shard_count` > 1 makes a hot account (fee revenue, settlement) whose totals are spread over
    that many rows so that concurrent writers do not queue on one lock. Such an account cannot
    have a balance rule: a limit needs one row to check it on.
    """
    kind = AccountKind(kind)
    rule = DEFAULT_RULES[kind] if rule is None else rule
    if rule.debits_must_not_exceed_credits and rule.credits_must_not_exceed_debits:
        raise errors.InvalidTransfer("an account has at most one balance rule")
    if not 1 <= shard_count <= SHARD_COUNT_MAX:
        raise errors.InvalidTransfer(f"shard_count must be between 1 and {SHARD_COUNT_MAX}")
    if shard_count > 1 and rule != NO_RULE:
        raise errors.InvalidTransfer("a sharded account cannot have a balance rule")
    if not name or len(name) > 200:
        raise errors.InvalidTransfer("an account needs a name of at most 200 characters")
    account = Account(
        kind=kind.value,
        owner_ref=owner_ref,
        name=name,
        currency="VND",
        debits_must_not_exceed_credits=rule.debits_must_not_exceed_credits,
        credits_must_not_exceed_debits=rule.credits_must_not_exceed_debits,
        shard_count=shard_count,
        created_at=now or dt.datetime.now(dt.UTC),
    )
    session.add(account)
    session.flush()
    session.add_all(
        AccountBalance(
            account_id=account.id,
            shard=shard,
            debits_posted=0,
            credits_posted=0,
            debits_pending=0,
            credits_pending=0,
            debits_must_not_exceed_credits=rule.debits_must_not_exceed_credits,
            credits_must_not_exceed_debits=rule.credits_must_not_exceed_debits,
            shard_count=shard_count,
            entry_count=0,
            head_hash=GENESIS_HASH,
        )
        for shard in range(shard_count)
    )
    session.flush()
    return account


def get_account(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise errors.AccountNotFound(account_id)
    return account


def find_account(session: Session, kind: AccountKind, owner_ref: str) -> Account | None:
    return session.scalar(
        select(Account).where(
            Account.kind == AccountKind(kind).value, Account.owner_ref == owner_ref
        )
    )
