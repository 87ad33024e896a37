"""Request and response bodies of /api/v1, as pydantic 2 models.

The same models validate what comes in and shape what goes out, and their JSON Schema (draft
2020-12, which OpenAPI 3.1 uses as is) is what `kiosk.api.openapi` puts in the document, so the
document cannot drift from the code. Amounts are integer đồng, named ``*_vnd``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

AMOUNT_MAX_VND = 1_000_000_000_000
SCANNED_TEXT_MAX_CHARS = 400
PHONE_MAX_CHARS = 20
STATEMENT_LINES_MAX = 100


class Strict(BaseModel):
    """Unknown fields are refused: a misspelt field must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, with a stable machine-readable ``code``."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["https://softatm.vn/problems/code-expired"])
    title: str
    status: int
    detail: str
    code: str = Field(examples=["code-expired"])


# --- Codes at the counter -----------------------------------------------------------------------


class VerifyCodeRequest(Strict):
    """Exactly one way to present a code: the scanned QR text; a phone number and the numeric
    fallback digits; or a welfare voucher's number and the ID card's last 4 digits."""

    token: str | None = Field(default=None, min_length=1, max_length=SCANNED_TEXT_MAX_CHARS)
    phone: str | None = Field(default=None, min_length=1, max_length=PHONE_MAX_CHARS)
    fallback_digits: str | None = Field(default=None, min_length=1, max_length=20)
    voucher_number: str | None = Field(default=None, min_length=1, max_length=20)
    last4: str | None = Field(default=None, min_length=1, max_length=8)

    @model_validator(mode="after")
    def one_way(self) -> VerifyCodeRequest:
        ways = [
            self.token is not None,
            self.phone is not None or self.fallback_digits is not None,
            self.voucher_number is not None or self.last4 is not None,
        ]
        if sum(ways) != 1:
            raise ValueError(
                "give token, or phone and fallback_digits, or voucher_number and last4"
            )
        if ways[1] and (self.phone is None or self.fallback_digits is None):
            raise ValueError("phone and fallback_digits go together")
        if ways[2] and (self.voucher_number is None or self.last4 is None):
            raise ValueError("voucher_number and last4 go together")
        return self


class CodeInspection(BaseModel):
    ticket: str = Field(description="Pass to /redemptions; valid 10 minutes, for this credential.")
    code_id: uuid.UUID
    kind: Literal["withdrawal", "payment", "welfare_voucher"]
    amount_vnd: int
    fee_vnd: int
    holder_name: str
    masked_citizen_id: str
    expires_at: dt.datetime
    needs_approval: bool
    approved: bool
    biller_name: str | None
    bill_reference: str | None


class RedeemRequest(Strict):
    ticket: str = Field(min_length=1, max_length=400)
    last4: str = Field(min_length=1, max_length=8, description="Typed from the ID card shown.")
    face_matched: bool = Field(description="The agent confirms the face matches the card.")
    agent_totp: str | None = Field(
        default=None,
        min_length=1,
        max_length=10,
        description="The agent's current TOTP code: needed for payouts above the approval limit.",
    )


class ApprovalRequest(Strict):
    ticket: str = Field(min_length=1, max_length=400)


class ApprovalAnswer(BaseModel):
    needed: bool
    approval_id: uuid.UUID | None
    status: str | None


class CounterOperationOut(BaseModel):
    operation_id: uuid.UUID
    kind: Literal["payout", "bill_collection", "cash_in"]
    amount_vnd: int
    fee_vnd: int
    commission_vnd: int
    code_id: uuid.UUID | None
    citizen_id: int | None
    transfer_id: uuid.UUID
    created_at: dt.datetime
    cash_in_drawer_vnd: int


class CashInRequest(Strict):
    """The citizen by id, or by phone number (exactly one)."""

    citizen_id: int | None = Field(default=None, ge=1, le=2**53)
    phone: str | None = Field(default=None, min_length=1, max_length=PHONE_MAX_CHARS)
    amount_vnd: int = Field(gt=0, le=AMOUNT_MAX_VND)

    @model_validator(mode="after")
    def one_citizen(self) -> CashInRequest:
        if (self.citizen_id is None) == (self.phone is None):
            raise ValueError("give citizen_id or phone, not both")
        return self


