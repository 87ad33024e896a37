"""What a ledger transfer is, in the citizen's words: kinds of transaction and their labels.

The ledger names each transfer with a short `code` chosen by the operation that made it
("cash_in", "withdrawal", ...). This module owns the mapping from those codes to the kinds a
citizen can filter their history by, and the Vietnamese label of each. A resolution of a
reservation (posting or voiding it) takes the kind of the reservation it resolves, whatever its
own code, so a withdrawal shows as "Rút tiền" from the hold to the payout.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext  # type: ignore[import-untyped]


@dataclass(frozen=True)
class Kind:
    key: str
    label: str
    codes: frozenset[str]


# In the order the history filter lists them.
KINDS: tuple[Kind, ...] = (
    Kind("cash_in", lazy_gettext("Nạp tiền"), frozenset({"cash_in"})),
    Kind("withdrawal", lazy_gettext("Rút tiền"), frozenset({"withdrawal"})),
    Kind("payment", lazy_gettext("Thanh toán ở chợ, cửa hàng"), frozenset({"merchant_payment"})),
    Kind("bill_payment", lazy_gettext("Trả tiền hóa đơn"), frozenset({"bill_payment"})),
    # Disbursements post "welfare_payment" (kiosk.welfare.cycles). The adoption roll-up reads
    # these same codes (kiosk.adoption.rollup.WELFARE_CODES), "welfare" included.
    Kind("welfare", lazy_gettext("Nhận trợ cấp"), frozenset({"welfare", "welfare_payment"})),
    Kind("fee", lazy_gettext("Phí dịch vụ"), frozenset({"fee"})),
    Kind("reversal", lazy_gettext("Hoàn tiền, sửa giao dịch"), frozenset({"reversal"})),
)
KINDS_BY_KEY: dict[str, Kind] = {kind.key: kind for kind in KINDS}
KIND_OF_CODE: dict[str, Kind] = {code: kind for kind in KINDS for code in kind.codes}
OTHER_KIND_LABEL = lazy_gettext("Giao dịch khác")

# Codes of the transfers that release a reservation, and why it was released.
EXPIRY_CODE = "expired"
RELEASE_REASONS: dict[str, str] = {
    EXPIRY_CODE: lazy_gettext("Mã đã hết hạn, tiền giữ được trả lại vào ví."),
    "void_pending": lazy_gettext("Mã đã được hủy, tiền giữ được trả lại vào ví."),
    "cancelled": lazy_gettext("Mã đã được hủy, tiền giữ được trả lại vào ví."),
}
OTHER_RELEASE_REASON = lazy_gettext("Tiền giữ được trả lại vào ví.")

# An issued code's kind (kiosk.payments.models.CodeKind values).
CODE_KIND_LABELS: dict[str, str] = {
    "withdrawal": lazy_gettext("Mã rút tiền"),
    "payment": lazy_gettext("Mã thanh toán"),
}


def kind_label(code: str) -> str:
    kind = KIND_OF_CODE.get(code)
    label: str = OTHER_KIND_LABEL if kind is None else kind.label
    return label


def release_reason(code: str) -> str:
    reason: str = RELEASE_REASONS.get(code, OTHER_RELEASE_REASON)
    return reason
