"""The agent portal: the post-office counter side of Soft ATM, served by the same app as the
citizens' pages under ``/quay`` (Vietnamese for "counter")."""

from pathlib import Path

from flask import Blueprint, Flask
from flask_babel import lazy_gettext  # type: ignore[import-untyped]

from kiosk import errors

STATIC_DIR = Path(__file__).resolve().parent / "static"
# At the counter a 403 means a supervisor's page (approvals, statements, alerts).
FORBIDDEN = errors.ErrorText(
    lazy_gettext("Chỉ kiểm soát viên được mở trang này"),
    lazy_gettext(
        "Trang này dành cho kiểm soát viên của điểm bưu điện. Nếu cần duyệt hoặc xem, "
        "hãy nhờ kiểm soát viên."
    ),
)


def init_app(app: Flask) -> None:
    # Imported here: the views import kiosk's modules, which import this package's models.
    from agent_portal.access import load_agent  # noqa: PLC0415
    from agent_portal.auth_views import blueprint as auth  # noqa: PLC0415
    from agent_portal.counter_views import blueprint as counter  # noqa: PLC0415
    from agent_portal.supervisor_views import blueprint as supervisor  # noqa: PLC0415

    app.register_blueprint(
        Blueprint(
            "agent_static",
            __name__,
            static_folder=str(STATIC_DIR),
            static_url_path="/quay/static",
        )
    )
    app.register_blueprint(auth)
    app.register_blueprint(counter)
    app.register_blueprint(supervisor)
    errors.register_area(
        app,
        errors.StaffArea("/quay", "agent/base.html", "counter.home", load_agent, FORBIDDEN),
    )
