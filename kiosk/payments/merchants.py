"""Market stalls: registering one, its static VietQR, finding it from a scan or a typed code,
and paying it from a citizen's wallet.

A stall is a `Merchant` row and a MERCHANT ledger account of its own, owned by the citizen who
registered it: money paid to the stall stays apart from the owner's wallet, and what the stall
received is that account's statement. Any signed-in citizen may register a stall (receiving money
needs no verified identity); paying one is an outgoing payment, so it passes the same PIN throttle
and tier limits as a withdrawal.

The stall's QR is a static VietQR payload whose beneficiary is this system's acquirer BIN and,
as the account number, the stall code; a scanned payload is accepted only when both match one of
our stalls. A payment posts one ledger transfer whose idempotency key comes from the confirm form,
so a double tap or a resubmitted form pays once.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _  # type: ignore[import-untyped]
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import ledger
from kiosk import metrics, vietqr
from kiosk.auth import throttles
from kiosk.citizens import credentials, limits
from kiosk.citizens.models import Citizen
from kiosk.codes import photo
from kiosk.formatting import local_time
from kiosk.payments import codes
from kiosk.payments.models import Merchant
from kiosk.places.models import Commune
from ledger import AccountKind

# No 0/O and 1/I: a code read aloud or copied from a smudged print cannot be mistaken.
# 32 symbols, 8 characters: 2**40 codes, so a random one almost never collides.
STALL_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
STALL_CODE_LENGTH_CHARS = 8
STALL_CODE_ATTEMPTS_MAX = 8
STALL_NAME_LENGTH_MIN_CHARS = 2
STALL_NAME_LENGTH_MAX_CHARS = 60
STALLS_PER_CITIZEN_MAX = 10
STALL_PAYMENTS_SHOWN_MAX = 20
MERCHANT_PAYMENT_CODE = "merchant_payment"
MERCHANT_ACCOUNT_OWNER_PREFIX = "merchant:"
PAYMENT_KEY_PREFIX = "merchant:"
# The confirm form's key: secrets.token_urlsafe(PAYMENT_KEY_BYTES) is 22 URL-safe characters.
PAYMENT_KEY_BYTES = 16
PAYMENT_KEY_LENGTH_MIN_CHARS = 16
PAYMENT_KEY_LENGTH_MAX_CHARS = 64
# The printed QR: the codec's 8 px modules enlarged by whole pixels (no blurred edge), about
# 1,000 px wide, sharp on an A6 card or an A4 sheet at print resolution.
PRINT_QR_SCALE = 3
# Refusals after which the confirm form needs a new idempotency key to be submitted again.
FRESH_KEY_REFUSALS = frozenset({"form_expired", "form_already_used"})

_PAYMENT_KEY = re.compile(r"[A-Za-z0-9_-]+")
# Letters (any, as long as they fold to ASCII), digits, spaces and a little punctuation.
_STALL_NAME_PUNCTUATION = frozenset(" -.,&'()/+")


class MerchantRefused(Exception):
    """A stall cannot be registered, found or paid; `message` is for the citizen, translated."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Stall:
    """A stall as the pages show it: the record and its commune."""

    merchant: Merchant
    commune: Commune


@dataclass(frozen=True)
class StallToPay:
    """A stall found from a scan or a typed code, and the amount a dynamic QR fixes (if any).

    `payload` is the scanned text, carried to the confirm form so that the fixed amount is read
    from the QR again rather than from a form field the browser could change.
    """

    stall: Stall
    amount: int | None
    payload: str | None


@dataclass(frozen=True)
class StallPayment:
    """One payment to a stall, for the payer's receipt and the owner's list."""

    transfer_id: uuid.UUID
    amount: int
    created_at: dt.datetime
    stall: Stall

    @property
    def reference(self) -> str:
        return payment_reference(self.transfer_id)


@dataclass(frozen=True)
class ReceivedPayment:
    transfer_id: uuid.UUID
    amount: int
    created_at: dt.datetime

    @property
    def reference(self) -> str:
        return payment_reference(self.transfer_id)


@dataclass(frozen=True)
class StallSummary:
    """What the owner's page shows of one stall."""

    stall: Stall
    received: int
    payments: list[ReceivedPayment]


def payment_reference(transfer_id: uuid.UUID) -> str:
    """The short reference on the payer's receipt and in the owner's list, to match them up."""
    return transfer_id.hex[-8:].upper()


# Names and codes -------------------------------------------------------------------------------


