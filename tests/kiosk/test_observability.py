"""Request ids, JSON log lines without personal data, the metrics and who may read them, and the
reverse proxy's forwarded address.

prometheus_client's registry is one per process and shared by every test (and, on PostgreSQL,
by data other tests left), so the tests read a counter before and after, never its total.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from sqlalchemy import select
from test_citizen_helpers import PIN, find_citizen, register, sign_in

from kiosk import database, metrics
from kiosk.config import ConfigError, load
from kiosk.observability import (
    REQUEST_ID_HEADER,
    REQUEST_LOGGER,
    JsonFormatter,
    RedactPersonalData,
    json_handler,
    redact,
    redact_value,
    request_id_from,
)
from kiosk.payments import codes
from kiosk.payments.models import IssuedCode
from tests.kiosk import citizen_support
from tests.kiosk.conftest import AppFactory

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def requests_counted(endpoint: str, status: int, method: str = "GET") -> float:
    return sample(
        "softatm_http_requests_total", endpoint=endpoint, method=method, status=str(status)
    )


class JsonLines:
    """Every record that reaches the root logger, as the production handler writes it."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def entries(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.text.splitlines()]

    def requests(self) -> list[dict[str, object]]:
        return [entry for entry in self.entries() if entry["logger"] == REQUEST_LOGGER]


@pytest.fixture
def json_lines(caplog: pytest.LogCaptureFixture) -> Iterator[JsonLines]:
    lines = JsonLines()
    handler = json_handler(lines.stream)
    root = logging.getLogger()
    caplog.set_level(logging.DEBUG, logger=REQUEST_LOGGER)
    caplog.set_level(logging.INFO)
    root.addHandler(handler)
    yield lines
    root.removeHandler(handler)


# --- Request ids --------------------------------------------------------------------------------


def test_a_request_id_is_made_and_returned(client: FlaskClient, json_lines: JsonLines) -> None:
    first = client.get("/healthz").headers[REQUEST_ID_HEADER]
    second = client.get("/healthz").headers[REQUEST_ID_HEADER]
    assert GENERATED_ID.fullmatch(first)
    assert GENERATED_ID.fullmatch(second)
    assert first != second
    assert [entry["request_id"] for entry in json_lines.requests()] == [first, second]


def test_the_proxys_request_id_is_kept(client: FlaskClient, json_lines: JsonLines) -> None:
    response = client.get("/", headers={REQUEST_ID_HEADER: "nginx-4f2a-9c"})
    assert response.headers[REQUEST_ID_HEADER] == "nginx-4f2a-9c"
    assert json_lines.requests()[-1]["request_id"] == "nginx-4f2a-9c"


@pytest.mark.parametrize(
    "bad",
    ["", "has space", "semi;colon", "a" * 65, "ünïcode", "line\nbreak", "<script>", "a_b"],
)
def test_a_bad_incoming_request_id_is_replaced(bad: str) -> None:
    assert GENERATED_ID.fullmatch(request_id_from(bad))


def test_a_bad_incoming_request_id_is_replaced_in_the_response(client: FlaskClient) -> None:
    response = client.get("/healthz", headers={REQUEST_ID_HEADER: "x" * 65})
    assert GENERATED_ID.fullmatch(response.headers[REQUEST_ID_HEADER])


def test_a_sane_request_id_of_64_characters_is_kept() -> None:
    assert request_id_from("A-z0" * 16) == "A-z0" * 16


# --- The request's log line ---------------------------------------------------------------------


def test_each_request_logs_one_json_line(client: FlaskClient, json_lines: JsonLines) -> None:
    response = client.get("/?so_dien_thoai=0912345678")
    (entry,) = json_lines.requests()
    assert entry["level"] == "INFO"
    assert entry["message"] == "GET / 200"
    assert entry["method"] == "GET"
    assert entry["endpoint"] == "kiosk.home"
    assert entry["path"] == "/"  # never the query string
    assert entry["status"] == 200
    assert isinstance(entry["duration_ms"], float)
    assert entry["request_id"] == response.headers[REQUEST_ID_HEADER]
    assert (entry["principal_kind"], entry["principal_id"]) == (None, None)
    assert dt.datetime.fromisoformat(str(entry["time"])).tzinfo is not None
    assert "0912345678" not in json_lines.text


def test_probes_log_below_info(client: FlaskClient, json_lines: JsonLines) -> None:
    client.get("/healthz")
    assert [entry["level"] for entry in json_lines.requests()] == ["DEBUG"]


