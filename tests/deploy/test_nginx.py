"""deploy/nginx/softatm.conf: `nginx -t`, then a real nginx in front of the real app, on loopback
ports, with a throwaway certificate: redirects, TLS, headers, body limits, static files, the sign-in
rate limit and the JSON access log."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import re
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from tests.deploy.conftest import DEPLOY_DIR, PROJECT_ROOT, AppFactory, debian_tool, run

NGINX_DIR = DEPLOY_DIR / "nginx"
START_S = 10
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
MB = 1024 * 1024


def write_certificate(directory: Path) -> None:
    """A self-signed certificate for 127.0.0.1, as fullchain.pem and privkey.pem."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "softatm.test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True)
    (directory / "fullchain.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass(frozen=True)
class Site:
    """softatm.conf made runnable here: certificate, logs, static files and ports substituted."""

    root: Path
    main_config: Path
    http_port: int
    https_port: int

    @property
    def access_log(self) -> Path:
        return self.root / "access.log"


def make_site(
    root: Path, nginx: str, app_port: int, *, listen: bool, compose: bool = False
) -> Site:
    """The host layout (upstream-local.conf before softatm.conf), or compose's as the proxy image
    has it (upstream-compose.conf after it, the IPv6 listeners removed; "app" does not resolve
    here, so it stands for 127.0.0.1)."""
    write_certificate(root / "tls")
    http_port, https_port = free_port(), free_port()
    config = (NGINX_DIR / "softatm.conf").read_text()
    replacements = {
        "/etc/softatm/tls/": f"{root}/tls/",
        "/var/log/nginx/access.log": f"{root}/access.log",
        "/opt/softatm/app/": f"{PROJECT_ROOT}/",
    }
    if listen or compose:
        # Loopback ports; the IPv6 listeners go (a sandbox may have no IPv6).
        replacements |= {
            "listen [::]:80 default_server;": "",
            "listen [::]:443 ssl http2 default_server;": "",
        }
    if listen:
        replacements |= {
            "listen 80 default_server;": f"listen 127.0.0.1:{http_port} default_server;",
            "listen 443 ssl http2 default_server;": (
                f"listen 127.0.0.1:{https_port} ssl http2 default_server;"
            ),
        }
    for old, new in replacements.items():
        assert old in config, old
        config = config.replace(old, new)
    (root / "softatm.conf").write_text(config)
    upstream_file, server = (
        ("upstream-compose.conf", "server app:8000;")
        if compose
        else ("upstream-local.conf", "server 127.0.0.1:8000;")
    )
    upstream = (NGINX_DIR / upstream_file).read_text()
    assert server in upstream
    (root / "upstream.conf").write_text(upstream.replace(server, f"server 127.0.0.1:{app_port};"))
    includes = [f"{root}/upstream.conf", f"{root}/softatm.conf"]
    if compose:
        includes.reverse()  # conf.d/softatm-upstream.conf comes after conf.d/softatm.conf
    mime_types = Path(nginx).resolve().parents[1] / "etc" / "nginx" / "mime.types"
    if not mime_types.exists():
        mime_types = Path("/etc/nginx/mime.types")
    temporary = "\n".join(
        f"    {kind}_temp_path {root}/{kind}_temp;"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # One process, in the foreground, everything under root: a test instance, not a service.
    main_config = root / "nginx.conf"
    main_config.write_text(
        f"""daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 64; }}
http {{
    include {mime_types};
    default_type application/octet-stream;
    access_log off;
{temporary}
    include {includes[0]};
    include {includes[1]};
}}
"""
    )
    return Site(root, main_config, http_port, https_port)


@pytest.fixture(scope="module")
def nginx() -> str:
    return debian_tool("nginx", "nginx-light")


@pytest.mark.parametrize("compose", [False, True], ids=["host", "compose"])
def test_configuration_passes_nginx_t(nginx: str, tmp_path: Path, compose: bool) -> None:
    site = make_site(tmp_path, nginx, 8000, listen=False, compose=compose)
    result = run(
        [nginx, "-t", "-p", tmp_path, "-e", tmp_path / "error.log", "-c", site.main_config]
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    assert "[warn]" not in result.stderr and "[emerg]" not in result.stderr


def test_compose_upstream_names_the_same_servers() -> None:
    local = (NGINX_DIR / "upstream-local.conf").read_text()
    compose = (NGINX_DIR / "upstream-compose.conf").read_text()
    assert "upstream softatm_app {" in local and "upstream softatm_app {" in compose
    assert "server app:8000;" in compose
    assert "proxy_pass http://softatm_app;" in (NGINX_DIR / "softatm.conf").read_text()


@pytest.fixture
def live_app(make_app: AppFactory, sqlite_template: Path, tmp_path: Path) -> Iterator[int]:
    """The app, served by werkzeug on a loopback port, with one extra page that shows what
    reached it from nginx. CSRF is off so that a form without a token reaches its view."""
    database_path = tmp_path / "app.sqlite3"
    database_path.write_bytes(sqlite_template.read_bytes())
    app: Flask = make_app(f"sqlite:///{database_path}", WTF_CSRF_ENABLED=False)

    @app.get("/_test/headers")
    def echo_headers() -> object:
        return jsonify(
            {
                name: request.headers.get(name)
                for name in (
                    "X-Forwarded-For",
                    "X-Forwarded-Proto",
                    "X-Request-Id",
                    "X-Forwarded-Ssl",
                    "Host",
                )
            }
        )

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    thread.join()


@pytest.fixture
def site(nginx: str, live_app: int, tmp_path: Path) -> Iterator[Site]:
    site = make_site(tmp_path / "nginx", nginx, live_app, listen=True)
    process = subprocess.Popen(  # noqa: S603 — our own command line
        [nginx, "-p", str(site.root), "-e", str(site.root / "error.log"), "-c", site.main_config],
        # Its errors go to error.log, read when it does not start.
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", site.https_port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    error_log = (site.root / "error.log").read_text(errors="replace")
                    pytest.fail(f"nginx did not start: {error_log}")
                time.sleep(0.05)
        yield site
    finally:
        process.terminate()
        process.wait(timeout=START_S)


@pytest.fixture
def connect(site: Site) -> Iterator[Callable[[bool], http.client.HTTPConnection]]:
    """Open connections to nginx (HTTPS trusting the test certificate, or plain HTTP); all are
    closed at the end."""
    opened: list[http.client.HTTPConnection] = []

    def open_connection(secure: bool = True) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if secure:
            context = ssl.create_default_context(cafile=site.root / "tls" / "fullchain.pem")
            context.check_hostname = False
            connection = http.client.HTTPSConnection(
                "127.0.0.1", site.https_port, context=context, timeout=10
            )
        else:
            connection = http.client.HTTPConnection("127.0.0.1", site.http_port, timeout=10)
        opened.append(connection)
        return connection

    yield open_connection
    for connection in opened:
        connection.close()


def fetch(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[http.client.HTTPResponse, bytes]:
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    return response, response.read()


def test_nginx_in_front_of_the_app(
    site: Site, connect: Callable[[bool], http.client.HTTPConnection]
) -> None:
    plain = connect(False)
    response, _ = fetch(plain, "GET", "/vi/lich-su?so_dien_thoai=0912345678")
    assert response.status == 301
    assert response.getheader("Location") == "https://127.0.0.1/vi/lich-su?so_dien_thoai=0912345678"

    connection = connect(True)
    response, body = fetch(connection, "GET", "/healthz")
    assert response.status == 200 and json.loads(body) == {"status": "ok"}
    assert connection.sock is not None
    assert connection.sock.version() in {"TLSv1.2", "TLSv1.3"}
    hsts = response.msg.get_all("Strict-Transport-Security") or []
    assert hsts == ["max-age=63072000; includeSubDomains"]
    assert response.getheader("Server") == "nginx"  # no version
    assert REQUEST_ID.match(response.getheader("X-Request-Id") or "")

    # What reached the app: the scheme, the client, nginx's request id (not the client's), and
    # none of the scheme headers gunicorn would trip over.
    response, body = fetch(
        connection,
        "GET",
        "/_test/headers",
        headers={"X-Request-Id": "chosen-by-client", "X-Forwarded-Ssl": "off"},
    )
    seen = json.loads(body)
    assert seen["X-Forwarded-Proto"] == "https"
    assert seen["X-Forwarded-For"] == "127.0.0.1"
    assert seen["X-Forwarded-Ssl"] is None
    assert seen["X-Request-Id"] == response.getheader("X-Request-Id")
    assert REQUEST_ID.match(seen["X-Request-Id"])

    # Static files come from the package folders, with caching and the security headers.
    for path, source in (
        ("/static/softatm.css", PROJECT_ROOT / "kiosk" / "static" / "softatm.css"),
        ("/quay/static/agent.css", PROJECT_ROOT / "agent_portal" / "static" / "agent.css"),
    ):
        response, body = fetch(connection, "GET", path)
        assert response.status == 200 and body == source.read_bytes()
        assert response.getheader("Cache-Control") == "max-age=3600"
        assert response.getheader("X-Content-Type-Options") == "nosniff"
        assert response.getheader("Strict-Transport-Security")

    # 2 MB for most requests, 10 MB for the two photo uploads (which the app itself then judges).
    big = b"x" * (3 * MB)
    form = {"Content-Type": "application/octet-stream"}
    response, _ = fetch(connection, "POST", "/vi", body=big, headers=form)
    assert response.status == 413
    connection = connect(True)  # nginx closes a connection after refusing its body
    for path in ("/tra-tien", "/quay/anh"):
        response, _ = fetch(connection, "POST", path, body=big, headers=form)
        assert response.status == 302, path  # the app's answer: sign in first
    connection = connect(True)
    response, _ = fetch(connection, "POST", "/quay/anh", body=b"x" * (11 * MB), headers=form)
    assert response.status == 413

    lines = site.access_log.read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert records[0]["path"] == "/vi/lich-su" and records[0]["status"] == 301
    assert all("0912345678" not in line for line in lines)
    assert all(REQUEST_ID.match(record["request_id"]) for record in records)
    assert not any(record["path"].startswith("/static/") for record in records)


def test_sign_in_posts_are_rate_limited(
    site: Site, connect: Callable[[bool], http.client.HTTPConnection]
) -> None:
    connection = connect(True)
    statuses = []
    for _ in range(70):
        response, _ = fetch(connection, "POST", "/dang-nhap", body=b"", headers={})
        statuses.append(response.status)
        if response.status == 429:
            break
    # The burst (60) passes at once; the next is refused by nginx, not by the app.
    assert 429 not in statuses[:60] and statuses[-1] == 429, statuses
    response, _ = fetch(connection, "POST", "/quay/dang-nhap", body=b"")
    assert response.status == 429  # one zone for both sign-in pages
    response, _ = fetch(connection, "GET", "/dang-nhap")
    assert response.status == 200  # reading the page is not limited
    response, _ = fetch(connection, "POST", "/vi", body=b"")
    assert response.status != 429  # nor are other forms