def normalise_stall_name(raw: str) -> str:
    """A stall name as typed, tidied: NFC, whitespace collapsed; refused when it cannot be used."""
    name = " ".join(unicodedata.normalize("NFC", raw).split())
    if not STALL_NAME_LENGTH_MIN_CHARS <= len(name) <= STALL_NAME_LENGTH_MAX_CHARS:
        raise MerchantRefused(
            "stall_name_length",
            _(
                "Tên quầy hàng dài từ %(min)d đến %(max)d ký tự.",
                min=STALL_NAME_LENGTH_MIN_CHARS,
                max=STALL_NAME_LENGTH_MAX_CHARS,
            ),
        )
    folded = vietqr.fold_to_ascii(name)
    if not any(char.isalnum() for char in folded) or not all(
        (char.isascii() and char.isalnum()) or char in _STALL_NAME_PUNCTUATION for char in folded
    ):
        raise MerchantRefused(
            "stall_name_characters",
            _("Tên quầy hàng chỉ gồm chữ cái, chữ số, dấu cách và các dấu - . , & ' ( ) / +"),
        )
    return name


def normalise_stall_code(raw: str) -> str:
    """A typed stall code: case, spaces and dashes do not matter ("ab2c-d3ef" is "AB2CD3EF")."""
    code = raw.strip().upper().replace(" ", "").replace("-", "")
    if len(code) != STALL_CODE_LENGTH_CHARS or not set(code) <= set(STALL_CODE_ALPHABET):
        raise MerchantRefused(
            "stall_code_invalid",
            _(
                "Mã quầy hàng gồm %(length)d ký tự in dưới mã QR của quầy, ví dụ 7KQ2M9TX. "
                "Mã không có chữ O, chữ I, số 0 và số 1.",
                length=STALL_CODE_LENGTH_CHARS,
            ),
        )
    return code


def new_payment_key() -> str:
    """A fresh idempotency key for one confirm form."""
    return secrets.token_urlsafe(PAYMENT_KEY_BYTES)


def _new_stall_code() -> str:
    return "".join(secrets.choice(STALL_CODE_ALPHABET) for _ in range(STALL_CODE_LENGTH_CHARS))


def _merchant_account_owner(stall_code: str) -> str:
    return f"{MERCHANT_ACCOUNT_OWNER_PREFIX}{stall_code}"


# Registering and reading stalls ----------------------------------------------------------------


def home_commune(session: Session, citizen: Citizen) -> Commune:
    """The commune a citizen's new stall is registered in: their own."""
    commune = session.get(Commune, citizen.commune_code)
    assert commune is not None, "citizens.commune_code is a foreign key"
    return commune


def stall_of(session: Session, merchant: Merchant) -> Stall:
    commune = session.get(Commune, merchant.commune_code)
    assert commune is not None, "merchants.commune_code is a foreign key"
    return Stall(merchant, commune)


def register_stall(
    session: Session, citizen: Citizen, stall_name: str, now: dt.datetime
) -> Merchant:
    """Register a stall in the citizen's own commune, with its own merchant ledger account."""
    name = normalise_stall_name(stall_name)
    owned = session.scalar(
        select(func.count()).select_from(Merchant).where(Merchant.owner_citizen_id == citizen.id)
    )
    if (owned or 0) >= STALLS_PER_CITIZEN_MAX:
        raise MerchantRefused(
            "too_many_stalls",
            _(
                "Mỗi người đăng ký được tối đa %(max)d quầy hàng.",
                max=STALLS_PER_CITIZEN_MAX,
            ),
        )
    # A collision is about one in a trillion per draw; looking first keeps a clash from becoming
    # an error page. Two registrations drawing the same code in the same instant would still
    # meet the UNIQUE constraint, and that request fails whole.
    for _attempt in range(STALL_CODE_ATTEMPTS_MAX):
        stall_code = _new_stall_code()
        if find_stall(session, stall_code) is None:
            break
    else:
        raise AssertionError("no free stall code after several draws: is the alphabet right?")
    account = ledger.open_account(
        session,
        kind=AccountKind.MERCHANT,
        name=f"Quầy hàng {stall_code}: {name}",
        owner_ref=_merchant_account_owner(stall_code),
        now=now,
    )
    merchant = Merchant(
        stall_code=stall_code,
        stall_name=name,
        commune_code=citizen.commune_code,
        owner_citizen_id=citizen.id,
        account_id=account.id,
        created_at=now,
    )
    session.add(merchant)
    session.flush()
    return merchant


def find_stall(session: Session, stall_code: str) -> Merchant | None:
    return session.scalar(select(Merchant).where(Merchant.stall_code == stall_code))


