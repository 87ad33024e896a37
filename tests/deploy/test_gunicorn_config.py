"""deploy/gunicorn.conf.py: its settings from the environment, and the JSON access log, both as a
module and from a real gunicorn serving the app."""

from __future__ import annotations

import datetime as dt
import http.client
import importlib.util
import json
import logging
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from gunicorn.config import Config

from tests.deploy.conftest import DEPLOY_DIR, PROJECT_ROOT

CONFIG_PATH = DEPLOY_DIR / "gunicorn.conf.py"
SERVER_START_S = 20
# What nginx sends ($request_id): 32 hex digits, which the app passes on as it is.
NGINX_REQUEST_ID = "0123456789abcdef0123456789abcdef"


def load_config(monkeypatch: pytest.MonkeyPatch, **env: str) -> ModuleType:
    """Execute the config file as gunicorn does, with only the given variables of its own set."""
    for name in ("PORT", "BIND", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS", "PROXY_ALLOW_IPS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("softatm_gunicorn_conf", CONFIG_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gunicorn_config(module: ModuleType) -> Config:
    """Gunicorn's own Config, filled from the module as `gunicorn -c` fills it (validated)."""
    config = Config()
    for name, value in vars(module).items():
        if name in config.settings:
            config.set(name, value)
    return config


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_config(monkeypatch)
    config = gunicorn_config(module)
    assert config.bind == ["127.0.0.1:8000"]
    assert config.workers == min(2 * multiprocessing.cpu_count() + 1, 12)
    assert config.worker_class_str == "gthread" and config.threads == 4
    assert config.timeout == 30 and config.graceful_timeout == 30
    assert config.forwarded_allow_ips == ["127.0.0.1", "::1"]
    assert config.proxy_allow_ips == ["127.0.0.1", "::1"]
    assert config.secure_scheme_headers == {"X-FORWARDED-PROTO": "https"}
    assert config.preload_app is False
    assert config.logger_class is module.JsonAccessLogger
    assert config.accesslog == "-"


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config = gunicorn_config(
        load_config(
            monkeypatch,
            PORT="8123",
            WEB_CONCURRENCY="3",
            FORWARDED_ALLOW_IPS="172.31.240.10",
            PROXY_ALLOW_IPS="10.0.0.0/8,192.168.1.7",
        )
    )
    assert config.bind == ["127.0.0.1:8123"] and config.workers == 3
    assert config.forwarded_allow_ips == ["172.31.240.10"]
    assert config.proxy_allow_ips == ["10.0.0.0/8", "192.168.1.7"]
    # BIND wins over PORT.
    bound = gunicorn_config(load_config(monkeypatch, PORT="8123", BIND="unix:/run/softatm.sock"))
    assert bound.bind == ["unix:/run/softatm.sock"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORT", "eighty", "PORT='eighty' is not a whole number"),
        ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY=0 is outside 1..48"),
        ("FORWARDED_ALLOW_IPS", "127.0.0.1,nginx", "FORWARDED_ALLOW_IPS: "),
        ("PROXY_ALLOW_IPS", "10.0.0.1/8", "PROXY_ALLOW_IPS: "),
    ],
)
def test_bad_environment_stops_the_start(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    with pytest.raises(SystemExit, match=message.replace(".", r"\.")):
        load_config(monkeypatch, **{name: value})


class FakeResponse:
    def __init__(self, status: str, headers: list[tuple[str, str]], sent: int) -> None:
        self.status = status
        self.headers = headers
        self.sent = sent


def access_lines(module: ModuleType, response: FakeResponse, environ: dict[str, Any]) -> list[str]:
    logger = module.JsonAccessLogger(gunicorn_config(module))
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Collect()
    logger.access_log.addHandler(handler)
    try:
        logger.access(response, None, environ, dt.timedelta(milliseconds=12, microseconds=345))
    finally:
        logger.access_log.removeHandler(handler)
    return lines


def test_access_log_is_json_without_the_query(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_config(monkeypatch)
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/lich-su",
        "QUERY_STRING": "so_dien_thoai=0912345678",
        "RAW_URI": "/lich-su?so_dien_thoai=0912345678",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_X_FORWARDED_FOR": "203.0.113.9, 198.51.100.4",
        "HTTP_X_REQUEST_ID": "from-the-request",
        "HTTP_COOKIE": "session=secret",
        "HTTP_REFERER": "https://softatm.example/?so_dien_thoai=0987654321",
    }
    response = FakeResponse("200 OK", [("X-Request-Id", "f" * 32), ("Content-Length", "10")], 10)
    (line,) = access_lines(module, response, environ)
    assert "\n" not in line
    record = json.loads(line)
    assert record == {
        "time": record["time"],
        # The last hop: the address our nginx saw, not what the client claimed.
        "remote_addr": "198.51.100.4",
        "method": "GET",
        "path": "/lich-su",
        "status": 200,
        "bytes": 10,
        "duration_ms": 12.3,
        "request_id": "f" * 32,
    }
    assert dt.datetime.fromisoformat(record["time"]).tzinfo is not None
    for secret in ("0912345678", "0987654321", "so_dien_thoai", "secret"):
        assert secret not in line


def test_access_log_trusts_forwarded_for_only_from_the_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = load_config(monkeypatch)
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/quay/anh",
        "REMOTE_ADDR": "192.0.2.50",
        "HTTP_X_FORWARDED_FOR": "10.9.9.9",
        "HTTP_X_REQUEST_ID": "r" * 300,
    }
    response = FakeResponse("413 REQUEST ENTITY TOO LARGE", [], 0)
    record = json.loads(access_lines(module, response, environ)[0])
    assert record["remote_addr"] == "192.0.2.50"
    # Nor when the app's ProxyFix believed the header: the peer is what gunicorn saw.
    proxied = environ | {
        "REMOTE_ADDR": "10.9.9.9",
        "werkzeug.proxy_fix.orig": {"REMOTE_ADDR": "192.0.2.50"},
    }
    assert json.loads(access_lines(module, response, proxied)[0])["remote_addr"] == "192.0.2.50"
    assert record["status"] == 413 and record["bytes"] == 0
    # Without a response header, the request's id, cut to a sane length.
    assert record["request_id"] == "r" * 128


def test_metrics_folder_is_emptied_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    module = load_config(monkeypatch)
    config = gunicorn_config(module)
    assert config.on_starting is module.on_starting and config.child_exit is module.child_exit
    folder = tmp_path / "metrics"
    module.on_starting(None)  # without the variable: nothing to do
    assert not folder.exists()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    module.on_starting(None)
    assert folder.is_dir()
    (folder / "counter_123.db").write_bytes(b"old")
    (folder / "gauge_livesum_456.db").write_bytes(b"old")
    (folder / "README").write_text("kept")
    module.on_starting(None)
    assert [path.name for path in folder.iterdir()] == ["README"]
    (folder / "gauge_livesum_456.db").write_bytes(b"")

    class Worker:
        pid = 456

    module.child_exit(None, Worker())
    assert not (folder / "gauge_livesum_456.db").exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _get(port: int, path: str, headers: dict[str, str]) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        assert response.status == 200
        return response.read()
    finally:
        connection.close()


def test_gunicorn_serves_the_app_and_logs_json(tmp_path: Path) -> None:
    """`make run`'s command line: gunicorn with this file in front of kiosk.wsgi:app."""
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SOFTATM_")
        and key not in {"BIND", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS"}
    }
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "counter_1.db").write_bytes(b"from a previous run")
    env |= {
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "SOFTATM_ENV": "test",
        "SECRET_KEY": "gunicorn-test-secret-key-long-enough-for-it",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'softatm.sqlite3'}",
        "SOFTATM_KEYS_DIR": str(tmp_path / "keys"),
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen(  # noqa: S603 — our own command line
        [str(gunicorn), "-c", str(CONFIG_PATH), "kiosk.wsgi:app"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + SERVER_START_S
        body = None
        while body is None:
            try:
                body = _get(
                    port,
                    "/healthz?so_dien_thoai=0912345678",
                    {"X-Request-Id": NGINX_REQUEST_ID, "X-Forwarded-For": "203.0.113.7"},
                )
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)
        assert json.loads(body) == {"status": "ok"}
    finally:
        server.send_signal(signal.SIGTERM)
        stdout, stderr = server.communicate(timeout=SERVER_START_S)
    assert server.returncode == 0, stderr
    # The app's own log lines may share stdout; the access log's line is the one with a status.
    records = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    access = [record for record in records if "status" in record and "duration_ms" in record]
    assert len(access) == 1, stdout
    (record,) = access
    assert record["path"] == "/healthz" and record["method"] == "GET"
    assert record["status"] == 200 and record["bytes"] == len(body)
    assert record["remote_addr"] == "203.0.113.7"
    assert record["request_id"] == NGINX_REQUEST_ID
    assert "0912345678" not in stdout
    assert "Listening at: http://127.0.0.1:" in stderr
    assert not (metrics / "counter_1.db").exists()
