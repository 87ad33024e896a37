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
    return list(session.scalars(select(Province).order_by(Province.short_name)))


def communes_of(session: Session, province_code: str, query: str = "") -> list[Commune]:
    """Communes of a province, optionally filtered by a search typed with or without diacritics."""
    statement = select(Commune).where(Commune.province_code == province_code)
    folded = fold(query)
    if folded:
        statement = statement.where(Commune.search_name.contains(folded, autoescape=True))
    statement = statement.order_by(Commune.short_name)
    if folded:
        statement = statement.limit(SEARCH_RESULTS_MAX)
    return list(session.scalars(statement))


def commune_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Commune)) or 0