def owned_stall(session: Session, citizen: Citizen, stall_code: str) -> Stall | None:
    """The citizen's own stall with this code; None for anyone else's or an unknown code."""
    merchant = find_stall(session, stall_code.upper())
    if merchant is None or merchant.owner_citizen_id != citizen.id:
        return None
    return stall_of(session, merchant)


def stalls_of(session: Session, citizen: Citizen, now: dt.datetime) -> list[StallSummary]:
    """The citizen's stalls, oldest first, each with what it received and its last payments."""
    merchants = session.scalars(
        select(Merchant)
        .where(Merchant.owner_citizen_id == citizen.id)
        .order_by(Merchant.created_at, Merchant.id)
        .limit(STALLS_PER_CITIZEN_MAX)
    ).all()
    summaries = []
    for merchant in merchants:
        page = ledger.statement(session, merchant.account_id, limit=STALL_PAYMENTS_SHOWN_MAX)
        payments = [
            ReceivedPayment(line.transfer_id, line.amount, line.created_at)
            for line in page.lines
            if line.moves_posted and line.amount > 0
        ]
        summaries.append(
            StallSummary(
                stall=stall_of(session, merchant),
                received=ledger.balance(session, merchant.account_id, now=now).posted,
                payments=payments,
            )
        )
    return summaries


# The stall's QR --------------------------------------------------------------------------------


def _qr_text(text: str, length_max_chars: int) -> str:
    return vietqr.fold_to_ascii(text)[:length_max_chars].rstrip()


def stall_payload(stall: Stall) -> str:
    """The stall's static VietQR payload: our BIN and the stall code as the beneficiary."""
    return vietqr.encode_merchant_qr(
        bank_bin=current_app.config["VIETQR_ACQUIRER_BIN"],
        account_number=stall.merchant.stall_code,
        service=vietqr.TransferService.TO_ACCOUNT,
        initiation=vietqr.Initiation.STATIC,
        merchant_name=_qr_text(stall.merchant.stall_name, vietqr.MERCHANT_NAME_LENGTH_MAX_CHARS),
        merchant_city=_qr_text(stall.commune.short_name, vietqr.MERCHANT_CITY_LENGTH_MAX_CHARS),
    )


def stall_qr_png(stall: Stall) -> bytes:
    """The stall's QR as a large 1-bit PNG for printing."""
    picture = Image.open(io.BytesIO(vietqr.render_merchant_qr_png(stall_payload(stall))))
    large = picture.resize(
        (picture.width * PRINT_QR_SCALE, picture.height * PRINT_QR_SCALE),
        Image.Resampling.NEAREST,
    ).convert("1")
    buffer = io.BytesIO()
    large.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


# Finding the stall to pay ----------------------------------------------------------------------


def _foreign_qr() -> MerchantRefused:
    return MerchantRefused(
        "foreign_qr",
        _(
            "Mã QR này không phải của quầy hàng ATM mềm (có thể là mã của ngân hàng hoặc ví "
            "khác). ATM mềm chỉ trả tiền được cho quầy hàng đã đăng ký với ATM mềm; "
            "hãy hỏi người bán mã quầy 8 ký tự."
        ),
    )


def identify_stall(
    session: Session,
    citizen: Citizen,
    *,
    payload: str,
    photo: bytes | None,
    stall_code: str,
) -> StallToPay:
    """The stall to pay, from whichever the citizen gave: a photo of its QR, a scanned payload,
    or its typed code (in that order); a citizen's own stall is refused here already."""
    if photo is not None:
        to_pay = stall_from_payload(session, read_qr_photo(photo))
    elif payload.strip():
        to_pay = stall_from_payload(session, payload)
    elif stall_code.strip():
        to_pay = stall_from_code(session, stall_code)
    else:
        raise MerchantRefused(
            "nothing_given",
            _("Hãy quét mã QR của quầy hàng, chụp ảnh mã QR, hoặc nhập mã quầy 8 ký tự."),
        )
    if to_pay.stall.merchant.owner_citizen_id == citizen.id:
        raise _own_stall()
    return to_pay


def _own_stall() -> MerchantRefused:
    return MerchantRefused(
        "own_stall", _("Đây là quầy hàng của chính bạn; không thể tự trả tiền cho mình.")
    )


def amount_to_pay(to_pay: StallToPay, typed: str) -> int:
    """The amount fixed by a dynamic QR, else the amount the citizen typed."""
    if to_pay.amount is not None:
        return to_pay.amount
    if not typed.strip():
        raise MerchantRefused("amount_missing", _("Hãy nhập số tiền cần trả."))
    try:
        return codes.parse_amount(typed)
    except codes.CodeRefused as refusal:
        raise MerchantRefused(refusal.code, refusal.message) from None


