"""What each KYC tier allows: the limits on money leaving a citizen's wallet, when a payment needs
a second factor (step-up), and raising the tier after an in-person check of the ID card.

Every operation that moves money out of a wallet (withdrawal codes, payment codes, merchant
payments) calls `check_outgoing` first, in the same transaction as the movement. The amounts
already used are read from the ledger itself, so nothing here can drift from what really moved:
posted transfers out of the wallet, plus reservations (withdrawal and payment codes) that were paid
out or are still open and unexpired. Released reservations (cancelled or expired) do not count,
and neither do reversals, which are corrections rather than the citizen's own spending.

Days and months are those of Vietnam (Asia/Ho_Chi_Minh): a limit resets at local midnight.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from kiosk.citizens.models import Citizen, KycTier
from kiosk.formatting import LOCAL_ZONE, vnd
from ledger.schema import OpenReservation, Phase, Transfer

# Who may verify a citizen in person: a post-office agent or a community team member, by id.
VERIFIER_PATTERN = re.compile(r"(agent|team):[1-9][0-9]{0,18}")


class LimitKind(enum.StrEnum):
    UNVERIFIED = "unverified"
    TRANSACTION = "transaction"
    DAILY = "daily"
    MONTHLY = "monthly"


class LimitExceeded(Exception):
    """The movement is over a limit. ``message`` says which one, in the citizen's language, and
    ``allowed_vnd`` is the largest amount that would pass now (0 when none would)."""

    def __init__(self, kind: LimitKind, message: str, allowed_vnd: int) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.allowed_vnd = allowed_vnd


class AlreadyVerified(Exception):
    """The citizen was verified before; nothing changed."""


@dataclass(frozen=True)
class OutgoingLimits:
    """The verified tier's limits, in đồng (the unverified tier may not send money at all)."""

    transaction_max_vnd: int
    daily_max_vnd: int
    monthly_max_vnd: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> OutgoingLimits:
        return cls(
            transaction_max_vnd=config["TRANSACTION_MAX_VND"],
            daily_max_vnd=config["DAILY_OUTGOING_MAX_VND"],
            monthly_max_vnd=config["MONTHLY_OUTGOING_MAX_VND"],
        )


@dataclass(frozen=True)
class OutgoingUsage:
    """What left the wallet since the start of the local day and of the local month, in đồng."""

    today_vnd: int
    this_month_vnd: int


