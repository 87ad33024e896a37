"""What the citizen's own account page shows about them, in plain words: who they are (the ID
number masked), where they live, what their verification level lets them do, and whether the
second factor is on. Read-only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy.orm import Session

from kiosk.citizen_id import CITIZEN_ID_LENGTH_DIGITS, CITIZEN_ID_SHOWN_DIGITS, mask_citizen_id
from kiosk.citizens.limits import OutgoingLimits
from kiosk.citizens.models import Citizen, KycTier
from kiosk.citizens.phone import format_phone
from kiosk.citizens.two_factor import is_enabled
from kiosk.formatting import local_date, vnd
from kiosk.places.models import Commune, Province


@dataclass(frozen=True)
class Profile:
    full_name: str
    phone: str
    masked_citizen_id: str
    commune: str
    province: str
    verified: bool
    tier: str  # "Chưa xác minh: nhận tiền được, …"
    two_factor_enabled: bool


def masked_citizen_id(citizen: Citizen) -> str:
    """The ID number as "•••• •••• 6789", from the stored last four digits: the full number is
    not decrypted just to hide most of it again. The hidden digits are placeholders that the
    mask never shows."""
    hidden = "0" * (CITIZEN_ID_LENGTH_DIGITS - CITIZEN_ID_SHOWN_DIGITS)
    return mask_citizen_id(hidden + citizen.citizen_id_last4)


def tier_words(citizen: Citizen, config: Mapping[str, Any]) -> str:
    if KycTier(citizen.kyc_tier) is KycTier.UNVERIFIED:
        words: str = _(
            "Chưa xác minh: nhận tiền được, chưa rút hoặc thanh toán được. "
            "Hãy mang CCCD đến bưu điện xã để xác minh."
        )
        return words
    limits = OutgoingLimits.from_config(config)
    assert citizen.verified_at is not None
    words = _(
        "Đã xác minh ngày %(date)s: rút tiền và thanh toán được, mỗi lần tối đa %(each)s, "
        "mỗi ngày tối đa %(day)s, mỗi tháng tối đa %(month)s.",
        date=local_date(citizen.verified_at),
        each=vnd(limits.transaction_max_vnd),
        day=vnd(limits.daily_max_vnd),
        month=vnd(limits.monthly_max_vnd),
    )
    return words


def summarise(session: Session, citizen: Citizen, config: Mapping[str, Any]) -> Profile:
    commune = session.get(Commune, citizen.commune_code)
    assert commune is not None, "citizens.commune_code is a foreign key"
    province = session.get(Province, commune.province_code)
    assert province is not None, "communes.province_code is a foreign key"
    return Profile(
        full_name=citizen.full_name,
        phone=format_phone(citizen.phone),
        masked_citizen_id=masked_citizen_id(citizen),
        commune=commune.name,
        province=province.name,
        verified=KycTier(citizen.kyc_tier) is KycTier.VERIFIED,
        tier=tier_words(citizen, config),
        two_factor_enabled=is_enabled(citizen),
    )