def available_balance(session: Session, citizen: Citizen, now: dt.datetime) -> int:
    return ledger.balance(session, citizen.wallet_account_id, now=now).available


def stall_from_code(session: Session, raw_code: str) -> StallToPay:
    """The stall whose code the citizen typed."""
    code = normalise_stall_code(raw_code)
    merchant = find_stall(session, code)
    if merchant is None:
        raise MerchantRefused(
            "stall_not_found",
            _("Không có quầy hàng nào mang mã %(code)s. Hãy kiểm tra lại mã.", code=code),
        )
    return StallToPay(stall_of(session, merchant), amount=None, payload=None)


def stall_from_payload(session: Session, payload: str) -> StallToPay:
    """The stall a scanned VietQR payload names; a payload for anyone else is refused."""
    try:
        parsed = vietqr.parse_merchant_qr(payload)
    except vietqr.VietQrError as error:
        if error.code is vietqr.VietQrErrorCode.NOT_VIETQR:
            raise _foreign_qr() from None
        raise MerchantRefused(f"qr_{error.code.value}", error.message) from None
    if (
        parsed.bank_bin != current_app.config["VIETQR_ACQUIRER_BIN"]
        or parsed.service is not vietqr.TransferService.TO_ACCOUNT
    ):
        raise _foreign_qr()
    merchant = find_stall(session, parsed.account_number)
    if merchant is None:
        raise MerchantRefused(
            "stall_not_found",
            _(
                "Mã QR mang mã quầy %(code)s nhưng không có quầy hàng nào như vậy. "
                "Có thể quầy đã ngừng nhận tiền; hãy hỏi người bán.",
                code=parsed.account_number,
            ),
        )
    return StallToPay(stall_of(session, merchant), parsed.amount_vnd, payload.strip())


def read_qr_photo(data: bytes) -> str:
    """The text of the QR code in a photo; refused when there is no readable QR in it."""
    text = photo.decode_qr(data)
    if text is None:
        raise MerchantRefused(
            "photo_unreadable",
            _(
                "Không đọc được mã QR trong ảnh. Hãy chụp lại gần hơn, đủ sáng, để mã QR nằm "
                "gọn trong khung, hoặc nhập mã quầy 8 ký tự."
            ),
        )
    return text


# Paying ----------------------------------------------------------------------------------------


def _check_pin(session: Session, citizen: Citizen, pin: str, now: dt.datetime) -> None:
    # The same counter as signing in: a PIN guessed on this form is a PIN guessed anywhere. The
    # attempt is counted (and committed) before the PIN is looked at.
    key = credentials.pin_throttle_key(citizen.phone)
    try:
        attempts_left = throttles.count_attempt(session, key, throttles.PIN_POLICY, now)
        if citizen.pin_hash is None or not credentials.pin_matches(citizen.pin_hash, pin):
            metrics.login_failed(metrics.LoginFailure.CITIZEN_PIN)
            throttles.failed(session, key, throttles.PIN_POLICY, now, attempts_left)
            raise MerchantRefused("pin_wrong", _("Mã PIN không đúng. Không có tiền nào bị trừ."))
    except throttles.Locked as locked:
        raise MerchantRefused(
            "pin_locked",
            _(
                "Bạn đã nhập sai mã PIN quá nhiều lần. Hãy thử lại sau %(time)s.",
                time=local_time(locked.until, "%H:%M"),
            ),
        ) from None
    throttles.clear(session, key)


def _check_payment_key(idempotency_key: str) -> None:
    if not (
        PAYMENT_KEY_LENGTH_MIN_CHARS <= len(idempotency_key) <= PAYMENT_KEY_LENGTH_MAX_CHARS
        and _PAYMENT_KEY.fullmatch(idempotency_key)
    ):
        raise MerchantRefused(
            "form_expired",
            _("Biểu mẫu thanh toán không hợp lệ. Hãy bắt đầu lại từ bước chọn quầy hàng."),
        )


def _earlier_payment(
    session: Session, key: str, citizen: Citizen, merchant: Merchant, amount: int
) -> ledger.Transfer | None:
    """The transfer an earlier submit of this same form made, if any."""
    earlier = session.scalar(select(ledger.Transfer).where(ledger.Transfer.idempotency_key == key))
    if earlier is None:
        return None
    if (
        earlier.code != MERCHANT_PAYMENT_CODE
        or earlier.debit_account_id != citizen.wallet_account_id
        or earlier.credit_account_id != merchant.account_id
        or earlier.amount != amount
    ):
        raise _already_used()
    return earlier


