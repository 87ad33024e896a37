"""Error pages for every HTTP error the app returns, including a failed CSRF check.

Each status has a title and a sentence that tells the person what to do next; the page never
shows internal detail such as an exception message. Under a staff area's path (the counter, the
officials' area) the page wears that area's layout and leads back to its home page, not the
citizens' (see `register_area`).
"""

from collections.abc import Callable
from typing import Any, NamedTuple

from flask import Flask, current_app, render_template, request
from flask_babel import lazy_gettext  # type: ignore[import-untyped]
from flask_wtf.csrf import CSRFError  # type: ignore[import-untyped]  # see extensions.py
from werkzeug.exceptions import HTTPException, InternalServerError


class ErrorText(NamedTuple):
    """Lazy strings: translated when a page is rendered, into the visitor's language."""

    title: str
    message: str


ERROR_TEXTS: dict[int, ErrorText] = {
    400: ErrorText(
        lazy_gettext("Yêu cầu không hợp lệ"),
        lazy_gettext("Hệ thống không hiểu yêu cầu này. Vui lòng quay lại trang trước và thử lại."),
    ),
    403: ErrorText(
        lazy_gettext("Không có quyền truy cập"),
        lazy_gettext(
            "Bạn không có quyền xem trang này. Nếu cần, hãy hỏi nhân viên bưu điện hoặc cán bộ xã."
        ),
    ),
    404: ErrorText(
        lazy_gettext("Không tìm thấy trang"),
        lazy_gettext(
            "Trang bạn tìm không tồn tại hoặc đã được chuyển đi. Vui lòng kiểm tra lại địa chỉ."
        ),
    ),
    405: ErrorText(
        lazy_gettext("Thao tác không được hỗ trợ"),
        lazy_gettext(
            "Trang này không hỗ trợ thao tác bạn vừa thực hiện. Vui lòng quay lại trang trước."
        ),
    ),
    413: ErrorText(
        lazy_gettext("Dữ liệu gửi lên quá lớn"),
        lazy_gettext(
            "Tệp hoặc biểu mẫu bạn gửi vượt quá dung lượng cho phép. Vui lòng gửi tệp nhỏ hơn."
        ),
    ),
    500: ErrorText(
        lazy_gettext("Hệ thống đang gặp sự cố"),
        lazy_gettext(
            "Đã có lỗi ngoài ý muốn. Vui lòng thử lại sau ít phút; nếu vẫn lỗi, "
            "hãy báo cho nhân viên bưu điện."
        ),
    ),
}
CSRF_ERROR_TEXT = ErrorText(
    lazy_gettext("Biểu mẫu đã hết hạn"),
    lazy_gettext(
        "Biểu mẫu đã hết hạn hoặc không hợp lệ nên chưa được gửi. "
        "Vui lòng tải lại trang rồi điền và gửi lại."
    ),
)
# Statuses without their own text (429 once rate limits exist, say) still get a readable page.
FALLBACK_ERROR_TEXT = ErrorText(
    lazy_gettext("Không thể thực hiện yêu cầu"),
    lazy_gettext("Yêu cầu chưa thực hiện được. Vui lòng quay lại trang trước và thử lại."),
)


class StaffArea(NamedTuple):
    """A staff area's error pages: under `prefix`, the page extends `layout` and its button
    leads to the endpoint `home`; `load_member` sets what the layout reads of who is signed in
    (g.agent, g.official), so that a signed-in member keeps the area's navigation."""

    prefix: str
    layout: str
    home: str
    load_member: Callable[[], Any]
    # What a 403 means in this area, when the citizens' wording does not fit its staff.
    forbidden: ErrorText | None = None


_AREAS = "softatm_error_areas"


def init_app(app: Flask) -> None:
    app.extensions[_AREAS] = []
    app.register_error_handler(CSRFError, render_csrf_error)
    app.register_error_handler(HTTPException, render_http_error)


def register_area(app: Flask, area: StaffArea) -> None:
    app.extensions[_AREAS].append(area)


Headers = list[tuple[str, str]]


def render_http_error(error: HTTPException) -> tuple[str, int, Headers]:
    # Flask hands unhandled exceptions here as InternalServerError, so 500 is covered too.
    status = error.code or InternalServerError.code
    return _render(ERROR_TEXTS.get(status, FALLBACK_ERROR_TEXT), status, error)


def render_csrf_error(error: CSRFError) -> tuple[str, int, Headers]:
    return _render(CSRF_ERROR_TEXT, 400, error)


def _area(status: int) -> StaffArea | None:
    path = request.path
    for area in current_app.extensions.get(_AREAS, ()):
        if path == area.prefix or path.startswith(area.prefix + "/"):
            if status < InternalServerError.code:
                # Not after a failure: the lookup reads the database, which may be what failed.
                area.load_member()
            return area  # type: ignore[no-any-return]
    return None


def _render(text: ErrorText, status: int, error: HTTPException) -> tuple[str, int, Headers]:
    area = _area(status)
    if area is not None and area.forbidden is not None and status == 403:
        text = area.forbidden
    page = render_template(
        "kiosk/error.html",
        title=text.title,
        message=text.message,
        status=status,
        layout=area.layout if area else "base.html",
        home=area.home if area else "kiosk.home",
    )
    # Keep the headers the error itself requires, such as Allow on a 405.
    headers = [(name, value) for name, value in error.get_headers() if name != "Content-Type"]
    return page, status, headers