def test_a_failing_request_is_logged_with_its_id_and_counts_nothing(
    make_app: AppFactory, json_lines: JsonLines
) -> None:
    app = make_app(PROPAGATE_EXCEPTIONS=False)

    @app.get("/test-failure")
    def failure() -> str:
        metrics.code_issued("observability-test-failure")
        raise RuntimeError("citizen 001203004567 phoned from 0912345678")

    before = sample("softatm_codes_issued_total", kind="observability-test-failure")
    response = app.test_client().get("/test-failure")
    assert response.status_code == 500
    request_id = response.headers[REQUEST_ID_HEADER]
    (line,) = json_lines.requests()
    assert (line["status"], line["request_id"]) == (500, request_id)
    (error,) = [entry for entry in json_lines.entries() if entry["level"] == "ERROR"]
    assert error["request_id"] == request_id
    assert "RuntimeError: citizen [citizen-id] phoned from [phone]" in str(error["exception"])
    assert "001203004567" not in json_lines.text
    assert "0912345678" not in json_lines.text
    assert sample("softatm_codes_issued_total", kind="observability-test-failure") == before


@pytest.fixture
def web(web_app: Flask) -> Flask:
    web_app.config["WTF_CSRF_ENABLED"] = False
    return web_app


def test_citizens_pages_log_no_phone_citizen_id_pin_or_token(
    web: Flask, json_lines: JsonLines
) -> None:
    browser = web.test_client()
    registered, form = register(browser)
    assert registered.status_code in {302, 303}, registered.text
    phone, citizen_id = form["phone"], form["citizen_id"]
    assert browser.get("/tai-khoan").status_code == 200
    browser.post("/dang-xuat")
    assert sign_in(browser, phone, "975310").status_code == 422
    assert sign_in(browser, phone, PIN).status_code in {302, 303}
    browser.get(f"/dang-nhap?phone={phone}&pin={PIN}&cccd={citizen_id}")

    # A code page, and requests that carry the code's token and the numbers in their path.
    owner = citizen_support.make_citizen(web, balance_vnd=600_000)
    citizen_support.sign_in(browser, web, owner)
    assert browser.post("/rut-tien", data={"so_tien": "200000"}).status_code == 303
    with web.test_request_context(), database.database().sessions() as db:
        record = db.scalars(select(IssuedCode).where(IssuedCode.citizen_id == owner.id)).one()
        token = codes.show_code(db, record, dt.datetime.now(dt.UTC)).token
    assert browser.get(f"/ma/{record.id}").status_code == 200
    assert browser.get(f"/ma/{record.id}/qr.png").status_code == 200
    assert browser.get("/" + quote(token, safe="")).status_code == 404
    assert browser.get(f"/nguoi-dan/{owner.phone}/{citizen_id}").status_code == 404

    assert json_lines.entries()  # each line parses as one JSON object
    for secret in (phone, phone[1:], owner.phone, citizen_id, PIN, token):
        assert not re.search(
            rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", json_lines.text
        )
    lines = json_lines.requests()
    assert len(lines) >= 10
    assert {"[code-token]", "[phone]", "[citizen-id]"} <= set(
        part for line in lines for part in str(line["path"]).split("/")
    )
    # Signed in: who, by kind and row id only.
    registered_citizen = find_citizen(web, phone)
    assert registered_citizen is not None
    settings = next(line for line in lines if line["path"] == "/tai-khoan")
    assert (settings["principal_kind"], settings["principal_id"]) == (
        "citizen",
        registered_citizen.id,
    )
    shown = next(line for line in lines if line["path"] == f"/ma/{record.id}")
    assert (shown["principal_kind"], shown["principal_id"]) == ("citizen", owner.id)
    assert all(GENERATED_ID.fullmatch(str(line["request_id"])) for line in lines)