# --- Codes made on a citizen's behalf -----------------------------------------------------------


class OnBehalf(Strict):
    phone: str = Field(min_length=1, max_length=PHONE_MAX_CHARS)
    pin: str = Field(min_length=1, max_length=12, description="The citizen's PIN, typed by them.")
    amount_vnd: int = Field(gt=0, le=AMOUNT_MAX_VND)
    last4: str | None = Field(
        default=None,
        min_length=1,
        max_length=8,
        description="Agent credentials only: the last 4 digits of the ID card shown.",
    )
    face_matched: bool = Field(
        default=False, description="Agent credentials only: the face matches the card."
    )


class CreateWithdrawalCodeRequest(OnBehalf):
    pass


class CreatePaymentCodeRequest(OnBehalf):
    biller_id: int = Field(ge=1, le=2**53)
    bill_reference: str = Field(min_length=1, max_length=40)


class IssuedCodeOut(BaseModel):
    code_id: uuid.UUID
    kind: Literal["withdrawal", "payment"]
    citizen_id: int
    amount_vnd: int
    expires_at: dt.datetime
    token: str | None = Field(
        description="The signed code to show as a QR; null on a replay once the code is closed."
    )
    fallback_digits: str | None


# --- Wallets ------------------------------------------------------------------------------------


class BalanceOut(BaseModel):
    citizen_id: int
    posted_vnd: int
    reserved_vnd: int
    available_vnd: int
    as_of: dt.datetime


class StatementQuery(Strict):
    before: int | None = Field(default=None, ge=1, le=2**53)
    limit: int = Field(default=50, ge=1, le=STATEMENT_LINES_MAX)


class StatementLineOut(BaseModel):
    transfer_id: uuid.UUID
    seq: int
    created_at: dt.datetime
    phase: str
    code: str
    amount_vnd: int = Field(description="Positive money in, negative money out.")
    moves_posted: bool
    balance_after_vnd: int


class StatementOut(BaseModel):
    citizen_id: int
    lines: list[StatementLineOut]
    next_before: int | None


# --- Welfare and indicators ---------------------------------------------------------------------


class StatusCount(BaseModel):
    status: str
    count: int
    amount_vnd: int


class ReconciliationCheck(BaseModel):
    label: str
    rows_vnd: int
    ledger_vnd: int
    ok: bool


class ReconciliationOut(BaseModel):
    ok: bool
    cycle_total_vnd: int
    rows_add_up: bool
    checks: list[ReconciliationCheck]
    fund_in_vnd: int
    fund_paid_out_vnd: int
    fund_held_vnd: int
    fund_available_vnd: int
    fund_expected_vnd: int


class WelfareCycleOut(BaseModel):
    cycle_id: int
    programme_id: int
    programme_name: str
    commune_code: str
    label: str
    status: str
    row_count: int
    total_amount_vnd: int
    rows_by_status: list[StatusCount]
    reconciliation: ReconciliationOut


class IndicatorsQuery(Strict):
    period: str | None = Field(
        default=None,
        max_length=20,
        description='"2026-11" (month), "2026-Q4", "2026-ytd" or "2026"; default: this month.',
    )


class PeriodOut(BaseModel):
    kind: str
    label: str
    start: dt.date
    end: dt.date


class FigureOut(BaseModel):
    key: str
    numerator: int
    denominator: int | None
    rate: float | None
    per_1000: float | None
    interval: list[float] | None
    small_denominator: bool
    missing: str | None
    value: float | None
    note: str | None


class IndicatorsOut(BaseModel):
    commune_code: str
    commune_name: str
    period: PeriodOut
    figures: list[FigureOut]


class OpenApiDocument(RootModel[dict[str, Any]]):
    """An OpenAPI 3.1 document."""
