"""Who is in the officials' area (``/quan-ly``) and which places they may see or change.

A session exists only after the password *and* a TOTP code (`kiosk.community.auth_views`); it
ends after 15 idle minutes, 8 hours, sign-out, a password or TOTP change and deactivation.

The places each role reaches:

| role              | sees                      | changes                                    |
|-------------------|---------------------------|--------------------------------------------|
| team member       | own commune               | households and checklists of its villages  |
| commune official  | own commune               | own commune (and every village of it)      |
| province official | communes of own province  | nothing                                    |
| admin             | everything                | everything                                 |

Every page and export asks these functions, never the role directly, so that the table above is
the whole rule.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, overload

from flask import abort, g
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from kiosk.auth.sessions import require, signed_in
from kiosk.community.models import Official, OfficialRole, TeamAssignment, Village
from kiosk.community.staff import OFFICIAL_POLICY, OFFICIALS, PRINCIPAL_KIND
from kiosk.database import get_session
from kiosk.places.models import Commune, Province

__all__ = [
    "SIGN_IN_ENDPOINT",
    "can_edit_commune",
    "can_manage_official",
    "can_see_commune",
    "can_work_in_village",
    "current_official",
    "load_official",
    "official_required",
    "place_of",
    "visible_communes",
]

P = ParamSpec("P")
R = TypeVar("R")
SIGN_IN_ENDPOINT = "official_auth.sign_in"

View = Callable[..., Any]


def load_official() -> Official | None:
    """Set g.official, g.web_session and g.official_place (the official's Commune, Province or
    None) for a live official session; None otherwise."""
    if "official" in g:
        official: Official | None = g.official
        return official
    db = get_session()
    found = signed_in(
        db,
        Official,
        principal_kind=PRINCIPAL_KIND,
        policy=OFFICIAL_POLICY,
        usable=OFFICIALS.can_sign_in,
    )
    g.web_session, g.official = (None, None) if found is None else found
    g.official_place = None if g.official is None else place_of(db, g.official)
    return g.official  # type: ignore[no-any-return]


def place_of(db: Session, official: Official) -> Commune | Province | None:
    """The commune or province an official belongs to (None for an admin)."""
    if official.commune_code is not None:
        return db.get(Commune, official.commune_code)
    if official.province_code is not None:
        return db.get(Province, official.province_code)
    return None


@overload
def official_required(view: View, /) -> View: ...


@overload
def official_required(*roles: OfficialRole) -> Callable[[View], View]: ...


def official_required(*roles: Any) -> Any:
    """View decorator: a signed-in official of one of ``roles`` (any official when none are
    given; admins pass every role check). Anonymous visitors go to the sign-in page and come
    back; other roles get 403. Sets ``g.official``.

    Written ``@official_required()``, ``@official_required(OfficialRole.COMMUNE_OFFICIAL)``, or
    bare ``@official_required``.
    """
    if len(roles) == 1 and callable(roles[0]) and not isinstance(roles[0], OfficialRole):
        return official_required()(roles[0])
    allowed = frozenset(OfficialRole(role) for role in roles)

    def decorator(view: Callable[P, R]) -> Callable[P, R | Any]:
        @functools.wraps(view)
        def only_allowed_roles(*args: P.args, **kwargs: P.kwargs) -> R:
            if allowed and not has_role(current_official(), *allowed):
                abort(403)
            return view(*args, **kwargs)

        return require(load_official, SIGN_IN_ENDPOINT)(only_allowed_roles)

    return decorator


def has_role(official: Official, *roles: OfficialRole) -> bool:
    """Whether the official holds one of ``roles``; admins hold them all."""
    return official.role == OfficialRole.ADMIN or official.role in {role.value for role in roles}


def current_official() -> Official:
    """The signed-in official (only inside a view wrapped by `official_required`)."""
    official: Official | None = g.get("official")
    assert official is not None, "current_official() outside official_required"
    return official


# --- Places ------------------------------------------------------------------------------------


def can_see_commune(
    official: Official, commune_code: str, *, session: Session | None = None
) -> bool:
    """Admins: every commune; province officials: the communes of their province; commune
    officials and team members: their own commune. ``session`` defaults to the request's."""
    if official.role == OfficialRole.ADMIN:
        return True
    if official.role == OfficialRole.PROVINCE_OFFICIAL:
        db = session if session is not None else get_session()
        province_code = db.scalar(select(Commune.province_code).where(Commune.code == commune_code))
        return province_code is not None and province_code == official.province_code
    return official.commune_code is not None and official.commune_code == commune_code


def can_edit_commune(official: Official, commune_code: str) -> bool:
    """Admins, and the commune's own officials. Province officials only read; team members
    change households and checklists only (`can_work_in_village`)."""
    if official.role == OfficialRole.ADMIN:
        return True
    return official.role == OfficialRole.COMMUNE_OFFICIAL and official.commune_code == commune_code


def can_work_in_village(session: Session, official: Official, village_id: int) -> bool:
    """Whether the official may register households and tick checklists in the village: team
    members in the villages assigned to them, commune officials in any village of their commune,
    admins anywhere; province officials nowhere."""
    if official.role == OfficialRole.TEAM_MEMBER:
        assigned = session.scalar(
            select(TeamAssignment.village_id).where(
                TeamAssignment.official_id == official.id,
                TeamAssignment.village_id == village_id,
            )
        )
        return assigned is not None
    commune_code = session.scalar(select(Village.commune_code).where(Village.id == village_id))
    if commune_code is None:
        return False
    if official.role == OfficialRole.ADMIN:
        return True
    return official.role == OfficialRole.COMMUNE_OFFICIAL and official.commune_code == commune_code


def visible_communes(official: Official) -> Select[str]:
    """The codes of the communes the official sees, as a subquery to scope other queries:
    ``select(Household).where(Household.commune_code.in_(visible_communes(official)))``."""
    query = select(Commune.code)
    if official.role == OfficialRole.ADMIN:
        return query
    if official.role == OfficialRole.PROVINCE_OFFICIAL:
        return query.where(Commune.province_code == official.province_code)
    return query.where(Commune.code == official.commune_code)


# --- Staff ---------------------------------------------------------------------------------------


def can_manage_official(manager: Official, member: Official) -> bool:
    """Admins manage everybody but themselves; a commune official manages the team members of
    their own commune; nobody else manages anyone."""
    if manager.id == member.id:
        return False
    if manager.role == OfficialRole.ADMIN:
        return True
    return (
        manager.role == OfficialRole.COMMUNE_OFFICIAL
        and member.role == OfficialRole.TEAM_MEMBER
        and member.commune_code == manager.commune_code
    )


def roles_creatable_by(manager: Official) -> tuple[OfficialRole, ...]:
    """The roles ``manager`` may give a new account (empty: may create nobody)."""
    if manager.role == OfficialRole.ADMIN:
        return tuple(OfficialRole)
    if manager.role == OfficialRole.COMMUNE_OFFICIAL:
        return (OfficialRole.TEAM_MEMBER,)
    return ()