def local_day_and_month_start(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants at which the local day and the local month containing ``now`` began."""
    local = now.astimezone(LOCAL_ZONE)
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = day_start.replace(day=1)
    return day_start.astimezone(dt.UTC), month_start.astimezone(dt.UTC)


def outgoing_usage(session: Session, wallet_account_id: int, now: dt.datetime) -> OutgoingUsage:
    """Sum the wallet's outgoing transfers of this local day and month in one query.

    The query reads only this wallet's debits (the index that starts with ``debit_account_id``)
    from the month's start; each reservation is checked against its resolution through the unique
    index on ``pending_id`` and against ``open_reservations`` by primary key.
    """
    day_start, month_start = local_day_and_month_start(now)
    resolution = aliased(Transfer)
    paid_out = exists().where(
        resolution.pending_id == Transfer.id, resolution.phase == Phase.POST_PENDING.value
    )
    # An expired reservation that the sweeper has not released yet is as good as released: it no
    # longer holds money (the ledger ignores it for the available balance), so it does not count.
    still_open = exists().where(
        OpenReservation.pending_id == Transfer.id,
        or_(OpenReservation.expires_at.is_(None), OpenReservation.expires_at > now),
    )
    counted = or_(
        and_(Transfer.phase == Phase.POSTED.value, Transfer.reverses_id.is_(None)),
        and_(Transfer.phase == Phase.PENDING.value, or_(paid_out, still_open)),
    )
    # What the wallet paid: the amount, and the fee when the transfer carries a fee leg.
    paid = Transfer.amount + func.coalesce(Transfer.fee_amount, 0)
    today = case((Transfer.created_at >= day_start, paid), else_=0)
    row = session.execute(
        select(
            func.coalesce(func.sum(today), 0),
            func.coalesce(func.sum(paid), 0),
        ).where(
            Transfer.debit_account_id == wallet_account_id,
            Transfer.created_at >= month_start,
            counted,
        )
    ).one()
    # PostgreSQL sums BIGINT into NUMERIC (a Decimal here); the amounts are whole đồng.
    return OutgoingUsage(today_vnd=int(row[0]), this_month_vnd=int(row[1]))


def check_outgoing(
    session: Session,
    citizen: Citizen,
    amount: int,
    now: dt.datetime,
    *,
    limits: OutgoingLimits | None = None,
) -> None:
    """Raise `LimitExceeded` unless ``citizen`` may move ``amount`` đồng out of their wallet now.

    ``limits`` defaults to the app's configuration. Call it in the same transaction as the
    movement, so that the movement and the figures checked here commit together.
    """
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError("amount must be a positive whole number of đồng")
    if KycTier(citizen.kyc_tier) is KycTier.UNVERIFIED:
        raise LimitExceeded(
            LimitKind.UNVERIFIED,
            _(
                "Tài khoản của bạn chưa được xác minh nên chưa rút tiền hoặc thanh toán được "
                "(vẫn nhận tiền bình thường). Hãy mang căn cước công dân đến bưu điện văn hóa xã "
                "để nhân viên xác minh."
            ),
            0,
        )
    if limits is None:
        limits = OutgoingLimits.from_config(current_app.config)
    usage = outgoing_usage(session, citizen.wallet_account_id, now)
    left_today = max(0, limits.daily_max_vnd - usage.today_vnd)
    left_this_month = max(0, limits.monthly_max_vnd - usage.this_month_vnd)
    allowed = min(limits.transaction_max_vnd, left_today, left_this_month)
    if amount <= allowed:
        return
    # Name the limit that binds: the one that leaves the least, the month before the day.
    if left_this_month <= min(left_today, limits.transaction_max_vnd):
        raise LimitExceeded(
            LimitKind.MONTHLY,
            _(
                "Vượt hạn mức %(limit)s mỗi tháng. Tháng này bạn đã dùng %(used)s; "
                "bạn chỉ còn được rút hoặc thanh toán %(allowed)s đến hết tháng.",
                limit=vnd(limits.monthly_max_vnd),
                used=vnd(usage.this_month_vnd),
                allowed=vnd(allowed),
            ),
            allowed,
        )
    if left_today <= limits.transaction_max_vnd:
        raise LimitExceeded(
            LimitKind.DAILY,
            _(
                "Vượt hạn mức %(limit)s mỗi ngày. Hôm nay bạn đã dùng %(used)s; "
                "bạn chỉ còn được rút hoặc thanh toán %(allowed)s trong hôm nay.",
                limit=vnd(limits.daily_max_vnd),
                used=vnd(usage.today_vnd),
                allowed=vnd(allowed),
            ),
            allowed,
        )
    raise LimitExceeded(
        LimitKind.TRANSACTION,
        _(
            "Mỗi lần chỉ được rút hoặc thanh toán tối đa %(limit)s. "
            "Hãy chia thành nhiều lần nhỏ hơn.",
            limit=vnd(limits.transaction_max_vnd),
        ),
        allowed,
    )


def needs_step_up(citizen: Citizen, amount: int, config: Mapping[str, Any]) -> bool:
    """True when moving ``amount`` đồng needs a fresh second factor (the citizen's TOTP code).

    ``citizen`` is part of the signature so that a per-tier threshold needs no caller changes.
    """
    threshold: int = config["STEP_UP_ABOVE_VND"]
    return amount > threshold


def verify_in_person(
    session: Session, citizen: Citizen, verified_by: str, now: dt.datetime
) -> None:
    """Raise ``citizen`` to the verified tier: ``verified_by`` ("agent:12", "team:7") saw the ID
    card and the person, and checked them against the record.

    Raises `AlreadyVerified` when there is nothing to raise. Flushes, never commits.
    """
    if not VERIFIER_PATTERN.fullmatch(verified_by):
        raise ValueError(f"verified_by must look like 'agent:12' or 'team:7', not {verified_by!r}")
    if KycTier(citizen.kyc_tier) is KycTier.VERIFIED:
        raise AlreadyVerified
    citizen.kyc_tier = KycTier.VERIFIED
    citizen.verified_at = now
    citizen.verified_by = verified_by
    session.flush()
