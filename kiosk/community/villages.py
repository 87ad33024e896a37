"""Villages, hamlets and residential groups (thôn, bản, tổ dân phố): each commune enters its own,
and the team members assigned to them register households there.

Who may add or rename a village is `kiosk.community.access.can_edit_commune` (the commune's
officials and admins); this module owns the rules for the names and which villages an official
works with. Operations take the session, flush and never commit.
"""

from __future__ import annotations

import datetime as dt
import unicodedata

from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kiosk.community.access import visible_communes
from kiosk.community.models import Official, OfficialRole, TeamAssignment, Village

VILLAGE_NAME_LENGTH_MIN_CHARS = 2
VILLAGE_NAME_LENGTH_MAX_CHARS = 100
# A commune has a few dozen villages at most; a listing stops here.
VILLAGES_LISTED_MAX = 500


class VillageRefused(Exception):
    """A village that cannot be added or renamed; ``message`` says why, in Vietnamese."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def normalise_village_name(raw: str) -> str:
    """NFC and single spaces, so "Thôn  Đông" and "Thôn Đông" are one name."""
    return " ".join(unicodedata.normalize("NFC", raw).split())


def _checked_name(session: Session, commune_code: str, raw: str, *, except_id: int | None) -> str:
    name = normalise_village_name(raw)
    if not VILLAGE_NAME_LENGTH_MIN_CHARS <= len(name) <= VILLAGE_NAME_LENGTH_MAX_CHARS:
        raise VillageRefused(
            _(
                "Tên thôn, bản hoặc tổ dân phố dài từ %(min)d đến %(max)d ký tự.",
                min=VILLAGE_NAME_LENGTH_MIN_CHARS,
                max=VILLAGE_NAME_LENGTH_MAX_CHARS,
            )
        )
    # Compared without regard to case, in Python: SQLite's lower() knows only ASCII letters.
    for village in villages_of_commune(session, commune_code):
        if village.id != except_id and village.name.casefold() == name.casefold():
            raise VillageRefused(_("Xã đã có thôn “%(name)s”.", name=village.name))
    return name


def add_village(
    session: Session, *, commune_code: str, name: str, added_by: str, now: dt.datetime
) -> Village:
    """Add a village to the commune; raise `VillageRefused` for a bad or duplicate name."""
    checked = _checked_name(session, commune_code, name, except_id=None)
    village = Village(commune_code=commune_code, name=checked, created_at=now, created_by=added_by)
    try:
        with session.begin_nested():
            session.add(village)
            session.flush()
    except IntegrityError:
        # Another official added the same name in the same instant.
        raise VillageRefused(_("Xã đã có thôn “%(name)s”.", name=checked)) from None
    return village


def rename_village(session: Session, village: Village, name: str) -> None:
    """Rename the village; raise `VillageRefused` for a bad name or one the commune already has."""
    checked = _checked_name(session, village.commune_code, name, except_id=village.id)
    try:
        with session.begin_nested():
            village.name = checked
            session.flush()
    except IntegrityError:
        raise VillageRefused(_("Xã đã có thôn “%(name)s”.", name=checked)) from None


def villages_of_commune(session: Session, commune_code: str) -> list[Village]:
    return list(
        session.scalars(
            select(Village)
            .where(Village.commune_code == commune_code)
            .order_by(Village.name, Village.id)
            .limit(VILLAGES_LISTED_MAX)
        )
    )


def visible_village_ids(official: Official) -> Select[int]:
    """The ids of the villages whose households the official sees, as a subquery: a team
    member's assigned villages; every village of the communes the others see."""
    if official.role == OfficialRole.TEAM_MEMBER:
        return select(TeamAssignment.village_id).where(TeamAssignment.official_id == official.id)
    return select(Village.id).where(Village.commune_code.in_(visible_communes(official)))


def can_see_village(session: Session, official: Official, village_id: int) -> bool:
    found = session.scalar(
        select(Village.id).where(
            Village.id == village_id, Village.id.in_(visible_village_ids(official))
        )
    )
    return found is not None


def villages_for(
    session: Session, official: Official, commune_code: str | None = None
) -> list[Village]:
    """The villages the official sees (those of one commune when ``commune_code`` is given),
    by commune and name."""
    query = select(Village).where(Village.id.in_(visible_village_ids(official)))
    if commune_code is not None:
        query = query.where(Village.commune_code == commune_code)
    return list(
        session.scalars(
            query.order_by(Village.commune_code, Village.name, Village.id).limit(
                VILLAGES_LISTED_MAX
            )
        )
    )
