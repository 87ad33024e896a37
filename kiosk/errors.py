"""Vietnamese error pages for every HTTP error the app returns, including a failed CSRF check.

Each status has a title and a sentence that tells the person what to do next; the page never
shows internal detail such as an exception message.
"""

from typing import NamedTuple

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError  # type: ignore[import-untyped]  # see extensions.py
from werkzeug.exceptions import HTTPException, InternalServerError


class ErrorText(NamedTuple):
    title: str
    message: str


ERROR_TEXTS: dict[int, ErrorText] = {
    400: ErrorText(
        "Yêu cầu không hợp lệ",
        "Hệ thống không hiểu yêu cầu này. Vui lòng quay lại trang trước và thử lại.",
    ),
    403: ErrorText(
        "Không có quyền truy cập",
        "Bạn không có quyền xem trang này. Nếu cần, hãy hỏi nhân viên bưu điện hoặc cán bộ xã.",
    ),
    404: ErrorText(
        "Không tìm thấy trang",
        "Trang bạn tìm không tồn tại hoặc đã được chuyển đi. Vui lòng kiểm tra lại địa chỉ.",
    ),
    405: ErrorText(
        "Thao tác không được hỗ trợ",
        "Trang này không hỗ trợ thao tác bạn vừa thực hiện. Vui lòng quay lại trang trước.",
    ),
    413: ErrorText(
        "Dữ liệu gửi lên quá lớn",
        "Tệp hoặc biểu mẫu bạn gửi vượt quá dung lượng cho phép. Vui lòng gửi tệp nhỏ hơn.",
    ),
    500: ErrorText(
        "Hệ thống đang gặp sự cố",
        "Đã có lỗi ngoài ý muốn. Vui lòng thử lại sau ít phút; nếu vẫn lỗi, "
        "hãy báo cho nhân viên bưu điện.",
    ),
}
CSRF_ERROR_TEXT = ErrorText(
    "Biểu mẫu đã hết hạn",
    "Biểu mẫu đã hết hạn hoặc không hợp lệ nên chưa được gửi. "
    "Vui lòng tải lại trang rồi điền và gửi lại.",
)
# Statuses without their own text (429 once rate limits exist, say) still get a Vietnamese page.
FALLBACK_ERROR_TEXT = ErrorText(
    "Không thể thực hiện yêu cầu",
    "Yêu cầu chưa thực hiện được. Vui lòng quay lại trang trước và thử lại.",
)


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, render_csrf_error)
    app.register_error_handler(HTTPException, render_http_error)


Headers = list[tuple[str, str]]


def render_http_error(error: HTTPException) -> tuple[str, int, Headers]:
    # Flask hands unhandled exceptions here as InternalServerError, so 500 is covered too.
    status = error.code or InternalServerError.code
    return _render(ERROR_TEXTS.get(status, FALLBACK_ERROR_TEXT), status, error)


def render_csrf_error(error: CSRFError) -> tuple[str, int, Headers]:
    return _render(CSRF_ERROR_TEXT, 400, error)


def _render(text: ErrorText, status: int, error: HTTPException) -> tuple[str, int, Headers]:
    page = render_template(
        "kiosk/error.html", title=text.title, message=text.message, status=status
    )
    # Keep the headers the error itself requires, such as Allow on a 405.
    headers = [(name, value) for name, value in error.get_headers() if name != "Content-Type"]
    return page, status, headers
