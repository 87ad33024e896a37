"""The `official_auth` blueprint: how officials and team members get into ``/quan-ly`` and out.

The pages are every staff member's (`kiosk.auth.staff_sign_in`), as at the post-office counter:
a password, then a TOTP code (enrolment in an authenticator app at the first sign-in), then a
server-side session of at most 15 idle minutes and 8 hours. Sign-ins go to the log, with the
official's row id and never a password or a code.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask_babel import lazy_gettext  # type: ignore[import-untyped]
from sqlalchemy.orm import Session

from kiosk import metrics
from kiosk.auth.models import WebSession
from kiosk.auth.staff_sign_in import StaffPageWords, StaffSignIn, WrongCode
from kiosk.community.access import load_official, official_required
from kiosk.community.models import Official
from kiosk.community.staff import OFFICIALS

HOME_ENDPOINT = "community.home"
TOTP_ISSUER = "Quản lý ATM mềm"
USERNAME_LOGGED_MAX_CHARS = 40

logger = logging.getLogger(__name__)

__all__ = ["WrongCode", "blueprint", "step_up"]


class OfficialLogTrail:
    """Officials' sign-ins in the application log (there is no officials' audit table)."""

    def record(self, db: Session, member: Official, event: str, now: dt.datetime) -> None:
        logger.info("official %d %s", member.id, event)

    def refuse(
        self, db: Session, member: Official | None, username: str, now: dt.datetime, detail: str
    ) -> None:
        if member is None:
            logger.warning(
                "official sign-in refused for %r: %s", username[:USERNAME_LOGGED_MAX_CHARS], detail
            )
        else:
            logger.warning("official %d sign-in refused: %s", member.id, detail)


PAGES = StaffSignIn(
    directory=OFFICIALS,
    name="official_auth",
    url_prefix="/quan-ly",
    home_endpoint=HOME_ENDPOINT,
    words=StaffPageWords(
        base_template="commune/base.html",
        area_name=lazy_gettext("Quản lý ATM mềm"),
        sign_in_heading=lazy_gettext("Đăng nhập trang quản lý"),
        sign_in_lead=lazy_gettext(
            "Dành cho tổ công nghệ số cộng đồng, cán bộ xã, phường và cán bộ tỉnh."
        ),
        sign_in_hint=lazy_gettext(
            "Sau mật khẩu, bạn nhập mã 6 số trên ứng dụng xác thực. Quên mật khẩu hoặc mất "
            "điện thoại? Hãy báo cán bộ xã, phường quản lý tổ của bạn."
        ),
        totp_lead=lazy_gettext(
            "Mở ứng dụng xác thực trên điện thoại và nhập mã 6 số của Quản lý ATM mềm."
        ),
        enrol_lead=lazy_gettext(
            "Lần đầu đăng nhập trang quản lý: mỗi lần đăng nhập sau này, ngoài mật khẩu bạn sẽ "
            "nhập mã 6 số do ứng dụng trên điện thoại của bạn tạo ra."
        ),
        qr_alt=lazy_gettext("Mã QR để thêm Quản lý ATM mềm vào ứng dụng xác thực"),
        home_link=lazy_gettext("Quay lại trang chính"),
    ),
    totp_issuer=TOTP_ISSUER,
    load_member=load_official,
    member_required=official_required(),
    audit=OfficialLogTrail(),
    password_failure=metrics.LoginFailure.OFFICIAL_PASSWORD,
)
blueprint = PAGES.blueprint()


def step_up(official: Official, web_session: WebSession, raw_code: str, now: dt.datetime) -> bool:
    """True when ``raw_code`` is a fresh code of the signed-in official (the session is marked
    stepped up), False for a wrong or used code; `kiosk.auth.throttles.Locked` after too many.
    For a second proof before a grave act, such as approving a welfare batch."""
    return PAGES.step_up(official, web_session, raw_code, now)
