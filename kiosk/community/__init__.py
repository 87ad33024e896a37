"""Community work: commune and province officials, community digital teams, villages, households,
people and their door-to-door onboarding checklists. Served under ``/quan-ly``.

Each part of the area registers its blueprint in `init_app` and may add its pages to the area's
navigation with `add_area_link`; the navigation shows a link only to the roles named, and only
when its endpoint exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app, g
from flask_babel import lazy_gettext  # type: ignore[import-untyped]

from kiosk import errors
from kiosk.community.models import OfficialRole

AREA_LINKS_KEY = "softatm.community.area_links"


@dataclass(frozen=True)
class AreaLink:
    endpoint: str
    label: str  # a lazy_gettext string, translated when shown
    roles: frozenset[OfficialRole]  # empty: every role


def add_area_link(app: Flask, endpoint: str, label: str, *roles: OfficialRole) -> None:
    """Show ``endpoint`` in the officials' navigation (and on their home page) to ``roles``
    (every role when none; admins see every link). ``label`` must be a `lazy_gettext` string."""
    links: list[AreaLink] = app.extensions.setdefault(AREA_LINKS_KEY, [])
    links.append(AreaLink(endpoint, label, frozenset(roles)))


def official_area_links() -> list[tuple[str, str]]:
    """(endpoint, label) of the area's pages the signed-in official may open, in the order they
    were added."""
    official = g.get("official")
    if official is None:
        return []
    shown = []
    for link in current_app.extensions.get(AREA_LINKS_KEY, []):
        if link.endpoint not in current_app.view_functions:
            continue
        allowed = not link.roles or official.role in {role.value for role in link.roles}
        if allowed or official.role == OfficialRole.ADMIN:
            shown.append((link.endpoint, str(link.label)))
    return shown


def init_app(app: Flask) -> None:
    """Register the officials' and community teams' pages."""
    # Imported here: the views import kiosk's modules, which import this package's models.
    from kiosk.community import household_views as households  # noqa: PLC0415
    from kiosk.community.access import load_official  # noqa: PLC0415
    from kiosk.community.auth_views import blueprint as auth  # noqa: PLC0415
    from kiosk.community.staff_views import blueprint as staff  # noqa: PLC0415

    app.register_blueprint(auth)
    app.register_blueprint(staff)
    households.init_app(app)
    app.context_processor(_area_context)
    errors.register_area(
        app, errors.StaffArea("/quan-ly", "commune/base.html", "community.home", load_official)
    )
    add_area_link(
        app, "community.staff_list", lazy_gettext("Nhân sự"), OfficialRole.COMMUNE_OFFICIAL
    )


def _area_context() -> dict[str, Callable[[], list[tuple[str, str]]]]:
    return {"official_area_links": official_area_links}
