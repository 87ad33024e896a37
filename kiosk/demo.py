"""Demo data for a first run: a commune post office's ledger with a few villagers' wallets.

Safe to load twice: accounts are found by owner and transfers carry fixed idempotency keys.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

import ledger
from ledger import AccountKind, Post, Reserve

DEMO_CITIZENS = [
    ("demo:citizen:1", "Hoàng Thị Mai", 1_500_000),
    ("demo:citizen:2", "Nông Văn Bình", 800_000),
    ("demo:citizen:3", "Lương Thị Hoa", 2_000_000),
]
OPENING_FLOAT_VND = 20_000_000
WITHDRAWAL_CODE_TTL_S = 15 * 60


def _account(
    session: Session,
    kind: AccountKind,
    owner_ref: str,
    name: str,
    *,
    shard_count: int = 1,
) -> int:
    existing = ledger.find_account(session, kind, owner_ref)
    if existing is not None:
        return existing.id
    return ledger.open_account(
        session, kind=kind, name=name, owner_ref=owner_ref, shard_count=shard_count
    ).id


def load(session: Session) -> None:
    """Create the demo accounts and money movements; flushes, the caller commits."""
    treasury = _account(session, AccountKind.SETTLEMENT, "demo:settlement", "Kho bạc huyện (demo)")
    drawer = _account(
        session, AccountKind.AGENT_DRAWER, "demo:drawer:1", "Két tiền — Bưu điện văn hóa xã (demo)"
    )
    _account(session, AccountKind.FEE_REVENUE, "demo:fees", "Doanh thu phí", shard_count=8)
    # Withdrawal codes reserve money towards a clearing account; the post office that pays the
    # code out is only known when the code is scanned.
    clearing = _account(
        session, AccountKind.SETTLEMENT, "demo:withdrawal-clearing", "Tài khoản trung gian rút tiền"
    )
    ledger.post_transfer(
        session, Post("demo:opening-float", drawer, treasury, OPENING_FLOAT_VND, "opening_float")
    )
    for owner_ref, name, deposit in DEMO_CITIZENS:
        wallet = _account(session, AccountKind.CITIZEN_WALLET, owner_ref, f"Ví — {name}")
        # A cash-in at the counter: cash into the drawer, money into the wallet.
        ledger.post_transfer(
            session, Post(f"demo:cash-in:{owner_ref}", drawer, wallet, deposit, "cash_in")
        )
    first_wallet = ledger.find_account(session, AccountKind.CITIZEN_WALLET, DEMO_CITIZENS[0][0])
    assert first_wallet is not None
    ledger.post_transfer(
        session,
        Reserve(
            "demo:withdrawal-code:1",
            first_wallet.id,
            clearing,
            500_000,
            "withdrawal",
            WITHDRAWAL_CODE_TTL_S,
        ),
    )