# --- Redaction ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("phone 0912345678 called", "phone [phone] called"),
        ("so_dien_thoai=0912345678&x=1", "so_dien_thoai=[phone]&x=1"),
        ("+84912345678", "[phone]"),
        ("+84 912 345 678", "[phone]"),
        ("84912345678", "[phone]"),
        ("0912.345.678", "[phone]"),
        ("0912-345-678", "[phone]"),
        ("landline 0243 826 4321", "landline [phone]"),
        ("(+84) 24 3826 4321", "[phone]"),
        ("citizen 001203004567.", "citizen [citizen-id]."),
        ("/nguoi-dan/001203004567/x", "/nguoi-dan/[citizen-id]/x"),
        ("pin=123456", "pin=[redacted]"),
        ("current_pin: 123456", "current_pin: [redacted]"),
        ("{'code': '654321'}", "{'code': '[redacted]'}"),
        (
            "('pin', '246813'), ('pin_again', '246813')",
            "('pin', '[redacted]'), ('pin_again', '[redacted]')",
        ),
        ("ma_xac_thuc=987654", "ma_xac_thuc=[redacted]"),
        ("ma_so=12345678", "ma_so=[redacted]"),
        ("password=correct-horse", "password=[redacted]"),
        ("Authorization: Bearer abc.def-123", "Authorization=[redacted] [redacted]"),
        ("token='xyz'", "token=[redacted]'"),
    ],
)
def test_personal_data_is_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "GET /ma/6f1c2a9e-0123-4567-8901-123456789012 200",
        "request 2b937a5280584ce775f620c2a2a7b6bb",
        "at 2026-05-01T10:00:00.0912345678Z",
        "amount 1.500.000\u00a0₫, fee 3300, balance 100000000",
        "duration 0.1234567890 s",
        "code=404",
        "status code 1234567890123",
        "commune 00226, province 01",
    ],
)
def test_ordinary_values_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_a_code_token_is_redacted(make_app: AppFactory) -> None:
    from kiosk.codes import tokens
    from kiosk.keys import code_key_ring

    app = make_app()
    with app.app_context():
        token = tokens.issue(
            code_key_ring(),
            kind=tokens.CodeKind.WITHDRAWAL,
            account_id=7,
            amount_vnd=500_000,
            now=dt.datetime.now(dt.UTC),
            ttl_s=900,
        ).token
    assert redact(f"scanned {token} at the counter") == "scanned [code-token] at the counter"


def test_redacting_log_fields_by_name() -> None:
    assert redact_value("pin", 123456) == "[redacted]"
    assert redact_value("code", "654321") == "[redacted]"
    assert redact_value("code", "cash_in") == "cash_in"
    assert redact_value("password", "x") == "[redacted]"
    assert redact_value("status", 200) == 200
    assert redact_value("duration_ms", 12.5) == 12.5
    assert redact_value("citizen", 1203004567) == 1203004567
    assert redact_value("number", 101203004567) == "[citizen-id]"
    assert redact_value(
        "form", {"phone": "0912345678", "pin": "246813", "n": [1, "0912345678"]}
    ) == {
        "phone": "[phone]",
        "pin": "[redacted]",
        "n": [1, "[phone]"],
    }


def _record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("test", logging.WARNING, __file__, 1, msg, args or None, None)
    record.__dict__.update(extra)
    return record


def test_the_filter_redacts_message_arguments_and_extra_fields() -> None:
    record = _record(
        "sign-in of %s with %s",
        "0912345678",
        "pin=246813",
        form={"citizen_id": "001203004567"},
    )
    assert RedactPersonalData().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "sign-in of [phone] with pin=[redacted]"
    assert line["form"] == {"citizen_id": "[citizen-id]"}
    assert line["request_id"] is None
    assert set(line) == {"time", "level", "logger", "message", "request_id", "form"}


def test_the_filter_redacts_tracebacks() -> None:
    try:
        raise ValueError("no citizen with phone 0912345678")
    except ValueError:
        record = logging.LogRecord(
            "test", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )
    RedactPersonalData().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert "ValueError: no citizen with phone [phone]" in line["exception"]
    assert "0912345678" not in json.dumps(line)


def test_a_record_that_cannot_be_formatted_is_withheld_not_raised() -> None:
    record = _record("%d items", "not a number", phone="0912345678")
    assert RedactPersonalData().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert "withheld" in line["message"]
    assert "phone" not in line


def test_the_filter_adds_the_request_id(app: Flask) -> None:
    with app.test_request_context():
        g.request_id = "req-1"
        record = _record("inside a request")
        RedactPersonalData().filter(record)
    assert json.loads(JsonFormatter().format(record))["request_id"] == "req-1"


# --- Metrics ------------------------------------------------------------------------------------


def test_metrics_from_loopback_show_the_requests(client: FlaskClient) -> None:
    before = requests_counted("kiosk.home", 200)
    client.get("/")
    client.get("/")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert requests_counted("kiosk.home", 200) == before + 2
    expected = 'softatm_http_requests_total{endpoint="kiosk.home",method="GET",status="200"} '
    assert f"{expected}{before + 2}" in response.text
    assert "softatm_http_request_duration_seconds_bucket" in response.text
    assert 'softatm_login_failures_total{kind="totp"}' in response.text


