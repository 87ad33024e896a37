"""Errors of /api/v1 as RFC 9457 problem details (``application/problem+json``).

Every error an integrator can meet — the API's own refusals, the counter's refusals, and
Flask's HTTP errors (404 for an unknown path, 405, 413, a 500) — leaves as one JSON shape with
a stable ``type`` URI and a stable machine-readable ``code``; ``title`` and ``detail`` are for
people, in Vietnamese. Paths outside /api/v1 keep the site's HTML error pages.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, json, request
from flask_babel import gettext as _  # type: ignore[import-untyped]
from flask_babel import lazy_gettext
from werkzeug.exceptions import HTTPException, InternalServerError

from agent_portal.counter import Refusal
from kiosk import errors

API_PREFIX = "/api/v1"
PROBLEM_TYPE_BASE = "https://softatm.vn/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

# code → (status, title). The codes are part of the API: never rename one, only add.
PROBLEMS: dict[str, tuple[int, str]] = {
    "bad-request": (400, lazy_gettext("Yêu cầu không hợp lệ")),
    "malformed-json": (400, lazy_gettext("Nội dung không phải JSON hợp lệ")),
    "idempotency-key-missing": (400, lazy_gettext("Thiếu tiêu đề Idempotency-Key")),
    "idempotency-key-invalid": (400, lazy_gettext("Idempotency-Key không hợp lệ")),
    "credential-missing": (401, lazy_gettext("Thiếu thông tin xác thực")),
    "credential-invalid": (401, lazy_gettext("Thông tin xác thực không đúng")),
    "credential-revoked": (401, lazy_gettext("Thông tin xác thực đã bị thu hồi")),
    "scope-missing": (403, lazy_gettext("Không có quyền cho thao tác này")),
    "place-forbidden": (403, lazy_gettext("Không có quyền với địa bàn này")),
    "not-found": (404, lazy_gettext("Không tìm thấy")),
    "method-not-allowed": (405, lazy_gettext("Phương thức không được hỗ trợ")),
    "idempotency-in-progress": (409, lazy_gettext("Yêu cầu cùng khoá đang được xử lý")),
    "code-already-paid": (409, lazy_gettext("Mã đã được chi trả")),
    "ticket-expired": (410, lazy_gettext("Phiếu quét đã hết hạn")),
    "body-too-large": (413, lazy_gettext("Dữ liệu gửi lên quá lớn")),
    "unsupported-media-type": (415, lazy_gettext("Chỉ nhận application/json")),
    "validation-failed": (422, lazy_gettext("Dữ liệu không hợp lệ")),
    "idempotency-key-reused": (422, lazy_gettext("Idempotency-Key đã dùng cho yêu cầu khác")),
    "code-unreadable": (422, lazy_gettext("Không đọc được mã")),
    "code-forged": (422, lazy_gettext("Mã giả")),
    "code-tampered": (422, lazy_gettext("Mã đã bị sửa")),
    "code-unknown-key": (422, lazy_gettext("Mã ký bằng khoá không còn dùng")),
    "code-expired": (422, lazy_gettext("Mã đã hết hạn")),
    "code-stale": (422, lazy_gettext("Mã là ảnh cũ")),
    "code-not-yet-valid": (422, lazy_gettext("Mã ghi thời điểm ở tương lai")),
    "code-cancelled": (422, lazy_gettext("Mã đã bị huỷ")),
    "over-post-office-limit": (422, lazy_gettext("Vượt hạn mức chi của điểm bưu điện")),
    "not-enough-cash": (422, lazy_gettext("Két tiền không đủ")),
    "fee-not-covered": (422, lazy_gettext("Ví không đủ trả phí")),
    "identity-mismatch": (422, lazy_gettext("Căn cước không khớp")),
    "face-not-confirmed": (422, lazy_gettext("Chưa xác nhận khuôn mặt")),
    "approval-needed": (422, lazy_gettext("Cần kiểm soát viên phê duyệt")),
    "step-up-needed": (422, lazy_gettext("Cần mã xác thực (TOTP)")),
    "drawer-not-open": (422, lazy_gettext("Két tiền chưa mở")),
    "wrong-commune": (422, lazy_gettext("Phiếu của xã/phường khác")),
    "fallback-refused": (422, lazy_gettext("Mã số không đúng")),
    "cash-in-refused": (422, lazy_gettext("Không nạp được tiền")),
    "code-refused": (422, lazy_gettext("Không tạo được mã")),
    "limit-exceeded": (422, lazy_gettext("Vượt hạn mức giao dịch")),
    "citizen-pin-wrong": (422, lazy_gettext("Số điện thoại hoặc mã PIN không đúng")),
    "citizen-step-up-needed": (422, lazy_gettext("Số tiền cần xác thực hai lớp")),
    "period-invalid": (422, lazy_gettext("Kỳ báo cáo không hợp lệ")),
    "too-many-attempts": (429, lazy_gettext("Thử sai quá nhiều lần")),
    "internal-error": (500, lazy_gettext("Hệ thống đang gặp sự cố")),
}

REFUSAL_CODES: dict[Refusal, str] = {
    Refusal.UNREADABLE: "code-unreadable",
    Refusal.FORGED: "code-forged",
    Refusal.TAMPERED: "code-tampered",
    Refusal.UNKNOWN_KEY: "code-unknown-key",
    Refusal.EXPIRED: "code-expired",
    Refusal.STALE: "code-stale",
    Refusal.NOT_YET_VALID: "code-not-yet-valid",
    Refusal.CANCELLED: "code-cancelled",
    Refusal.ALREADY_PAID: "code-already-paid",
    Refusal.OVER_POST_OFFICE_LIMIT: "over-post-office-limit",
    Refusal.NOT_ENOUGH_CASH: "not-enough-cash",
    Refusal.FEE_NOT_COVERED: "fee-not-covered",
    Refusal.IDENTITY_MISMATCH: "identity-mismatch",
    Refusal.FACE_NOT_CONFIRMED: "face-not-confirmed",
    Refusal.APPROVAL_NEEDED: "approval-needed",
    Refusal.STEP_UP_NEEDED: "step-up-needed",
    Refusal.DRAWER_NOT_OPEN: "drawer-not-open",
    Refusal.WRONG_COMMUNE: "wrong-commune",
}

HTTP_STATUS_CODES: dict[int, str] = {
    400: "bad-request",
    401: "credential-missing",
    403: "scope-missing",
    404: "not-found",
    405: "method-not-allowed",
    410: "ticket-expired",
    413: "body-too-large",
    415: "unsupported-media-type",
    429: "too-many-attempts",
}

# Every status an operation may answer with an error; the OpenAPI document lists them all.
ERROR_STATUSES = (400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 429, 500)


class Problem(Exception):
    """An error answer of the API. ``detail`` is for people; ``code`` is for programs."""

    def __init__(
        self,
        code: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        assert code in PROBLEMS, code
        status, title = PROBLEMS[code]
        super().__init__(code)
        self.code = code
        self.status = status
        self.title = str(title)
        self.detail = self.title if detail is None else detail
        self.headers = headers or {}
        self.extensions = extensions

    def body(self) -> dict[str, Any]:
        return {
            "type": PROBLEM_TYPE_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            **self.extensions,
        }

    def response(self) -> Response:
        return problem_response(self.body(), self.status, self.headers)


def problem_response(
    body: dict[str, Any], status: int, headers: dict[str, str] | None = None
) -> Response:
    response = Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_MEDIA_TYPE
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def refusal_problem(reason: Refusal, message: str) -> Problem:
    return Problem(REFUSAL_CODES[reason], message, reason=reason.value)


def is_api_request() -> bool:
    return request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")


def _http_problem(error: HTTPException) -> Response:
    status = error.code or InternalServerError.code
    code = HTTP_STATUS_CODES.get(status, "internal-error" if status >= 500 else "bad-request")
    if status >= 500:
        problem = Problem("internal-error", _("Đã có lỗi ngoài ý muốn. Vui lòng thử lại sau."))
    else:
        problem = Problem(code)
        # Werkzeug's own description is English boilerplate; keep the status it chose.
        problem.status = status
    # Keep the headers the error itself requires, such as Allow on a 405.
    headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
    return problem_response(problem.body(), problem.status, headers)


def init_app(app: Flask) -> None:
    """Answer errors on /api/v1 paths with problem details; elsewhere, the HTML pages.

    Registered on the app, not only the blueprint: a 404 or 405 on an unknown /api/v1 path
    never reaches the blueprint's handlers."""
    app.register_error_handler(Problem, _render_problem)
    app.register_error_handler(HTTPException, _render_http_error)


def _render_problem(problem: Problem) -> Response:
    return problem.response()


def _render_http_error(error: HTTPException) -> Any:
    if not is_api_request():
        return errors.render_http_error(error)
    # Flask has logged an unhandled exception already (handle_exception), with its traceback.
    return _http_problem(error)
