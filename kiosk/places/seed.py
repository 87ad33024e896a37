"""Seeding the provinces and communes from the official list, and searching them.

The list comes from `vietnamadminunits` (MIT), which carries the statistics office's 2025 codes.
Seeding is an upsert by code, so it is safe to run on every deploy.
"""

from __future__ import annotations

import unicodedata

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from vietnamadminunits.database import get_data  # type: ignore[import-untyped]

from kiosk.places.models import Commune, Province

PROVINCE_COUNT = 34
COMMUNE_COUNT = 3_321
SEARCH_RESULTS_MAX = 50


def fold(text: str) -> str:
    """Lower-case ASCII without diacritics ("Đặc khu Lý Sơn" → "dac khu ly son")."""
    text = text.replace("Đ", "D").replace("đ", "d")
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.lower().split())


# Vietnamese alphabetical order: a letter with a breve, circumflex or horn, and đ, is a letter of
# its own after its base (a ă â b c d đ e ê …); the tones order words that are otherwise equal:
# none, huyền, hỏi, ngã, sắc, nặng.
_LETTER_MARKS = {"\u0306": 1, "\u0302": 2, "\u031b": 3}  # breve, circumflex, horn
_TONES = {"\u0300": 1, "\u0309": 2, "\u0303": 3, "\u0301": 4, "\u0323": 5}


def vietnamese_sort_key(text: str) -> tuple[tuple[tuple[str, int], ...], tuple[int, ...]]:
    """Sorts names as a Vietnamese reader expects: "Hà Nội" before "Huế", "Lạng Sơn" before
    "Lào Cai" before "Lâm Đồng"."""
    letters: list[tuple[str, int]] = []
    tones: list[int] = []
    for character in unicodedata.normalize("NFD", text.casefold()):
        if character in _LETTER_MARKS and letters:
            base, _mark = letters[-1]
            letters[-1] = (base, _LETTER_MARKS[character])
        elif character in _TONES:
            if tones:
                tones[-1] = _TONES[character]
        elif character == "đ":
            letters.append(("d", 4))
            tones.append(0)
        else:
            letters.append((character, 0))
            tones.append(0)
    return tuple(letters), tuple(tones)


def seed_places(session: Session) -> tuple[int, int]:
    """Insert or refresh every province and commune; return how many of each exist afterwards."""
    rows = get_data(
        ["provinceCode", "province", "provinceShort", "wardCode", "ward", "wardShort", "wardType"]
    )
    provinces = {p.code: p for p in session.scalars(select(Province))}
    communes = {c.code: c for c in session.scalars(select(Commune))}
    for row in rows:
        code = row["provinceCode"]
        province = provinces.get(code)
        if province is None:
            province = provinces[code] = Province(code=code)
            session.add(province)
        province.name = row["province"]
        province.short_name = row["provinceShort"]
        province.search_name = fold(row["provinceShort"])
    session.flush()
    for row in rows:
        code = row["wardCode"]
        commune = communes.get(code)
        if commune is None:
            commune = communes[code] = Commune(code=code)
            session.add(commune)
        commune.province_code = row["provinceCode"]
        commune.name = row["ward"]
        commune.short_name = row["wardShort"]
        commune.kind = row["wardType"]
        commune.search_name = fold(row["ward"])
    session.flush()
    return len(provinces), len(communes)


def provinces(session: Session) -> list[Province]:
    """Every province, in Vietnamese alphabetical order."""
    return sorted(
        session.scalars(select(Province)), key=lambda p: vietnamese_sort_key(p.short_name)
    )


def communes_of(session: Session, province_code: str, query: str = "") -> list[Commune]:
    """Communes of a province, optionally filtered by a search typed with or without diacritics."""
    statement = select(Commune).where(Commune.province_code == province_code)
    folded = fold(query)
    if folded:
        statement = statement.where(Commune.search_name.contains(folded, autoescape=True))
    statement = statement.order_by(Commune.short_name)
    if folded:
        statement = statement.limit(SEARCH_RESULTS_MAX)
    return sorted(session.scalars(statement), key=lambda c: vietnamese_sort_key(c.short_name))


def commune_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Commune)) or 0
