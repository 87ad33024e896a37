"""The wallet's front page in numbers: balances, the codes holding money, and what the KYC tier
allows, in one plain sentence."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.orm import Session

import ledger
from kiosk.citizens.models import Citizen, KycTier
from kiosk.formatting import vnd
from kiosk.payments.models import CodeStatus, IssuedCode
from kiosk.wallet.kinds import CODE_KIND_LABELS

OPEN_CODES_SHOWN_MAX = 20


@dataclass(frozen=True)
class OpenCode:
    id: uuid.UUID
    kind: str
    amount: int
    expires_at: dt.datetime
    minutes_left: int

    @property
    def kind_label(self) -> str:
        label: str = CODE_KIND_LABELS.get(self.kind, self.kind)
        return label


@dataclass(frozen=True)
class WalletSummary:
    balance: ledger.Balance
    # The codes still usable, soonest to expire first (at most OPEN_CODES_SHOWN_MAX).
    open_codes: list[OpenCode]
    as_of: dt.datetime


@dataclass(frozen=True)
class OutgoingLimits:
    transaction_max_vnd: int
    daily_max_vnd: int
    monthly_max_vnd: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> OutgoingLimits:
        return cls(
            transaction_max_vnd=int(config["TRANSACTION_MAX_VND"]),
            daily_max_vnd=int(config["DAILY_OUTGOING_MAX_VND"]),
            monthly_max_vnd=int(config["MONTHLY_OUTGOING_MAX_VND"]),
        )


def wallet_summary(session: Session, citizen: Citizen, *, now: dt.datetime) -> WalletSummary:
    balance = ledger.balance(session, citizen.wallet_account_id, now=now)
    rows = session.scalars(
        select(IssuedCode)
        .where(
            IssuedCode.citizen_id == citizen.id,
            IssuedCode.status == CodeStatus.OPEN.value,
            IssuedCode.expires_at > now,
        )
        .order_by(IssuedCode.expires_at, IssuedCode.id)
        .limit(OPEN_CODES_SHOWN_MAX)
    )
    codes = [
        OpenCode(
            id=code.id,
            kind=code.kind,
            amount=code.amount,
            expires_at=code.expires_at,
            minutes_left=max(1, math.ceil((code.expires_at - now).total_seconds() / 60)),
        )
        for code in rows
    ]
    return WalletSummary(balance=balance, open_codes=codes, as_of=now)


def kyc_description(tier: int, limits: OutgoingLimits) -> str:
    """What the citizen's account may do, in one plain sentence (the tier's rules: PRODUCT.md)."""
    if tier >= KycTier.VERIFIED:
        text: str = gettext(
            "Tài khoản đã xác minh: bạn được nhận tiền, rút tiền mặt ở bưu điện văn hóa xã "
            "và thanh toán, mỗi lần đến %(per_transaction)s, mỗi ngày đến %(per_day)s, "
            "mỗi tháng đến %(per_month)s.",
            per_transaction=vnd(limits.transaction_max_vnd),
            per_day=vnd(limits.daily_max_vnd),
            per_month=vnd(limits.monthly_max_vnd),
        )
        return text
    text = gettext(
        "Tài khoản chưa xác minh: bạn nhận được tiền vào ví nhưng chưa rút tiền mặt hay "
        "thanh toán được; hãy mang căn cước công dân đến bưu điện văn hóa xã để được xác minh."
    )
    return text
