"""The web skeleton end to end through Flask's test client: pages, headers, errors, CLI."""

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy
from click.testing import CliRunner
from flask import Flask, abort, session
from flask.testing import FlaskClient

from kiosk.cli import main
from kiosk.config import REQUEST_SIZE_MAX_BYTES
from kiosk.security import CONTENT_SECURITY_POLICY, mark_no_store

AppFactory = Callable[..., Flask]
PRODUCTION_SETTINGS = {
    "SOFTATM_ENV": "production",
    # Never connected to: these tests only need the app to start with a PostgreSQL URL.
    "DATABASE_URL": "postgresql://softatm@127.0.0.1:1/softatm",
    "KEYS_DIR": "/etc/softatm/keys",
}


def test_healthz_answers_ok(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_healthz_does_not_touch_the_database(make_app: AppFactory) -> None:
    # Port 1 on loopback refuses connections: any database access would fail the request.
    app = make_app(DATABASE_URL="postgresql://softatm@127.0.0.1:1/softatm")
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_home_page_is_in_vietnamese(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.mimetype_params["charset"] == "utf-8"
    html = response.get_data(as_text=True)
    assert '<html lang="vi">' in html
    assert "<title>ATM mềm</title>" in html
    assert "<h1>ATM mềm</h1>" in html
    for words in ("người dân", "giao dịch viên", "cán bộ xã", "bưu điện văn hóa xã"):
        assert words in html


def test_pages_work_without_javascript_or_inline_styles(client: FlaskClient) -> None:
    # The CSP forbids inline styles and scripts, so the page must not depend on any.
    html = client.get("/").get_data(as_text=True)
    assert "<script" not in html
    assert "<style" not in html
    assert " style=" not in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html

    stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+)">', html)
    assert stylesheet is not None
    response = client.get(stylesheet.group(1))
    assert response.status_code == 200
    assert response.mimetype == "text/css"
    response.close()


@pytest.mark.parametrize("path", ["/", "/healthz", "/static/softatm.css", "/no-such-page"])
def test_security_headers_on_every_response(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    # HSTS only in production: a browser would remember it for a development host too.
    assert "Strict-Transport-Security" not in response.headers
    response.close()


def test_content_security_policy_allows_only_own_resources() -> None:
    directives = dict(directive.split(" ", 1) for directive in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert "script-src" not in directives  # so scripts fall back to default-src 'self'


def test_production_adds_strict_transport_security(make_app: AppFactory) -> None:
    app = make_app(**PRODUCTION_SETTINGS)
    response = app.test_client().get("/healthz")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=63072000")


def test_production_session_cookie_is_secure_host_only_httponly_lax(
    make_app: AppFactory,
) -> None:
    app = make_app(**PRODUCTION_SETTINGS)

    @app.get("/sign-in-for-test")
    def sign_in_for_test() -> str:
        session["citizen_id"] = 1
        return "ok"

    cookie = app.test_client().get("/sign-in-for-test").headers["Set-Cookie"]
    assert cookie.startswith("__Host-softatm_session=")
    assert "; Secure" in cookie
    assert "; HttpOnly" in cookie
    assert "; SameSite=Lax" in cookie
    assert "; Path=/" in cookie
    assert "Domain=" not in cookie


def test_development_session_cookie_is_httponly_lax_not_secure(app: Flask) -> None:
    @app.get("/sign-in-for-test")
    def sign_in_for_test() -> str:
        session["citizen_id"] = 1
        return "ok"

    cookie = app.test_client().get("/sign-in-for-test").headers["Set-Cookie"]
    assert cookie.startswith("softatm_session=")
    assert "; HttpOnly" in cookie
    assert "; SameSite=Lax" in cookie
    # Plain-HTTP development would never send a Secure cookie back.
    assert "; Secure" not in cookie


def test_no_store_hook_keeps_private_pages_out_of_caches(app: Flask) -> None:
    @app.get("/balance-for-test")
    def balance_for_test() -> str:
        mark_no_store()
        return "private"

    client = app.test_client()
    assert client.get("/balance-for-test").headers["Cache-Control"] == "no-store"
    assert "Cache-Control" not in client.get("/").headers


def test_not_found_page_is_in_vietnamese(client: FlaskClient) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert '<html lang="vi">' in html
    assert "Không tìm thấy trang" in html
    assert "Về trang chủ" in html


@pytest.mark.parametrize(
    ("status", "title"),
    [
        (400, "Yêu cầu không hợp lệ"),
        (403, "Không có quyền truy cập"),
        (404, "Không tìm thấy trang"),
        (429, "Không thể thực hiện yêu cầu"),
    ],
)
def test_http_errors_have_vietnamese_pages(app: Flask, status: int, title: str) -> None:
    @app.get("/fail-for-test")
    def fail_for_test() -> str:
        abort(status)

    response = app.test_client().get("/fail-for-test")
    assert response.status_code == status
    assert title in response.get_data(as_text=True)


def test_method_not_allowed_keeps_allow_header(client: FlaskClient) -> None:
    response = client.delete("/")
    assert response.status_code == 405
    assert "Thao tác không được hỗ trợ" in response.get_data(as_text=True)
    assert "GET" in response.headers["Allow"]


def test_unhandled_exception_gives_vietnamese_500_without_details(
    make_app: AppFactory,
) -> None:
    # TESTING re-raises exceptions by default; turn that off to see what a visitor sees.
    app = make_app(PROPAGATE_EXCEPTIONS=False)

    @app.get("/crash-for-test")
    def crash_for_test() -> str:
        raise RuntimeError("secret internal detail")

    response = app.test_client().get("/crash-for-test")
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert "Hệ thống đang gặp sự cố" in html
    assert "secret internal detail" not in html
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_post_without_csrf_token_gets_vietnamese_400(app: Flask) -> None:
    @app.post("/form-for-test")
    def form_for_test() -> str:
        return "accepted"

    response = app.test_client().post("/form-for-test", data={"amount_vnd": "500000"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Biểu mẫu đã hết hạn" in html
    assert "accepted" not in html


def test_request_body_is_bounded(app: Flask) -> None:
    @app.post("/form-for-test")
    def form_for_test() -> str:
        return "accepted"

    response = app.test_client().post(
        "/form-for-test",
        data=b"x" * (REQUEST_SIZE_MAX_BYTES + 1),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413
    assert "Dữ liệu gửi lên quá lớn" in response.get_data(as_text=True)


def test_cli_lists_its_commands_and_not_the_development_server(app: Flask) -> None:
    result = app.test_cli_runner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    for command in ("db-upgrade", "demo-data", "ledger", "shell", "routes"):
        assert command in result.output
    assert re.search(r"^\s+run\b", result.output, re.MULTILINE) is None


def test_cli_ledger_group_is_registered(app: Flask) -> None:
    result = app.test_cli_runner().invoke(main, ["ledger", "--help"])
    assert result.exit_code == 0, result.output
    assert "Inspect and check the double-entry ledger." in result.output


def test_cli_db_upgrade_then_demo_data(make_app: AppFactory, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path}/softatm.sqlite3"
    runner = make_app(DATABASE_URL=database_url).test_cli_runner()

    upgraded = runner.invoke(main, ["db-upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    engine = sqlalchemy.create_engine(database_url)
    try:
        assert "alembic_version" in sqlalchemy.inspect(engine).get_table_names()
    finally:
        engine.dispose()

    loaded = runner.invoke(main, ["demo-data"])
    assert loaded.exit_code == 0, loaded.output
    assert "Demo data loaded." in loaded.output


def test_cli_demo_data_is_refused_in_production(make_app: AppFactory) -> None:
    runner = make_app(**PRODUCTION_SETTINGS).test_cli_runner()
    result = runner.invoke(main, ["demo-data"])
    assert result.exit_code != 0
    assert "refuses to run with SOFTATM_ENV=production" in result.output


def test_cli_reports_a_bad_configuration_without_a_traceback() -> None:
    result = CliRunner().invoke(main, ["db-upgrade"], env={"SOFTATM_TYPO": "1"})
    assert result.exit_code == 1
    assert "Error: Soft ATM cannot start:" in result.output
    assert "SOFTATM_TYPO is not a Soft ATM setting" in result.output
    assert "Traceback" not in result.output


def test_readyz_checks_database_migrations_and_keys(web_client: FlaskClient) -> None:
    response = web_client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "keys": "ok"},
    }


def test_readyz_is_not_ready_without_a_migrated_database(make_app: AppFactory) -> None:
    response = make_app(DATABASE_URL="sqlite://").test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["checks"]["migrations"].startswith("at None, head is ")


def test_readyz_is_not_ready_without_keys_in_production(
    make_app: AppFactory, tmp_path: Path
) -> None:
    app = make_app(**{**PRODUCTION_SETTINGS, "KEYS_DIR": str(tmp_path / "empty")})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json is not None
    assert "cannot be read" in response.json["checks"]["keys"]
    assert "unreachable" in response.json["checks"]["database"]


@pytest.mark.parametrize("path", ["/tra-tien", "/quay/anh"])
def test_photo_uploads_may_exceed_the_site_wide_limit_before_the_csrf_check(
    app: Flask, path: str
) -> None:
    # The CSRF check reads the form before any view runs, so a photo's larger limit must already
    # be in place: a 3 MB photo without a token is refused for the token (400), not its size.
    response = app.test_client().post(
        path,
        data=b"x" * (3 * 1024 * 1024),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert "Biểu mẫu đã hết hạn" in response.get_data(as_text=True)
