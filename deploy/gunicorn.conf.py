"""Gunicorn settings for Soft ATM: ``gunicorn -c deploy/gunicorn.conf.py kiosk.wsgi:app``.

Environment: ``BIND`` (an address gunicorn understands, such as ``0.0.0.0:8000`` or
``unix:/run/softatm.sock``) wins over ``PORT`` (default 8000, on 127.0.0.1 so that only a
reverse proxy on the same host can reach it); ``WEB_CONCURRENCY`` overrides the worker count;
``FORWARDED_ALLOW_IPS`` and ``PROXY_ALLOW_IPS`` name the proxies trusted to say who the client is
(comma-separated addresses or networks, default loopback only); ``PROMETHEUS_MULTIPROC_DIR``
turns on the metrics folder that the workers share (emptied at start).

Reloading: ``kill -HUP <master>`` (``systemctl reload softatm``) rereads this file and replaces
the workers one generation at a time; each old worker finishes its requests first (up to
``graceful_timeout``). The app is imported by each worker, not by the master, so the new workers
also run the new code.

The access log is one JSON object per line (`JsonAccessLogger`): the path is logged without its
query string, because queries may carry phone numbers.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import multiprocessing
import os
from pathlib import Path
from typing import Any

from gunicorn import glogging

PORT_DEFAULT = 8000
# Past this many processes a bigger host gains little for this workload and each one holds its
# own database connections.
WORKERS_MAX = 12
THREADS_PER_WORKER = 4
# Only the reverse proxy on the same host may speak for the client.
TRUSTED_PROXIES_DEFAULT = "127.0.0.1,::1"
REQUEST_ID_HEADER = "x-request-id"
# A request id longer than this is not one of ours (nginx's $request_id is 32 hex digits).
REQUEST_ID_MAX_CHARS = 128


def _int_from_env(name: str, default: int, minimum: int, maximum: int) -> int:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a whole number") from None
    if not minimum <= value <= maximum:
        raise SystemExit(f"{name}={value} is outside {minimum}..{maximum}")
    return value


def _networks_from_env(name: str, default: str) -> str:
    """The variable's comma-separated addresses or networks, checked now so that a typo stops
    the start with the variable's name rather than deep inside gunicorn."""
    raw = os.environ.get(name, "").strip() or default
    for item in (part.strip() for part in raw.split(",")):
        if item == "*":
            continue
        try:
            ipaddress.ip_network(item)
        except ValueError as error:
            raise SystemExit(f"{name}: {error}") from None
    return raw


_port = _int_from_env("PORT", PORT_DEFAULT, 1, 65535)
bind = [os.environ.get("BIND") or f"127.0.0.1:{_port}"]

# The usual 2 x cores + 1 keeps every core busy while some workers wait on the database.
workers = _int_from_env(
    "WEB_CONCURRENCY",
    min(2 * multiprocessing.cpu_count() + 1, WORKERS_MAX),
    1,
    WORKERS_MAX * 4,
)
# Threads let a worker serve other requests while one waits on the database or a slow 3G client.
worker_class = "gthread"
threads = THREADS_PER_WORKER

# A request that takes longer than this is stuck; the worker is replaced. The proxy waits a
# little longer (deploy/nginx/softatm.conf, proxy_read_timeout 35s) so that it reports gunicorn's
# answer rather than its own timeout.
timeout = 30
# On reload, restart or deploy, in-flight requests (a payout confirmation, say) get this long.
graceful_timeout = 30
# Idle keep-alive connections from the proxy are closed after this; nginx's upstream
# keepalive_timeout is shorter, so nginx never reuses a connection gunicorn is closing.
keepalive = 5
# Recycling workers now and then bounds the memory a slow leak can take.
max_requests = 2000
max_requests_jitter = 200
# Workers import the app themselves, so that a reload (HUP) picks up new code.
preload_app = False
# The workers' heartbeat files: on a memory filesystem, so that a slow or read-only disk (a
# container's overlay, ProtectSystem=strict) never makes a busy worker look dead. Gunicorn makes
# them with mkstemp, so a shared folder is safe.
MEMORY_FILESYSTEM = "/dev/shm"  # noqa: S108
worker_tmp_dir = MEMORY_FILESYSTEM if os.path.isdir(MEMORY_FILESYSTEM) else None