def key_for_retry(submitted_key: str, refusal: MerchantRefused) -> str:
    """The key the confirm form shown again carries: the same one, unless it cannot be used."""
    return new_payment_key() if refusal.code in FRESH_KEY_REFUSALS else submitted_key


def _insufficient_funds() -> MerchantRefused:
    return MerchantRefused(
        "insufficient_funds",
        _("Số dư trong ví không đủ để trả số tiền này. Không có tiền nào bị trừ."),
    )


def _already_used() -> MerchantRefused:
    return MerchantRefused(
        "form_already_used",
        _(
            "Biểu mẫu này đã được dùng cho một lần trả tiền khác. Hãy bắt đầu lại từ bước "
            "chọn quầy hàng."
        ),
    )


def pay_merchant(
    session: Session,
    citizen: Citizen,
    merchant: Merchant,
    *,
    amount: int,
    pin: str,
    idempotency_key: str,
    now: dt.datetime,
) -> StallPayment:
    """Pay `amount` from the citizen's wallet to the stall; raise `MerchantRefused` if not.

    Order matters. A repeat of a form that already paid skips the limits, which now count that
    payment. Otherwise the limits and the balance are checked before the PIN, so that a refusal
    the citizen can do nothing about does not count as a PIN attempt. The PIN comes last: every
    attempt is counted before it is checked, and a correct one clears the counter. The ledger
    checks the balance again when it posts (another payment may have come first).
    """
    _check_payment_key(idempotency_key)
    if merchant.owner_citizen_id == citizen.id:
        raise _own_stall()
    if amount <= 0:
        raise MerchantRefused("amount_not_positive", _("Số tiền phải lớn hơn 0."))
    key = f"{PAYMENT_KEY_PREFIX}{idempotency_key}"
    earlier = _earlier_payment(session, key, citizen, merchant, amount)
    if earlier is None:
        try:
            limits.check_outgoing(session, citizen, amount, now)
        except limits.LimitExceeded as error:
            raise MerchantRefused("limit_exceeded", error.message) from None
        if available_balance(session, citizen, now) < amount:
            raise _insufficient_funds()
    _check_pin(session, citizen, pin, now)
    stall = stall_of(session, merchant)
    if earlier is not None:
        return StallPayment(earlier.id, earlier.amount, earlier.created_at, stall)
    # A savepoint: a refused transfer leaves the request's transaction usable on PostgreSQL, so
    # the page that explains the refusal can still read from the database.
    try:
        with session.begin_nested():
            # Money held by the citizen's expired codes is free again before paying.
            voided = ledger.void_expired_reservations(
                session, now=now, account_id=citizen.wallet_account_id
            )
            result = ledger.post_transfer(
                session,
                ledger.Post(
                    key=key,
                    debit_account_id=citizen.wallet_account_id,
                    credit_account_id=merchant.account_id,
                    amount=amount,
                    code=MERCHANT_PAYMENT_CODE,
                    memo=merchant.stall_code,
                ),
                now=now,
            )
    except ledger.InsufficientFunds:
        raise _insufficient_funds() from None
    except ledger.IdempotencyConflict:
        # Lost a race to a second submit of this same form (a double tap reaching two workers):
        # the winner's transfer is committed by now, and that payment is the answer.
        earlier = _earlier_payment(session, key, citizen, merchant, amount)
        if earlier is None:
            raise _already_used() from None
        return StallPayment(earlier.id, earlier.amount, earlier.created_at, stall)
    # Counted only once the savepoint held: a refused transfer undoes the voids with it.
    metrics.expired_reservations_voided(voided)
    metrics.transfers_posted([result])
    return StallPayment(result.id, result.amount, result.created_at, stall)


def payment_of(session: Session, citizen: Citizen, transfer_id: uuid.UUID) -> StallPayment | None:
    """The citizen's own payment to a stall, for the receipt; None for anything else."""
    transfer = session.get(ledger.Transfer, transfer_id)
    if (
        transfer is None
        or transfer.code != MERCHANT_PAYMENT_CODE
        or transfer.debit_account_id != citizen.wallet_account_id
    ):
        return None
    merchant = session.scalar(
        select(Merchant).where(Merchant.account_id == transfer.credit_account_id)
    )
    if merchant is None:
        return None
    return StallPayment(
        transfer.id, transfer.amount, transfer.created_at, stall_of(session, merchant)
    )