def test_unknown_paths_and_methods_share_one_series_each(client: FlaskClient) -> None:
    before = requests_counted("unmatched", 404)
    client.get(f"/no-such-page-{uuid.uuid4()}")
    assert requests_counted("unmatched", 404) == before + 1
    before = requests_counted("unmatched", 405, method="other")
    client.open("/", method="BREW")
    assert requests_counted("unmatched", 405, method="other") == before + 1


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.53", "::1", "::ffff:127.0.0.1"])
def test_metrics_are_open_to_loopback(client: FlaskClient, address: str) -> None:
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": address}).status_code == 200


@pytest.mark.parametrize("address", ["10.0.0.5", "203.0.113.9", "2001:db8::1", "", "unix"])
def test_metrics_are_hidden_from_other_addresses(client: FlaskClient, address: str) -> None:
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": address}).status_code == 404


def test_metrics_through_a_proxy_on_this_host_are_hidden(client: FlaskClient) -> None:
    response = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 404


def test_metrics_token_opens_metrics_to_a_remote_scraper(make_app: AppFactory) -> None:
    token = "metrics-token-for-the-tests-0123456789"
    client = make_app(METRICS_TOKEN=token).test_client()
    remote = {"REMOTE_ADDR": "10.0.0.5"}
    assert client.get("/metrics", environ_base=remote).status_code == 404
    for wrong in (f"Bearer {token}x", "Bearer ", token, f"Basic {token}"):
        response = client.get("/metrics", environ_base=remote, headers={"Authorization": wrong})
        assert response.status_code == 404, wrong
    for right in (f"Bearer {token}", f"bearer {token}"):
        response = client.get("/metrics", environ_base=remote, headers={"Authorization": right})
        assert response.status_code == 200
        assert "softatm_http_requests_total" in response.text


def test_without_a_token_an_empty_bearer_opens_nothing(client: FlaskClient) -> None:
    assert client.application.config["METRICS_TOKEN"] == ""
    response = client.get(
        "/metrics", environ_base={"REMOTE_ADDR": "10.0.0.5"}, headers={"Authorization": "Bearer "}
    )
    assert response.status_code == 404


def test_counts_of_committed_work_wait_for_a_successful_response(app: Flask) -> None:
    kind = "observability-test-deferred"
    before = sample("softatm_codes_issued_total", kind=kind)
    for status, counted in ((422, 0), (500, 0), (303, 1)):
        with app.test_request_context():
            metrics.code_issued(kind)
            assert sample("softatm_codes_issued_total", kind=kind) == before
            metrics.apply_committed(status)
        before += counted
        assert sample("softatm_codes_issued_total", kind=kind) == before
    with app.app_context():  # a command: counted at once
        metrics.code_issued(kind)
    assert sample("softatm_codes_issued_total", kind=kind) == before + 1


def test_code_and_ledger_counters_follow_the_citizens_pages(web: Flask) -> None:
    browser = web.test_client()
    owner = citizen_support.make_citizen(web, balance_vnd=900_000)
    citizen_support.sign_in(browser, web, owner)
    issued = sample("softatm_codes_issued_total", kind="withdrawal")
    reserved = sample("softatm_ledger_transfers_total", code="withdrawal")
    cancelled = sample("softatm_ledger_transfers_total", code="cancelled")
    expired_codes = sample("softatm_codes_expired_total")
    expired = sample("softatm_ledger_transfers_total", code="expired")

    assert browser.post("/rut-tien", data={"so_tien": "abc"}).status_code >= 400
    assert sample("softatm_codes_issued_total", kind="withdrawal") == issued
    assert browser.post("/rut-tien", data={"so_tien": "300000"}).status_code == 303
    assert browser.post("/rut-tien", data={"so_tien": "200000"}).status_code == 303
    assert sample("softatm_codes_issued_total", kind="withdrawal") == issued + 2
    assert sample("softatm_ledger_transfers_total", code="withdrawal") == reserved + 2

    with web.app_context(), database.database().sessions() as db:
        first, second = db.scalars(
            select(IssuedCode)
            .where(IssuedCode.citizen_id == owner.id)
            .order_by(IssuedCode.created_at)
        ).all()
    assert browser.post(f"/ma/{first.id}/huy").status_code == 303
    assert sample("softatm_ledger_transfers_total", code="cancelled") == cancelled + 1

    with web.app_context(), database.database().sessions() as db:
        assert codes.expire_codes(db, second.expires_at + dt.timedelta(seconds=1)) >= 1
        db.commit()
    assert sample("softatm_codes_expired_total") >= expired_codes + 1
    assert sample("softatm_ledger_transfers_total", code="expired") >= expired + 1


