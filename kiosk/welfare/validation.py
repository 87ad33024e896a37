"""Checking every row of a beneficiary list, and reporting every problem at once.

An official fixes the file in one pass from the table of problems: each problem names the line
of the file, the person and what to change. The clear citizen ID lives only in memory while
the list is checked; what is kept is its HMAC and last four digits.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.citizen_id import CitizenIdError, decode_citizen_id
from kiosk.citizens.models import Citizen
from kiosk.citizens.phone import PhoneInvalid, normalise_phone
from kiosk.citizens.registration import CITIZEN_ID_PURPOSE, normalise_full_name
from kiosk.formatting import parse_vnd, vnd
from kiosk.pii import vault
from kiosk.places.models import Commune
from kiosk.welfare.upload import Column, RawRow

# One person's payment in one cycle; larger amounts are almost certainly a typo.
ROW_AMOUNT_MAX_VND = 10_000_000
FULL_NAME_LENGTH_MAX_CHARS = 100
LOOKUP_CHUNK_SIZE = 500
# Vietnamese tone marks (grave, acute, hook above, tilde, dot below): where a tone mark sits
# ("Hoà" or "Hòa") differs between old and new spelling, so names are compared word by word as
# letters plus the word's tone.
TONE_MARKS = frozenset("\u0300\u0301\u0309\u0303\u0323")


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    full_name: str  # as typed (shortened), to find the row
    citizen_id_shown: str  # masked: the last 4 characters typed
    message: str


@dataclass(frozen=True, slots=True)
class ValidRow:
    line: int
    citizen_id_lookup: bytes
    citizen_id_last4: str
    full_name: str
    amount: int
    phone: str | None
    citizen: Citizen | None


@dataclass(frozen=True)
class Validation:
    rows: list[ValidRow]
    problems: list[Problem]

    @property
    def total(self) -> int:
        return sum(row.amount for row in self.rows)


def citizen_id_lookup(number: str) -> bytes:
    """The same HMAC as `citizens.citizen_id_lookup`, so a list row finds its account."""
    return vault().lookup_hash(number, purpose=CITIZEN_ID_PURPOSE)


def name_key(name: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """A name for comparison: per word, its letters without tone marks (lower case) and its
    tone marks. "Hoàng Thị Hoà" and "HOÀNG THỊ HÒA" compare equal; "Mai" and "Mại" do not."""
    words = []
    for word in normalise_full_name(name).split():
        decomposed = unicodedata.normalize("NFD", word.casefold())
        letters = "".join(character for character in decomposed if character not in TONE_MARKS)
        tones = frozenset(character for character in decomposed if character in TONE_MARKS)
        words.append((unicodedata.normalize("NFC", letters), tones))
    return tuple(words)


def _masked(raw: str) -> str:
    compact = "".join(raw.split())
    if len(compact) < 4:
        return "—"
    return "••••" + "".join(c if c.isprintable() else "?" for c in compact[-4:])


def _shown_name(raw: str) -> str:
    name = "".join(c if c.isprintable() else "?" for c in raw.strip())
    return name[:60]


def _citizens_by_lookup(session: Session, lookups: Sequence[bytes]) -> dict[bytes, Citizen]:
    found: dict[bytes, Citizen] = {}
    for start in range(0, len(lookups), LOOKUP_CHUNK_SIZE):
        chunk = lookups[start : start + LOOKUP_CHUNK_SIZE]
        for citizen in session.scalars(select(Citizen).where(Citizen.citizen_id_lookup.in_(chunk))):
            found[citizen.citizen_id_lookup] = citizen
    return found


def citizens_by_lookup(session: Session, lookups: Iterable[bytes]) -> dict[bytes, Citizen]:
    return _citizens_by_lookup(session, list(lookups))


def _name_problem(name: str) -> str | None:
    if not name:
        return str(_("Thiếu họ và tên."))
    if len(name) > FULL_NAME_LENGTH_MAX_CHARS:
        return str(_("Họ và tên dài quá %(max)d chữ.", max=FULL_NAME_LENGTH_MAX_CHARS))
    for character in name:
        if character != " " and not (
            character.isalpha() and unicodedata.name(character, "").startswith("LATIN ")
        ):
            return str(
                _(
                    "Họ và tên chỉ gồm chữ cái (có dấu) và dấu cách; có ký tự “%(character)s”.",
                    character=character if character.isprintable() else f"U+{ord(character):04X}",
                )
            )
    return None


def validate_list(
    session: Session,
    rows: Sequence[RawRow],
    *,
    commune_code: str,
    denomination_vnd: int,
    row_amount_max_vnd: int = ROW_AMOUNT_MAX_VND,
) -> Validation:
    """Check every row; the valid ones and every problem found (a row may have several)."""
    problems: list[Problem] = []
    checked: list[tuple[RawRow, str, bytes | None, int | None, str | None]] = []
    first_line_of: dict[bytes, int] = {}
    for row in rows:
        raw_id = row.cells.get(Column.CITIZEN_ID, "")
        raw_name = row.cells.get(Column.FULL_NAME, "")
        raw_phone = row.cells.get(Column.PHONE, "").strip()

        def problem(message: str, row: RawRow = row, raw_id: str = raw_id) -> None:
            problems.append(
                Problem(
                    row.line,
                    _shown_name(row.cells.get(Column.FULL_NAME, "")),
                    _masked(raw_id),
                    message,
                )
            )

        lookup: bytes | None = None
        try:
            number = decode_citizen_id(raw_id).number
        except CitizenIdError as error:
            problem(error.message)
        else:
            lookup = citizen_id_lookup(number)
            if lookup in first_line_of:
                problem(
                    _(
                        "Trùng số CCCD với dòng %(line)d: mỗi người chỉ có một dòng.",
                        line=first_line_of[lookup],
                    )
                )
                lookup = None
            else:
                first_line_of[lookup] = row.line
        name = normalise_full_name(raw_name)
        name_problem = _name_problem(name)
        if name_problem:
            problem(name_problem)
        amount = parse_vnd(row.cells.get(Column.AMOUNT, ""))
        if amount is None or amount <= 0:
            problem(_("Số tiền phải là số nguyên đồng lớn hơn 0, ví dụ 1.500.000."))
            amount = None
        elif amount > row_amount_max_vnd:
            problem(
                _(
                    "Số tiền %(amount)s vượt mức tối đa mỗi người %(max)s.",
                    amount=vnd(amount),
                    max=vnd(row_amount_max_vnd),
                )
            )
            amount = None
        elif amount % denomination_vnd:
            problem(
                _(
                    "Số tiền phải là bội số của %(step)s "
                    "(bưu điện chi trả tiền mặt theo mệnh giá).",
                    step=vnd(denomination_vnd),
                )
            )
            amount = None
        phone: str | None = None
        if raw_phone:
            try:
                phone = normalise_phone(raw_phone)
            except PhoneInvalid as invalid:
                problem(invalid.message)
        checked.append((row, name, lookup, amount, phone))

    citizens = _citizens_by_lookup(session, [item[2] for item in checked if item[2] is not None])
    names_of_communes = commune_names(session, {c.commune_code for c in citizens.values()})
    valid: list[ValidRow] = []
    for row, name, lookup, amount, phone in checked:
        citizen = None if lookup is None else citizens.get(lookup)
        row_ok = lookup is not None and amount is not None and not _name_problem(name)
        if citizen is not None and name and name_key(name) != name_key(citizen.full_name):
            problems.append(
                Problem(
                    row.line,
                    _shown_name(name),
                    _masked(row.cells.get(Column.CITIZEN_ID, "")),
                    _(
                        "Họ tên không khớp với tài khoản ATM mềm của số CCCD này "
                        "(tài khoản mang tên “%(account)s”).",
                        account=citizen.full_name,
                    ),
                )
            )
            row_ok = False
        if citizen is not None and citizen.commune_code != commune_code:
            problems.append(
                Problem(
                    row.line,
                    _shown_name(name),
                    _masked(row.cells.get(Column.CITIZEN_ID, "")),
                    _(
                        "Người này đăng ký cư trú ở %(commune)s, không phải xã/phường của "
                        "chương trình.",
                        commune=names_of_communes.get(citizen.commune_code, citizen.commune_code),
                    ),
                )
            )
            row_ok = False
        if row_ok and (phone is not None or not row.cells.get(Column.PHONE, "").strip()):
            assert lookup is not None and amount is not None
            raw_id = "".join(row.cells[Column.CITIZEN_ID].split())
            valid.append(
                ValidRow(
                    line=row.line,
                    citizen_id_lookup=lookup,
                    citizen_id_last4=raw_id[-4:],
                    full_name=name,
                    amount=amount,
                    phone=phone,
                    citizen=citizen,
                )
            )
    problems.sort(key=lambda found: found.line)
    return Validation(valid, problems)


def commune_names(session: Session, codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    return dict(
        session.execute(select(Commune.code, Commune.name).where(Commune.code.in_(codes))).all()
    )