# Who may set the scheme (X-Forwarded-Proto) and, with the PROXY protocol, the client address.
forwarded_allow_ips = _networks_from_env("FORWARDED_ALLOW_IPS", TRUSTED_PROXIES_DEFAULT)
proxy_allow_ips = _networks_from_env("PROXY_ALLOW_IPS", TRUSTED_PROXIES_DEFAULT)
# Only the header our nginx sets. Gunicorn's default also reads X-Forwarded-Ssl and
# X-Forwarded-Protocol, which nginx passes through from the client: a client sending a
# contradicting one would turn every request into an error.
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

accesslog = "-"
errorlog = "-"
loglevel = "info"


def client_address(environ: dict[str, Any], trusted: list[str]) -> str:
    """The client's address: the last hop of X-Forwarded-For when the peer is a trusted proxy
    (our nginx appends the address it saw), else the peer itself."""
    # Werkzeug's ProxyFix, when the app uses it, has already put the client in REMOTE_ADDR and
    # kept the peer here.
    original = environ.get("werkzeug.proxy_fix.orig", {}).get("REMOTE_ADDR")
    peer = original or environ.get("REMOTE_ADDR") or "-"
    forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
    if not forwarded or not _is_trusted(peer, trusted):
        return str(peer)
    return str(forwarded.split(",")[-1].strip() or peer)


def _is_trusted(peer: str, trusted: list[str]) -> bool:
    if "*" in trusted:
        return True
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        # A UNIX socket has no address; only a local process can connect to one.
        return True
    return any(address in ipaddress.ip_network(network) for network in trusted)


def access_record(
    *,
    status: Any,
    response_headers: list[tuple[str, str]],
    sent: int | None,
    environ: dict[str, Any],
    request_time: dt.timedelta,
    trusted: list[str],
) -> str:
    """One access-log line: a JSON object with no query string and no cookies."""
    if isinstance(status, str):
        status = status.split(None, 1)[0]
    headers = {name.lower(): value for name, value in response_headers}
    # The app echoes the proxy's request id; a response made before the app ran has none.
    request_id = headers.get(REQUEST_ID_HEADER) or environ.get("HTTP_X_REQUEST_ID")
    if not sent and environ.get("REQUEST_METHOD") != "HEAD":
        # A file sent with sendfile() is not counted by gunicorn; its length was announced.
        length = headers.get("content-length", "")
        sent = int(length) if length.isdigit() else sent
    record = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "remote_addr": client_address(environ, trusted),
        "method": environ.get("REQUEST_METHOD"),
        # PATH_INFO never holds the query string; RAW_URI and REQUEST_URI do.
        "path": environ.get("PATH_INFO"),
        "status": int(status) if str(status).isdigit() else status,
        "bytes": sent or 0,
        "duration_ms": round(request_time.total_seconds() * 1000, 1),
        "request_id": request_id[:REQUEST_ID_MAX_CHARS] if request_id else None,
    }
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


class JsonAccessLogger(glogging.Logger):
    """Gunicorn's logger with the access log written as one JSON object per line."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not getattr(self, "access_log_enabled", True):
            return
        try:
            line = access_record(
                status=resp.status,
                response_headers=list(resp.headers),
                sent=getattr(resp, "sent", None),
                environ=environ,
                request_time=request_time,
                trusted=list(self.cfg.forwarded_allow_ips),
            )
            # No arguments: a "%" in the line is not a format directive.
            self.access_log.info(line)
        except Exception:  # a log line must never fail a request; say why instead
            self.exception("Could not write the access log line")


logger_class = JsonAccessLogger

# Prometheus counters across workers (kiosk/metrics.py): with PROMETHEUS_MULTIPROC_DIR set, each
# worker keeps its values in files there and /metrics adds them up.
PROMETHEUS_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def on_starting(server: Any) -> None:
    """Empty the metrics folder when the server starts (not on a reload): the files of a previous
    run's workers would otherwise be counted again."""
    directory = os.environ.get(PROMETHEUS_DIRECTORY_VARIABLE)
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges; its counters stay, so totals never go down."""
    if os.environ.get(PROMETHEUS_DIRECTORY_VARIABLE):
        # Imported here: the settings above load without prometheus_client installed.
        from prometheus_client import multiprocess  # noqa: PLC0415

        multiprocess.mark_process_dead(worker.pid)


# Gunicorn 24 and later open a control socket in ~/.gunicorn; nothing here uses it, and two
# instances on one host (a development server and a test run) would contend for that one path.
control_socket_disable = True
