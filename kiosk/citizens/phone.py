"""Vietnamese mobile numbers: every way people write one becomes the stored 10-digit form.

"+84 912 345 678", "84912345678", "0912.345.678" and "(+84) 0912 345 678" all become
"0912345678". Only mobile numbers are accepted (prefixes 03, 05, 07, 08 and 09 since the 2018
renumbering): a citizen signs in with the phone they carry.
"""

from __future__ import annotations

from flask_babel import gettext as _  # type: ignore[import-untyped]

PHONE_LENGTH_DIGITS = 10
MOBILE_PREFIXES = ("03", "05", "07", "08", "09")
COUNTRY_CODE = "84"
# What people put between digit groups when they write a number down.
SEPARATORS = frozenset(" \t.-()")


class PhoneInvalid(ValueError):
    """Not a Vietnamese mobile number; ``message`` says why, in the citizen's language."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def normalise_phone(raw: str) -> str:
    """Return the number as 10 ASCII digits starting with 0, or raise `PhoneInvalid`."""
    compact = "".join(character for character in raw if character not in SEPARATORS)
    if not compact:
        raise PhoneInvalid(_("Vui lòng nhập số điện thoại di động."))
    if compact.startswith("+"):
        compact = compact[1:]
        if not compact.startswith(COUNTRY_CODE):
            raise PhoneInvalid(
                _("Chỉ nhận số điện thoại di động Việt Nam (bắt đầu bằng 0 hoặc +84).")
            )
        compact = compact.removeprefix(COUNTRY_CODE).removeprefix("0")
        compact = "0" + compact
    elif compact.startswith(COUNTRY_CODE) and len(compact) == PHONE_LENGTH_DIGITS + 1:
        compact = "0" + compact.removeprefix(COUNTRY_CODE)
    if not (compact.isascii() and compact.isdigit()):
        raise PhoneInvalid(_("Số điện thoại chỉ gồm các chữ số, ví dụ 0912 345 678."))
    if len(compact) != PHONE_LENGTH_DIGITS:
        raise PhoneInvalid(
            _(
                "Số điện thoại di động có đúng 10 chữ số, ví dụ 0912 345 678; "
                "số đã nhập có %(count)d chữ số.",
                count=len(compact),
            )
        )
    if not compact.startswith(MOBILE_PREFIXES):
        raise PhoneInvalid(_("Số điện thoại di động phải bắt đầu bằng 03, 05, 07, 08 hoặc 09."))
    return compact


def format_phone(phone: str) -> str:
    """The stored number grouped for reading aloud: "0912 345 678"."""
    return f"{phone[:4]} {phone[4:7]} {phone[7:]}"
