"""Officials and community team members: creating them, their villages, deactivation, TOTP
resets. Passwords, throttles and the end of sessions are every staff member's
(`kiosk.auth.staff`); who may manage whom is `kiosk.community.access`.

Operations take the session, flush and never commit; ``created_by`` / ``assigned_by`` say who
did it ("official:7", or "admin" for the command line).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from flask_babel import gettext as _  # type: ignore[import-untyped]
from flask_babel import lazy_gettext
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kiosk.auth.staff import (
    STAFF_POLICY,
    StaffDirectory,
    StaffRefused,
    check_full_name,
    check_new_password,
    check_username,
    hash_password,
    utc_now,
)
from kiosk.community.models import Official, OfficialRole, TeamAssignment, Village
from kiosk.places.models import Commune, Province

__all__ = [
    "OFFICIALS",
    "OFFICIAL_POLICY",
    "PRINCIPAL_KIND",
    "StaffRefused",
    "assign_villages",
    "assigned_village_ids",
    "create_official",
    "list_officials",
    "reset_official_totp",
    "role_label",
    "set_official_active",
]

PRINCIPAL_KIND = "official"
OFFICIAL_POLICY = STAFF_POLICY
OFFICIALS = StaffDirectory(Official, principal_kind=PRINCIPAL_KIND, throttle_prefix="official")
COMMUNE_ROLES = frozenset({OfficialRole.TEAM_MEMBER, OfficialRole.COMMUNE_OFFICIAL})
# A staff list page or the command line's list shows at most this many people.
OFFICIALS_LISTED_MAX = 500
# The command line acts as the operator.
ADMIN_ACTOR = "admin"
ROLE_LABELS = {
    OfficialRole.TEAM_MEMBER: lazy_gettext("Thành viên tổ công nghệ số cộng đồng"),
    OfficialRole.COMMUNE_OFFICIAL: lazy_gettext("Cán bộ xã, phường"),
    OfficialRole.PROVINCE_OFFICIAL: lazy_gettext("Cán bộ tỉnh, thành phố"),
    OfficialRole.ADMIN: lazy_gettext("Quản trị hệ thống"),
}

logger = logging.getLogger(__name__)


def role_label(role: str) -> str:
    return str(ROLE_LABELS[OfficialRole(role)])


def create_official(
    session: Session,
    *,
    username: str,
    full_name: str,
    password: str,
    role: OfficialRole,
    commune_code: str | None = None,
    province_code: str | None = None,
    created_by: str,
    now: dt.datetime | None = None,
) -> Official:
    """A team member or commune official of one commune, a province official of one province,
    or an admin of none. TOTP is enrolled at the first sign-in. Raises `StaffRefused`."""
    now = now or utc_now()
    role = OfficialRole(role)
    username = check_username(username)
    full_name = check_full_name(full_name)
    check_new_password(password, username=username)
    commune_code, province_code = _place_of(session, role, commune_code, province_code)
    if OFFICIALS.username_taken(session, username):
        raise StaffRefused("username", _("Tên đăng nhập này đã có người dùng."))
    official = Official(
        username=username,
        full_name=full_name,
        role=role.value,
        commune_code=commune_code,
        province_code=province_code,
        password_hash=hash_password(password),
        password_changed_at=now,
        session_epoch=0,
        active=True,
        created_at=now,
        created_by=created_by,
    )
    session.add(official)
    session.flush()
    return official


def _place_of(
    session: Session, role: OfficialRole, commune_code: str | None, province_code: str | None
) -> tuple[str | None, str | None]:
    """The (commune, province) codes the role keeps: exactly one of them, or none for admins."""
    commune_code = (commune_code or "").strip() or None
    province_code = (province_code or "").strip() or None
    if role in COMMUNE_ROLES:
        if commune_code is None or session.get(Commune, commune_code) is None:
            raise StaffRefused("commune_code", _("Hãy chọn một xã, phường có trong danh sách."))
        return commune_code, None
    if role is OfficialRole.PROVINCE_OFFICIAL:
        if province_code is None or session.get(Province, province_code) is None:
            message = _("Hãy chọn một tỉnh, thành phố có trong danh sách.")
            raise StaffRefused("province_code", message)
        return None, province_code
    return None, None


def list_officials(
    session: Session,
    *,
    commune_code: str | None = None,
    roles: Iterable[OfficialRole] = (),
    limit: int = OFFICIALS_LISTED_MAX,
) -> list[Official]:
    """Officials by login name, optionally of one commune and some roles (bounded)."""
    query = select(Official).order_by(Official.username).limit(min(limit, OFFICIALS_LISTED_MAX))
    if commune_code is not None:
        query = query.where(Official.commune_code == commune_code)
    wanted = [OfficialRole(role).value for role in roles]
    if wanted:
        query = query.where(Official.role.in_(wanted))
    return list(session.scalars(query))


def assigned_village_ids(session: Session, official_id: int) -> set[int]:
    query = select(TeamAssignment.village_id).where(TeamAssignment.official_id == official_id)
    return set(session.scalars(query))


def assign_villages(
    session: Session,
    member: Official,
    village_ids: Iterable[int],
    *,
    assigned_by: str,
    now: dt.datetime | None = None,
) -> set[int]:
    """Make ``village_ids`` the team member's villages (added and removed as needed); every one
    must be a village of the member's commune. Returns the villages now assigned."""
    now = now or utc_now()
    if member.role != OfficialRole.TEAM_MEMBER:
        message = _("Chỉ thành viên tổ công nghệ số được giao thôn, tổ dân phố.")
        raise StaffRefused("villages", message)
    wanted = set(village_ids)
    if wanted:
        in_commune = session.scalar(
            select(func.count())
            .select_from(Village)
            .where(Village.id.in_(wanted), Village.commune_code == member.commune_code)
        )
        if in_commune != len(wanted):
            raise StaffRefused("villages", _("Chỉ giao được thôn, tổ dân phố của xã mình."))
    current = assigned_village_ids(session, member.id)
    removed = current - wanted
    if removed:
        session.execute(
            delete(TeamAssignment).where(
                TeamAssignment.official_id == member.id,
                TeamAssignment.village_id.in_(removed),
            )
        )
    for village_id in sorted(wanted - current):
        session.add(
            TeamAssignment(
                official_id=member.id,
                village_id=village_id,
                assigned_at=now,
                assigned_by=assigned_by,
            )
        )
    session.flush()
    return wanted


def set_official_active(
    session: Session, member: Official, active: bool, *, by: str, now: dt.datetime | None = None
) -> None:
    """Deactivate (every session ends at once) or reactivate an account."""
    now = now or utc_now()
    OFFICIALS.set_active(session, member, active, now)
    logger.info("official %d %s by %s", member.id, "reactivated" if active else "deactivated", by)


def reset_official_totp(
    session: Session, member: Official, *, by: str, now: dt.datetime | None = None
) -> None:
    """Forget the member's authenticator (a lost phone): every session ends, and the next
    sign-in enrols a new one."""
    now = now or utc_now()
    OFFICIALS.reset_totp(session, member, now)
    logger.info("official %d TOTP reset by %s", member.id, by)
