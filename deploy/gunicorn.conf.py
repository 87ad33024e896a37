"""Gunicorn settings for Soft ATM: ``gunicorn -c deploy/gunicorn.conf.py kiosk.wsgi:app``.

Environment: ``BIND`` (an address gunicorn understands, such as ``0.0.0.0:8000`` or
``unix:/run/softatm.sock``) wins over ``PORT`` (default 8000, on 127.0.0.1 so that only a
reverse proxy on the same host can reach it); ``WEB_CONCURRENCY`` overrides the worker count.
"""

import multiprocessing
import os

PORT_DEFAULT = 8000
# Past this many processes a bigger host gains little for this workload and each one holds its
# own database connections.
WORKERS_MAX = 12
THREADS_PER_WORKER = 4


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

# A request that takes longer than this is stuck; the worker is replaced.
timeout = 30
# On restart or deploy, in-flight requests (a payout confirmation, say) get this long to finish.
graceful_timeout = 30
keepalive = 5
# Recycling workers now and then bounds the memory a slow leak can take.
max_requests = 2000
max_requests_jitter = 200

accesslog = "-"
errorlog = "-"
loglevel = "info"
# Gunicorn's combined format with the request duration in microseconds at the end.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s'

# Gunicorn 24 and later open a control socket in ~/.gunicorn; nothing here uses it, and two
# instances on one host (a development server and a test run) would contend for that one path.
control_socket_disable = True
