"""Provinces and communes, keyed by their official codes (2 and 5 digits)."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ledger.schema import Base


class Province(Base):
    __tablename__ = "provinces"
    __table_args__ = (CheckConstraint("length(code) = 2", name="code_two_digits"),)

    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))  # "Thành phố Hà Nội"
    short_name: Mapped[str] = mapped_column(String(100))  # "Hà Nội"
    # Lower-case ASCII without diacritics, so "lang son" finds "Lạng Sơn".
    search_name: Mapped[str] = mapped_column(String(100))


class Commune(Base):
    __tablename__ = "communes"
    __table_args__ = (
        CheckConstraint("length(code) = 5", name="code_five_digits"),
        Index("ix_communes_province_code_search_name", "province_code", "search_name"),
    )

    code: Mapped[str] = mapped_column(String(5), primary_key=True)
    province_code: Mapped[str] = mapped_column(ForeignKey("provinces.code"))
    name: Mapped[str] = mapped_column(String(120))  # "Phường Văn Miếu - Quốc Tử Giám"
    short_name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20))  # Xã, Phường, Đặc khu
    search_name: Mapped[str] = mapped_column(String(120))