def test_wrong_pins_count_as_login_failures(web: Flask) -> None:
    browser = web.test_client()
    registered, form = register(browser)
    assert registered.status_code in {302, 303}
    browser.post("/dang-xuat")
    before = sample("softatm_login_failures_total", kind="citizen_pin")
    assert sign_in(browser, form["phone"], "975310").status_code == 422
    assert sample("softatm_login_failures_total", kind="citizen_pin") == before + 1
    assert sign_in(browser, form["phone"], PIN).status_code in {302, 303}
    assert sample("softatm_login_failures_total", kind="citizen_pin") == before + 1


def test_metrics_add_up_every_process_in_multiprocess_mode(tmp_path: Path) -> None:
    """Two processes share PROMETHEUS_MULTIPROC_DIR, as gunicorn's workers do: the second one's
    /metrics counts the first one's requests too."""
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path

        from kiosk import create_app

        app = create_app({
            "TESTING": True, "SOFTATM_ENV": "test", "DATABASE_URL": "sqlite://",
            "SECRET_KEY": "s" * 40, "KEYS_DIR": Path(sys.argv[1]),
        })
        client = app.test_client()
        for _ in range(int(sys.argv[2])):
            client.get("/healthz")
        print(client.get("/metrics").text)
        """
    )
    directory = tmp_path / "metrics"
    directory.mkdir()
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("SOFTATM_")
    }
    environment["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    outputs = [
        subprocess.run(  # noqa: S603 - the test's own script, run by this interpreter
            [sys.executable, "-c", script, str(tmp_path / "keys"), str(count)],
            env=environment,
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        for count in (2, 1)
    ]
    series = 'softatm_http_requests_total{endpoint="kiosk.healthz",method="GET",status="200"}'
    assert f"{series} 2.0" in outputs[0]
    assert f"{series} 3.0" in outputs[1]


# --- Trusting the reverse proxy -----------------------------------------------------------------


def _address_app(make_app: AppFactory, **overrides: object) -> FlaskClient:
    app = make_app(**overrides)

    @app.get("/test-address")
    def address() -> dict[str, object]:
        from flask import request

        return {"address": request.remote_addr, "scheme": request.scheme, "host": request.host}

    return app.test_client()


def test_one_trusted_proxy_hop_reads_the_last_forwarded_address(make_app: AppFactory) -> None:
    client = _address_app(make_app, TRUSTED_PROXY_HOPS=1)
    response = client.get(
        "/test-address",
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
        headers={
            # The client wrote the first address itself; nginx appended the one it saw.
            "X-Forwarded-For": "10.9.9.9, 203.0.113.7",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "evil.example",
        },
    )
    assert response.json == {"address": "203.0.113.7", "scheme": "https", "host": "localhost"}


def test_without_a_trusted_proxy_forwarded_headers_are_ignored(make_app: AppFactory) -> None:
    client = _address_app(make_app)
    response = client.get(
        "/test-address",
        environ_base={"REMOTE_ADDR": "198.51.100.4"},
        headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"},
    )
    assert response.json == {"address": "198.51.100.4", "scheme": "http", "host": "localhost"}


def test_a_forwarded_loopback_address_does_not_open_metrics(make_app: AppFactory) -> None:
    client = make_app(TRUSTED_PROXY_HOPS=1).test_client()
    response = client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})
    assert response.status_code == 404


# The database named so that loading the settings creates no default SQLite folder.
BASE_ENVIRON = {"SOFTATM_ENV": "test", "DATABASE_URL": "sqlite://"}


@pytest.mark.parametrize(("raw", "hops"), [("0", 0), ("1", 1), (" 1 ", 1)])
def test_trusted_proxy_hops_setting(raw: str, hops: int) -> None:
    settings = load(environ={**BASE_ENVIRON, "SOFTATM_TRUSTED_PROXY_HOPS": raw})
    assert settings["TRUSTED_PROXY_HOPS"] == hops


@pytest.mark.parametrize("raw", ["2", "-1", "yes", "1.0"])
def test_trusted_proxy_hops_is_0_or_1(raw: str) -> None:
    with pytest.raises(ConfigError, match="SOFTATM_TRUSTED_PROXY_HOPS"):
        load(environ={**BASE_ENVIRON, "SOFTATM_TRUSTED_PROXY_HOPS": raw})


def test_proxy_and_metrics_settings_default_to_closed() -> None:
    settings = load(environ=BASE_ENVIRON)
    assert (settings["TRUSTED_PROXY_HOPS"], settings["METRICS_TOKEN"]) == (0, "")
    with_token = load(environ={**BASE_ENVIRON, "SOFTATM_METRICS_TOKEN": "t0ken"})
    assert with_token["METRICS_TOKEN"] == "t0ken"
