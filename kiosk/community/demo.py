"""Demo officials of commune 00226 (Phường Văn Miếu - Quốc Tử Giám) and province 01 (Hà Nội).

Demo only: they share the counter staff's published password and TOTP secret (`kiosk.demo`), so
a newcomer signs in at ``/quan-ly`` at once with any authenticator app. Safe to run twice.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from kiosk.auth.staff import enrol_known_secret
from kiosk.community.models import Official, OfficialRole
from kiosk.community.staff import ADMIN_ACTOR, OFFICIALS, create_official

DEMO_COMMUNE = "00226"
DEMO_PROVINCE = "01"
# (username, full name, role, commune, province)
DEMO_OFFICIALS = [
    ("demo.team", "Lê Văn Tú (demo)", OfficialRole.TEAM_MEMBER, DEMO_COMMUNE, None),
    ("demo.commune", "Nguyễn Thị Hằng (demo)", OfficialRole.COMMUNE_OFFICIAL, DEMO_COMMUNE, None),
    # A second commune official: a welfare batch needs a second pair of eyes to approve.
    ("demo.commune2", "Đỗ Văn Bình (demo)", OfficialRole.COMMUNE_OFFICIAL, DEMO_COMMUNE, None),
    ("demo.province", "Vũ Thị Thu (demo)", OfficialRole.PROVINCE_OFFICIAL, None, DEMO_PROVINCE),
    ("demo.admin", "Quản trị viên (demo)", OfficialRole.ADMIN, None, None),
]


def seed_demo(session: Session, now: dt.datetime) -> list[Official]:
    """Create the demo officials that do not exist yet, enrolled in TOTP; flushes, the caller
    commits. Returns all five."""
    # Imported here: kiosk.demo wires this module in, and its credentials are the ones to share.
    from kiosk.demo import DEMO_STAFF_PASSWORD, DEMO_TOTP_SECRET  # noqa: PLC0415

    officials = []
    for username, full_name, role, commune_code, province_code in DEMO_OFFICIALS:
        official = OFFICIALS.find(session, username)
        if official is None:
            official = create_official(
                session,
                username=username,
                full_name=full_name,
                password=DEMO_STAFF_PASSWORD,
                role=role,
                commune_code=commune_code,
                province_code=province_code,
                created_by=ADMIN_ACTOR,
                now=now,
            )
            enrol_known_secret(official, DEMO_TOTP_SECRET, now)
        officials.append(official)
    session.flush()
    return officials
