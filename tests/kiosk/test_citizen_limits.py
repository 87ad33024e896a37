"""Limits on money leaving a wallet, per KYC tier, per transaction, per local day and per
calendar month, computed from real ledger transfers; the step-up rule; raising the tier.

The cases use small limits so that every figure can be checked by hand:
at most 1,000,000 đồng a time, 2,000,000 a day and 5,000,000 a month (in Vietnam, UTC+7).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy.orm import Session
from test_citizen_helpers import db_session, registration_form

import ledger
from kiosk.citizens import limits, registration
from kiosk.citizens.limits import LimitExceeded, LimitKind, OutgoingLimits
from kiosk.citizens.models import Citizen, KycTier
from ledger import AccountKind, Post, PostPending, Reserve, Reverse, VoidPending

SMALL = OutgoingLimits(
    transaction_max_vnd=1_000_000, daily_max_vnd=2_000_000, monthly_max_vnd=5_000_000
)
# 10:00 on Thursday 5 March 2026 in Vietnam.
NOW = dt.datetime(2026, 3, 5, 3, 0, tzinfo=dt.UTC)
TODAY_MORNING = dt.datetime(2026, 3, 5, 1, 0, tzinfo=dt.UTC)  # 08:00 local
LAST_MINUTE_OF_YESTERDAY = dt.datetime(2026, 3, 4, 16, 59, tzinfo=dt.UTC)  # 23:59 local, 4 March
FIRST_MINUTE_OF_TODAY = dt.datetime(2026, 3, 4, 17, 0, tzinfo=dt.UTC)  # 00:00 local, 5 March
LAST_MINUTE_OF_FEBRUARY = dt.datetime(2026, 2, 28, 16, 59, tzinfo=dt.UTC)  # 23:59 local, 28 Feb
FIRST_MINUTE_OF_MARCH = dt.datetime(2026, 2, 28, 17, 0, tzinfo=dt.UTC)  # 00:00 local, 1 March


@dataclass
class Wallet:
    """A verified citizen with 50,000,000 đồng in the wallet, and somewhere to send it."""

    session: Session
    citizen: Citizen
    funding: int
    shop: int

    def spend(self, amount: int, at: dt.datetime) -> uuid.UUID:
        return ledger.post_transfer(
            self.session,
            Post(_key(), self.citizen.wallet_account_id, self.shop, amount, "merchant_payment"),
            now=at,
        ).id

    def reserve(self, amount: int, at: dt.datetime, timeout_s: int = 900) -> uuid.UUID:
        return ledger.post_transfer(
            self.session,
            Reserve(
                _key(), self.citizen.wallet_account_id, self.shop, amount, "withdrawal", timeout_s
            ),
            now=at,
        ).id

    def receive(self, amount: int, at: dt.datetime) -> uuid.UUID:
        return ledger.post_transfer(
            self.session,
            Post(_key(), self.funding, self.citizen.wallet_account_id, amount, "cash_in"),
            now=at,
        ).id

    def check(self, amount: int, now: dt.datetime = NOW) -> None:
        limits.check_outgoing(self.session, self.citizen, amount, now, limits=SMALL)

    def refused(self, amount: int, now: dt.datetime = NOW) -> LimitExceeded:
        with pytest.raises(LimitExceeded) as refused:
            self.check(amount, now)
        return refused.value


def _key() -> str:
    return f"test:{uuid.uuid4()}"


def _citizen(session: Session, *, verified: bool) -> Citizen:
    citizen = registration.register_on_behalf(
        session, registration_form(), "team:7", dt.datetime(2026, 1, 10, tzinfo=dt.UTC)
    )
    if verified:
        limits.verify_in_person(
            session, citizen, "agent:12", dt.datetime(2026, 1, 11, tzinfo=dt.UTC)
        )
    return citizen


@pytest.fixture
def session(web_app: Flask) -> Iterator[Session]:
    """A session in a request context (messages are translated); rolled back afterwards."""
    with web_app.test_request_context(), db_session(web_app) as session:
        yield session
        session.rollback()


@pytest.fixture
def wallet(session: Session) -> Wallet:
    funding = ledger.open_account(
        session, kind=AccountKind.FUNDING, name="test", owner_ref=_key()
    ).id
    shop = ledger.open_account(session, kind=AccountKind.MERCHANT, name="test", owner_ref=_key()).id
    wallet = Wallet(session, _citizen(session, verified=True), funding, shop)
    wallet.receive(50_000_000, dt.datetime(2026, 1, 20, tzinfo=dt.UTC))
    return wallet


def test_an_unverified_account_cannot_send_money_at_all(session: Session) -> None:
    citizen = _citizen(session, verified=False)
    with pytest.raises(LimitExceeded) as refused:
        limits.check_outgoing(session, citizen, 10_000, NOW, limits=SMALL)
    assert refused.value.kind is LimitKind.UNVERIFIED
    assert refused.value.allowed_vnd == 0
    assert "chưa được xác minh" in refused.value.message
    assert "mang căn cước công dân đến bưu điện văn hóa xã" in refused.value.message


def test_one_transaction_at_most_the_transaction_limit(wallet: Wallet) -> None:
    wallet.check(1_000_000)
    refused = wallet.refused(1_000_001)
    assert refused.kind is LimitKind.TRANSACTION
    assert refused.allowed_vnd == 1_000_000
    assert "Mỗi lần chỉ được rút hoặc thanh toán tối đa 1.000.000\u00a0₫." in refused.message


def test_the_daily_limit_counts_todays_payments(wallet: Wallet) -> None:
    wallet.spend(1_000_000, TODAY_MORNING)
    wallet.spend(500_000, TODAY_MORNING + dt.timedelta(minutes=5))
    # 2,000,000 - 1,500,000 = 500,000 left today.
    wallet.check(500_000)
    refused = wallet.refused(600_000)
    assert refused.kind is LimitKind.DAILY
    assert refused.allowed_vnd == 500_000
    assert refused.message == (
        "Vượt hạn mức 2.000.000\u00a0₫ mỗi ngày. Hôm nay bạn đã dùng 1.500.000\u00a0₫; "
        "bạn chỉ còn được rút hoặc thanh toán 500.000\u00a0₫ trong hôm nay."
    )


def test_the_day_starts_at_midnight_in_vietnam(wallet: Wallet) -> None:
    wallet.spend(1_000_000, LAST_MINUTE_OF_YESTERDAY)  # yesterday in Vietnam: not today's
    wallet.spend(400_000, FIRST_MINUTE_OF_TODAY)  # 00:00 today in Vietnam (17:00 UTC)
    wallet.check(1_000_000)  # 400,000 used today, 1,600,000 left, capped at 1,000,000 a time
    wallet.spend(1_000_000, TODAY_MORNING)
    refused = wallet.refused(600_001)
    assert refused.kind is LimitKind.DAILY
    assert refused.allowed_vnd == 600_000


def test_incoming_money_does_not_count(wallet: Wallet) -> None:
    wallet.receive(3_000_000, TODAY_MORNING)
    wallet.spend(500_000, TODAY_MORNING)
    # Only the 500,000 sent counts: 1,500,000 left today, so the per-transaction cap binds.
    assert wallet.refused(1_000_001).kind is LimitKind.TRANSACTION
    wallet.check(1_000_000)


def test_the_monthly_limit_counts_the_calendar_month(wallet: Wallet) -> None:
    wallet.spend(1_000_000, LAST_MINUTE_OF_FEBRUARY)  # February in Vietnam: not counted
    wallet.spend(1_000_000, FIRST_MINUTE_OF_MARCH)
    for day in (2, 3, 4):
        wallet.spend(1_000_000, dt.datetime(2026, 3, day, 2, 0, tzinfo=dt.UTC))
        wallet.spend(200_000, dt.datetime(2026, 3, day, 3, 0, tzinfo=dt.UTC))
    # March: 1,000,000 + 3 * 1,200,000 = 4,600,000 used; 400,000 left this month.
    wallet.check(400_000)
    refused = wallet.refused(400_001)
    assert refused.kind is LimitKind.MONTHLY
    assert refused.allowed_vnd == 400_000
    assert refused.message == (
        "Vượt hạn mức 5.000.000\u00a0₫ mỗi tháng. Tháng này bạn đã dùng 4.600.000\u00a0₫; "
        "bạn chỉ còn được rút hoặc thanh toán 400.000\u00a0₫ đến hết tháng."
    )
    # A new month starts again from nothing (1 April 00:00 in Vietnam).
    april = dt.datetime(2026, 3, 31, 17, 0, tzinfo=dt.UTC)
    limits.check_outgoing(wallet.session, wallet.citizen, 1_000_000, april, limits=SMALL)


def test_the_month_wins_when_it_leaves_less_than_the_day(wallet: Wallet) -> None:
    for day in (1, 2, 3, 4):
        wallet.spend(1_000_000, dt.datetime(2026, 3, day, 2, 0, tzinfo=dt.UTC))
        wallet.spend(200_000, dt.datetime(2026, 3, day, 3, 0, tzinfo=dt.UTC))
    wallet.spend(100_000, TODAY_MORNING)
    # Month: 4,900,000 used, 100,000 left; day: 100,000 used, 1,900,000 left.
    refused = wallet.refused(100_001)
    assert refused.kind is LimitKind.MONTHLY
    assert refused.allowed_vnd == 100_000


def test_reservations_count_while_open_or_paid_out_but_not_once_released(
    wallet: Wallet,
) -> None:
    hour_ago = NOW - dt.timedelta(hours=1)
    open_code = wallet.reserve(300_000, NOW - dt.timedelta(minutes=5))  # open: counts
    paid = wallet.reserve(400_000, hour_ago, timeout_s=86_400)  # paid out: counts
    ledger.post_transfer(
        wallet.session, PostPending(_key(), paid), now=hour_ago + dt.timedelta(minutes=20)
    )
    cancelled = wallet.reserve(500_000, hour_ago)  # cancelled: released
    ledger.post_transfer(
        wallet.session, VoidPending(_key(), cancelled), now=hour_ago + dt.timedelta(minutes=1)
    )
    wallet.reserve(600_000, hour_ago, timeout_s=600)  # expired, not swept yet: released
    assert open_code

    # Used today: 300,000 + 400,000 = 700,000; 1,300,000 left, capped at 1,000,000 a time.
    wallet.spend(1_000_000, TODAY_MORNING)
    # Now 1,700,000 used: 300,000 left.
    wallet.check(300_000)
    refused = wallet.refused(300_001)
    assert refused.kind is LimitKind.DAILY
    assert refused.allowed_vnd == 300_000


def test_a_paid_out_reservation_counts_on_the_day_it_was_made(wallet: Wallet) -> None:
    pending = wallet.reserve(900_000, LAST_MINUTE_OF_YESTERDAY, timeout_s=86_400)
    paid_at = FIRST_MINUTE_OF_TODAY + dt.timedelta(minutes=10)
    ledger.post_transfer(wallet.session, PostPending(_key(), pending), now=paid_at)
    usage = limits.outgoing_usage(wallet.session, wallet.citizen.wallet_account_id, NOW)
    assert usage == limits.OutgoingUsage(today_vnd=0, this_month_vnd=900_000)


def test_reversals_are_corrections_not_spending(wallet: Wallet) -> None:
    mistaken_deposit = wallet.receive(1_500_000, TODAY_MORNING)
    ledger.post_transfer(wallet.session, Reverse(_key(), mistaken_deposit), now=TODAY_MORNING)
    usage = limits.outgoing_usage(wallet.session, wallet.citizen.wallet_account_id, NOW)
    assert usage == limits.OutgoingUsage(today_vnd=0, this_month_vnd=0)


def test_a_fee_leg_counts_with_its_payment(wallet: Wallet) -> None:
    # A payment whose fee is a leg of its own transfer: the wallet pays both, so both count.
    fees = ledger.open_account(
        wallet.session, kind=AccountKind.FEE_REVENUE, name="test", owner_ref=_key()
    ).id
    payment = Post(
        _key(),
        wallet.citizen.wallet_account_id,
        wallet.shop,
        400_000,
        "bill_payment",
        fee_account_id=fees,
        fee_amount=3_300,
    )
    ledger.post_transfer(wallet.session, payment, now=TODAY_MORNING)
    usage = limits.outgoing_usage(wallet.session, wallet.citizen.wallet_account_id, NOW)
    assert usage == limits.OutgoingUsage(today_vnd=403_300, this_month_vnd=403_300)


def test_the_configured_limits_apply_by_default(web_app: Flask, wallet: Wallet) -> None:
    assert web_app.config["TRANSACTION_MAX_VND"] == 20_000_000
    limits.check_outgoing(wallet.session, wallet.citizen, 20_000_000, NOW)
    with pytest.raises(LimitExceeded) as refused:
        limits.check_outgoing(wallet.session, wallet.citizen, 20_000_001, NOW)
    assert refused.value.kind is LimitKind.TRANSACTION
    assert "20.000.000\u00a0₫" in refused.value.message


@pytest.mark.parametrize("amount", [0, -1, 1.5, True])
def test_an_amount_must_be_whole_and_positive(wallet: Wallet, amount: object) -> None:
    with pytest.raises(ValueError, match="positive whole number"):
        wallet.check(amount)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "needed"), [(10_000_000, False), (10_000_001, True), (500_000, False)]
)
def test_step_up_above_the_configured_amount(
    web_app: Flask, wallet: Wallet, amount: int, needed: bool
) -> None:
    assert limits.needs_step_up(wallet.citizen, amount, web_app.config) is needed


def test_verifying_in_person_raises_the_tier_once(session: Session) -> None:
    citizen = _citizen(session, verified=False)
    at = dt.datetime(2026, 3, 5, 2, 0, tzinfo=dt.UTC)
    limits.verify_in_person(session, citizen, "agent:12", at)
    assert citizen.kyc_tier == KycTier.VERIFIED
    assert (citizen.verified_at, citizen.verified_by) == (at, "agent:12")
    with pytest.raises(limits.AlreadyVerified):
        limits.verify_in_person(session, citizen, "team:3", at)
    assert citizen.verified_by == "agent:12"


@pytest.mark.parametrize("verified_by", ["", "agent", "agent:x", "self", "agent:12;drop"])
def test_only_an_agent_or_team_member_verifies(session: Session, verified_by: str) -> None:
    citizen = _citizen(session, verified=False)
    with pytest.raises(ValueError, match="verified_by"):
        limits.verify_in_person(session, citizen, verified_by, NOW)
    assert citizen.kyc_tier == KycTier.UNVERIFIED
